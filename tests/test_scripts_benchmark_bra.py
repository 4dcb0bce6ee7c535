"""scripts/benchmark_bra.py judges each routing suite's geometric means against that suite's own targets."""

from __future__ import annotations

import pytest
from helpers import load_script


@pytest.fixture(scope="module")
def benchmark_bra():
    return load_script("benchmark_bra")


def rows_with_forward_speedup(suite: str, speedup: float) -> list[dict]:
    """One shape's ours and gather rows, gather ``speedup`` times slower forward and 3x slower forward+backward."""
    shape = {
        "suite": suite,
        "batch": 8,
        "channels": 64,
        "size": 80,
        "heads": 1,
        "dk": 32,
        "dv": 64,
        "n_win": 8,
        "topk": 2,
    }
    ours = dict(shape, impl="ours", fwd_ms=10.0, **{"fwd+bwd_ms": 10.0, "fwd_peak_mib": 40.0, "fwd+bwd_peak_mib": 40.0})
    gather = dict(shape, impl="gather", fwd_ms=10.0 * speedup)
    gather.update({"fwd+bwd_ms": 30.0, "fwd_peak_mib": 100.0, "fwd+bwd_peak_mib": 100.0})
    return [ours, gather]


def forward_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("- forward speedup vs gather"))


def test_forward_target_is_two_for_uniform_routing_and_one_point_six_for_the_shipped_one(benchmark_bra):
    for suite, speedup, verdict in (
        ("uniform", 1.8, "target >= 2.0: MISSED"),
        ("uniform", 2.2, "target >= 2.0: met"),
        ("shipped", 1.8, "target >= 1.6: met"),
        ("shipped", 1.5, "target >= 1.6: MISSED"),
    ):
        line = forward_line(benchmark_bra.yolo_section(suite, rows_with_forward_speedup(suite, speedup)))
        assert f"**{speedup:.2f}x**" in line and verdict in line, (suite, speedup, line)


def test_backward_and_memory_targets_apply_to_both_suites(benchmark_bra):
    for suite in ("uniform", "shipped"):
        lines = benchmark_bra.yolo_section(suite, rows_with_forward_speedup(suite, 2.0))
        assert any(
            line.startswith("- forward+backward speedup vs gather: **3.00x** (target >= 2.5: met)") for line in lines
        )
        assert any(
            line.startswith("- forward peak memory, ours / gather: **0.40** (target <= 0.5: met)") for line in lines
        )
