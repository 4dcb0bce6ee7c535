"""Running a plan: each training run and each benchmark in its own worker process, with progress on the console.

Each worker (:mod:`.worker`) writes its record on success; the runner only starts workers, watches them and says what
happened. A step that fails becomes a :class:`Failure` in the :class:`Outcome`, and the comparison goes on: one
model's failure spoils no other result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .inputs import ModelEntry
from .plan import Plan
from .records import TrainRecord
from .resume import job_file, resumed_job

__all__ = ["Failure", "Outcome", "run_plan", "say"]


@dataclass(frozen=True)
class Failure:
    """A step of a comparison that left no record.

    Attributes:
        label (str): The model's label.
        seed (int | None): The training seed; None for the model's benchmark.
        message (str): What happened and where its log is.
    """

    label: str
    seed: int | None
    message: str

    @property
    def step(self) -> str:
        """``"<label> seed <N>"`` for a training run, ``"<label> benchmark"`` for a benchmark."""
        return f"{self.label} benchmark" if self.seed is None else f"{self.label} seed {self.seed}"

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"


@dataclass
class Outcome:
    """What running a plan left behind beyond its records: the steps that failed, in the order they failed."""

    failures: list[Failure] = field(default_factory=list)

    def failed(self, label: str, seed: int | None, message: str) -> None:
        self.failures.append(Failure(label, seed, message))


def say(message: str) -> None:
    """Print a line of the comparison's console output."""
    print(f"[ultralytics-biformer compare] {message}", flush=True)


def _start(kind: str, job: dict, log: Path) -> subprocess.Popen:
    """Start one worker job in a fresh process whose output goes to ``log`` (appended to, for a resumed run)."""
    from ..cli.offline import OFFLINE_ENV

    path = job_file(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=2))
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ultralytics_biformer.bench.worker", kind, str(path)]
    with open(log, "a" if job.get("resume") else "w") as out:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE_ENV})


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _epochs_done(results_csv: Path) -> int:
    """Epochs Ultralytics has logged to a run's ``results.csv`` so far."""
    try:
        return max(len(results_csv.read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


class _Progress:
    """The console of a comparison: one line as each run starts, one as it ends, and, on a terminal, a status line
    (epoch and ETA of the runs in progress) rewritten in place. Full Ultralytics output goes to each run's log file."""

    def __init__(self, plan: Plan):
        self.plan, self.total = plan, len(plan.runs)
        self.live = sys.stdout.isatty()
        self.started: dict[tuple[str, int], float] = {}

    def _clear(self) -> None:
        if self.live:
            print("\r\033[K", end="", flush=True)

    def say(self, message: str) -> None:
        self._clear()
        say(message)

    def start(self, i: int, model: ModelEntry, seed: int, resumed_from: int | None = None) -> None:
        self.started[(model.label, seed)] = (time.monotonic(), resumed_from or 0)
        log = self.plan.log_file(model, seed).relative_to(self.plan.run_dir)
        what = (
            f"resuming after epoch {resumed_from} of {self.plan.train_args['epochs']}" if resumed_from else "training"
        )
        self.say(f"run {i}/{self.total} {model.spec} seed {seed}: {what} (log: {log})")

    def end(self, i: int, model: ModelEntry, seed: int, code: int) -> None:
        took = _minutes(time.monotonic() - self.started.pop((model.label, seed))[0])
        what = f"run {i}/{self.total} {model.spec} seed {seed}"
        record = self.plan.train_record(model, seed)
        if code == 0 and record.is_file():
            r, task = TrainRecord.load(record), self.plan.metrics
            metric = f"{task.metric(task.primary).title} {r.value(task.primary):.4f}"
            metric += f", small {r.value('map_small'):.4f}" if r.value("map_small") is not None else ""
            self.say(f"{what}: done in {took}, {r.epochs_run} epochs, {metric}")
        else:
            log = self.plan.log_file(model, seed)
            self.say(f"{what}: FAILED (exit code {code}) after {took}; see {log}")

    def status(self, running: list[tuple[ModelEntry, int]]) -> None:
        if not self.live or not running:
            return
        parts = []
        for model, seed in running:
            done, total = _epochs_done(self.plan.results_csv(model, seed)), self.plan.train_args["epochs"]
            started, done_before = self.started[(model.label, seed)]
            elapsed, done_now = time.monotonic() - started, done - done_before
            eta = f", ETA {_minutes(elapsed / done_now * (total - done))}" if done_now > 0 else ""
            parts.append(f"{model.label} s{seed} epoch {done}/{total}{eta}")
        print("\r\033[K" + " | ".join(parts), end="", flush=True)


def _train_all(plan: Plan, outcome: Outcome) -> None:
    """Train every run that has no record yet, ``plan.jobs`` at a time."""
    progress = _Progress(plan)
    pending = []
    for i, (model, seed) in enumerate(plan.runs, 1):
        if plan.train_record(model, seed).is_file():
            progress.say(f"run {i}/{progress.total} {model.spec} seed {seed}: finished earlier, skipping")
        else:
            pending.append((i, model, seed))
    running: dict[subprocess.Popen, tuple[int, ModelEntry, int]] = {}
    try:
        while pending or running:
            while pending and len(running) < plan.jobs:
                i, model, seed = pending.pop(0)
                job, resumed_from = resumed_job(plan, model, seed)
                progress.start(i, model, seed, resumed_from)
                running[_start("train", job, plan.log_file(model, seed))] = (i, model, seed)
            time.sleep(1.0)
            for proc in [p for p in running if p.poll() is not None]:
                i, model, seed = running.pop(proc)
                progress.end(i, model, seed, proc.returncode)
                if proc.returncode != 0 or not plan.train_record(model, seed).is_file():
                    outcome.failed(
                        model.label,
                        seed,
                        f"training failed (worker exit code {proc.returncode}); see {plan.log_file(model, seed)}",
                    )
            progress.status([(m, s) for _, m, s in running.values()])
    finally:
        for proc in running:  # interrupted: no half-trained worker outlives us
            proc.terminate()
        for proc in running:
            proc.wait()


def _local_weights(plan: Plan, model: ModelEntry, seeds: list[int]) -> str | None:
    """Weights of a recorded run of ``model`` that exist on this machine: where its record says, or, for records
    committed from another checkout, in this plan's folder of that run. Any seed does: cost does not depend on them."""
    for seed in seeds:
        recorded = Path(TrainRecord.load(plan.train_record(model, seed)).weights)
        for path in (recorded, plan.run_folder(model, seed) / "weights" / recorded.name):
            if path.is_file():
                return str(path)
    return None


def _bench_all(plan: Plan, outcome: Outcome) -> None:
    """Benchmark every model that has a trained run and no benchmark record, all in one worker process that times
    them in interleaved rounds, so that a busy machine slows every model alike and the ratios stay fair."""
    ready: dict[ModelEntry, str] = {}
    for j, model in enumerate(plan.models, 1):
        what = f"benchmark {j}/{len(plan.models)} {model.spec}"
        if plan.bench_record(model).is_file():
            say(f"{what}: finished earlier, skipping")
            continue
        trained = [s for s in plan.seeds if plan.train_record(model, s).is_file()]
        if not trained:
            outcome.failed(model.label, None, "not benchmarked: no training run finished")
            say(f"{what}: skipped, no training run of it finished")
            continue
        weights = _local_weights(plan, model, trained)
        if weights is None:
            outcome.failed(
                model.label,
                None,
                "not benchmarked: its records were made in another checkout, and weights are never committed with them",
            )
            say(
                f"{what}: skipped, no weights of its recorded runs are here (records made elsewhere); copy a run's "
                f"runs/<model>-seed<N>/ folder into {plan.run_dir}, or delete one record to retrain that run"
            )
            continue
        ready[model] = weights
    if not ready:
        return
    log = plan.run_dir / "logs" / "benchmarks.log"
    say(
        f"benchmarking {', '.join(m.spec for m in ready)}: parameters, GFLOPs, PyTorch and ONNX Runtime latency, "
        f"timed interleaved (log: {log.relative_to(plan.run_dir)})"
    )
    code = _start("bench", plan.bench_job(ready), log).wait()
    for model in ready:
        if code != 0 or not plan.bench_record(model).is_file():
            outcome.failed(model.label, None, f"benchmark failed (worker exit code {code}); see {log}")
            say(f"benchmark of {model.spec}: FAILED with exit code {code}; see {log}")


def run_plan(plan: Plan) -> Outcome:
    """Train every planned run that has no record yet, then benchmark every model that has none; never raises for a
    failed step (it is in the outcome). An interrupt stops the workers in progress and propagates."""
    outcome = Outcome()
    _train_all(plan, outcome)
    _bench_all(plan, outcome)
    return outcome
