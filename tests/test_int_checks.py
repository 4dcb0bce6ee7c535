"""Tests of ``ultralytics_biformer._int_checks``: the package's one definition of "a positive integer" and "an integer
of at least n"."""

from __future__ import annotations

import pytest

from ultralytics_biformer._int_checks import check_int_at_least, check_positive_int, is_int_at_least, is_positive_int


@pytest.mark.parametrize("value", [1, 2, 10**12])
def test_positive_ints_pass(value):
    assert is_positive_int(value) and check_positive_int("n_win", value) is value


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, 2.5, "3", None, [1]])
def test_everything_else_is_refused_with_the_name_and_the_value(value):
    assert not is_positive_int(value)
    with pytest.raises(ValueError) as e:
        check_positive_int("topk", value)
    assert str(e.value) == f"topk must be a positive integer, got {value!r}"


def test_other_minimums_say_what_they_accept():
    assert is_int_at_least(0, 0) and not is_int_at_least(-1, 0) and not is_int_at_least(True, 0)
    assert check_int_at_least("seed", 0, 0) == 0
    with pytest.raises(ValueError, match=r"^dataset seed must be a non-negative integer, got -1$"):
        check_int_at_least("dataset seed", -1, 0)
    with pytest.raises(ValueError, match=r"^imgsz must be an integer >= 32, got 31$"):
        check_int_at_least("imgsz", 31, 32)
