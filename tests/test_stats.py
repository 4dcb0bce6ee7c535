"""Paired seed statistics: known per-seed values give a known mean, std, interval and verdict."""

from __future__ import annotations

import math

import pytest

from ultralytics_biformer.stats import paired_difference

# Student-t 0.975 quantiles from a printed table (df = 2, 3, 4).
T975 = {2: 4.303, 3: 3.182, 4: 2.776}


def test_hand_computed_case():
    baseline = {0: 0.30, 1: 0.32, 2: 0.31}
    model = {0: 0.33, 1: 0.36, 2: 0.32}
    d = paired_difference(baseline, model)
    # differences 0.03, 0.04, 0.01: mean 0.08 / 3; deviations 0.00333, 0.01333, -0.01667
    mean = 0.08 / 3
    std = math.sqrt(((0.03 - mean) ** 2 + (0.04 - mean) ** 2 + (0.01 - mean) ** 2) / 2)
    assert d.seeds == (0, 1, 2)
    assert d.differences == pytest.approx((0.03, 0.04, 0.01))
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(std) and d.std == pytest.approx(0.015275, abs=1e-6)
    half = T975[2] * std / math.sqrt(3)
    assert d.ci_low == pytest.approx(mean - half, abs=1e-4) and d.ci_high == pytest.approx(mean + half, abs=1e-4)
    assert d.ci_low < 0 < d.ci_high and d.verdict == "no detectable difference"


def test_consistent_gains_and_losses_get_a_verdict():
    baseline = {s: 0.30 + 0.02 * s for s in range(4)}
    better = paired_difference(baseline, {s: v + 0.01 + 0.001 * (s % 2) for s, v in baseline.items()})
    assert better.verdict == "better" and better.ci_low > 0
    half = T975[3] * better.std / 2
    assert better.ci_high - better.mean == pytest.approx(half, abs=1e-5)
    worse = paired_difference(baseline, {s: v - 0.02 - 0.002 * (s % 2) for s, v in baseline.items()})
    assert worse.verdict == "worse" and worse.ci_high < 0


def test_only_seeds_both_models_have_are_paired():
    d = paired_difference({0: 0.5, 1: 0.6, 2: None, 3: 0.4}, {0: 0.55, 1: 0.62, 2: 0.7, 4: 0.9})
    assert d.seeds == (0, 1) and d.differences == pytest.approx((0.05, 0.02))


def test_one_seed_gives_no_verdict_and_none_gives_nothing():
    one = paired_difference({0: 0.3}, {0: 0.4})
    assert one.mean == pytest.approx(0.1) and one.std is None and one.ci_low is None
    assert one.verdict == "no verdict possible with one seed"
    none = paired_difference({0: 0.3}, {1: 0.4})
    assert none.mean is None and none.seeds == () and none.verdict == "no paired runs yet"
