"""The ``ultralytics-biformer`` command line: compare, routes, argument errors, and no network use."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import NETWORK_GUARD

from ultralytics_biformer import config_dir
from ultralytics_biformer.bench import inputs, report, resume, runner
from ultralytics_biformer.bench.inputs import ModelEntry
from ultralytics_biformer.bench.plan import PRESETS, Plan, make_plan
from ultralytics_biformer.bench.records import BenchRecord, TrainRecord
from ultralytics_biformer.cli import compare, main
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.synthetic import DatasetSpec, ensure_dataset, render_image

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


def test_report_of_a_fine_tune_comparison_renders_without_its_checkpoint(tmp_path, monkeypatch):
    """Weights are never committed with records, so train=False must not need the checkpoint; training must."""
    monkeypatch.chdir(tmp_path)
    assert inputs.resolve_pretrained("gone/best.pt", train=False) == str(tmp_path / "gone" / "best.pt")
    with pytest.raises(compare.ArgumentError, match="no such file"):
        inputs.resolve_pretrained("gone/best.pt")


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


@pytest.mark.parametrize(
    "recorded, planned, title",
    [
        ([3, 3], 3, "3 seeds per model"),
        ([1], 1, "1 seed per model"),
        ([1, 1], 3, "1 of 3 seeds recorded per model"),
        ([3, 0, 1], 3, "0-3 of 3 seeds recorded per model"),
    ],
)
def test_figure_title_counts_the_seeds_actually_recorded(recorded, planned, title):
    """A report of an unfinished comparison must not claim the planned seeds."""
    rows = [{"runs": [TrainRecord("m.yaml", s) for s in range(n)]} for n in recorded]
    assert report.seeds_recorded(rows, planned) == title


def test_unknown_optimizer_is_refused_before_any_work(capsys, monkeypatch):
    """Ultralytics rejects it only inside each worker, after the data and the models are built."""
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a worker was started"))
    assert main(["compare", "optimizer=Lion", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "optimizer=Lion" in err and "AdamW" in err and "SGD" in err


@pytest.mark.parametrize("name", ["auto", "SGD", "adamw", "RMSProp"])
def test_optimizer_names_are_taken_in_any_case_as_ultralytics_does(name):
    assert compare.optimizer_name(name) == name


def test_results_table_names_the_seeds_behind_each_mean_and_skips_non_finite_values():
    """A 3-seed baseline next to a 2-seed model reads like a comparison of means unless the table says how many seeds
    and which each mean covers; a NaN metric (a diverged run) is named as a failed run instead of breaking the
    report."""
    from ultralytics_biformer.bench.metrics import TASK_METRICS

    def row(model, values):
        runs = [TrainRecord(model, seed, metrics={"map": value}) for seed, value in values.items()]
        return {"model": model, "label": model, "runs": runs, "bench": None, "map_by_seed": values}

    rows = [row("a.yaml", {0: 0.80, 1: 0.90, 2: 0.70}), row("b.yaml", {0: 0.81, 1: 0.91}), row("c.yaml", {})]
    rows.append(row("d.yaml", {0: 0.82, 1: float("nan"), 2: 0.72}))
    task = TASK_METRICS["detect"]
    for r in rows:
        for key, _, _ in report.run_metrics(task):
            r[f"{key}_mean"], r[f"{key}_std"] = report._mean_std([run.value(key) for run in r["runs"]])
    table, _ = report.markdown_table(rows, task)
    cells = {line.split("`")[1]: [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]}
    seeds = [cells[m][1] for m in ("a.yaml", "b.yaml", "c.yaml", "d.yaml")]
    assert seeds == ["3: 0, 1, 2", "2: 0, 1", "-", "2: 0, 2 (seed 1 failed)"]
    assert cells["d.yaml"][4] == "0.7700 ± 0.0707"  # mean and std of 0.82 and 0.72 alone


@pytest.mark.parametrize(
    "benches, line", [([None], "- latency: no benchmark recorded yet"), ([2, None], "2 thread(s)")]
)
def test_report_header_states_latency_threads_only_when_measured(tmp_path, benches, line):
    settings = dict(data="d.yaml", preset="study", epochs=1, imgsz=64, batch=2, workers=0, optimizer="auto", extra={})
    plan = Plan(tmp_path, [], [0], {}, {}, {**settings, "device": "cpu", "seeds": [0]})
    rows = [{"bench": threads and BenchRecord("m.yaml", params=1, threads=threads)} for threads in benches]
    header = report._settings_lines(plan, rows)
    assert any(line in text for text in header) and not any("?" in text for text in header)


def test_report_header_names_the_runs_that_resumed_and_after_which_epoch(tmp_path):
    settings = dict(data="d.yaml", preset="study", epochs=9, imgsz=64, batch=2, workers=0, optimizer="auto", extra={})
    plan = Plan(tmp_path, [], [0, 1], {}, {}, {**settings, "device": "cpu", "seeds": [0, 1]})
    runs = [TrainRecord("m.yaml", 0, resumed_from_epoch=None), TrainRecord("m.yaml", 1, resumed_from_epoch=4)]
    header = "\n".join(report._settings_lines(plan, [{"model": "m.yaml", "runs": runs, "bench": None}]))
    assert "resumed after an interruption" in header and "`m.yaml` seed 1 after epoch 4" in header
    assert "seed 0 after" not in header
    uninterrupted = [{"model": "m.yaml", "runs": runs[:1], "bench": None}]
    assert "resumed" not in "\n".join(report._settings_lines(plan, uninterrupted))


def test_report_header_names_paths_below_the_working_directory_relatively(tmp_path, monkeypatch):
    """Committed reports should not carry one machine's absolute paths."""
    monkeypatch.chdir(tmp_path)
    settings = dict(preset="study", epochs=1, imgsz=64, batch=2, workers=0, optimizer="auto", extra={}, seeds=[0])
    settings.update(data="/elsewhere/data.yaml", pretrained=str(tmp_path / "w" / "best.pt"), device="cpu")
    header = "\n".join(report._settings_lines(Plan(tmp_path, [], [0], {}, {}, settings), []))
    assert "every model from `w/best.pt`" in header and "data: `/elsewhere/data.yaml`" in header
    bundled = synthetic.cache_dir() / "datasets" / "context-tokens-v2-x" / "data.yaml"
    settings["data"] = str(bundled)
    header = "\n".join(report._settings_lines(Plan(tmp_path, [], [0], {}, {}, settings), []))
    assert "data: `<bundled dataset cache>/context-tokens-v2-x/data.yaml`" in header


@pytest.mark.parametrize("value", ["maybe", ""])
def test_train_flag_must_be_a_boolean(value, capsys):
    assert main(["compare", f"train={value}"]) == 2
    assert "train=" in capsys.readouterr().err


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


def _plan_with_record(run_dir: Path, model: ModelEntry, record: dict, **train_args) -> Plan:
    """A one-run plan of ``model`` whose run folder already holds ``record`` (seed 0 unless it says) for that run."""
    plan = Plan(run_dir, [model], [0], train_args, {"imgsz": 64}, {"device": "cpu"})
    plan.train_record(model, 0).parent.mkdir(parents=True)
    plan.train_record(model, 0).write_text(json.dumps({"seed": 0, **record}))
    return plan


def test_resume_accepts_records_made_in_another_checkout_with_another_cache(tmp_path, monkeypatch):
    """Committed records resume wherever the repository and the dataset cache live."""
    checkout, cache = tmp_path / "checkout", tmp_path / "cache"
    monkeypatch.chdir(checkout.mkdir() or checkout)
    monkeypatch.setenv(synthetic.CACHE_ENV, str(cache))
    data, weights = cache / "datasets" / "bench-v1" / "data.yaml", checkout / "docs" / "pre" / "best.pt"
    model = ModelEntry("cfg/v.yaml", str(checkout / "cfg" / "v.yaml"), "v", "d1")
    recorded = {
        "model": "/old/clone/cfg/v.yaml",
        "seed": 0,
        "model_digest": "d1",
        "train_args": {
            "epochs": 1,
            "data": "/old/home/.cache/ultralytics-biformer/datasets/bench-v1/data.yaml",
            "pretrained": "/old/clone/docs/pre/best.pt",
            "seed": 0,
            "project": "/old/clone/run/runs",
            "name": "v-seed0",
        },
    }
    plan = _plan_with_record(checkout / "run", model, recorded, epochs=1, data=str(data), pretrained=str(weights))
    resume.check_records(plan)  # raises if it refuses

    del recorded["train_args"]["pretrained"]  # a record from scratch resumes only a comparison from scratch
    plan.train_record(model, 0).write_text(json.dumps(recorded))
    with pytest.raises(compare.ArgumentError, match="pretrained: None then"):
        resume.check_records(plan)
    del plan.train_args["pretrained"]
    resume.check_records(_plan_with_record(checkout / "run2", model, recorded, **plan.train_args))

    recorded["train_args"]["data"] = "/old/home/.cache/ultralytics-biformer/datasets/other-v1/data.yaml"
    plan.train_record(model, 0).write_text(json.dumps(recorded))
    with pytest.raises(compare.ArgumentError, match="made with other settings.*data: '/old/home"):
        resume.check_records(plan)


def test_resume_accepts_records_naming_a_bundled_config_by_its_old_repository_path(tmp_path, monkeypatch):
    """The study's records name its variants ``<checkout>/cfg/ablation/...``, from before the configs moved into the
    package; from the repository root, ``ultralytics_biformer/cfg/ablation/...`` is that file."""
    monkeypatch.chdir(config_dir().parents[1])
    config = config_dir() / "ablation" / "yolo11n-bf-p3k4.yaml"
    model = ModelEntry(str(config.relative_to(Path.cwd())), str(config), "yolo11n-bf-p3k4", "d1")
    train_args = {"epochs": 1, "seed": 0, "name": "yolo11n-bf-p3k4-seed0"}
    recorded = {"model": "/work/study/cfg/ablation/yolo11n-bf-p3k4.yaml", "model_digest": "d1", "train_args": train_args}
    resume.check_records(_plan_with_record(tmp_path / "run", model, recorded, epochs=1))  # raises if it refuses

    recorded["model"] = "/work/study/cfg/yolo11n-bf-p3k4.yaml"  # not in ablation/: another file
    with pytest.raises(compare.ArgumentError, match="/work/study/cfg/yolo11n-bf-p3k4.yaml then"):
        resume.check_records(_plan_with_record(tmp_path / "run2", model, recorded, epochs=1))

def test_resume_refuses_a_file_named_only_by_its_file_name(tmp_path, monkeypatch):
    """data.yaml in the working directory is not the data.yaml of a record made anywhere else."""
    monkeypatch.chdir(tmp_path)
    model = ModelEntry("cfg/v.yaml", str(tmp_path / "cfg" / "v.yaml"), "v", "d1")
    recorded = {
        "model": "/old/cfg/v.yaml",
        "model_digest": "d1",
        "train_args": {"epochs": 1, "data": "/other/data.yaml"},
    }
    plan = _plan_with_record(tmp_path / "run", model, recorded, epochs=1, data=str(tmp_path / "data.yaml"))
    with pytest.raises(compare.ArgumentError, match="data: '/other/data.yaml' then"):
        resume.check_records(plan)


def test_resume_takes_device_cpu_for_the_default_device_on_a_cpu_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(resume, "device_type", lambda device: "cpu" if device in (None, "cpu") else "cuda")
    model = ModelEntry("cfg/v.yaml", str(tmp_path / "cfg" / "v.yaml"), "v", "d1")
    train_args = {"epochs": 1, "seed": 0, "name": "v-seed0"}
    recorded = {"model": str(tmp_path / "cfg" / "v.yaml"), "model_digest": "d1", "train_args": train_args}
    resume.check_records(_plan_with_record(tmp_path / "run", model, recorded, epochs=1, device="cpu"))
    with pytest.raises(compare.ArgumentError, match="device: None then, '0' now"):
        resume.check_records(_plan_with_record(tmp_path / "run2", model, recorded, epochs=1, device="0"))


def test_benchmark_finds_weights_below_this_run_folder_or_says_they_are_missing(tmp_path, monkeypatch, capsys):
    """Committed records name weights in the checkout that trained them, which another checkout does not have."""
    model = ModelEntry("v.yaml", str(tmp_path / "v.yaml"), "v", "d1")
    record = {"model": "/old/v.yaml", "weights": "/old/clone/run/runs/v-seed1/weights/best.pt", "train_args": {}}
    plan = dataclasses.replace(_plan_with_record(tmp_path / "run", model, record), seeds=[0, 1])
    plan.train_record(model, 0).rename(plan.train_record(model, 1))
    assert runner._local_weights(plan, model, [1]) is None
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a benchmark started without weights"))
    outcome = runner.Outcome()
    runner._bench_all(plan, outcome)
    assert "no weights of its recorded runs are here" in capsys.readouterr().out
    [failure] = outcome.failures
    assert (failure.label, failure.seed) == ("v", None) and "another checkout" in failure.message

    here = tmp_path / "run" / "runs" / "v-seed1" / "weights" / "best.pt"
    here.parent.mkdir(parents=True)
    here.touch()
    assert runner._local_weights(plan, model, [1]) == str(here)


@pytest.mark.parametrize(
    "recorded, reason",
    [
        ({"model": "/old/clone/a/v.yaml", "model_digest": None}, "of another model \\(/old/clone/a/v.yaml then"),
        ({"model": "/old/clone/b/v.yaml", "model_digest": "d0"}, "of another model \\(b/v.yaml has changed since"),
    ],
    ids=["same-name-other-folder", "edited-since"],
)
def test_resume_refuses_records_of_another_model(tmp_path, monkeypatch, recorded, reason):
    """Records are found by a label made from the file name, so two models of one name, listed in another order, or a
    YAML edited in place, would otherwise be credited with another model's results."""
    monkeypatch.chdir(tmp_path)
    model = ModelEntry("b/v.yaml", str(tmp_path / "b" / "v.yaml"), "v", "d1")
    plan = _plan_with_record(tmp_path / "run", model, recorded, epochs=1)
    with pytest.raises(compare.ArgumentError, match=reason):
        resume.check_records(plan)


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


def test_resume_needs_the_same_job_and_a_checkpoint_that_can_continue(tmp_path):
    import torch


    model = ModelEntry("m.yaml", "m.yaml", "m", digest="abc")
    plan = Plan(tmp_path / "run", [model], [0], {"epochs": 3}, {"imgsz": 64}, {"device": "cpu"})
    job = plan.train_job(model, 0)
    last = plan.run_folder(model, 0) / "weights" / "last.pt"
    last.parent.mkdir(parents=True)
    resume.job_file(job).parent.mkdir(parents=True, exist_ok=True)
    resume.job_file(job).write_text(json.dumps(job))

    torch.save({"epoch": 1, "optimizer": {"state": {}}}, last)  # two of three epochs done
    assert resume.resumed_job(plan, model, 0) == ({**job, "resume": str(last)}, 2)
    for checkpoint in (
        {"epoch": -1, "optimizer": None},  # finished and stripped
        {"epoch": 2, "optimizer": {"state": {}}},  # all three epochs done
        {"epoch": 0},  # weights only
    ):
        torch.save(checkpoint, last)
        assert resume.resumed_job(plan, model, 0) == (job, None), checkpoint
    last.write_bytes(b"cut short")
    assert resume.resumable_epochs(last, 3) is None

    torch.save({"epoch": 0, "optimizer": {"state": {}}}, last)
    for changed in ({"model_digest": "edited"}, {"train_args": {**job["train_args"], "lr0": 0.5}}):
        resume.job_file(job).write_text(json.dumps({**job, **changed}))
        assert resume.resumed_job(plan, model, 0) == (job, None), changed


def test_resumed_results_keep_only_the_epochs_of_the_checkpoint(tmp_path):
    from ultralytics_biformer.bench import worker

    results = tmp_path / "results.csv"
    results.write_text("epoch,time,metric\n1,1.0,0.1\n2,2.0,0.2\n3,3.0,0.3\n")
    worker._drop_rows_after(results, 2)
    assert results.read_text() == "epoch,time,metric\n1,1.0,0.1\n2,2.0,0.2\n"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["bogus=1"], "unknown argument 'bogus' for 'compare'. Accepted keys: models, data, preset"),
        (["yolo11n.yaml"], "takes key=value arguments, got 'yolo11n.yaml'"),
        (["epochs=0"], "epochs=0: expected an integer >= 1"),
        (["preset=huge"], "preset=huge: expected one of quick, study, context, ultralytics, full"),
        (["distance=8"], "distance=8 applies to the bundled context-range benchmark only: use it with preset=context"),
        (["preset=context", "distance=300"], "dataset distance must be at most imgsz (256), got 300"),
        (["preset=context", "task=pose"], "preset=context is a detection benchmark, but the models are pose models"),
        (["models=yolo11n.yaml,nope.yaml"], "model 'nope.yaml': no such file, and no stock or bundled model YAML"),
        (
            ["models=yolo11n-biformr.yaml"],
            "model 'yolo11n-biformr.yaml': no such file, and no stock or bundled model YAML has that name; did you "
            "mean 'yolo11n-biformer.yaml'? Or accepted: a model YAML",
        ),
        (["models=yolo11n.pt"], "model 'yolo11n.pt': no such file (compare never downloads weights); accepted: a"),
        (
            ["models=yolo11n.onnx"],
            "model 'yolo11n.onnx': expected a model YAML (.yaml, .yml) or a local checkpoint (.pt, .pth); accepted: a "
            "model YAML of one of the tasks detect,",
        ),
        (["models=yolo11n.yaml,yolo11n.yaml"], "lists a model more than once"),
        (["pretrained=yolo11n.pt"], "pretrained=yolo11n.pt: no such file. compare never downloads weights"),
        (["data=missing-data.yaml"], "data=missing-data.yaml:"),
        (["data=coco8.yaml"], "compare never downloads datasets"),
        (["imgsz=100"], "imgsz=100: expected a multiple of 32, e.g. 96 or 128"),
        (["seed=4294967295", "seeds=2"], "seeds must stay below 2**32"),
        (["train=False", "name=typo"], "holds no finished run of these models and seeds"),
    ],
)
def test_bad_compare_arguments_stop_before_any_work(arguments, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a worker was started"))
    assert main(["compare", *arguments, f"project={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "ultralytics-biformer compare: error:" in err
    assert list(tmp_path.iterdir()) == []  # no run folder, no dataset generated


def test_project_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert main(["compare", f"project={tmp_path / 'afile'}", "train=False"]) == 2
    assert "afile is a file" in capsys.readouterr().err


def test_data_with_an_empty_val_split_is_refused(tmp_path, tiny_dataset, capsys):
    """Ultralytics would find no val images only inside every worker, after training."""
    data = tmp_path / "data.yaml"
    (tmp_path / "val").mkdir()
    data.write_text(tiny_dataset.read_text().replace("val: images/val", f"val: {tmp_path / 'val'}"))
    assert main(["compare", f"data={data}", f"project={tmp_path}", "epochs=1"]) == 2
    assert "holds no images" in capsys.readouterr().err


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


def test_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("compare", "dataset", "routes"))
    assert main(["compare", "help"]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in ("models", "data", "preset", "seeds", "epochs", "imgsz", "project", "name"))
    assert main(["train"]) == 2
    assert "unknown command 'train'. Accepted: compare, dataset, routes" in capsys.readouterr().err


def test_console_script_forwards_to_the_cli():
    script = shutil.which("ultralytics-biformer")
    assert script, "the ultralytics-biformer console script is not installed"
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: ultralytics-biformer COMMAND" in out
    done = subprocess.run([script, "compare", "bogus=1"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown argument 'bogus' for 'compare'" in done.stderr


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("image") / "scene.jpg"
    image, _ = render_image(np.random.default_rng(7), 160)
    cv2.imwrite(str(path), cv2.resize(image, (200, 160)))  # not square: exercises the letterbox
    return path


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_routes_draws_every_bra_layer_of_an_untrained_model(image_file, tmp_path, capsys):
    from ultralytics_biformer.cli import routes
    from ultralytics_biformer.cli.offline import offline_ultralytics

    out = tmp_path / "routes.png"
    assert (
        main(
            [
                "routes",
                "model=yolo11n-biformer.yaml",
                f"source={image_file}",
                "imgsz=128",
                f"out={out}",
                "points=0.5,0.5/0.1,0.9",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().endswith(str(out))
    width, height = _png_size(out)
    assert width > 4 * height / 2  # four BRA layers in one row

    offline_ultralytics()
    model = routes._load_model("yolo11n-biformer.yaml")
    layers = routes.capture_routes(model, routes.letterbox(np.zeros((50, 80, 3), np.uint8), 128))
    assert [layer.name for layer in layers] == [
        "model.10.m.0.attn",
        "model.16.bra.attn",
        "model.19.bra.attn",
        "model.22.bra.attn",
    ]
    for layer in layers:
        regions, k = layer.routes.shape
        assert regions == layer.grid.num_regions and 1 <= k <= regions
        assert ((layer.routes >= 0) & (layer.routes < regions)).all()
        assert layer.box_of(regions - 1)[2:] == (layer.width * layer.stride, layer.height * layer.stride)


@pytest.mark.slow
def test_routes_works_on_a_trained_checkpoint(compared, image_file, tmp_path):
    run_dir, *_ = compared
    weights = json.loads((run_dir / "records" / "yolo11n-biformer-seed0.json").read_text())["weights"]
    out = tmp_path / "trained.png"
    assert main(["routes", f"model={weights}", f"source={image_file}", "imgsz=96", f"out={out}"]) == 0
    assert _png_size(out)[0] > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["model=yolo11n.yaml"], "has no bi-level routing attention layers"),
        (["model=missing.pt"], "model=missing.pt: no such file"),
        (["model=yolo11n-biformer.yaml", "points=0.5,1.5"], "outside [0, 1]"),
        (["model=yolo11n-biformer.yaml", "source=/nonexistent.jpg"], "not a readable image file"),
        (["source=x.jpg"], "routes needs model=..."),
    ],
)
def test_bad_routes_arguments_are_reported(arguments, message, image_file, capsys):
    if not any(a.startswith("source=") for a in arguments):
        arguments = [*arguments, f"source={image_file}"]
    assert main(["routes", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_context_preset_plans_one_folder_per_distance(tmp_path, monkeypatch):
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))

    def make(*arguments):
        return make_plan(compare.parse_options([*arguments, f"project={tmp_path}"], compare.OPTIONS, "compare"))

    plans = {d: make("preset=context", f"distance={d}", "train=False") for d in (8, 48)}
    for d, plan in plans.items():
        assert plan.run_dir.name == f"context-d{d}"
        assert Path(plan.train_args["data"]).parent.name.endswith(f"-context-v1-d{d}")
        assert plan.settings["preset"] == "context" and plan.train_args["epochs"] == PRESETS["context"].epochs
    default = make("preset=context", "train=False")
    assert default.run_dir.name == f"context-d{PRESETS['context'].dataset.distance}"


def test_default_run_folders_never_collide(tmp_path, monkeypatch):
    """A smoke run with other settings must not block the real one: the default folder is numbered instead, the
    same command finds its numbered folder again, and an explicit name= is still refused."""
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))

    def make(*arguments):
        given = {a.split("=", 1)[0] for a in arguments}
        defaults = [d for d in ("models=yolo11n.yaml", "seeds=1") if d.split("=", 1)[0] not in given]
        tokens = ["preset=context", "distance=8", f"project={tmp_path}", *defaults, *arguments]
        return make_plan(compare.parse_options(tokens, compare.OPTIONS, "compare"))

    first = make()
    assert first.run_dir.name == "context-d8" and "run_folder_note" not in first.settings
    smoke = make("epochs=1")  # nothing recorded yet: the same folder
    record = {"model": smoke.models[0].source, "model_digest": smoke.models[0].digest, "seed": 0}
    record["train_args"] = smoke.train_job(smoke.models[0], 0)["train_args"]
    smoke.train_record(smoke.models[0], 0).parent.mkdir(parents=True)
    smoke.train_record(smoke.models[0], 0).write_text(json.dumps(record))
    real = make()
    assert real.run_dir.name == "context-d8-2"
    assert real.settings["run_folder_note"] == (
        "context-d8 holds runs of other models or settings, so this comparison uses context-d8-2"
    )
    header = "\n".join(report._settings_lines(real, []))
    assert "- run folder: context-d8 holds runs of other models or settings" in header
    assert make("epochs=1").run_dir.name == "context-d8"  # the smoke command finds its own folder
    with pytest.raises(compare.ArgumentError, match="made with other settings"):
        make("name=context-d8")

    # An interrupted run of other settings, with a checkpoint to resume from, is not overwritten either.
    longer = make("epochs=7")
    assert longer.run_dir.name == "context-d8-2"  # -2 holds no run yet: nothing recorded or started there
    job = longer.train_job(longer.models[0], 0)
    resume.job_file(job).parent.mkdir(parents=True, exist_ok=True)
    resume.job_file(job).write_text(json.dumps(job))
    (longer.run_folder(longer.models[0], 0) / "weights").mkdir(parents=True)
    (longer.run_folder(longer.models[0], 0) / "weights" / "last.pt").write_bytes(b"")
    assert make("epochs=7").run_dir.name == "context-d8-2"  # the same command resumes there
    assert make("epochs=9").run_dir.name == "context-d8-3"
    # Another model list never overwrites a folder's report; adding models or seeds to its comparison does not move.
    assert make("models=yolo11n-biformer.yaml", "epochs=1").run_dir.name == "context-d8-3"  # the first empty one
    assert make("models=yolo11n.yaml,yolo11n-biformer.yaml", "epochs=1").run_dir.name == "context-d8"
    assert make("epochs=1", "seeds=3").run_dir.name == "context-d8"
