"""Tests of ``ultralytics_biformer.cli.args``: the command-line converters, built on ``_int_checks``."""

from __future__ import annotations

import pytest

from ultralytics_biformer.cli import args


@pytest.mark.parametrize(
    "convert, raw, expected",
    [(args.positive_int, "3", 3), (args.positive_int, " 7 ", 7), (args.non_negative_int, "0", 0)],
)
def test_cli_converters_accept_integers_in_range(convert, raw, expected):
    assert convert(raw) == expected


@pytest.mark.parametrize(
    "convert, raw, minimum",
    [
        (args.positive_int, "0", 1),
        (args.positive_int, "-2", 1),
        (args.positive_int, "1.5", 1),
        (args.positive_int, "True", 1),
        (args.positive_int, "", 1),
        (args.non_negative_int, "-1", 0),
        (args.non_negative_int, "x", 0),
    ],
)
def test_cli_converters_refuse_the_rest(convert, raw, minimum):
    with pytest.raises(ValueError, match=rf"^expected an integer >= {minimum}$"):
        convert(raw)
