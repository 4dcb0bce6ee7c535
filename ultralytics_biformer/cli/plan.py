"""What a ``compare`` run does: its models, seeds, settings and where each record lands.

:mod:`.compare` makes a :class:`Plan` and runs it; :mod:`.report` reads the records a plan names. Both import this
module, and neither imports the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation import TASK_METRICS, TaskMetrics

__all__ = ["ModelEntry", "Plan"]


@dataclass(frozen=True)
class ModelEntry:
    """A model to compare: as the user wrote it, what the worker loads, a file-safe label, and a digest of what it
    builds (the parsed YAML, or the checkpoint's bytes) that tells a resumed comparison whether the model changed."""

    spec: str
    source: str
    label: str
    digest: str | None = None


@dataclass
class Plan:
    """Everything a comparison will do, fully validated.

    Attributes:
        run_dir (Path): The run folder: records, logs, Ultralytics runs and the report.
        models (list[ModelEntry]): The models, the baseline first.
        seeds (list[int]): The training seeds, each run for every model.
        train_args (dict): The Ultralytics training arguments every run shares (each adds seed, project, name).
        bench_args (dict): The benchmark settings.
        settings (dict): What the report's header states.
        failures (dict[str, str]): Steps that failed, filled in while the plan runs.
        jobs (int): Training runs at once.
        task (str): The models' Ultralytics task, a key of :data:`~ultralytics_biformer.evaluation.TASK_METRICS`.
    """

    run_dir: Path
    models: list[ModelEntry]
    seeds: list[int]
    train_args: dict[str, Any]
    bench_args: dict[str, Any]
    settings: dict[str, Any]
    failures: dict[str, str] = field(default_factory=dict)

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

    def bench_job(self, model: ModelEntry, weights: str) -> dict[str, Any]:
        return {
            "model": model.source,
            "model_digest": model.digest,
            "weights": weights,
            "bench_args": self.bench_args,
            "record": str(self.bench_record(model)),
        }
