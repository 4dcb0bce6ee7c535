"""The work behind ``compare``, one job per process: ``python -m ultralytics_biformer.cli.worker {train,bench} JOB.json``.

``JOB.json`` holds the job's arguments and the path of the JSON record to write on success. Running each job in a
fresh process gives every model the same clean start, lets a job's peak memory be measured on its own, and means an
interrupted comparison loses at most the job in progress.

- ``train``: trains one model with one seed through Ultralytics, then validates its best weights once with a validator
  that also scores COCO area buckets (see :mod:`ultralytics_biformer.evaluation`), and records those metrics,
  per-epoch curves, training time per epoch and peak memory.
- ``bench``: measures one trained model: parameters, GFLOPs, and CPU latency at batch 1 in PyTorch (fused) and, after
  ONNX export, in ONNX Runtime, with the same thread count for both. A failed export is recorded, not raised.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "write_json"]


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically, so a record is either complete or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux and macOS report ru_maxrss in different units)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


class _EpochTimer:
    """Ultralytics callbacks timing each epoch's training pass (validation excluded)."""

    def __init__(self):
        self.durations, self._start = [], None

    def start(self, trainer) -> None:
        self._start = time.perf_counter()

    def end(self, trainer) -> None:
        self.durations.append(time.perf_counter() - self._start)


def _curves(results_csv: Path) -> dict[str, list[float]]:
    """Per-epoch columns of an Ultralytics ``results.csv`` (keys stripped of padding)."""
    import csv

    with open(results_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/mAP50(B)", "metrics/mAP50-95(B)"]
    return {key: [float(row[key]) for row in rows if row.get(key, "").strip()] for key in keys}


def _validate(weights: Path, args: dict, device: str) -> dict:
    """Validate ``weights`` on the val split; overall and area-bucket metrics come from this one pass."""
    from ultralytics import YOLO

    from ..evaluation import with_area_buckets

    model = YOLO(weights)
    validator = with_area_buckets(model.task_map[model.task]["validator"])
    metrics = model.val(
        validator=validator,
        data=args["data"],
        imgsz=args["imgsz"],
        batch=args["batch"],
        device=device,
        plots=False,
        verbose=False,
        project=str(Path(weights).parents[1]),
        name="val",
        exist_ok=True,
    )
    record = _box_metrics(metrics.results_dict)
    record.update({f"map_{name}": value for name, value in metrics.area_map.items()})
    return record


def _transfer_counts(checkpoint: str, model) -> dict:
    """How many of the checkpoint's tensors the model took: same name and shape, as Ultralytics' ``load`` matches."""
    from ultralytics.nn.tasks import load_checkpoint
    from ultralytics.utils.torch_utils import intersect_dicts

    source = load_checkpoint(checkpoint)[0].float().state_dict()
    return {
        "transferred": len(intersect_dicts(source, getattr(model, "module", model).state_dict())),
        "checkpoint_tensors": len(source),
    }


def train(job: dict) -> dict:
    """Train one model with one seed; return its record (see the module docstring)."""
    import torch
    from ultralytics import YOLO

    args = job["train_args"]
    model, timer = YOLO(job["model"]), _EpochTimer()
    model.add_callback("on_train_epoch_start", timer.start)
    model.add_callback("on_train_epoch_end", timer.end)
    threads = job.get("threads")
    if threads:  # Ultralytics sets its own CPU thread count when it selects the device, just before this callback
        model.add_callback("on_pretrain_routine_start", lambda trainer: torch.set_num_threads(threads))
    started = time.perf_counter()
    model.train(**args)
    train_seconds = time.perf_counter() - started
    trainer = model.trainer
    record = {
        "model": job["model"],
        "seed": args["seed"],
        "train_args": args,
        "save_dir": str(trainer.save_dir),
        "weights": str(trainer.best if trainer.best.exists() else trainer.last),
        "epochs_run": len(timer.durations),
        "train_seconds": round(train_seconds, 2),
        "epoch_seconds": round(sum(timer.durations) / max(len(timer.durations), 1), 3),
        "peak_rss_mib": _peak_rss_mib(),
        "peak_cuda_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1) if trainer.device.type == "cuda" else None,
        "train_threads": torch.get_num_threads(),
    }
    if args.get("pretrained"):
        record.update(_transfer_counts(args["pretrained"], trainer.model))
    record.update(_validate(Path(record["weights"]), args, str(trainer.device)))
    record["curves"] = _curves(trainer.save_dir / "results.csv")
    return record


def _box_metrics(results: dict[str, float]) -> dict[str, float]:
    """Precision, recall, mAP50 and mAP50-95 from Ultralytics' final validation ``results_dict``."""
    names = {"precision": "precision", "recall": "recall", "map50": "mAP50", "map": "mAP50-95"}
    return {name: round(float(results[f"metrics/{key}(B)"]), 6) for name, key in names.items()}


def _median_ms(run, warmup: int, iters: int) -> float:
    """Median wall time of ``run()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    return round(1000 * times[len(times) // 2], 3)


def _torch_latency(model, imgsz: int, warmup: int, iters: int) -> float:
    import copy

    import torch

    net = copy.deepcopy(model).float().cpu().fuse(verbose=False).eval()
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return _median_ms(lambda: net(x), warmup, iters)


def _onnx_latency(weights: str, imgsz: int, threads: int, warmup: int, iters: int) -> float:
    import numpy as np
    import onnxruntime as ort
    from ultralytics import YOLO

    path = YOLO(weights).export(format="onnx", imgsz=imgsz, device="cpu", batch=1, dynamic=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    return _median_ms(lambda: session.run(None, {name: x}), warmup, iters)


def _one_line(error: BaseException, limit: int = 300) -> str:
    message = " ".join(str(error).split()) or "no message"
    message = f"{type(error).__name__}: {message}"
    return message if len(message) <= limit else message[: limit - 3] + "..."


def bench(job: dict) -> dict:
    """Measure one trained model's size, compute and CPU latency; return its record."""
    import torch
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    args = job["bench_args"]
    imgsz, warmup, iters = args["imgsz"], args["warmup"], args["iters"]
    threads = args["threads"]
    torch.set_num_threads(threads)
    model = YOLO(job["weights"]).model.float().cpu().eval()
    record = {
        "model": job["model"],
        "bench_args": args,
        "weights": job["weights"],
        "imgsz": imgsz,
        "threads": threads,
        "params": sum(p.numel() for p in model.parameters()),
        "gflops": round(get_flops(model, imgsz), 3),
        "torch_ms": _torch_latency(model, imgsz, warmup, iters),
        "onnx_ms": None,
        "onnx_error": None,
    }
    try:
        record["onnx_ms"] = _onnx_latency(job["weights"], imgsz, threads, warmup, iters)
    except Exception as e:  # noqa: BLE001 - reported in the table, so that one model's export failure spoils no other result
        record["onnx_error"] = _one_line(e)
        print(f"ONNX export or inference of {job['model']} failed: {record['onnx_error']}", file=sys.stderr)
    return record


JOBS = {"train": train, "bench": bench}


def main(argv: list[str] | None = None) -> int:
    """Run one job: ``worker {train,bench} JOB.json``; writes the job's record to ``job["record"]``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in JOBS:
        print(
            f"usage: python -m {__spec__.name if __spec__ else 'worker'} {{{','.join(JOBS)}}} JOB.json", file=sys.stderr
        )
        return 2
    from .offline import offline_ultralytics

    offline_ultralytics()
    job = json.loads(Path(argv[1]).read_text())
    try:
        record = JOBS[argv[0]](job)
    except KeyboardInterrupt:
        print(f"{argv[0]} job interrupted; no record written", file=sys.stderr)
        return 130
    write_json(Path(job["record"]), {"job": argv[0], **record})
    return 0


if __name__ == "__main__":
    sys.exit(main())
