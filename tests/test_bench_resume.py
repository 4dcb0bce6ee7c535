"""Tests of ``ultralytics_biformer.bench.resume``: which recorded runs a comparison may resume, and from which
checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import plan_with_record

from ultralytics_biformer import config_dir
from ultralytics_biformer.bench import resume
from ultralytics_biformer.bench.inputs import ModelEntry
from ultralytics_biformer.bench.plan import Plan
from ultralytics_biformer.cli import compare
from ultralytics_biformer.data import synthetic


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
    plan = plan_with_record(checkout / "run", model, recorded, epochs=1, data=str(data), pretrained=str(weights))
    resume.check_records(plan)  # raises if it refuses

    del recorded["train_args"]["pretrained"]  # a record from scratch resumes only a comparison from scratch
    plan.train_record(model, 0).write_text(json.dumps(recorded))
    with pytest.raises(compare.ArgumentError, match="pretrained: None then"):
        resume.check_records(plan)
    del plan.train_args["pretrained"]
    resume.check_records(plan_with_record(checkout / "run2", model, recorded, **plan.train_args))

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
    resume.check_records(plan_with_record(tmp_path / "run", model, recorded, epochs=1))  # raises if it refuses

    recorded["model"] = "/work/study/cfg/yolo11n-bf-p3k4.yaml"  # not in ablation/: another file
    with pytest.raises(compare.ArgumentError, match="/work/study/cfg/yolo11n-bf-p3k4.yaml then"):
        resume.check_records(plan_with_record(tmp_path / "run2", model, recorded, epochs=1))


def test_resume_refuses_a_file_named_only_by_its_file_name(tmp_path, monkeypatch):
    """data.yaml in the working directory is not the data.yaml of a record made anywhere else."""
    monkeypatch.chdir(tmp_path)
    model = ModelEntry("cfg/v.yaml", str(tmp_path / "cfg" / "v.yaml"), "v", "d1")
    recorded = {
        "model": "/old/cfg/v.yaml",
        "model_digest": "d1",
        "train_args": {"epochs": 1, "data": "/other/data.yaml"},
    }
    plan = plan_with_record(tmp_path / "run", model, recorded, epochs=1, data=str(tmp_path / "data.yaml"))
    with pytest.raises(compare.ArgumentError, match="data: '/other/data.yaml' then"):
        resume.check_records(plan)


def test_resume_takes_device_cpu_for_the_default_device_on_a_cpu_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(resume, "device_type", lambda device: "cpu" if device in (None, "cpu") else "cuda")
    model = ModelEntry("cfg/v.yaml", str(tmp_path / "cfg" / "v.yaml"), "v", "d1")
    train_args = {"epochs": 1, "seed": 0, "name": "v-seed0"}
    recorded = {"model": str(tmp_path / "cfg" / "v.yaml"), "model_digest": "d1", "train_args": train_args}
    resume.check_records(plan_with_record(tmp_path / "run", model, recorded, epochs=1, device="cpu"))
    with pytest.raises(compare.ArgumentError, match="device: None then, '0' now"):
        resume.check_records(plan_with_record(tmp_path / "run2", model, recorded, epochs=1, device="0"))


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
    plan = plan_with_record(tmp_path / "run", model, recorded, epochs=1)
    with pytest.raises(compare.ArgumentError, match=reason):
        resume.check_records(plan)


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
