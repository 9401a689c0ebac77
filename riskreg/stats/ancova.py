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

import numpy as np

from riskreg.stats import checks, tails


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
    critical = tails.t_isf((1 - level) / 2, df)
    t = difference / se if se > 0 else math.copysign(math.inf, difference) if difference else 0.0
    reduction = 1 - (se / unadjusted_se) ** 2 if unadjusted_se > 0 else 0.0
    return Adjusted(
        difference=difference,
        se=se,
        ci=(difference - critical * se, difference + critical * se),
        t=t,
        df=df,
        p_value=2 * tails.t_sf(abs(t), df),
        slope=slope,
        unadjusted_difference=raw,
        unadjusted_se=unadjusted_se,
        variance_reduction=reduction,
    )


@dataclass(frozen=True)
class MissingBaseline:
    """One arm's units with the outcome but no baseline: their count, mean outcome and its sum of squares."""

    n: int
    mean_y: float
    syy: float


def ancova_missing_indicator(
    pilot: ArmMoments | None,
    comparison: ArmMoments | None,
    pilot_missing: MissingBaseline | None = None,
    comparison_missing: MissingBaseline | None = None,
    level: float = 0.95,
) -> Adjusted:
    """Return the adjusted difference with units lacking a baseline kept in (mean imputation with a missing indicator).

    A unit without a baseline takes the mean baseline of the units that have one, and an
    indicator of the missing baseline enters the model: y = a + d·pilot + b·x̃ + g·missing.
    Every unit with an outcome counts once, and d stays unbiased when baselines are missing
    independently of the arm, as they are when measured before allocation (White &
    Thompson 2005, Stat Med 24:993–1007). With no baseline missing this is ``ancova``.
    Fitted from each group's sufficient statistics by least squares on N − 4 df.
    """
    level = checks.open_unit("level", level)
    missing = [m for m in (pilot_missing, comparison_missing) if m is not None and m.n > 0]
    if not missing:
        if pilot is None or comparison is None:
            raise ValueError("both arms need units with the outcome and its baseline")
        return ancova(pilot, comparison, level)
    groups = _groups(pilot, comparison, pilot_missing, comparison_missing)
    total = sum(g[1] for g in groups)
    if total < 5:
        raise ValueError("the adjustment needs at least 5 units (N − 4 degrees of freedom)")
    # centre both variables at their overall means, so the sums below do not cancel
    grand_x = _weighted([(g[1], g[2]) for g in groups if not g[5]])
    grand_y = _weighted([(g[1], g[3]) for g in groups])
    xtx = np.zeros((4, 4))
    xty = np.zeros(4)
    yy = 0.0
    for treated, n, mean_x, mean_y, spread, is_missing in groups:
        sxx, syy, sxy = spread
        dx = 0.0 if is_missing else mean_x - grand_x
        dy = mean_y - grand_y
        row = np.array([1.0, treated, dx, float(is_missing)])
        xtx += n * np.outer(row, row)
        xtx[2, 2] += sxx
        xty += n * dy * row
        xty[2] += sxy
        yy += syy + n * dy * dy
    if xtx[2, 2] <= 1e-12 * total:
        raise ValueError("the baseline does not vary: there is nothing to adjust for")
    try:
        inverse = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        raise ValueError("the arms, the baseline and its missing indicator cannot be told apart") from None
    beta = inverse @ xty
    df = total - 4
    residual = max(yy - float(beta @ xty), 0.0) / df
    se = math.sqrt(residual * float(inverse[1, 1]))
    difference = float(beta[1])
    raw = _raw_difference(groups)
    unadjusted_se = _unadjusted_se(groups, total)
    critical = tails.t_isf((1 - level) / 2, df)
    t = difference / se if se > 0 else math.copysign(math.inf, difference) if difference else 0.0
    return Adjusted(
        difference=difference,
        se=se,
        ci=(difference - critical * se, difference + critical * se),
        t=t,
        df=df,
        p_value=2 * tails.t_sf(abs(t), df),
        slope=float(beta[2]),
        unadjusted_difference=raw,
        unadjusted_se=unadjusted_se,
        variance_reduction=1 - (se / unadjusted_se) ** 2 if unadjusted_se > 0 else 0.0,
    )


def _groups(
    pilot: ArmMoments | None,
    comparison: ArmMoments | None,
    pilot_missing: MissingBaseline | None,
    comparison_missing: MissingBaseline | None,
) -> list[tuple[float, int, float, float, tuple[float, float, float], bool]]:
    """Return (treated, n, mean x, mean y, (sxx, syy, sxy), missing) of each non-empty group."""
    groups = []
    for treated, arm in ((1.0, pilot), (0.0, comparison)):
        if arm is not None and checks.whole("n", arm.n, 0) > 0:
            groups.append((treated, arm.n, arm.mean_x, arm.mean_y, (arm.sxx, arm.syy, arm.sxy), False))
    for treated, gap in ((1.0, pilot_missing), (0.0, comparison_missing)):
        if gap is not None and checks.whole("n", gap.n, 0) > 0:
            groups.append(
                (treated, gap.n, 0.0, checks.number("mean_y", gap.mean_y), (0.0, gap.syy, 0.0), True)
            )
    if {g[0] for g in groups} != {0.0, 1.0}:
        raise ValueError("both arms need units with the outcome")
    return groups


def _weighted(pairs: list[tuple[int, float]]) -> float:
    total = sum(n for n, _ in pairs)
    return math.fsum(n * m for n, m in pairs) / total if total else 0.0


def _raw_difference(groups: list[tuple[float, int, float, float, tuple[float, float, float], bool]]) -> float:
    means = [_weighted([(g[1], g[3]) for g in groups if g[0] == arm]) for arm in (1.0, 0.0)]
    return means[0] - means[1]


def _unadjusted_se(
    groups: list[tuple[float, int, float, float, tuple[float, float, float], bool]], total: int
) -> float:
    """The pooled two-sample SE of the difference in mean outcome over every unit with one."""
    squares, sizes = 0.0, []
    for arm in (1.0, 0.0):
        mine = [g for g in groups if g[0] == arm]
        n = sum(g[1] for g in mine)
        mean = _weighted([(g[1], g[3]) for g in mine])
        squares += math.fsum(g[4][1] + g[1] * (g[3] - mean) ** 2 for g in mine)
        sizes.append(n)
    return math.sqrt(max(squares, 0.0) / (total - 2) * (1 / sizes[0] + 1 / sizes[1]))


__all__ = ["Adjusted", "ArmMoments", "MissingBaseline", "ancova", "ancova_missing_indicator"]
