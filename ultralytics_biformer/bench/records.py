"""The records a comparison leaves: one JSON file per finished training run or benchmark.

A worker process (:mod:`.worker`) writes a record when its job succeeds, and nothing otherwise, so a record's presence
means the step finished; the report (:mod:`.report`) and the resume check (:mod:`.resume`) read them back. The files
are flat JSON objects, committed next to the studies in ``docs/results``: a training record holds its task's metrics
(see :data:`.metrics.TASK_METRICS`) as top-level keys beside the fields below, and records written by earlier
releases, which lack some fields, still load.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["BenchRecord", "TrainRecord", "write_json"]

_NOT_IN_CSV = {"csv": False}  # field metadata: machine-specific or nested, so not a column of runs.csv


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically, so a record is either complete or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


class _Record:
    """Saving and loading for a record dataclass whose JSON ``"job"`` key names its kind."""

    JOB: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        return {"job": self.JOB, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        known = _field_names(cls)
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def csv_fields(cls) -> list[str]:
        """The fields that are CSV columns, in order."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("csv", True)]

    def save(self, path: Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path):
        """The record at ``path``; raises OSError or ValueError for a missing or unreadable file."""
        return cls.from_json(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class TrainRecord(_Record):
    """One finished training run of one model with one seed.

    The fields up to ``save_dir`` are the columns of ``runs.csv``, in order, with the task's metrics after ``seed``.

    Attributes:
        model (str): What the worker loaded: a model YAML (name or absolute path) or a checkpoint's absolute path.
        seed (int): The training seed.
        epoch_seconds (float): Mean wall time of an epoch's training pass, validation excluded.
        peak_rss_mib (float): Peak resident memory of the training process, MiB.
        train_seconds (float): Wall time of ``model.train``; a resumed run's covers only the epochs after the resume.
        epochs_run (int): Epochs trained, before and after a resume.
        resumed_from_epoch (int | None): The epochs a resumed run took from its interrupted attempt; None if none.
        transferred (int | None): Tensors taken from ``pretrained=``; None when trained from scratch.
        checkpoint_tensors (int | None): Tensors in the ``pretrained=`` checkpoint; None when trained from scratch.
        peak_cuda_mib (float | None): Peak CUDA memory reserved, MiB; None on other devices.
        save_dir (str | None): The Ultralytics run folder.
        weights (str | None): The weights validated: ``best.pt``, or ``last.pt`` where there is no best.
        model_digest (str | None): The digest of what the model builds (see :class:`.inputs.ModelEntry`).
        train_args (dict): The Ultralytics training arguments of the run.
        train_threads (int | None): The CPU threads torch trained with.
        metrics (dict[str, float | None]): The task's metrics, by key; top-level keys in the JSON.
        curves (dict[str, list[float]]): Per-epoch columns of Ultralytics' ``results.csv``.
    """

    JOB: ClassVar[str] = "train"

    model: str
    seed: int
    epoch_seconds: float | None = None
    peak_rss_mib: float | None = None
    train_seconds: float | None = None
    epochs_run: int | None = None
    resumed_from_epoch: int | None = None
    transferred: int | None = None
    checkpoint_tensors: int | None = None
    peak_cuda_mib: float | None = None
    save_dir: str | None = None
    weights: str | None = field(default=None, metadata=_NOT_IN_CSV)
    model_digest: str | None = field(default=None, metadata=_NOT_IN_CSV)
    train_args: dict[str, Any] = field(default_factory=dict, metadata=_NOT_IN_CSV)
    train_threads: int | None = field(default=None, metadata=_NOT_IN_CSV)
    metrics: dict[str, float | None] = field(default_factory=dict, metadata=_NOT_IN_CSV)
    curves: dict[str, list[float]] = field(default_factory=dict, metadata=_NOT_IN_CSV)

    def value(self, key: str) -> Any:
        """A metric or a field by its key, as the report's columns name them; None where the run has no such value."""
        if key in self.metrics:
            return self.metrics[key]
        return getattr(self, key, None) if key in _field_names(TrainRecord) else None

    @classmethod
    def csv_columns(cls, metric_keys: list[str]) -> list[str]:
        """The columns of ``runs.csv``: the CSV fields, with ``metric_keys`` after ``seed``."""
        names = cls.csv_fields()
        return [*names[:2], *metric_keys, *names[2:]]

    def csv_row(self) -> dict[str, Any]:
        """This run as a ``runs.csv`` row, its metrics included (columns it lacks stay empty)."""
        return {**{name: getattr(self, name) for name in self.csv_fields()}, **self.metrics}

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        metrics, curves = data.pop("metrics"), data.pop("curves")
        return {**data, **metrics, "curves": curves}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainRecord:
        known = _field_names(cls)
        metrics = {k: v for k, v in data.items() if k not in known and k != "job"}
        return cls(**{k: v for k, v in data.items() if k in known}, metrics=metrics)


@dataclass(frozen=True)
class BenchRecord(_Record):
    """The size, compute and CPU latency of one trained model (any of its seeds: these do not depend on weights).

    The fields from ``params`` to ``imgsz`` are the benchmark's columns of ``compare.csv``, in order.

    Attributes:
        model (str): What the worker loaded, as in :class:`TrainRecord`.
        params (int): Parameters.
        gflops (float): Ultralytics' GFLOPs at ``imgsz``.
        torch_ms (float): Median latency of the fused PyTorch model, batch 1, ms.
        onnx_ms (float | None): Median latency of the ONNX export in ONNX Runtime; None where the export failed.
        onnx_error (str | None): Why the ONNX export or its inference failed, in one line.
        threads (int): CPU threads of both runtimes.
        imgsz (int): The square input size.
        weights (str | None): The weights measured.
        model_digest (str | None): As in :class:`TrainRecord`.
        bench_args (dict): The benchmark settings.
        load_average (float | None): The machine's 1-minute load average when the timing started (None where the
            platform has none, and in records that predate it).
    """

    JOB: ClassVar[str] = "bench"

    model: str = field(metadata=_NOT_IN_CSV)  # compare.csv names the model in its own column
    params: int
    gflops: float | None = None
    torch_ms: float | None = None
    onnx_ms: float | None = None
    onnx_error: str | None = None
    threads: int | None = None
    imgsz: int | None = None
    weights: str | None = field(default=None, metadata=_NOT_IN_CSV)
    model_digest: str | None = field(default=None, metadata=_NOT_IN_CSV)
    bench_args: dict[str, Any] = field(default_factory=dict, metadata=_NOT_IN_CSV)
    load_average: float | None = field(default=None, metadata=_NOT_IN_CSV)


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}
