"""Tests of ``ultralytics_biformer.bench.stats``: paired seed statistics; known per-seed values give a known mean, std,
interval and verdict, and Holm's correction over a family."""

from __future__ import annotations

import ast
import inspect
import math
import sys
from pathlib import Path

import pytest

from ultralytics_biformer.bench import stats
from ultralytics_biformer.bench.stats import paired_difference

# Student-t 0.975 quantiles from a printed table.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 30: 2.042}


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


def test_t_quantile_matches_a_printed_table():
    for df, value in T975.items():
        assert stats._t_quantile_975(df) == pytest.approx(value, abs=5e-4), df


def test_third_party_modules_stats_imports_are_declared_dependencies():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = {Requirement(r).name for r in pyproject["project"]["dependencies"]}
    tree = ast.parse(inspect.getsource(stats))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    third_party = {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names)
    # A clean install gets only what is declared: an undeclared import crashes the report after all the training.
    assert third_party <= declared, f"stats.py imports, pyproject does not declare: {third_party - declared}"


@pytest.mark.parametrize(
    "baseline, model, mean",
    [
        ({0: 0.5, 1: 0.55}, {0: 0.525, 1: 0.575}, 0.025),  # one image of 40 more right on each seed: +1/40
        ({0: 0.6, 1: 0.7, 2: 0.8}, {0: 0.55, 1: 0.65, 2: 0.75}, -0.05),
    ],
)
def test_the_same_difference_on_every_seed_gives_no_verdict(baseline, model, mean):
    d = paired_difference(baseline, model)
    # The differences are equal on paper, so the interval measures no seed noise: no better or worse.
    assert d.mean == pytest.approx(mean) and d.std == 0 and d.ci_low == d.ci_high == d.mean
    assert d.verdict == "no verdict possible with the same difference on every seed"


def test_identical_values_on_every_seed_are_no_detectable_difference():
    d = paired_difference({0: 0.7, 1: 0.9}, {0: 0.7, 1: 0.9})
    assert d.std == 0 and d.verdict == "no detectable difference"


def test_non_finite_values_count_as_missing():
    baseline = {0: 0.30, 1: 0.32, 2: 0.31, 3: 0.5, 4: float("nan")}
    model = {0: 0.33, 1: float("nan"), 2: 0.32, 3: float("inf"), 4: 0.4}
    d = paired_difference(baseline, model)
    # seeds 0 and 2 remain: differences 0.03 and 0.01, mean 0.02, std |0.03 - 0.01| / sqrt(2)
    assert d.seeds == (0, 2) and d.differences == pytest.approx((0.03, 0.01))
    assert d.mean == pytest.approx(0.02) and d.std == pytest.approx(0.02 / math.sqrt(2))
    half = T975[1] * d.std / math.sqrt(2)
    assert d.ci_low == pytest.approx(0.02 - half, abs=1e-4) and d.verdict == "no detectable difference"
    only_nan = paired_difference({0: float("nan"), 1: 0.5}, {0: 0.3, 1: float("-inf")})
    assert only_nan.seeds == () and only_nan.mean is None


def test_paired_runs_without_a_value_are_not_missing_runs():
    # Both models ran on seeds 0 and 1, but recorded no small-object mAP (val holds no small objects).
    d = paired_difference({0: None, 1: None}, {0: None, 1: None, 2: 0.1})
    assert d.seeds == () and d.run_seeds == (0, 1) and d.mean is None
    assert d.verdict == "n/a (no value for this metric on any paired seed)"
    assert paired_difference({0: float("nan")}, {0: 0.2}).verdict == d.verdict
    assert paired_difference({0: 0.3}, {}).verdict == "no paired runs yet"


def test_p_value_matches_the_closed_form_for_two_degrees_of_freedom():
    # Differences 0.01, 0.02, 0.03: mean 0.02, std 0.01, t = 0.02 / (0.01 / sqrt 3) = 2 sqrt 3. With df = 2, Student's
    # t has the closed-form cdf 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14).
    d = paired_difference({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.51, 1: 0.52, 2: 0.53})
    assert d.p_value == pytest.approx(1 - (12 / 14) ** 0.5, rel=1e-6)
    assert paired_difference({0: 0.5, 1: 0.6}, {0: 0.55, 1: 0.65}).p_value is None  # no spread, no test
    assert paired_difference({0: 0.5}, {0: 0.55}).p_value is None


def test_holm_on_a_hand_computed_case():
    # Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (never below its predecessor).
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([]) == []


def test_family_verdicts_need_the_holm_adjusted_p_value_below_five_percent():
    base = {0: 0.5, 1: 0.5, 2: 0.5}
    strong = paired_difference(base, {0: 0.60, 1: 0.61, 2: 0.62})  # p = 0.0027
    weak = paired_difference(base, {0: 0.45, 1: 0.47, 2: 0.46})  # p = 0.0202: "worse" alone
    null = paired_difference(base, {0: 0.52, 1: 0.47, 2: 0.50})
    one_seed = paired_difference({0: 0.5}, {0: 0.6})
    assert weak.verdict == "worse" and weak.p_value == pytest.approx(0.0202, abs=1e-4)
    verdicts, adjusted = stats.family_verdicts([strong, weak, weak, null, one_seed])
    # Four tested: 0.0027 x 4 = 0.011; 0.0202 x 3 = 0.061 and x 2 = 0.040 -> 0.061; 0.84 x 1 -> 0.84.
    assert verdicts == ["better", *["no detectable difference"] * 3, "no verdict possible with one seed"]
    assert adjusted[:4] == pytest.approx([4 * strong.p_value, 3 * weak.p_value, 3 * weak.p_value, null.p_value])
    assert adjusted[4] is None  # not counted in the family
    assert stats.family_verdicts([weak])[0] == ["worse"]  # a family of one is the single comparison


def test_a_family_fixed_in_advance_counts_its_untested_comparisons():
    base = {0: 0.5, 1: 0.5, 2: 0.5}
    weak = paired_difference(base, {0: 0.45, 1: 0.47, 2: 0.46})  # p = 0.0202
    one_seed = paired_difference({0: 0.5}, {0: 0.6})
    verdicts, adjusted = stats.family_verdicts([weak, one_seed], untested_p=1.0)
    assert adjusted[0] == pytest.approx(2 * weak.p_value) and adjusted[1] is None  # 0.040: counted, not reported
    assert verdicts == ["worse", "no verdict possible with one seed"]
    verdicts, adjusted = stats.family_verdicts([weak, one_seed, one_seed, one_seed], untested_p=1.0)
    assert adjusted[0] == pytest.approx(4 * weak.p_value) and verdicts[0] == "no detectable difference"
