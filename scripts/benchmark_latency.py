"""Inference latency of biformer models against stock YOLO, in PyTorch, ONNX Runtime and OpenVINO, as ratios per cell.

Every model is built from its YAML with random weights (latency does not depend on the weights; nothing is
downloaded), fused (BatchNorm folded, as Ultralytics does for inference) and run with batch 1 on this machine's CPU
in each runtime, thread count and image size asked for:

- ``torch``: PyTorch eager, fused, ``torch.inference_mode``; :mod:`ultralytics_biformer.bench.latency`'s timing, the same as
  ``ultralytics-biformer compare``'s PyTorch latency;
- ``onnx``: ONNX Runtime (CPU) on a static export at each image size;
- ``onnx-dynamic``: ONNX Runtime on one dynamic-shape export per model (traced at the largest size), run at each size;
- ``openvino``: OpenVINO (CPU plugin) on a static export at each size, float32 inference precision (on CPUs with AMX
  or AVX512-BF16 OpenVINO would otherwise pick bfloat16, and the runtimes would not compute the same thing).

Exports are Ultralytics' ``YOLO(yaml).export(format=..., dynamic=..., simplify=True)``, written to a temporary folder
that is deleted at the end. ONNX Runtime sessions get ``intra_op_num_threads`` = the thread count and
``inter_op_num_threads`` = 1; OpenVINO ``INFERENCE_NUM_THREADS`` = the thread count, one stream, latency hint.

Within each (runtime, threads, size) cell the models are timed in interleaved rounds (each round runs every model
once), so a slow spell of a noisy machine hits all of them alike; each model's figure is the median of its rounds and
its ratio is that median over the first model's, in the same cell. A model whose export or run fails is reported as
failed in its cells, with the error under the table; the other models and runtimes are still measured.

Outputs, in ``--out`` (default ``benchmarks/``):

- ``latency.md``: the machine (CPU model, cores, library versions, 1-minute load average at the start and the end, so
  that a reader sees whether it was idle), then one table per runtime: a row per model, a column per threads x size,
  cells ``ms (ratio)``;
- ``latency.csv``: one row per cell and model: runtime, threads, imgsz, model, ms, ratio, error.

Usage:
    python scripts/benchmark_latency.py [--models yolo11n.yaml,yolo11n-biformer.yaml,yolo12n.yaml]
        [--runtimes torch,onnx,onnx-dynamic,openvino] [--threads 1,2] [--imgsz 320,640]
        [--rounds 15] [--warmup 3] [--out benchmarks] [--ort-spinning]

    Smoke test (seconds per cell, numbers worthless; keep them out of benchmarks/):
    python scripts/benchmark_latency.py --rounds 2 --warmup 1 --imgsz 320 --threads 1 --out /tmp/latency-smoke

``scripts/profile_latency.py`` reuses this module's machine facts, exports and ONNX Runtime sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported: no update checks or downloads

# The one import of the shared timing helpers in scripts/ (profile_latency.py takes them from here); if the module
# moves, this line is the only one to change.
from ultralytics_biformer.bench.latency import check_timing, median_ms, ort_session, random_image, torch_latency_ms
from ultralytics_biformer.cli.models import one_line

DEFAULT_MODELS = "yolo11n.yaml,yolo11n-biformer.yaml,yolo12n.yaml"
RUNTIMES = {
    "torch": "PyTorch (eager, fused)",
    "onnx": "ONNX Runtime, static export",
    "onnx-dynamic": "ONNX Runtime, dynamic export",
    "openvino": "OpenVINO, static export",
}


class Cell(NamedTuple):
    """One model's latency in one (runtime, threads, image size) cell; ``ms`` is None when it failed."""

    runtime: str
    threads: int
    imgsz: int
    model: str
    ms: float | None
    ratio: float | None  # ms over the first model's ms in the same cell; None when either is missing
    error: str | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Tables (pure functions of the cells: tests/test_scripts_latency.py checks them on synthetic timings)
# ---------------------------------------------------------------------------------------------------------------------


def cell_results(
    runtime: str, threads: int, imgsz: int, models: list[str], ms: dict[str, float], errors: dict[str, str]
) -> list[Cell]:
    """The cells of ``models`` (in order; the first is the baseline) from their timings and errors.

    A model is in ``ms`` or in ``errors``; one in neither never ran, which is reported as an error too.
    """
    base = ms.get(models[0])
    cells = []
    for model in models:
        value = ms.get(model)
        error = errors.get(model) if value is None else None
        if value is None and error is None:
            error = "not measured"
        ratio = round(value / base, 4) if value is not None and base else None
        cells.append(Cell(runtime, threads, imgsz, model, value, ratio, error))
    return cells


def format_cell(cell: Cell | None) -> str:
    """``"12.3 (1.05x)"``; ``"failed"`` for a failed model; ``"12.3 (n/a)"`` when the baseline failed."""
    if cell is None:
        return "-"
    if cell.ms is None:
        return "failed"
    return f"{cell.ms:.1f} ({'n/a' if cell.ratio is None else f'{cell.ratio:.2f}x'})"


def runtime_table(cells: list[Cell], runtime: str, models: list[str], threads: list[int], sizes: list[int]) -> str:
    """Markdown table of one runtime: a row per model, a column per threads x size; errors listed under it."""
    by_key = {(c.model, c.threads, c.imgsz): c for c in cells if c.runtime == runtime}
    columns = [(t, s) for t in threads for s in sizes]
    lines = [
        "| model | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}, {s}" for t, s in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(format_cell(by_key.get((model, t, s))) for t, s in columns) + " |")
    failures: dict[tuple[str, str], list[str]] = {}  # one line per model and message, however many cells it spoiled
    for c in cells:
        if c.runtime == runtime and c.error is not None:
            failures.setdefault((c.model, c.error), []).append(f"{c.threads}x{c.imgsz}")
    if failures:
        lines.append("")
        lines.extend(f"- {model} failed ({', '.join(where)}): {error}" for (model, error), where in failures.items())
    return "\n".join(lines)


def markdown_report(
    cells: list[Cell],
    facts: dict[str, str],
    runtimes: list[str],
    models: list[str],
    threads: list[int],
    sizes: list[int],
) -> str:
    """The whole ``latency.md``: a header of machine facts, then a section and table per runtime."""
    lines = ["# CPU inference latency", ""]
    lines.extend(f"- {key}: {value}" for key, value in facts.items())
    lines += [
        (
            f"- cells: `ms (ratio)`, ms the median of interleaved rounds, batch 1; ratio = ms / {models[0]}'s ms in "
            "the same cell; `failed`: see the list under the table"
        ),
        "",
    ]
    for runtime in runtimes:
        lines += [f"## {RUNTIMES.get(runtime, runtime)}", "", runtime_table(cells, runtime, models, threads, sizes), ""]
    return "\n".join(lines)


def write_csv(cells: list[Cell], path: Path) -> None:
    """One row per cell: runtime, threads, imgsz, model, ms, ratio, error (empty where not applicable)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=Cell._fields)
        writer.writeheader()
        for cell in cells:
            writer.writerow({k: "" if v is None else v for k, v in cell._asdict().items()})


# ---------------------------------------------------------------------------------------------------------------------
# Machine facts
# ---------------------------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's ``model name`` from /proc/cpuinfo, or what ``platform`` knows elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return f"{os.getloadavg()[0]:.2f}"
    return "unknown"


def library_versions() -> str:
    import torch
    import ultralytics

    versions = [f"torch {torch.__version__}", f"ultralytics {ultralytics.__version__}"]
    for name in ("onnxruntime", "openvino"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"{name} not installed")
    return ", ".join(versions) + f", Python {platform.python_version()}"


def machine_facts() -> dict[str, str]:
    """CPU model, CPU count, library versions and the 1-minute load average now (``load at start``)."""
    physical = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu cores"):
                physical = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} logical CPUs ({usable} usable by this process"
        + (f", {physical} cores per socket)" if physical else ")"),
        "versions": library_versions(),
        "1-minute load average at start": load_average(),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Exports and runtimes
# ---------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def working_directory(path: Path):
    """Run the body in ``path``: Ultralytics writes an export of ``YOLO("x.yaml")`` to ``./x.<format>``."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def quiet_ultralytics():
    """Keep Ultralytics' export log (tens of lines per export) off the console; warnings and errors still show."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def export(model: str, fmt: str, imgsz: int, dynamic: bool, folder: Path) -> Path:
    """Export a randomly initialised ``YOLO(model)`` into a fresh subfolder of ``folder``; return the model file.

    Args:
        model (str): Model YAML, e.g. ``yolo11n-biformer.yaml``.
        fmt (str): ``onnx`` or ``openvino``.
        imgsz (int): Export size (for a dynamic export, the size it is traced at).
        dynamic (bool): Dynamic input shape.
        folder (Path): Where the export's own subfolder is made.

    Returns:
        (Path): The ``.onnx`` file, or the OpenVINO ``.xml``.
    """
    import torch
    from ultralytics import YOLO

    out = folder / f"{Path(model).stem}-{fmt}-{imgsz}-{'dynamic' if dynamic else 'static'}"
    out.mkdir(parents=True)
    if Path(model).is_file():  # a YAML given by a relative path would not be found from the export's folder
        model = str(Path(model).resolve())
    torch.manual_seed(0)
    with working_directory(out), quiet_ultralytics():
        exported = Path(YOLO(model).export(format=fmt, imgsz=imgsz, dynamic=dynamic, simplify=True, device="cpu"))
    exported = exported if exported.is_absolute() else out / exported
    return next(exported.glob("*.xml")) if exported.is_dir() else exported


def openvino_request(path: Path, threads: int):
    """An OpenVINO CPU infer request with ``threads`` inference threads, one stream and float32 precision."""
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    return ov.Core().compile_model(str(path), "CPU", config).create_infer_request()


class Exports:
    """Each export made at most once per run and remembered, a failed one as its exception (not retried)."""

    def __init__(self, folder: Path):
        self.folder, self.done = folder, {}

    def get(self, model: str, fmt: str, imgsz: int, dynamic: bool) -> Path:
        key = (model, fmt, imgsz, dynamic)
        if key not in self.done:
            kind = "dynamic" if dynamic else "static"
            print(f"  exporting {model} to {fmt} ({kind}, {imgsz})", file=sys.stderr, flush=True)
            try:
                self.done[key] = export(model, fmt, imgsz, dynamic, self.folder)
            except Exception as e:  # noqa: BLE001 - one failed export spoils only its own cells
                self.done[key] = RuntimeError(f"{fmt} export failed: {one_line(e, limit=300)}")
        result = self.done[key]
        if isinstance(result, Exception):
            raise result
        return result


def make_run(
    runtime: str, model: str, imgsz: int, threads: int, exports: Exports, sizes: list[int], spinning: bool
) -> Callable[[], object]:
    """A call that runs ``model`` once on one image in ``runtime`` (``onnx``, ``onnx-dynamic`` or ``openvino``)."""
    x = random_image(imgsz)
    if runtime in ("onnx", "onnx-dynamic"):
        dynamic = runtime == "onnx-dynamic"
        session = ort_session(exports.get(model, "onnx", max(sizes) if dynamic else imgsz, dynamic), threads, spinning)
        name = session.get_inputs()[0].name
        return lambda: session.run(None, {name: x})
    if runtime == "openvino":
        request = openvino_request(exports.get(model, "openvino", imgsz, False), threads)
        return lambda: request.infer({0: x})
    raise ValueError(f"unknown runtime {runtime!r}")


def time_runs(runs: dict[str, Callable[[], object]], errors: dict[str, str], warmup: int, rounds: int) -> dict:
    """Interleaved median ms of every run that survives one trial call; a failing one goes to ``errors``."""
    working = {}
    for name, run in runs.items():
        try:
            run()  # a run that fails, fails here, and the others are still timed together
            working[name] = run
        except Exception as e:  # noqa: BLE001
            errors[name] = f"run failed: {one_line(e, limit=300)}"
    return median_ms(working, warmup, rounds) if working else {}


def measure(args, names: list[str], runtimes: list[str], threads: list[int], sizes: list[int]) -> list[Cell]:
    """Every cell: per runtime, thread count and size, the models timed together."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    import ultralytics_biformer  # noqa: F401  (registers the configs also where auto-activation is off)

    cells: list[Cell] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="latency-exports-") as tmp:
        exports = Exports(Path(tmp))
        models = None
        for runtime in runtimes:
            for t in threads:
                for imgsz in sizes:
                    print(
                        f"[{time.perf_counter() - start:.0f} s] {runtime}, {t} threads, imgsz {imgsz}",
                        file=sys.stderr,
                        flush=True,
                    )
                    ms, errors = {}, {}
                    if runtime == "torch":
                        if models is None:
                            torch.manual_seed(0)
                            models = {n: DetectionModel(n, verbose=False) for n in names}
                        torch.set_num_threads(t)
                        try:
                            ms = torch_latency_ms(models, imgsz, args.warmup, args.rounds)
                        except Exception as e:  # noqa: BLE001
                            errors = dict.fromkeys(names, f"run failed: {one_line(e, limit=300)}")
                    else:
                        runs = {}
                        for name in names:
                            try:
                                runs[name] = make_run(runtime, name, imgsz, t, exports, sizes, args.ort_spinning)
                            except Exception as e:  # noqa: BLE001
                                errors[name] = (
                                    str(e) if "export failed" in str(e) else f"load failed: {one_line(e, limit=300)}"
                                )
                        ms = time_runs(runs, errors, args.warmup, args.rounds)
                        del runs  # sessions hold threads and memory
                    cells += cell_results(runtime, t, imgsz, names, ms, errors)
    return cells


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default=DEFAULT_MODELS, help="comma-separated model YAMLs; the first is the baseline"
    )
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"comma-separated, of {', '.join(RUNTIMES)}")
    parser.add_argument("--threads", type=int_list, default=[1, 2], help="comma-separated thread counts")
    parser.add_argument("--imgsz", type=int_list, default=[320, 640], help="comma-separated image sizes")
    parser.add_argument("--rounds", type=int, default=15, help="timed interleaved rounds per cell")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls of each model per cell first")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"), help="folder for latency.md and latency.csv")
    parser.add_argument(
        "--ort-spinning", action="store_true", help="let idle ONNX Runtime threads spin (see ort_session)"
    )
    args = parser.parse_args(argv)
    try:
        check_timing(args.warmup, args.rounds)
    except ValueError as e:  # before any model is built
        parser.error(str(e))
    names = [n for n in args.models.split(",") if n]
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown or not runtimes or not names:
        parser.error(
            f"--runtimes takes {', '.join(RUNTIMES)}; got {args.runtimes!r}"
            if unknown or not runtimes
            else "--models is empty"
        )

    facts = machine_facts()
    started = time.perf_counter()
    cells = measure(args, names, runtimes, args.threads, args.imgsz)
    facts["1-minute load average at end"] = load_average()
    facts["timing"] = (
        f"{args.warmup} warm-up call(s) and one trial call per model, then {args.rounds} interleaved rounds per cell; "
        f"ONNX Runtime idle-thread spinning {'on' if args.ort_spinning else 'off'}; OpenVINO float32, 1 stream"
    )
    facts["command"] = "`python scripts/benchmark_latency.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`"
    facts["total run time"] = f"{time.perf_counter() - started:.0f} s"

    report = markdown_report(cells, facts, runtimes, names, args.threads, args.imgsz)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.md").write_text(report)
    write_csv(cells, args.out / "latency.csv")
    print(report)
    print(f"wrote {args.out / 'latency.md'} and {args.out / 'latency.csv'}", file=sys.stderr)


if __name__ == "__main__":
    main()
