"""What a comparison will do: its presets, and the :class:`Plan` made from checked arguments.

A plan names its models, seeds and settings, and where each run's record, log and Ultralytics folder lands.
:mod:`.runner` carries it out and :mod:`.report` reads the records it names; neither imports the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..cli.args import ArgumentError
from ..data.presets import PRESET_SPECS as DATASETS
from ..data.synthetic import DatasetSpec
from .inputs import ModelEntry, device_type, resolve_data, resolve_models, resolve_pretrained
from .metrics import TASK_METRICS, TaskMetrics
from .resume import check_records, free_run_folder

__all__ = ["PRESETS", "Plan", "Preset", "make_plan"]


@dataclass(frozen=True)
class Preset:
    """Defaults for everything a preset decides; explicit arguments override them."""

    epochs: int
    imgsz: int
    batch: int
    workers: int
    seeds: int
    dataset: DatasetSpec  # the detection dataset; other tasks get the same spec with their own labels
    warmup: int  # untimed inference calls before latency timing
    iters: int  # timed inference calls; the median is reported
    extra: dict = field(default_factory=dict)  # further Ultralytics training arguments, the same for every model


PRESETS = {
    # About ten minutes for the two default models on a 2-core CPU, with accuracy far from converged. nbs=16 (the
    # batch size) makes every batch an optimizer step instead of every fourth: 15 short epochs then learn something.
    "quick": Preset(
        epochs=15,
        imgsz=256,
        batch=16,
        workers=2,
        seeds=1,
        dataset=DATASETS["quick"],
        warmup=5,
        iters=30,
        extra={"nbs": 16},
    ),
    # The accuracy study of docs/results/ablation.md: 1800 optimizer steps per run, 120 val images, about 35 minutes a
    # run with two at a time on a 2-core CPU. 30 epochs left the validation mAP far from converged (0.55 where 60 epochs
    # reach 0.85, same seed). Each run's records land as it finishes, so the study can span several sessions.
    "study": Preset(
        epochs=60,
        imgsz=256,
        batch=8,
        workers=2,
        seeds=3,
        dataset=DATASETS["study"],
        warmup=5,
        iters=30,
        extra={"nbs": 8},
    ),
    # The context-range study of docs/results/context.md: one comparison per distance= (each its own run folder), 1600
    # optimizer steps per run, about 20 minutes a run with two at a time on a 2-core CPU.
    "context": Preset(
        epochs=40,
        imgsz=256,
        batch=8,
        workers=2,
        seeds=3,
        dataset=DATASETS["context"],
        warmup=5,
        iters=30,
        extra={"nbs": 8},
    ),
    # Your own data: Ultralytics' own training defaults (100 epochs, imgsz 640, batch 16, its nbs), three seeds for
    # the paired statistics. What compare uses whenever data= is given without preset=; the dataset field is unused.
    "ultralytics": Preset(
        epochs=100, imgsz=640, batch=16, workers=8, seeds=3, dataset=DATASETS["full"], warmup=20, iters=200
    ),
    # Long enough for the accuracy differences to mean something (a GPU is advisable).
    "full": Preset(epochs=100, imgsz=320, batch=16, workers=8, seeds=3, dataset=DATASETS["full"], warmup=20, iters=200),
}


@dataclass(frozen=True)
class Plan:
    """Everything a comparison will do, fully validated.

    Attributes:
        run_dir (Path): The run folder: records, logs, Ultralytics runs and the report.
        models (list[ModelEntry]): The models, the baseline first.
        seeds (list[int]): The training seeds, each run for every model.
        train_args (dict): The Ultralytics training arguments every run shares (each adds seed, project, name).
        bench_args (dict): The benchmark settings.
        settings (dict): What the report's header states.
        jobs (int): Training runs at once.
        task (str): The models' Ultralytics task, a key of :data:`~ultralytics_biformer.bench.metrics.TASK_METRICS`.
    """

    run_dir: Path
    models: list[ModelEntry]
    seeds: list[int]
    train_args: dict[str, Any]
    bench_args: dict[str, Any]
    settings: dict[str, Any]
    jobs: int = 1
    task: str = "detect"

    @property
    def metrics(self) -> TaskMetrics:
        """What this task's runs record and the report shows."""
        return TASK_METRICS[self.task]

    @property
    def runs(self) -> list[tuple[ModelEntry, int]]:
        """Seed-major, so that an interrupted comparison holds complete pairs: every model for its first seeds."""
        return [(model, seed) for seed in self.seeds for model in self.models]

    def log_file(self, model: ModelEntry, seed: int) -> Path:
        return self.run_dir / "logs" / f"{model.label}-seed{seed}.log"

    def run_folder(self, model: ModelEntry, seed: int) -> Path:
        """Where Ultralytics writes the run: its ``project/name``."""
        return self.run_dir / "runs" / f"{model.label}-seed{seed}"

    def results_csv(self, model: ModelEntry, seed: int) -> Path:
        return self.run_folder(model, seed) / "results.csv"

    def train_record(self, model: ModelEntry, seed: int) -> Path:
        return self.run_dir / "records" / f"{model.label}-seed{seed}.json"

    def bench_record(self, model: ModelEntry) -> Path:
        return self.run_dir / "records" / f"{model.label}-bench.json"

    def train_job(self, model: ModelEntry, seed: int) -> dict[str, Any]:
        args = {
            **self.train_args,
            "seed": seed,
            "project": str(self.run_folder(model, seed).parent),
            "name": self.run_folder(model, seed).name,
        }
        job = {
            "model": model.source,
            "model_digest": model.digest,
            "train_args": args,
            "record": str(self.train_record(model, seed)),
        }
        if self.jobs > 1 and self.settings["device"] == "cpu":
            job["threads"] = max(1, (os.cpu_count() or 1) // self.jobs)
        return job

    def bench_job(self, weights: dict[ModelEntry, str]) -> dict[str, Any]:
        """One benchmark job for the models in ``weights`` (each with the weights to measure), timed interleaved."""
        return {
            "models": [
                {
                    "model": model.source,
                    "model_digest": model.digest,
                    "weights": path,
                    "record": str(self.bench_record(model)),
                }
                for model, path in weights.items()
            ],
            "bench_args": self.bench_args,
            "record": str(self.run_dir / "records" / "benchmarks"),  # names the job file only: each model has its own
        }


def _train_args(values: dict[str, Any], preset: Preset, data: str) -> dict[str, Any]:
    """The Ultralytics training arguments every model's run shares (each run adds its seed, project and name)."""
    args = {
        "data": data,
        **{key: getattr(preset, key) if values[key] is None else values[key] for key in ("epochs", "imgsz", "batch")},
        "workers": preset.workers if values["workers"] is None else values["workers"],
        "optimizer": values["optimizer"],
        **preset.extra,
        "deterministic": True,
        "plots": False,  # Ultralytics' plots want the Arial font, which it would download
        "exist_ok": True,  # a run interrupted half-way restarts in its own folder
        "verbose": True,
    }
    if values["device"] is not None:
        args["device"] = values["device"]
    if values["pretrained"] is not None:
        args["pretrained"] = values["pretrained"]
    return args


def make_plan(values: dict[str, Any]) -> Plan:
    """Validate parsed ``compare`` arguments and plan the comparison; nothing is trained. Raises ArgumentError."""
    from ..cli.offline import offline_ultralytics

    offline_ultralytics()
    # Settings made for a small generated benchmark would silently shortchange a user's own dataset.
    implied = values["preset"] is None
    values = {**values, "preset": values["preset"] or ("quick" if values["data"] is None else "ultralytics")}
    preset = PRESETS[values["preset"]]
    if values["distance"] is not None:
        if preset.dataset.style != "context" or values["data"] is not None:
            raise ArgumentError(
                f"distance={values['distance']} applies to the bundled context-range benchmark only: use it with "
                "preset=context and no data="
            )
        try:
            preset = replace(preset, dataset=replace(preset.dataset, distance=values["distance"]))
        except ValueError as e:
            raise ArgumentError(str(e)) from None
    models, task = resolve_models(values["models"], values["task"])
    on_context_benchmark = preset.dataset.style == "context" and values["data"] is None
    if on_context_benchmark and task != "detect":
        raise ArgumentError(f"preset={values['preset']} is a detection benchmark, but the models are {task} models")
    device = device_type(values["device"])
    n_seeds = preset.seeds if values["seeds"] is None else values["seeds"]
    seeds = list(range(values["seed"], values["seed"] + n_seeds))
    if seeds[-1] >= 2**32:
        raise ArgumentError(f"seed={values['seed']} with seeds={n_seeds}: seeds must stay below 2**32 (numpy's limit)")
    # Other tasks get their own default folder, so that a detect comparison of the same preset is not overwritten.
    default_name = values["preset"] if task == "detect" else f"{values['preset']}-{task}"
    if on_context_benchmark:  # one folder per distance
        default_name += f"-d{preset.dataset.distance}"
    run_dir = (Path(values["project"]) / (values["name"] or default_name)).resolve()
    if blocker := next((p for p in [run_dir, *run_dir.parents] if p.exists() and not p.is_dir()), None):
        raise ArgumentError(f"project={values['project']}: {blocker} is a file, so {run_dir} cannot be a run folder")
    values = {**values, "pretrained": resolve_pretrained(values["pretrained"], task, values["train"])}
    train_args = _train_args(values, preset, resolve_data(values["data"], preset, task, values["train"]))
    bench_args = {
        "imgsz": train_args["imgsz"],
        "threads": values["threads"],
        "warmup": preset.warmup,
        "iters": preset.iters,
    }
    settings = {
        "task": task,
        "preset": values["preset"] + (" (the default with data=)" if implied and values["data"] else ""),
        **{k: train_args[k] for k in ("data", "epochs", "imgsz", "batch", "optimizer")},
        # Ultralytics' trainer loads data in the main process when it trains on the CPU, whatever workers= says.
        "workers": 0 if device in {"cpu", "mps"} else train_args["workers"],
        "device": device,
        "seeds": seeds,
        "jobs": values["jobs"],
        "pretrained": values["pretrained"],
        "extra": preset.extra,
    }
    plan = Plan(run_dir, models, seeds, train_args, bench_args, settings, jobs=values["jobs"], task=task)
    if values["name"] is not None:  # the folder asked for, or an error saying why not
        check_records(plan)
        return plan
    return free_run_folder(plan)
