"""Tests of ``ultralytics_biformer.bench.plan``: presets, tasks, training arguments and run folders, planned without
training anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import DEFAULT_MODELS, TASKS

from ultralytics_biformer.bench import report, resume
from ultralytics_biformer.bench.plan import PRESETS, make_plan
from ultralytics_biformer.cli import compare
from ultralytics_biformer.cli.args import parse_options
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.presets import preset_spec


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




@pytest.mark.parametrize("task", TASKS)
def test_task_picks_its_default_models_data_and_run_folder(task, datasets, tmp_path, monkeypatch):
    """Nothing is trained: the plan names the task's stock and biformer twins and the bundled data of its preset."""
    asked = []

    def fake_ensure_dataset(spec, root=None, log=None):
        asked.append(spec)
        return datasets[task]

    monkeypatch.setattr(synthetic, "ensure_dataset", fake_ensure_dataset)
    values = parse_options([f"task={task}", "preset=quick", f"project={tmp_path}"], compare.OPTIONS, "compare")
    plan = make_plan(values)
    assert plan.task == task and [m.spec for m in plan.models] == DEFAULT_MODELS[task]
    assert asked == [preset_spec("quick", task=task)]
    assert plan.train_args["data"] == str(datasets[task])
    assert plan.run_dir == tmp_path.resolve() / ("quick" if task == "detect" else f"quick-{task}")


def test_models_without_task_take_their_own(datasets, tmp_path):
    values = parse_options(
        ["models=yolo11n-obb.yaml", f"data={datasets['obb']}", f"project={tmp_path}"], compare.OPTIONS, "compare"
    )
    assert make_plan(values).task == "obb"


def test_detect_plans_keep_the_training_arguments_of_earlier_records(datasets, tmp_path):
    """A comparison resumes from records made before tasks existed only if detect's training arguments are unchanged."""
    values = parse_options(
        ["preset=study", f"data={datasets['detect']}", f"project={tmp_path}", "name=s"], compare.OPTIONS, "compare"
    )
    plan = make_plan(values)
    model = plan.models[0]
    assert plan.train_job(model, 1)["train_args"] == {
        "data": str(datasets["detect"]),
        "epochs": 60,
        "imgsz": 256,
        "batch": 8,
        "workers": 2,
        "optimizer": "auto",
        "nbs": 8,
        "deterministic": True,
        "plots": False,
        "exist_ok": True,
        "verbose": True,
        "seed": 1,
        "project": str(tmp_path.resolve() / "s" / "runs"),
        "name": "yolo11n-seed1",
    }
    assert plan.train_record(model, 1) == tmp_path.resolve() / "s" / "records" / "yolo11n-seed1.json"
    order = [(m.spec, s) for m, s in plan.runs[:3]]
    assert order == [("yolo11n.yaml", 0), ("yolo11n-biformer.yaml", 0), ("yolo11n.yaml", 1)]


def test_own_data_trains_with_ultralytics_defaults_not_the_smoke_preset(datasets, tmp_path):
    values = parse_options([f"data={datasets['detect']}", f"project={tmp_path}"], compare.OPTIONS, "compare")
    plan = make_plan(values)
    from ultralytics.cfg import DEFAULT_CFG_DICT

    for key in ("epochs", "imgsz", "batch"):
        assert plan.train_args[key] == DEFAULT_CFG_DICT[key]
    assert "nbs" not in plan.train_args and plan.seeds == [0, 1, 2]  # Ultralytics' nbs; paired seeds
    assert plan.settings["preset"] == "ultralytics (the default with data=)" and plan.run_dir.name == "ultralytics"
    header = "\n".join(report._settings_lines(plan, []))
    assert "- preset ultralytics (the default with data=): epochs=100 imgsz=640 batch=16" in header
    explicit = parse_options(
        [f"data={datasets['detect']}", "preset=quick", f"project={tmp_path}"], compare.OPTIONS, "compare"
    )
    assert make_plan(explicit).train_args["epochs"] == PRESETS["quick"].epochs
