"""End to end: real ``compare`` runs of the two default detectors (1 epoch at imgsz 64 on a tiny generated dataset) and
what they leave behind: tables, CSV, figure, logs, records, reruns, resumes, fine-tuning, ``routes`` on the trained
checkpoint, and no network use. Every test here trains (marked slow); the other tasks are in test_e2e_tasks.py."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import NETWORK_GUARD, png_size

from ultralytics_biformer.bench import resume, runner
from ultralytics_biformer.bench.plan import make_plan
from ultralytics_biformer.cli import compare, main
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.synthetic import DatasetSpec, ensure_dataset

pytestmark = pytest.mark.slow


MODELS = ["yolo11n.yaml", "yolo11n-biformer.yaml"]


@pytest.fixture(scope="module")
def network_guard(tmp_path_factory):
    """Refuse and log network use in this process and in the subprocesses it starts; yields the log path."""
    root = tmp_path_factory.mktemp("guard")
    (root / "sitecustomize.py").write_text(NETWORK_GUARD)
    log = root / "attempts.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
        mp.setenv("NETWORK_GUARD_LOG", str(log))
        for name in ("getaddrinfo", "create_connection"):  # remembered, so that leaving the context restores them
            mp.setattr(socket, name, getattr(socket, name))
        for name in ("connect", "connect_ex"):
            mp.setattr(socket.socket, name, getattr(socket.socket, name))
        exec(NETWORK_GUARD, {})  # noqa: S102 - the same refusals in this process
        yield log


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A tiny generated dataset: 8 train and 4 val images of 64 pixels."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(synthetic.CACHE_ENV, str(cache))
        yield ensure_dataset(DatasetSpec(train=8, val=4, imgsz=64), log=lambda message: None)


@pytest.fixture(scope="module")
def compared(tiny_data, network_guard, tmp_path_factory):
    """One real comparison of the two default models, 1 epoch at imgsz 64, two runs at a time.

    Yields (run folder, arguments, console output).
    """
    project = tmp_path_factory.mktemp("runs")
    args = [
        "compare",
        f"models={','.join(MODELS)}",
        f"data={tiny_data}",
        "preset=quick",
        "epochs=1",
        "imgsz=64",
        "batch=4",
        "workers=0",
        "jobs=2",
        f"project={project}",
        "name=tiny",
    ]
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        assert main(args) == 0
    yield project / "tiny", args, console.getvalue()


@pytest.mark.slow
def test_compare_writes_table_csv_and_figure_for_every_model(compared):
    run_dir, *_ = compared
    table = (run_dir / "compare.md").read_text().split("Paired differences")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == MODELS
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 15 and "failed" not in cells and cells[1] == "1: 0", row

    with open(run_dir / "compare.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [r["model"] for r in summary] == MODELS
    for r in summary:
        assert int(r["params"]) > 1_000_000 and float(r["gflops"]) > 0
        assert float(r["torch_ms"]) > 0 and float(r["onnx_ms"]) > 0, r["onnx_error"]
        assert (
            0 <= float(r["map_mean"]) <= 1
            and float(r["epoch_seconds_mean"]) > 0
            and float(r["peak_rss_mib_mean"]) > 100
        )
        assert r["threads"] == "1" and r["imgsz"] == "64"
    with open(run_dir / "runs.csv", newline="") as f:
        assert [(r["model"], r["seed"]) for r in csv.DictReader(f)] == [(m, "0") for m in MODELS]

    from PIL import Image

    with Image.open(run_dir / "compare.png") as image:
        assert image.format == "PNG" and image.width > 1000 and image.height > 300


@pytest.mark.slow
def test_compare_trains_every_model_with_the_same_settings(compared):
    run_dir, *_ = compared
    records = [json.loads((run_dir / "records" / f"{Path(m).stem}-seed0.json").read_text()) for m in MODELS]
    settings = [{k: v for k, v in r["train_args"].items() if k != "name"} for r in records]
    assert settings[0] == settings[1]
    assert settings[0]["seed"] == 0 and settings[0]["deterministic"] is True and settings[0]["epochs"] == 1
    for record in records:
        assert record["epochs_run"] == 1 and len(record["curves"]["metrics/mAP50-95(B)"]) == 1
        assert Path(record["weights"]).is_file()


@pytest.mark.slow
def test_console_has_one_line_per_run_start_and_end_and_logs_hold_ultralytics_output(compared):
    run_dir, _, console = compared
    for model in MODELS:
        label = Path(model).stem
        started = [line for line in console.splitlines() if f" {model} seed 0: training" in line]
        ended = [line for line in console.splitlines() if f" {model} seed 0: done in" in line]
        assert len(started) == 1 and len(ended) == 1, console
        assert f"logs/{label}-seed0.log" in started[0] and "mAP50-95 " in ended[0]
        log = (run_dir / "logs" / f"{label}-seed0.log").read_text()
        assert "Epoch" in log and "GPU_mem" in log  # Ultralytics' training table went to the log...
    assert "GPU_mem" not in console  # ...not to the console
    header = console.split("run 1/")[0]
    assert "workers=0" in header and "device=cpu" in header and "jobs=2" in header


@pytest.mark.slow
def test_models_are_benchmarked_together_in_one_interleaved_worker(compared):
    """Latency ratios measured on a busy machine stay fair only if the models share its load: one worker times them
    round-robin, and every model still gets its own record."""
    run_dir, _, console = compared
    assert sorted(p.name for p in (run_dir / "logs").glob("*bench*")) == ["benchmarks.log"]
    job = json.loads((run_dir / "records" / "benchmarks.job.json").read_text())
    assert [Path(m["model"]).name for m in job["models"]] == MODELS
    for model in MODELS:
        record = json.loads((run_dir / "records" / f"{Path(model).stem}-bench.json").read_text())
        assert record["job"] == "bench" and record["torch_ms"] > 0 and record["onnx_ms"] > 0 and record["load_average"] >= 0
    report = (run_dir / "compare.md").read_text()
    assert "timed interleaved" in console and "timed in interleaved rounds" in report
    assert "models timed interleaved; 1-minute load average when timed: " in report


@pytest.mark.slow
def test_one_seed_reports_that_no_verdict_is_possible(compared):
    run_dir, *_ = compared
    table = (run_dir / "compare.md").read_text()
    assert "Paired differences against `yolo11n.yaml`" in table
    assert "mAP50-95: **no verdict possible with one seed**" in table
    with open(run_dir / "paired.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["metric"] for r in rows} >= {"map", "map_small", "map50"}
    assert all(r["model"] == "yolo11n-biformer.yaml" and r["baseline"] == "yolo11n.yaml" for r in rows)
    runs = {r["model"]: r for r in csv.DictReader((run_dir / "runs.csv").read_text().splitlines())}
    mine = next(r for r in rows if r["metric"] == "map")
    assert float(mine["diff_seed0"]) == pytest.approx(
        float(runs["yolo11n-biformer.yaml"]["map"]) - float(runs["yolo11n.yaml"]["map"])
    )


@pytest.mark.slow
def test_pretrained_checkpoint_initialises_every_model_and_counts_transfers(compared, tiny_data, tmp_path):
    """The fine-tune scenario: a stock checkpoint (here, the stock model trained by the fixture) starts both models."""
    run_dir, *_ = compared
    checkpoint = json.loads((run_dir / "records" / "yolo11n-seed0.json").read_text())["weights"]
    args = [
        "compare",
        f"models={','.join(MODELS)}",
        f"data={tiny_data}",
        "preset=quick",
        f"pretrained={checkpoint}",
        "epochs=1",
        "imgsz=64",
        "batch=4",
        f"project={tmp_path}",
        "name=finetune",
    ]
    assert main(args) == 0
    from ultralytics.nn.tasks import load_checkpoint

    stock_tensors = len(load_checkpoint(checkpoint)[0].state_dict())
    records = {
        m: json.loads((tmp_path / "finetune" / "records" / f"{Path(m).stem}-seed0.json").read_text()) for m in MODELS
    }
    for model, record in records.items():
        assert record["train_args"]["pretrained"] == str(Path(checkpoint).resolve())
        assert record["checkpoint_tensors"] == stock_tensors
        assert record["transferred"] == stock_tensors, model  # our configs keep every stock tensor's name and shape
    table = (tmp_path / "finetune" / "compare.md").read_text()
    assert f"{stock_tensors}/{stock_tensors}" in table and "every model from" in table


@pytest.mark.slow
def test_compare_uses_no_network(compared, network_guard):
    assert not network_guard.exists(), network_guard.read_text()


@pytest.mark.slow
def test_train_false_reports_finished_runs_and_trains_nothing(compared, tmp_path, monkeypatch, capsys):
    """An interrupted or unfinished comparison can be reported: runs without records show '-', nothing starts."""
    run_dir, args, _ = compared
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a worker was started"))
    extra = "yolo11n-biformer-backbone.yaml"  # no records of it in the run folder
    moved = [a for a in args if not a.startswith(("project=", "name=", "models="))]
    assert (
        main([*moved, f"models={','.join([*MODELS, extra])}", f"project={tmp_path}", "name=copy", "train=False"]) == 0
    )
    table = (copy / "compare.md").read_text().split("Paired differences")[0]
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    assert list(rows) == [*MODELS, extra]
    assert "failed" not in table and "| - |" in rows[extra] and "| - |" not in rows[MODELS[0]]
    assert "reporting the 2 finished runs" in capsys.readouterr().out


@pytest.mark.slow
def test_rerun_resumes_without_training_again(compared, monkeypatch, capsys):
    run_dir, args, _ = compared
    table_before = (run_dir / "compare.md").read_text()

    def no_worker(*a, **k):
        raise AssertionError("a finished run was started again")

    monkeypatch.setattr(runner, "_start", no_worker)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier, skipping") == 2 * len(MODELS)  # the runs and the benchmarks
    assert "run 2/2" in out and "benchmark 2/2" in out
    assert (run_dir / "compare.md").read_text() == table_before


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused(compared, capsys):
    _, args, _ = compared
    assert main([a for a in args if not a.startswith("epochs=")] + ["epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "made with other settings" in err and "epochs: 1 then, 2 now" in err


@pytest.mark.slow
def test_partial_rerun_after_interruption_redoes_only_missing_runs(compared, tmp_path, monkeypatch, capsys):
    run_dir, args, _ = compared
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "records" / "yolo11n-biformer-seed0.json").unlink()  # as if interrupted during the second run
    launched = []

    def fake_worker(kind, job, log):
        launched.append((kind, job["record"]))
        shutil.copy(run_dir / "records" / Path(job["record"]).name, job["record"])
        return subprocess.Popen([sys.executable, "-c", ""])

    monkeypatch.setattr(runner, "_start", fake_worker)
    resumed = [a for a in args if not a.startswith(("project=", "name="))] + [f"project={tmp_path}", "name=copy"]
    # The records name the original run folder; only the missing training run may be redone.
    for record in (copy / "records").glob("*.json"):
        if not record.name.endswith(".job.json"):
            data = json.loads(record.read_text())
            if "train_args" in data:
                data["train_args"]["project"] = str(copy / "runs")
            record.write_text(json.dumps(data))
    assert main(resumed) == 0
    assert [kind for kind, _ in launched] == ["train"]
    assert launched[0][1].endswith("yolo11n-biformer-seed0.json")


class _Interrupted(Exception):
    pass


@pytest.mark.slow
def test_run_interrupted_part_way_resumes_after_its_last_saved_epoch(tiny_data, tmp_path, monkeypatch, capsys):
    from ultralytics.utils.callbacks import base

    from ultralytics_biformer.bench import worker

    args = ["compare", "models=yolo11n-biformer.yaml", f"data={tiny_data}", "preset=quick", "epochs=3", "imgsz=64"]
    args += ["batch=4"]
    args += ["workers=0", f"project={tmp_path}", "name=resume"]
    plan = make_plan(compare.parse_options(args[1:], compare.OPTIONS, "compare"))
    job = plan.train_job(plan.models[0], 0)
    resume.job_file(job).parent.mkdir(parents=True)
    resume.job_file(job).write_text(json.dumps(job))  # as compare writes it before starting the worker

    def stop_after_first_epoch(trainer):
        raise _Interrupted

    with monkeypatch.context() as mp:
        mp.setitem(base.default_callbacks, "on_model_save", [stop_after_first_epoch])
        with pytest.raises(_Interrupted):
            worker.train(job)
    run = plan.run_folder(plan.models[0], 0)
    assert runner._epochs_done(run / "results.csv") == 1 and not plan.train_record(plan.models[0], 0).exists()

    assert main(args) == 0
    assert "seed 0: resuming after epoch 1 of 3" in capsys.readouterr().out
    record = json.loads(plan.train_record(plan.models[0], 0).read_text())
    assert record["resumed_from_epoch"] == 1 and record["epochs_run"] == 3
    assert record["curves"]["epoch"] == [1.0, 2.0, 3.0]
    assert "resuming" in plan.log_file(plan.models[0], 0).read_text()
    assert "resumed after an interruption" in (plan.run_dir / "compare.md").read_text()
    assert "`yolo11n-biformer.yaml` seed 0 after epoch 1" in (plan.run_dir / "compare.md").read_text()


@pytest.mark.slow
def test_routes_works_on_a_trained_checkpoint(compared, scene_image, tmp_path):
    run_dir, *_ = compared
    weights = json.loads((run_dir / "records" / "yolo11n-biformer-seed0.json").read_text())["weights"]
    out = tmp_path / "trained.png"
    assert main(["routes", f"model={weights}", f"source={scene_image}", "imgsz=96", f"out={out}"]) == 0
    assert png_size(out)[0] > 0
