"""Tests of ``ultralytics_biformer.bench.inputs``: model digests, data checks and pretrained weights, checked before
any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ultralytics_biformer import config_dir
from ultralytics_biformer.bench import inputs
from ultralytics_biformer.cli import compare


def test_report_of_a_fine_tune_comparison_renders_without_its_checkpoint(tmp_path, monkeypatch):
    """Weights are never committed with records, so train=False must not need the checkpoint; training must."""
    monkeypatch.chdir(tmp_path)
    assert inputs.resolve_pretrained("gone/best.pt", train=False) == str(tmp_path / "gone" / "best.pt")
    with pytest.raises(compare.ArgumentError, match="no such file"):
        inputs.resolve_pretrained("gone/best.pt")


def test_model_digest_ignores_comments_and_follows_rows(tmp_path):
    text = (config_dir() / "yolo11-biformer.yaml").read_text()
    assert "[1024, 2, 2]] # 10" in text
    variants = {
        "same": text,
        "commented": "# a note\n" + text.replace("# 10 ", "# layer ten "),
        "edited": text.replace("[1024, 2, 2]] # 10", "[1024, 2, 1]] # 10"),
    }
    digests = {}
    for name, body in variants.items():
        (tmp_path / name).mkdir()
        path = tmp_path / name / "yolo11n-biformer.yaml"
        path.write_text(body)
        digests[name] = inputs._check_model(str(path))[2]
    assert digests["same"] == digests["commented"] != digests["edited"]


def test_models_keep_the_digests_of_the_committed_study_records_so_the_study_resumes():
    """A digest that changed with the code, not the model, would make every committed comparison refuse to resume."""
    records = Path(__file__).resolve().parents[1] / "docs" / "results" / "context" / "context-d8" / "records"
    for spec in ("yolo11n.yaml", "yolo11n-biformer.yaml", "yolo12n.yaml"):
        recorded = json.loads((records / f"{Path(spec).stem}-seed0.json").read_text())["model_digest"]
        assert inputs._check_model(spec)[2] == recorded, spec


def test_val_list_files_are_read_by_line(tmp_path):
    """Ultralytics reads a list file one path per line, so paths with spaces must survive."""
    folder = tmp_path / "my images"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "images" / "a.jpg").touch()
    (folder / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1 0.2 0.2\n")
    (folder / "val.txt").write_text("./images/a.jpg\n")
    assert inputs._val_images({"val": str(folder / "val.txt")}, 5) == [folder / "images" / "a.jpg"]
    assert inputs._label_columns({"val": str(folder / "val.txt")}) == {7}
