"""Tests of ``ultralytics_biformer.cli.erf``: the ``erf`` command (the field itself is tested in test_erf.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ultralytics_biformer.cli import main


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return folder


def test_erf_command_prints_radii_and_writes_a_figure_and_json(image_folder, tmp_path, capsys):
    out = tmp_path / "erf" / "y.png"
    assert main(["erf", "model=yolo11n.yaml", f"source={image_folder}", "imgsz=64", "images=2", f"out={out}"]) == 0
    printed = capsys.readouterr().out
    assert "P3 (stride 8): 50% within" in printed and "random weights (a YAML: not trained)" in printed
    assert out.is_file()
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["imgsz"] == 64 and summary["images"] == ["0.png", "1.png"] and summary["weights"] == "random"
    assert set(summary["levels"]) == {"P3", "P4", "P5"}


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["source=x.png"], "erf needs model=..."),
        (["model=yolo11n.yaml", "source=missing"], "source=missing: no such image file or folder"),
        (["model=yolo11n-cls.yaml", "source=IMAGES"], "is not a detection model with P3-P5 levels"),
        (["model=nope.pt", "source=IMAGES"], "model=nope.pt: no such file (erf never downloads weights)"),
        (["model=yolo11n.yaml", "source=IMAGES", "out=x.jpg"], "out=x.jpg: expected a .png file name"),
    ],
)
def test_erf_command_refuses_bad_arguments(arguments, message, image_folder, capsys):
    arguments = [a.replace("IMAGES", str(image_folder)) for a in arguments]
    assert main(["erf", *arguments]) == 2
    assert message in capsys.readouterr().err
