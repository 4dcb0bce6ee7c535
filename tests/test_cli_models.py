"""Tests of ``ultralytics_biformer.cli.models``: how every command loads a ``model=``, and the one-line errors for a
model it cannot use."""

from __future__ import annotations

import pytest

from ultralytics_biformer.cli import main


def test_a_misspelt_bundled_name_is_named_by_routes_and_erf(image_file, capsys):
    for command in ("routes", "erf"):
        assert main([command, "model=yolo11n-biformr.yaml", f"source={image_file}"]) == 2
        assert "did you mean 'yolo11n-biformer.yaml'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, reason",
    [
        ("syntax.yaml", "does not build: ValueError: YAML syntax error"),
        ("yolo11n-zero-windows.yaml", "does not build: ValueError: model YAML layer 10 (C2PSA_BRA): n_win must be"),
        ("corrupt.pt", "corrupt.pt is not a loadable checkpoint"),
        ("foreign.pt", "could not be loaded: "),
        ("stock.pt", "has no bi-level routing attention layers"),
        ("picture.png", "expected a model YAML (.yaml, .yml) or a local checkpoint (.pt, .pth)"),
        ("missing.yaml", "no such file, and no stock or bundled model YAML has that name; give a model YAML"),
    ],
)
def test_bad_model_is_a_one_line_argument_error(name, reason, bad_models, image_file, tmp_path, capsys):
    out = tmp_path / "routes.png"
    assert main(["routes", f"model={bad_models / name}", f"source={image_file}", "imgsz=64", f"out={out}"]) == 2
    err = capsys.readouterr().err.splitlines()
    first = next(i for i, line in enumerate(err) if line.startswith("ultralytics-biformer routes: error:"))
    assert f"model={bad_models / name}" in err[first] and reason in err[first], err[first]
    assert err[first + 1].startswith("Run 'ultralytics-biformer routes help'")  # the message took one line
    assert not out.exists()


@pytest.mark.parametrize("name", ["corrupt.pt", "foreign.pt"])
@pytest.mark.parametrize(
    "command",
    [
        ["compare", "models=MODEL"],
        ["compare", "pretrained=MODEL"],
        ["routes", "model=MODEL", "source=IMAGE"],
        ["erf", "model=MODEL", "source=IMAGE"],
    ],
)
def test_bad_checkpoints_get_one_clean_line_from_every_command(name, command, bad_models, image_file, capsys):
    arguments = [a.replace("MODEL", str(bad_models / name)).replace("IMAGE", str(image_file)) for a in command]
    assert main(arguments) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(err) if line.startswith(f"ultralytics-biformer {command[0]}: error:"))
    assert "could not be loaded: " in err[first] and str(bad_models / name) in err[first]
    assert err[first + 1].startswith(f"Run 'ultralytics-biformer {command[0]} help'")  # one line
    for foreign_word in ("Error", "ERROR", "yolo26n", "Recommended", "official"):
        assert foreign_word not in err[first], err[first]
