"""The work behind ``compare``, one job per process: ``python -m ultralytics_biformer.bench.worker KIND JOB.json``.

``KIND`` is ``train`` or ``bench``; ``JOB.json`` holds the job's arguments and the path of the JSON record to write
on success. Running each job in a fresh process gives every model the same clean start, lets a job's peak memory be
measured on its own, and means an interrupted comparison loses at most the job in progress.

- ``train``: trains one model with one seed through Ultralytics (the stock trainer of the model's task), then validates
  its best weights once with the task's validator, which for tasks with boxes also scores COCO area buckets, and
  records the task's metrics (see :data:`ultralytics_biformer.bench.metrics.TASK_METRICS`), per-epoch curves, training
  time per epoch and peak memory. A job with ``resume`` (the ``last.pt`` of the same job, interrupted) continues that
  training through Ultralytics' own resume, and its record says from which epoch.
- ``bench``: measures every trained model of the comparison in one process: parameters, GFLOPs, and CPU latency at
  batch 1 in PyTorch (fused) and, after ONNX export, in ONNX Runtime, with the same thread count for both, the models
  timed in interleaved rounds (by :mod:`.latency`) so that their ratios hold on a busy machine. Each model gets its
  own record; a failed export is recorded, not raised.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..cli.args import ExitCode
from .records import BenchRecord, TrainRecord

__all__ = ["main"]


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


def _curves(results_csv: Path, metric_columns: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-epoch columns of an Ultralytics ``results.csv``: the epoch, every training loss (their names differ by
    task), and ``metric_columns``, in the file's order."""
    import csv

    with open(results_csv, newline="") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    keys = [k for k in (rows[0] if rows else {}) if k == "epoch" or k.startswith("train/") or k in metric_columns]
    return {key: [float(row[key]) for row in rows if row.get(key, "").strip()] for key in keys}


def _validate(weights: Path, args: dict, device: str) -> dict[str, float | None]:
    """Validate ``weights`` on the val split; the task's metrics and any area-bucket ones come from this one pass."""
    from ultralytics import YOLO

    from .metrics import TASK_METRICS, with_area_buckets

    model = YOLO(weights)
    task = TASK_METRICS[model.task]
    validator = model.task_map[model.task]["validator"]
    if task.area_buckets:
        validator = with_area_buckets(validator)
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
    return task.record(metrics.results_dict, getattr(metrics, "area_map", None))


def _transfer_counts(checkpoint: str, model) -> dict:
    """How many of the checkpoint's tensors the model took: same name and shape, as Ultralytics' ``load`` matches."""
    from ultralytics.nn.tasks import load_checkpoint
    from ultralytics.utils.torch_utils import intersect_dicts

    source = load_checkpoint(checkpoint)[0].float().state_dict()
    return {
        "transferred": len(intersect_dicts(source, getattr(model, "module", model).state_dict())),
        "checkpoint_tensors": len(source),
    }


def _drop_rows_after(results_csv: Path, epochs: int) -> None:
    """Keep the first ``epochs`` epochs of ``results.csv``: Ultralytics appends to it on resume, and a run stopped
    between writing an epoch's row and saving ``last.pt`` would log that epoch twice."""
    if not results_csv.is_file():
        return
    lines = results_csv.read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if int(float(line.split(",", 1)[0])) <= epochs]
    results_csv.write_text("".join(lines[:1] + kept))


def train(job: dict) -> TrainRecord:
    """Train one model with one seed; return its record (see the module docstring)."""
    import torch
    from ultralytics import YOLO

    from .metrics import TASK_METRICS
    from .resume import resumable_epochs

    args = job["train_args"]
    resumed_from = resumable_epochs(Path(job["resume"]), args["epochs"]) if job.get("resume") else None
    if resumed_from:
        print(f"resuming {job['resume']} after epoch {resumed_from} of {args['epochs']}", flush=True)
        _drop_rows_after(Path(args["project"]) / args["name"] / "results.csv", resumed_from)
    model, timer = YOLO(job["resume"] if resumed_from else job["model"]), _EpochTimer()
    model.add_callback("on_train_epoch_start", timer.start)
    model.add_callback("on_train_epoch_end", timer.end)
    threads = job.get("threads")
    if threads:  # Ultralytics sets its own CPU thread count when it selects the device, just before this callback
        model.add_callback("on_pretrain_routine_start", lambda trainer: torch.set_num_threads(threads))
    started = time.perf_counter()
    # A resumed run takes every setting from its checkpoint, which the same job wrote.
    model.train(resume=True) if resumed_from else model.train(**args)
    train_seconds = time.perf_counter() - started
    trainer = model.trainer
    weights = trainer.best if trainer.best.exists() else trainer.last
    return TrainRecord(
        model=job["model"],
        seed=args["seed"],
        # A resumed run's times cover only the epochs after the resume.
        epoch_seconds=round(sum(timer.durations) / max(len(timer.durations), 1), 3),
        peak_rss_mib=_peak_rss_mib(),
        train_seconds=round(train_seconds, 2),
        epochs_run=(resumed_from or 0) + len(timer.durations),
        resumed_from_epoch=resumed_from,
        **(_transfer_counts(args["pretrained"], trainer.model) if args.get("pretrained") else {}),
        peak_cuda_mib=round(torch.cuda.max_memory_reserved() / 2**20, 1) if trainer.device.type == "cuda" else None,
        save_dir=str(trainer.save_dir),
        weights=str(weights),
        model_digest=job.get("model_digest"),
        train_args=args,
        train_threads=torch.get_num_threads(),
        metrics=_validate(weights, args, str(trainer.device)),
        curves=_curves(trainer.save_dir / "results.csv", TASK_METRICS[model.task].curve_columns),
    )


def _onnx_session(weights: str, imgsz: int, threads: int):
    """An ONNX Runtime session of ``weights`` exported as Ultralytics exports it (static, batch 1), on the CPU."""
    from ultralytics import YOLO

    from .latency import ort_session

    path = YOLO(weights).export(format="onnx", imgsz=imgsz, device="cpu", batch=1, dynamic=False)
    return ort_session(path, threads, spinning=True)  # ONNX Runtime's default, as compare has always timed it


def bench(job: dict) -> dict[str, BenchRecord]:
    """Measure the size, compute and CPU latency of every model of the job; return their records by record path.

    The models are timed in interleaved rounds, PyTorch first and then ONNX Runtime, so that a spell of load on the
    machine slows them alike. A model whose export or ONNX inference fails gets no ONNX latency, and says why.
    """
    import torch
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    from ..cli.models import one_line
    from .latency import median_ms, random_image, torch_latency_ms

    args = job["bench_args"]
    imgsz, warmup, iters, threads = args["imgsz"], args["warmup"], args["iters"], args["threads"]
    torch.set_num_threads(threads)
    models = {m["record"]: YOLO(m["weights"]).model.float().cpu().eval() for m in job["models"]}
    load_average = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    torch_ms = torch_latency_ms(models, imgsz, warmup, iters)
    x = random_image(imgsz)
    runs, errors = {}, {}
    for m in job["models"]:
        try:
            session = _onnx_session(m["weights"], imgsz, threads)
            feed = {session.get_inputs()[0].name: x}
            session.run(None, feed)  # a model whose inference fails is left out here, not in the middle of the rounds
        except Exception as e:  # noqa: BLE001 - reported in the table, so that one model's export failure spoils no other result
            errors[m["record"]] = one_line(e, limit=300)
            print(f"ONNX export or inference of {m['model']} failed: {errors[m['record']]}", file=sys.stderr)
        else:
            runs[m["record"]] = lambda session=session, feed=feed: session.run(None, feed)
    onnx_ms = median_ms(runs, warmup, iters) if runs else {}
    return {
        m["record"]: BenchRecord(
            model=m["model"],
            params=sum(p.numel() for p in models[m["record"]].parameters()),
            gflops=round(get_flops(models[m["record"]], imgsz), 3),
            torch_ms=torch_ms[m["record"]],
            onnx_ms=onnx_ms.get(m["record"]),
            onnx_error=errors.get(m["record"]),
            threads=threads,
            imgsz=imgsz,
            weights=m["weights"],
            model_digest=m.get("model_digest"),
            bench_args=args,
            load_average=load_average,
        )
        for m in job["models"]
    }


def _train_records(job: dict) -> dict[str, TrainRecord]:
    return {job["record"]: train(job)}


# Each job returns its records by the path they are saved to: a training run one, a benchmark one per model.
JOBS = {"train": _train_records, "bench": bench}


def main(argv: list[str] | None = None) -> int:
    """Run one job: ``worker {train,bench} JOB.json``; writes the job's record (a benchmark job: one per model)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in JOBS:
        print(
            f"usage: python -m {__spec__.name if __spec__ else 'worker'} {{{','.join(JOBS)}}} JOB.json", file=sys.stderr
        )
        return ExitCode.USAGE
    from ..cli.offline import offline_ultralytics

    offline_ultralytics()
    job = json.loads(Path(argv[1]).read_text())
    try:
        records = JOBS[argv[0]](job)
    except KeyboardInterrupt:
        print(f"{argv[0]} job interrupted; no record written", file=sys.stderr)
        return ExitCode.INTERRUPTED
    for path, record in records.items():
        record.save(Path(path))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
