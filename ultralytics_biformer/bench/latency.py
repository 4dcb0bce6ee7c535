"""CPU inference timing shared by ``compare``'s benchmark worker and ``scripts/benchmark_latency.py``.

Models are timed in interleaved rounds: each round calls every model once, so a slow spell of a busy machine hits
all of them alike. Each is reported as the median of its rounds (for an even count, the upper of the two middle
values, so that the figure is always one measured time).
"""

from __future__ import annotations

from time import perf_counter
from typing import Callable

from .._int_checks import check_int_at_least, check_positive_int

__all__ = ["check_timing", "median_ms", "ort_session", "random_image", "torch_latency_ms"]


def check_timing(warmup: int, rounds: int) -> None:
    """Raise ValueError unless ``warmup`` is a non-negative integer and ``rounds`` a positive one."""
    check_int_at_least("warmup", warmup, 0)
    check_positive_int("rounds", rounds)


def median_ms(runs: dict[str, Callable[[], object]], warmup: int, rounds: int) -> dict[str, float]:
    """Median wall time of each ``run()``, in milliseconds, over interleaved rounds.

    Args:
        runs (dict[str, Callable]): Name -> a call to time.
        warmup (int): Untimed calls of each run before timing.
        rounds (int): Timed rounds; each calls every run once, in the order given.

    Returns:
        (dict[str, float]): Name -> median milliseconds, rounded to the microsecond.

    Raises:
        ValueError: ``warmup`` is not a non-negative integer, or ``rounds`` not a positive one.
    """
    check_timing(warmup, rounds)
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = perf_counter()
            run()
            times[name].append(perf_counter() - start)
    return {name: round(1000 * sorted(t)[len(t) // 2], 3) for name, t in times.items()}


def torch_latency_ms(models: dict[str, object], imgsz: int, warmup: int, rounds: int) -> dict[str, float]:
    """Median CPU latency of Ultralytics models at batch 1, fused and in eval mode, as Ultralytics runs inference.

    Args:
        models (dict[str, torch.nn.Module]): Name -> an Ultralytics model (left unchanged: a fused copy is timed).
        imgsz (int): Input height and width.
        warmup (int): Untimed calls of each model first.
        rounds (int): Timed interleaved rounds.

    Returns:
        (dict[str, float]): Name -> median milliseconds.
    """
    import copy

    import torch

    check_timing(warmup, rounds)
    nets = {name: copy.deepcopy(m).float().cpu().fuse(verbose=False).eval() for name, m in models.items()}
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return median_ms({name: (lambda net=net: net(x)) for name, net in nets.items()}, warmup, rounds)


def random_image(imgsz: int):
    """The one input every runtime gets: ``(1, 3, imgsz, imgsz)`` float32 in [0, 1), fixed seed."""
    import numpy as np

    return np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)


def ort_session(path, threads: int, spinning: bool = False, profile_prefix: str | None = None):
    """ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread.

    Args:
        path (str | Path): ONNX file.
        threads (int): Intra-op threads.
        spinning (bool): Let idle worker threads spin (ONNX Runtime's own default). Off by default because sessions
            timed in interleaved rounds run in turn: one session's spinning workers would take a core from the next
            session's run.
        profile_prefix (str, optional): Turn on ONNX Runtime's profiler, writing JSON files with this prefix.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
