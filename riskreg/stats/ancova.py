"""Baseline adjustment (ANCOVA, as CUPED does it) from each arm's sufficient statistics.

A baseline measure taken before allocation (a wellbeing score at referral, last year's
complaints) explains part of the outcome's spread; regressing it out with one common slope
narrows the interval without moving what is estimated. Each arm carries n, Σx, Σx², Σy,
Σy² and Σxy, so the adjustment needs no individual rows.

Model: y = a + d·pilot + b·x + e, e ~ N(0, σ²), fitted by least squares. The estimate d is
the difference in means adjusted for the arms' baseline difference; its variance is
s²·(1/n₁ + 1/n₀ + (x̄₁ − x̄₀)²/Sxx) on N − 3 degrees of freedom, where Sxx is the pooled
within-arm sum of squares of x (e.g. Armitage, Berry & Matthews, Statistical Methods in
Medical Research, 4th ed., §11.5). Pure: numbers in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _dist

from riskreg.stats import checks


@dataclass(frozen=True)
class ArmMoments:
    """One arm's sufficient statistics for an outcome y and its baseline x, about the arm's means.

    ``sxx``, ``syy`` and ``sxy`` are the sums of squares and products of deviations from the
    arm's own means, so no variance comes from a raw sum of squares; ``from_sums`` builds
    them from Σx, Σx², Σy, Σy² and Σxy when that is what is kept.
    """

    n: int
    mean_x: float
    mean_y: float
    sxx: float
    syy: float
    sxy: float

    @classmethod
    def from_sums(
        cls, n: int, sum_x: float, sum_x2: float, sum_y: float, sum_y2: float, sum_xy: float
    ) -> ArmMoments:
        """Return the moments of an arm kept as raw sums (n, Σx, Σx², Σy, Σy², Σxy)."""
        checks.whole("n", n, 1)
        return cls(
            n=n,
            mean_x=sum_x / n,
            mean_y=sum_y / n,
            sxx=sum_x2 - sum_x**2 / n,
            syy=sum_y2 - sum_y**2 / n,
            sxy=sum_xy - sum_x * sum_y / n,
        )


@dataclass(frozen=True)
class Adjusted:
    """The baseline-adjusted difference (pilot − comparison) beside the unadjusted one."""

    difference: float
    se: float
    ci: tuple[float, float]
    t: float
    df: int
    p_value: float
    slope: float
    unadjusted_difference: float
    unadjusted_se: float
    variance_reduction: float  # 1 − Var(adjusted) / Var(unadjusted): what the baseline bought


def ancova(pilot: ArmMoments, comparison: ArmMoments, level: float = 0.95) -> Adjusted:
    """Return the difference in mean outcome adjusted for the baseline by one common slope."""
    level = checks.open_unit("level", level)
    for name, arm in (("pilot", pilot), ("comparison", comparison)):
        checks.whole(f"{name}.n", arm.n, 2)
        for field in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
            checks.number(f"{name}.{field}", getattr(arm, field))
    total = pilot.n + comparison.n
    if total < 4:
        raise ValueError("the adjustment needs at least 4 units (N − 3 degrees of freedom)")
    sxx, syy, sxy = pilot.sxx + comparison.sxx, pilot.syy + comparison.syy, pilot.sxy + comparison.sxy
    if sxx <= 1e-12 * max(abs(pilot.mean_x), abs(comparison.mean_x), 1.0) ** 2 * total:
        raise ValueError("the baseline does not vary within the arms: there is nothing to adjust for")
    slope = sxy / sxx
    mean_x1, mean_x0 = pilot.mean_x, comparison.mean_x
    raw = pilot.mean_y - comparison.mean_y
    difference = raw - slope * (mean_x1 - mean_x0)
    df = total - 3
    residual = max(syy - sxy * slope, 0.0) / df
    se = math.sqrt(residual * (1 / pilot.n + 1 / comparison.n + (mean_x1 - mean_x0) ** 2 / sxx))
    unadjusted_se = math.sqrt(max(syy, 0.0) / (total - 2) * (1 / pilot.n + 1 / comparison.n))
    critical = float(_dist.t.isf((1 - level) / 2, df))
    t = difference / se if se > 0 else math.copysign(math.inf, difference) if difference else 0.0
    reduction = 1 - (se / unadjusted_se) ** 2 if unadjusted_se > 0 else 0.0
    return Adjusted(
        difference=difference,
        se=se,
        ci=(difference - critical * se, difference + critical * se),
        t=t,
        df=df,
        p_value=float(2 * _dist.t.sf(abs(t), df)),
        slope=slope,
        unadjusted_difference=raw,
        unadjusted_se=unadjusted_se,
        variance_reduction=reduction,
    )


__all__ = ["Adjusted", "ArmMoments", "ancova"]
