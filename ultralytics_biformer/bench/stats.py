"""Paired comparisons over training seeds: is a model's metric different from the baseline's, beyond seed noise?

Two models trained with the same seed see the same data in the same order and start from the same random draws
wherever their parameters coincide, so their per-seed difference cancels much of the seed-to-seed noise that each
metric alone carries. The mean difference gets a two-sided 95% Student-t interval over seeds and the paired t-test's
p-value. A single comparison's verdict is "better" or "worse" only when that interval excludes zero and the
differences vary from seed to seed.

A report compares several models on several metrics, and some intervals exclude zero by chance alone. So the verdict
metrics are named up front and :func:`family_verdicts` decides over that whole family at once, with Holm's step-down
correction (Holm 1979), which keeps the chance of any false "better" or "worse" in the family at 5%. Every other
metric is exploratory: its interval is shown, and it gets no verdict word.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

__all__ = ["PairedDifference", "family_verdicts", "holm", "paired_difference", "usable"]

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"
NO_VERDICT = "no verdict possible with one seed"
NO_SPREAD = "no verdict possible with the same difference on every seed"
NO_RUNS = "no paired runs yet"
NO_VALUES = "n/a (no value for this metric on any paired seed)"
ALPHA = 0.05  # family-wise error rate of the verdicts, and 1 - the intervals' coverage

# Differences equal on paper differ in their last bits after subtraction (0.525 - 0.5 != 0.575 - 0.55 in binary
# floating point); a spread this small relative to the values is rounding, not seed noise.
_ROUNDING = 1e-12


@dataclass(frozen=True)
class PairedDifference:
    """``model - baseline`` over the seeds both have, with its 95% confidence interval.

    Attributes:
        seeds (tuple[int, ...]): The seeds with a finite value for both models.
        differences (tuple[float, ...]): Per-seed differences, in the order of ``seeds``.
        mean (float | None): Mean difference; None without seeds.
        std (float | None): Sample standard deviation of the differences, 0.0 where they differ only by floating-point
            rounding; None with fewer than two seeds.
        ci_low (float | None): Lower end of the two-sided 95% Student-t interval of the mean; None below two seeds.
        ci_high (float | None): Upper end of that interval.
        run_seeds (tuple[int, ...]): The seeds both models have a run for, with a value or not.
        p_value (float | None): Two-sided p-value of the paired t-test of a zero mean difference; None below two
            seeds or when the differences do not vary.
    """

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    run_seeds: tuple[int, ...]
    p_value: float | None = None

    @property
    def verdict(self) -> str:
        """The verdict: better, worse, or no detectable difference, by whether the interval excludes zero.

        With the same difference on every seed the interval has zero width: it measures no seed noise, so it gives
        no verdict of better or worse.
        """
        if self.mean is None:
            return NO_VALUES if self.run_seeds else NO_RUNS
        if self.ci_low is None:
            return NO_VERDICT
        if self.ci_low <= 0 <= self.ci_high:
            return NO_DIFFERENCE
        if self.std == 0:
            return NO_SPREAD
        return BETTER if self.ci_low > 0 else WORSE


def usable(value: float | None) -> bool:
    """Whether a metric value counts: neither missing (None) nor NaN or infinite (e.g. a diverged run's)."""
    return value is not None and math.isfinite(value)


def paired_difference(baseline: dict[int, float | None], model: dict[int, float | None]) -> PairedDifference:
    """Per-seed ``model - baseline`` differences, their mean, sample std and 95% t-interval.

    A value that is None, NaN or infinite (e.g. a diverged run's metric) counts as missing: its seed is left out.

    Args:
        baseline (dict[int, float | None]): The baseline's metric per seed, for each seed it has a run for; None
            where missing.
        model (dict[int, float | None]): The other model's metric per seed.

    Returns:
        (PairedDifference): Computed over the seeds where both values exist and are finite.

    Examples:
        >>> d = paired_difference({0: 0.30, 1: 0.32, 2: 0.31}, {0: 0.33, 1: 0.36, 2: 0.32})
        >>> round(d.mean, 4), round(d.std, 4), d.verdict
        (0.0267, 0.0153, 'no detectable difference')
    """
    run_seeds = tuple(sorted(s for s in baseline if s in model))
    seeds = tuple(s for s in run_seeds if usable(baseline[s]) and usable(model[s]))
    differences = tuple(model[s] - baseline[s] for s in seeds)
    n = len(differences)
    if n == 0:
        return PairedDifference(seeds, differences, None, None, None, None, run_seeds)
    mean = statistics.fmean(differences)
    if n == 1:
        return PairedDifference(seeds, differences, mean, None, None, None, run_seeds)
    std = statistics.stdev(differences)
    if std <= _ROUNDING * max(abs(v) for s in seeds for v in (baseline[s], model[s])):
        std = 0.0
    standard_error = std / math.sqrt(n)
    half_width = _t_quantile_975(n - 1) * standard_error
    p_value = _two_sided_p(mean / standard_error, n - 1) if std > 0 else None
    return PairedDifference(seeds, differences, mean, std, mean - half_width, mean + half_width, run_seeds, p_value)


def _t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (the 95% interval's; ALPHA is 0.05)."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def _two_sided_p(t_statistic: float, df: int) -> float:
    """The two-sided p-value of ``t_statistic`` under Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(2 * t.sf(abs(t_statistic), df))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: reject where the adjusted value is below alpha.

    The i-th smallest of m p-values is multiplied by ``m - i + 1`` (i from 1), capped at 1, and made non-decreasing
    along that order.

    Examples:
        >>> [round(p, 4) for p in holm([0.01, 0.04, 0.03, 0.005])]
        [0.03, 0.06, 0.06, 0.02]
    """
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def family_verdicts(
    family: list[PairedDifference], untested_p: float | None = None
) -> tuple[list[str], list[float | None]]:
    """Verdicts on a family of comparisons decided together, with Holm's correction over the family.

    A comparison without a p-value (fewer than two seeds, no spread, no values) keeps its reason for having no
    verdict. It does not count in the family's size, unless ``untested_p`` is given: it then counts with that p-value,
    as a study that fixed its family in advance needs (with 1.0, the correction of an early look is never milder than
    the whole family's).

    Returns:
        (list[str]): One verdict per comparison: better or worse where its Holm-adjusted p-value is below ALPHA.
        (list[float | None]): The Holm-adjusted p-values, None where a comparison has no p-value.
    """
    counted = [i for i, d in enumerate(family) if d.p_value is not None or untested_p is not None]
    p_values = [untested_p if family[i].p_value is None else family[i].p_value for i in counted]
    adjusted: list[float | None] = [None] * len(family)
    for i, p in zip(counted, holm(p_values)):
        adjusted[i] = None if family[i].p_value is None else p
    verdicts = []
    for d, p in zip(family, adjusted):
        if p is None:
            verdicts.append(d.verdict)
        elif p < ALPHA:
            verdicts.append(BETTER if d.mean > 0 else WORSE)
        else:
            verdicts.append(NO_DIFFERENCE)
    return verdicts, adjusted
