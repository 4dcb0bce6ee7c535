"""Resuming a comparison: which records and interrupted runs in a run folder belong to a plan.

A re-run of the same ``compare`` command skips every run that has a record and resumes a run interrupted part-way
from its ``last.pt``. A folder whose records or checkpoints come from other models or settings is never mixed into a
plan: an explicit ``name=`` is refused, and a default-named comparison moves on to ``<name>-2``, ``<name>-3``, ...
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli.args import ArgumentError
from .inputs import ModelEntry, device_type
from .records import BenchRecord, TrainRecord

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["check_records", "free_run_folder", "job_file", "resumable_epochs", "resumed_job"]


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k))


def _same_file(old: Any, new: Any) -> bool:
    """Whether a recorded path names the file a planned one does. A record made in another checkout, or with another
    dataset cache, names it by another absolute path: the old path then ends with the new one's path below the
    working directory, below the bundled dataset cache, or below the bundled model YAMLs (a record made before they
    moved from the repository's ``cfg/`` into the package names ``.../cfg/ablation/x.yaml``)."""
    from ..data.synthetic import cache_dir
    from ..integration import config_dir

    if old == new:
        return True
    if not (isinstance(old, str) and isinstance(new, str) and Path(new).is_absolute()):
        return False
    for root in (Path.cwd(), cache_dir(), config_dir()):
        if Path(new).is_relative_to(root):
            tail = Path(new).relative_to(root).parts
            # A bare file name (data.yaml, best.pt) ends too many paths to identify one file.
            if len(tail) > 1 and Path(old).parts[-len(tail) :] == tail:
                return True
    return False


def _model_change(record: TrainRecord | BenchRecord, model: ModelEntry) -> str | None:
    """How a record's model differs from ``model``, or None. Records that predate digests match by path alone."""
    if not _same_file(record.model, model.source):
        return f"{record.model} then, {model.source} now"
    if record.model_digest not in (None, model.digest):
        return f"{model.spec} has changed since"
    return None


def check_records(plan: Plan) -> None:
    """Refuse to resume from records of another model or made with other settings. Raises ArgumentError."""
    planned = [
        (TrainRecord, plan.train_record(m, s), m, plan.train_job(m, s)["train_args"], f"run of {m.spec} (seed {s})")
        for m, s in plan.runs
    ]
    planned += [(BenchRecord, plan.bench_record(m), m, plan.bench_args, f"benchmark of {m.spec}") for m in plan.models]
    for kind, path, model, args, what in planned:
        if not path.is_file():
            continue
        record = kind.load(path)
        if change := _model_change(record, model):
            raise ArgumentError(
                f"{plan.run_dir} holds a finished {what} of another model ({change}). Use another name= or delete "
                f"{plan.run_dir} to start over."
            )
        recorded = record.train_args if kind is TrainRecord else record.bench_args
        old, new = dict(recorded), json.loads(json.dumps(args))  # as the JSON round trip gives them back
        # Where the run folder lives is no setting: records committed from one checkout resume in another.
        old.pop("project", None), new.pop("project", None)
        for setting in ("data", "pretrained"):
            if setting in new and _same_file(old.get(setting), new[setting]):
                old[setting] = new[setting]
        if old.get("device") != new.get("device") and device_type(old.get("device")) == "cpu" == device_type(
            new.get("device")
        ):  # device=cpu named now, or left to default then, on a machine where the default is the CPU
            old.pop("device", None), new.pop("device", None)
        if old != new:
            raise ArgumentError(
                f"{plan.run_dir} holds a finished {what} made with other settings "
                f"({_differences(old, new)}). Use another name= or delete {plan.run_dir} to start over."
            )


def free_run_folder(plan: Plan) -> Plan:
    """``plan`` in its default run folder, or, where that folder holds runs of other models or settings (finished, or
    interrupted with a checkpoint to resume from), in the first of ``<name>-2``, ``<name>-3``, ... that holds none:
    the same command always finds its own folder again, and a command with other settings never lands in it. The
    header says which folder was taken and why."""
    base = plan.run_dir
    for n in itertools.count(2):
        if _is_ours(plan):
            return plan
        run_dir = base.with_name(f"{base.name}-{n}")
        note = f"{base.name} holds runs of other models or settings, so this comparison uses {run_dir.name}"
        plan = replace(plan, run_dir=run_dir, settings={**plan.settings, "run_folder_note": note})
    raise AssertionError("unreachable")


def _is_ours(plan: Plan) -> bool:
    """Whether ``plan``'s run folder holds no finished or resumable run of another model or other settings, and no
    run, finished or started, of a model outside the plan (whose comparison's report this plan would overwrite). A
    plan may add models or seeds to a folder's comparison."""
    try:
        check_records(plan)
    except ArgumentError:
        return False
    for record in (plan.run_dir / "records").glob("*.json"):  # records, and job files of runs started there
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            return False  # a record this plan cannot read is not this plan's
        named = [m.get("model") for m in data["models"]] if "models" in data else [data.get("model")]  # benchmark jobs
        if not all(any(_same_file(model, planned.source) for planned in plan.models) for model in named):
            return False
    return not _holds_other_unfinished_runs(plan)


def _holds_other_unfinished_runs(plan: Plan) -> bool:
    """Whether a planned run, not finished yet, was started with another model or other settings and left a
    checkpoint to resume from: reusing its folder would overwrite that run."""

    for model, seed in plan.runs:
        job = plan.train_job(model, seed)
        if (
            plan.train_record(model, seed).is_file()
            or not (plan.run_folder(model, seed) / "weights" / "last.pt").is_file()
        ):
            continue
        try:
            before = json.loads(job_file(job).read_text())
        except (OSError, ValueError):
            continue
        if not _same_job(before, job):
            return True
    return False


def _same_job(before: dict, job: dict) -> bool:
    """Whether a run's job file, written when it started, names the same model and training arguments as ``job``."""
    return all(before.get(key) == job[key] for key in ("model_digest", "train_args"))


def job_file(job: dict) -> Path:
    """Where a worker's job is written when it starts: next to the record it will write."""
    return Path(job["record"]).with_suffix(".job.json")


def resumed_job(plan: Plan, model: ModelEntry, seed: int) -> tuple[dict, int | None]:
    """A run's training job, and the epochs it resumes after: an interrupted attempt at the same job (its job file
    names the same model digest and training arguments) left a ``last.pt`` that Ultralytics can resume."""
    job = plan.train_job(model, seed)
    last = plan.run_folder(model, seed) / "weights" / "last.pt"
    try:
        before = json.loads(job_file(job).read_text())
    except (OSError, ValueError):
        return job, None
    done = resumable_epochs(last, job["train_args"]["epochs"]) if _same_job(before, job) and last.is_file() else None
    if done:
        job["resume"] = str(last)
    return job, done


def resumable_epochs(last: Path, epochs: int) -> int | None:
    """The epochs an interrupted run's ``last.pt`` holds, if Ultralytics can resume it to ``epochs``: a training
    checkpoint (optimizer state kept) short of the final epoch. None otherwise, a file cut short by the interruption
    included."""
    import torch

    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - any unreadable checkpoint means training starts again
        return None
    if not isinstance(ckpt, dict) or ckpt.get("optimizer") is None:
        return None  # a finished run's stripped checkpoint, or not a training checkpoint at all
    done = ckpt.get("epoch", -1) + 1
    return done if 0 < done < epochs else None
