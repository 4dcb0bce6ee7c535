"""End to end: ``compare`` for every other task; segment, pose, obb and classify train with their stock trainers and
report their own metrics (marked slow). detect's end-to-end tests are in test_e2e_compare.py."""

from __future__ import annotations

import csv
import json

import pytest
from helpers import DEFAULT_MODELS

from ultralytics_biformer.cli import main

pytestmark = pytest.mark.slow

# The accuracy columns each task's table must have, in order: the list, written out independently of the code.
COLUMNS = {
    "segment": [
        "box mAP50-95",
        "box mAP50",
        "box P",
        "box R",
        "mask mAP50-95",
        "mask mAP50",
        "box mAP50-95 S",
        "box mAP50-95 M",
        "box mAP50-95 L",
    ],
    "pose": [
        "box mAP50-95",
        "box mAP50",
        "box P",
        "box R",
        "pose mAP50-95",
        "pose mAP50",
        "box mAP50-95 S",
        "box mAP50-95 M",
        "box mAP50-95 L",
    ],
    "obb": ["mAP50-95", "mAP50", "P", "R", "mAP50-95 S", "mAP50-95 M", "mAP50-95 L"],
    "classify": ["top-1", "top-5"],
}
# Per task: the record key and title of the metric verdicts are given on, and its column in Ultralytics' results.csv.
PRIMARY = {
    "segment": ("mask_map", "mask mAP50-95", "metrics/mAP50-95(M)"),
    "pose": ("pose_map", "pose mAP50-95", "metrics/mAP50-95(P)"),
    "obb": ("map", "mAP50-95", "metrics/mAP50-95(B)"),
    "classify": ("top1", "top-1", "metrics/accuracy_top1"),
}
# A training loss only that task's Ultralytics trainer logs: proof that the task's own trainer ran.
TASK_LOSS = {
    "segment": "train/seg_loss",
    "pose": "train/pose_loss",
    "obb": "train/angle_loss",
    "classify": "train/loss",
}


@pytest.fixture(scope="module", params=list(COLUMNS))
def compared(request, datasets, tmp_path_factory):
    """``compare task=<task> preset=quick`` with a tiny override: the task's default models, 1 epoch at imgsz 64.

    Yields (task, run folder, console output).
    """
    import contextlib
    import io

    task, project = request.param, tmp_path_factory.mktemp(f"runs-{request.param}")
    args = ["compare", f"task={task}", "preset=quick", f"data={datasets[task]}", "epochs=1", "imgsz=64", "batch=4"]
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        assert main([*args, "workers=0", "jobs=1", f"project={project}"]) == 0
    yield task, project / f"quick-{task}", console.getvalue()


def _table(run_dir) -> tuple[list[str], list[list[str]]]:
    """The header and rows of compare.md's results table."""
    table = (run_dir / "compare.md").read_text().split("Paired differences")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[1:]


@pytest.mark.slow
def test_each_task_reports_its_own_metrics_and_every_cost_column(compared):
    task, run_dir, _ = compared
    header, rows = _table(run_dir)
    costs = ["PyTorch ms", "ONNX ms", "train s/epoch", "peak RSS MiB"]
    assert header == ["Model", "Seeds", "Params (M)", "GFLOPs", *COLUMNS[task], *costs]
    assert [row[0].strip("`") for row in rows] == DEFAULT_MODELS[task]
    for row in rows:
        assert len(row) == len(header) and "failed" not in row, row

    key, _, _ = PRIMARY[task]
    with open(run_dir / "compare.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [r["model"] for r in summary] == DEFAULT_MODELS[task]
    for r in summary:
        assert int(r["params"]) > 1_000_000 and float(r["gflops"]) > 0
        assert float(r["torch_ms"]) > 0 and float(r["onnx_ms"]) > 0, r["onnx_error"]  # every head exports
        assert 0 <= float(r[f"{key}_mean"]) <= 1 and float(r["peak_rss_mib_mean"]) > 100
        assert ("map_small_mean" in r) == (task != "classify")  # area buckets exactly where there are boxes


@pytest.mark.slow
def test_each_task_trains_with_its_own_trainer_and_records_its_curves(compared):
    task, run_dir, console = compared
    key, title, column = PRIMARY[task]
    for model in DEFAULT_MODELS[task]:
        record = json.loads((run_dir / "records" / f"{model.removesuffix('.yaml')}-seed0.json").read_text())
        assert record["epochs_run"] == 1 and 0 <= record[key] <= 1
        assert len(record["curves"][column]) == 1 and len(record["curves"][TASK_LOSS[task]]) == 1
        if task != "classify":
            assert record["map_small"] is not None  # 64 px images: every object is small
        ended = [line for line in console.splitlines() if f" {model} seed 0: done in" in line]
        assert len(ended) == 1 and f"{title} {record[key]:.4f}" in ended[0], console
    assert (run_dir / "compare.png").stat().st_size > 10_000


@pytest.mark.slow
def test_each_task_gets_verdicts_on_its_primary_metric(compared):
    task, run_dir, _ = compared
    key, title, _ = PRIMARY[task]
    report = (run_dir / "compare.md").read_text()
    baseline, model = DEFAULT_MODELS[task]
    assert f"Paired differences against `{baseline}`" in report
    verdicts = [line for line in report.splitlines() if line.startswith(f"- `{model}` vs `{baseline}`:")]
    assert len(verdicts) == 1 and f"{title}: **no verdict possible with one seed**" in verdicts[0]
    assert ("small objects:" in verdicts[0]) == (task != "classify")
    with open(run_dir / "paired.csv", newline="") as f:
        paired = {r["metric"]: r for r in csv.DictReader(f)}
    runs = {r["model"]: r for r in csv.DictReader((run_dir / "runs.csv").read_text().splitlines())}
    assert float(paired[key]["diff_seed0"]) == pytest.approx(float(runs[model][key]) - float(runs[baseline][key]))
