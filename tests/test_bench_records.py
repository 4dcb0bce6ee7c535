"""Tests of ``ultralytics_biformer.bench.records``: the typed run records; committed records of every task load and save
unchanged, and the CSV columns follow them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ultralytics_biformer.bench.metrics import TASK_METRICS
from ultralytics_biformer.bench.records import BenchRecord, TrainRecord

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
COMMITTED = sorted(p for p in RESULTS.rglob("records/*.json") if not p.name.endswith(".job.json"))


def test_committed_records_exist_for_every_kind():
    kinds = {json.loads(p.read_text())["job"] for p in COMMITTED}
    assert kinds == {"train", "bench"}, kinds


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_committed_record_loads_and_saves_back_to_the_same_json(path, tmp_path):
    """Records written by every earlier release are read by the report and the resume check: nothing may be lost, and
    fields they predate are written back empty."""
    data = json.loads(path.read_text())
    kind = TrainRecord if data["job"] == "train" else BenchRecord
    record = kind.load(path)
    record.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == {
        **{
            f.name: None
            for f in dataclasses.fields(kind)
            if f.name not in ("metrics", "curves", "train_args", "bench_args")
        },
        **({"curves": {}} if kind is TrainRecord else {}),
        **data,
    }


def test_a_training_record_keeps_its_metrics_apart_from_its_fields():
    task = TASK_METRICS["pose"]
    data = {"job": "train", "model": "m.yaml", "seed": 2, "epochs_run": 3, **{m.key: 0.5 for m in task.metrics}}
    record = TrainRecord.from_json(data)
    assert record.metrics == {m.key: 0.5 for m in task.metrics}
    assert record.value(task.primary) == 0.5 and record.value("epochs_run") == 3
    assert record.value("map_small") is None and record.value("no_such_key") is None
    assert record.resumed_from_epoch is None and record.transferred is None  # fields older records lack


def test_runs_csv_columns_are_the_record_fields_with_the_metrics_after_the_seed():
    # Written out independently of the code: the columns runs.csv has always had, in this order.
    expected = ["model", "seed", "map", "map50", "epoch_seconds", "peak_rss_mib", "train_seconds", "epochs_run"]
    expected += ["resumed_from_epoch", "transferred", "checkpoint_tensors", "peak_cuda_mib", "save_dir"]
    assert TrainRecord.csv_columns(["map", "map50"]) == expected
    row = TrainRecord("m.yaml", 1, epochs_run=4, metrics={"map": 0.25}, weights="/abs/best.pt").csv_row()
    assert row["map"] == 0.25 and row["epochs_run"] == 4 and "weights" not in row and "curves" not in row


def test_benchmark_csv_columns_are_its_measurements():
    assert BenchRecord.csv_fields() == ["params", "gflops", "torch_ms", "onnx_ms", "onnx_error", "threads", "imgsz"]
