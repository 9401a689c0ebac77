"""Two-arm comparisons (pilot vs comparison) for continuous, binary and count outcomes.

Every function takes the comparison arm first and the pilot arm second, and reports the
effect as pilot - comparison (differences) or pilot / comparison (rate ratio).  Degenerate
data never yields NaN: the undefined numbers are None and ``warnings`` names the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from riskreg.stats import checks
from riskreg.stats.summaries import BinarySummary, ContinuousSummary, CountSummary

__all__ = ["Comparison", "compare_binary", "compare_continuous", "compare_counts"]

WELCH_METHOD = "Welch two-sample t (Welch–Satterthwaite df); Hedges' g with exact small-sample correction"
CHI2_METHOD = (
    "two-proportion chi-squared test without continuity correction (R prop.test, correct = FALSE); "
    "Newcombe hybrid score CI"
)
FISHER_METHOD = (
    "Fisher's exact test, two-sided (R fisher.test; an expected cell count is below 5); "
    "Newcombe hybrid score CI"
)
POISSON_METHOD = (
    "exact conditional binomial test (R poisson.test); Clopper–Pearson CI mapped to the rate ratio"
)

_NUMERIC_FIELDS = ("estimate", "ci_low", "ci_high", "p_value", "statistic", "df", "effect_size", "se")


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a pilot arm with a comparison arm.

    ``estimate`` is pilot - comparison for continuous and binary outcomes and the rate ratio
    pilot / comparison for counts.  ``se`` is the standard error of the estimate; for the
    rate ratio it is on the log scale (Wald, sqrt(1/x_pilot + 1/x_comparison)).  For counts
    ``statistic`` is the pilot event count, as R's poisson.test reports it.
    """

    kind: str
    method: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    p_value: float | None
    statistic: float | None
    df: float | None
    effect_size: float | None
    se: float | None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Guard the promise that no NaN or infinity ever leaves this module.
        for name in _NUMERIC_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"Comparison.{name} must be finite or None, got {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def to_dict(self) -> dict:
        """Return JSON-ready plain values (floats, None, lists)."""
        result = asdict(self)
        result["warnings"] = list(self.warnings)
        return result


def _undefined(kind: str, method: str, alpha: float, warnings: tuple[str, ...], **known) -> Comparison:
    """Return a Comparison whose numbers are None except the ones given in ``known``."""
    fields = dict.fromkeys(_NUMERIC_FIELDS)
    fields.update(known)
    return Comparison(kind=kind, method=method, ci_level=1.0 - alpha, warnings=warnings, **fields)


# --- continuous ----------------------------------------------------------------------------


def _hedges_g(comparison: ContinuousSummary, pilot: ContinuousSummary) -> float | None:
    """Return Hedges' g (pooled SD, exact correction J), or None if the pooled SD is zero."""
    df = comparison.n + pilot.n - 2
    pooled_var = (comparison.m2 + pilot.m2) / df
    if pooled_var <= 0:
        return None
    d = (pilot.mean - comparison.mean) / math.sqrt(pooled_var)
    # Exact J = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2)) (Hedges 1981); gammaln avoids overflow.
    j = math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    return j * d


def compare_continuous(
    comparison: ContinuousSummary, pilot: ContinuousSummary, alpha: float = 0.05
) -> Comparison:
    """Compare means with Welch's t test; estimate and CI are for pilot - comparison."""
    alpha = checks.open_unit("alpha", alpha)
    kind = "continuous"
    if comparison.n == 0 or pilot.n == 0:
        return _undefined(kind, WELCH_METHOD, alpha, ("empty-arm",))
    estimate = pilot.mean - comparison.mean
    if comparison.n < 2 or pilot.n < 2:
        # A variance needs two values per arm; the difference in means is still meaningful.
        return _undefined(kind, WELCH_METHOD, alpha, ("too-few-units",), estimate=estimate)
    v_pilot = pilot.variance / pilot.n
    v_comp = comparison.variance / comparison.n
    se = math.sqrt(v_pilot + v_comp)
    if se == 0.0:
        return _undefined(kind, WELCH_METHOD, alpha, ("zero-variance",), estimate=estimate, se=0.0)
    # Welch–Satterthwaite df written with variance shares, so tiny variances cannot underflow.
    share = v_pilot / (v_pilot + v_comp)
    df = 1.0 / (share**2 / (pilot.n - 1) + (1.0 - share) ** 2 / (comparison.n - 1))
    # Not scipy.stats.ttest_ind_from_stats: it squares the variances (overflow for large-scale
    # data) and hides the df, which the CI needs. The t distribution comes from scipy.special
    # (stdtr, stdtrit), which loads in a third of the time of scipy.stats.
    statistic = estimate / se
    p_value = 2.0 * special.stdtr(df, -abs(statistic))
    half_width = special.stdtrit(df, 1.0 - alpha / 2.0) * se
    return Comparison(
        kind=kind,
        method=WELCH_METHOD,
        estimate=estimate,
        ci_low=estimate - half_width,
        ci_high=estimate + half_width,
        ci_level=1.0 - alpha,
        p_value=float(p_value),
        statistic=statistic,
        df=df,
        effect_size=_hedges_g(comparison, pilot),
        se=se,
    )


# --- binary --------------------------------------------------------------------------------


def _newcombe_interval(comparison: BinarySummary, pilot: BinarySummary, alpha: float) -> tuple[float, float]:
    """Return Newcombe's hybrid score CI (1998, method 10) for p_pilot - p_comparison."""
    p1, p2 = pilot.proportion, comparison.proportion
    l1, u1 = _wilson(pilot.events, pilot.n, alpha)
    l2, u2 = _wilson(comparison.events, comparison.n, alpha)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(low, -1.0), min(high, 1.0)


def _wilson(x: int, n: int, alpha: float) -> tuple[float, float]:
    """Return the Wilson score interval without continuity correction (Wilson 1927; R prop.test(correct = FALSE))."""
    z = float(special.ndtri(1.0 - alpha / 2.0))
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _expected_min(table: list[list[int]]) -> float:
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    total = sum(rows)
    return min(r * c / total for r in rows for c in cols)


def _chi_squared(table: list[list[int]]) -> tuple[float, float]:
    """Return Pearson's X² (no continuity correction) and its 1-df p-value, as R prop.test(correct = FALSE)."""
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    total = sum(rows)
    x2 = sum(
        (table[i][j] - rows[i] * cols[j] / total) ** 2 / (rows[i] * cols[j] / total)
        for i in range(2)
        for j in range(2)
    )
    return x2, float(special.chdtrc(1, x2))


def compare_binary(comparison: BinarySummary, pilot: BinarySummary, alpha: float = 0.05) -> Comparison:
    """Compare proportions: chi-squared (or Fisher if small) test, Newcombe CI for pilot - comparison."""
    alpha = checks.open_unit("alpha", alpha)
    kind = "binary"
    if comparison.n == 0 or pilot.n == 0:
        return _undefined(kind, CHI2_METHOD, alpha, ("empty-arm",))
    table = [
        [pilot.events, pilot.n - pilot.events],
        [comparison.events, comparison.n - comparison.events],
    ]
    estimate = pilot.proportion - comparison.proportion
    ci_low, ci_high = _newcombe_interval(comparison, pilot, alpha)
    # Unpooled Wald SE: reported for reference only; the CI above is Newcombe's.
    se = math.sqrt(
        pilot.proportion * (1 - pilot.proportion) / pilot.n
        + comparison.proportion * (1 - comparison.proportion) / comparison.n
    )
    warnings: tuple[str, ...] = ()
    if pilot.events + comparison.events == 0:
        warnings = ("no-events",)
    elif pilot.events == pilot.n and comparison.events == comparison.n:
        warnings = ("all-events",)
    if _expected_min(table) < 5:
        # Also covers no-events/all-events tables, where chi-squared is undefined (0/0).
        from scipy.stats import fisher_exact  # small tables only: scipy.stats is slow to load

        method, statistic, df = FISHER_METHOD, None, None
        p_value = fisher_exact(table, alternative="two-sided").pvalue
    else:
        method, df = CHI2_METHOD, 1.0
        statistic, p_value = _chi_squared(table)
    return Comparison(
        kind=kind,
        method=method,
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=1.0 - alpha,
        p_value=min(float(p_value), 1.0),
        statistic=statistic,
        df=df,
        effect_size=None,
        se=se,
        warnings=warnings,
    )


# --- counts --------------------------------------------------------------------------------


def _clopper_pearson(x: int, n: int, alpha: float) -> tuple[float, float]:
    """Return the Clopper–Pearson CI for a binomial proportion from beta quantiles, as R binom.test.

    Same interval as ``binomtest(...).proportion_ci(method="exact")``, which finds it by
    root-finding and is ~30 times slower than the two beta quantiles R uses.
    """
    low = special.betaincinv(x, n - x + 1, alpha / 2.0) if x > 0 else 0.0
    high = special.betaincinv(x + 1, n - x, 1.0 - alpha / 2.0) if x < n else 1.0
    return float(low), float(high)


def _odds_to_ratio(q: float, comparison: CountSummary, pilot: CountSummary) -> float | None:
    """Map the conditional binomial probability q to the rate ratio; None where it is infinite."""
    if q >= 1.0:
        return None
    ratio = q / (1.0 - q) * (comparison.exposure / pilot.exposure)
    return ratio if math.isfinite(ratio) else None  # only with absurd exposure ratios


def _binomial_two_sided(x: int, n: int, q: float) -> float:
    """Return the two-sided exact binomial p-value as R binom.test computes it.

    The sum of the probabilities of every outcome no more likely than the observed one, with
    R's relative tolerance 1 + 1e-7; the same as scipy.stats.binomtest, from scipy.special so
    that analyses need not load scipy.stats.
    """
    k = np.arange(n + 1)
    log_pmf = (
        special.gammaln(n + 1)
        - special.gammaln(k + 1)
        - special.gammaln(n - k + 1)
        + special.xlogy(k, q)
        + special.xlog1py(n - k, -q)
    )
    pmf = np.exp(log_pmf)
    return float(min(1.0, pmf[pmf <= pmf[x] * (1 + 1e-7)].sum()))


def compare_counts(comparison: CountSummary, pilot: CountSummary, alpha: float = 0.05) -> Comparison:
    """Compare event rates as R poisson.test does; the estimate is the rate ratio pilot / comparison."""
    alpha = checks.open_unit("alpha", alpha)
    kind = "count"
    if comparison.n == 0 or pilot.n == 0:
        return _undefined(kind, POISSON_METHOD, alpha, ("empty-arm",))
    total = pilot.events + comparison.events
    if total == 0:
        return _undefined(kind, POISSON_METHOD, alpha, ("no-events",))
    # Conditional on the total, pilot events ~ Binomial(total, q) with
    # q = r T_pilot / (r T_pilot + T_comparison); H0 r = 1.
    q0 = pilot.exposure / (pilot.exposure + comparison.exposure)
    p_value = _binomial_two_sided(pilot.events, total, q0)
    q_low, q_high = _clopper_pearson(pilot.events, total, alpha)
    warnings: tuple[str, ...] = ()
    estimate: float | None = pilot.rate / comparison.rate if comparison.events > 0 else None
    if comparison.events == 0:
        warnings = ("no-comparison-events",)  # the ratio and its upper bound are infinite
    elif pilot.events == 0:
        warnings = ("no-pilot-events",)  # ratio 0: the log-scale SE is undefined
    se = math.sqrt(1 / pilot.events + 1 / comparison.events) if not warnings else None
    return Comparison(
        kind=kind,
        method=POISSON_METHOD,
        estimate=estimate,
        ci_low=_odds_to_ratio(q_low, comparison, pilot),
        ci_high=_odds_to_ratio(q_high, comparison, pilot),
        ci_level=1.0 - alpha,
        p_value=p_value,
        statistic=float(pilot.events),
        df=None,
        effect_size=None,
        se=se,
        warnings=warnings,
    )
