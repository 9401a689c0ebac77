"""Two-arm comparisons (pilot vs comparison) for continuous, binary and count outcomes.

Every function takes the comparison arm first and the pilot arm second, and reports the
effect as pilot - comparison (differences) or pilot / comparison (rate ratio).  Degenerate
data never yields NaN: the undefined numbers are None and ``warnings`` names the reason.

For binary and count outcomes the p-value and the CI come from one procedure (the CI is the
set of null values the test does not reject), so a verdict read off the CI never contradicts
the p-value at the same level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import special

from riskreg.stats import checks
from riskreg.stats.summaries import BinarySummary, ContinuousSummary, CountSummary

__all__ = ["Comparison", "compare_binary", "compare_continuous", "compare_counts", "pearson_dispersion"]

WELCH_METHOD = "Welch two-sample t (Welch–Satterthwaite df); Hedges' g with exact small-sample correction"
MN_METHOD = (
    "Miettinen–Nurminen score test for the difference in proportions (restricted MLE, variance "
    "× N/(N − 1)): two-sided p at difference 0, CI = the differences the same score test does not reject"
)
_EXACT_COUNTS = (
    "central exact conditional binomial test (two-sided p = twice the smaller tail; R's poisson.test "
    "p-value uses the minimum-likelihood rule instead, which its own CI does not invert), "
    "inverted as the Clopper–Pearson CI mapped to the rate ratio"
)
POISSON_METHOD = _EXACT_COUNTS + "; Poisson variance assumed (per-unit dispersion not available)"
POISSON_CHECKED_METHOD = _EXACT_COUNTS + "; Pearson dispersion φ̂ ≤ 1, so the Poisson variance is not exceeded"
POISSON_OVERDISPERSED_METHOD = (
    _EXACT_COUNTS + "; Poisson variance assumed although φ̂ > 1, as an arm has no events (CI too narrow)"
)
QUASI_POISSON_METHOD = (
    "quasi-Poisson rate ratio (overdispersed counts, Pearson dispersion φ̂ > 1): t test and CI for the "
    "log rate ratio on N − 2 df, SE = sqrt(φ̂ (1/events_pilot + 1/events_comparison)), as R "
    "glm(family = quasipoisson) with an arm term and offset log(exposure)"
)

_NUMERIC_FIELDS = (
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "statistic",
    "df",
    "effect_size",
    "se",
    "dispersion",
)


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a pilot arm with a comparison arm.

    ``estimate`` is pilot - comparison for continuous and binary outcomes and the rate ratio
    pilot / comparison for counts.  ``se`` is the standard error of the estimate: for binary
    outcomes the unpooled Wald SE (for reference; the CI is the score interval), for the rate
    ratio on the log scale (sqrt(1/x_pilot + 1/x_comparison), times sqrt(φ̂) on the
    quasi-Poisson path).  ``statistic`` is Welch's t, the signed Miettinen–Nurminen score z
    (binary), the pilot event count (exact count path, as R's poisson.test reports it) or
    the quasi-Poisson t (with ``df``).  ``dispersion`` is the Pearson dispersion φ̂ of
    counts when the per-unit data allow it, else None.
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
    dispersion: float | None = None

    @classmethod
    def of_t(
        cls,
        kind: str,
        method: str,
        alpha: float,
        estimate: float,
        ci: tuple[float, float],
        p_value: float,
        statistic: float,
        df: float,
        se: float,
    ) -> Comparison:
        """Return a result tested by t (or z) on ``df``, with its interval at level 1 − alpha."""
        return cls(
            kind=kind,
            method=method,
            estimate=estimate,
            ci_low=ci[0],
            ci_high=ci[1],
            ci_level=1.0 - alpha,
            p_value=p_value,
            statistic=statistic,
            df=float(df),
            effect_size=None,
            se=se,
        )

    @classmethod
    def undefined(cls, kind: str, method: str, alpha: float, warning: str) -> Comparison:
        """Return a comparison the data cannot give: no estimate, interval or test, and why."""
        return cls(
            kind=kind,
            method=method,
            estimate=None,
            ci_low=None,
            ci_high=None,
            ci_level=1.0 - alpha,
            p_value=None,
            statistic=None,
            df=None,
            effect_size=None,
            se=None,
            warnings=(warning,),
        )

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


def _mn_restricted(x1: int, n1: int, x2: int, n2: int, delta: float) -> tuple[float, float]:
    """Return the MLE of (p1, p2) under p1 - p2 = delta: the closed-form cubic, then polished.

    Farrington & Manning (1990) / Miettinen & Nurminen (1985): p1 is a root of a cubic, here
    from its trigonometric solution.  That solution loses up to half the digits where two
    roots nearly coincide (large arms, proportions near 0 or 1: 0/1e12 vs 0/1e12 put the MLE
    at 5e-10 instead of 0), so it only starts a safeguarded Newton search on the likelihood
    equation, which is monotone in p2 and well-conditioned.
    """
    p1_hat, p2_hat = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1_hat + theta * p2_hat + delta * (theta + 2.0))
    c = delta * delta + delta * (2.0 * p1_hat + theta + 1.0) + p1_hat + theta * p2_hat
    d = -p1_hat * delta * (1.0 + delta)
    b3a = b / (3.0 * a)
    v = b3a**3 - b * c / (6.0 * a * a) + d / (2.0 * a)
    # Rounding can push the radicand below 0 and v/u³ outside [-1, 1] at a double root.
    u = math.copysign(math.sqrt(max(b3a * b3a - c / (3.0 * a), 0.0)), v)
    if u == 0.0:
        p1 = -b3a  # triple root
    else:
        w = (math.pi + math.acos(min(1.0, max(-1.0, v / u**3)))) / 3.0
        p1 = 2.0 * u * math.cos(w) - b3a
    p2 = _mn_polish(x1, n1, x2, n2, delta, p1 - delta)
    return p2 + delta, p2


def _mn_score(x1: int, n1: int, x2: int, n2: int, delta: float, p2: float) -> tuple[float, float]:
    """Return d/dp2 of the log-likelihood at (p2 + delta, p2) and its slope; +inf/-inf at an edge it cannot reach."""
    score = slope = 0.0
    # Cells with no units contribute nothing (0 log 0 = 0); a cell with units at probability 0
    # makes the score infinite, pointing back into the interval.
    if x1:
        p1 = p2 + delta
        if p1 <= 0.0:
            return math.inf, -math.inf
        score += x1 / p1
        slope -= x1 / (p1 * p1)
    if x2:
        if p2 <= 0.0:
            return math.inf, -math.inf
        score += x2 / p2
        slope -= x2 / (p2 * p2)
    if n1 - x1:
        q1 = (1.0 - delta) - p2
        if q1 <= 0.0:
            return -math.inf, -math.inf
        score -= (n1 - x1) / q1
        slope -= (n1 - x1) / (q1 * q1)
    if n2 - x2:
        q2 = 1.0 - p2
        if q2 <= 0.0:
            return -math.inf, -math.inf
        score -= (n2 - x2) / q2
        slope -= (n2 - x2) / (q2 * q2)
    return score, slope


def _mn_polish(x1: int, n1: int, x2: int, n2: int, delta: float, start: float) -> float:
    """Return the p2 maximising the likelihood on [max(0, -delta), min(1, 1 - delta)], from ``start``.

    The score is decreasing in p2, so the MLE is an end point where the score has the wrong
    sign there, else its root: Newton steps, with bisection whenever a step leaves the bracket.
    """
    low, high = max(0.0, -delta), min(1.0, 1.0 - delta)
    if _mn_score(x1, n1, x2, n2, delta, low)[0] <= 0.0:
        return low
    if _mn_score(x1, n1, x2, n2, delta, high)[0] >= 0.0:
        return high
    p2 = start if low < start < high else 0.5 * (low + high)
    for _ in range(200):
        score, slope = _mn_score(x1, n1, x2, n2, delta, p2)
        if score == 0.0:
            break
        if score > 0.0:
            low = p2
        else:
            high = p2
        step = score / slope
        if abs(step) <= 4e-16 * p2:  # converged to a few ulps (p2 > low >= 0)
            return p2 - step
        p2 = p2 - step if low < p2 - step < high else 0.5 * (low + high)
    return p2


def _mn_variance(x1: int, n1: int, x2: int, n2: int, delta: float) -> float:
    """Return MN's variance of p1_hat - p2_hat under p1 - p2 = delta, with the factor N/(N - 1)."""
    if abs(delta) >= 1.0:
        return 0.0  # p1 and p2 are forced to 0 and 1: no variance left
    p1, p2 = _mn_restricted(x1, n1, x2, n2, delta)
    n = n1 + n2
    return max(p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2, 0.0) * n / (n - 1)


def _mn_bound(x1: int, n1: int, x2: int, n2: int, z_crit: float, side: int) -> float:
    """Return the lower (side = -1) or upper (side = +1) MN limit: the delta where the score z = ∓z_crit.

    g(delta) = side (delta - estimate) - z_crit sqrt(V(delta)) is finite on [-1, 1], negative
    at the estimate and positive at the far end, and its root is where |z| = z_crit; brentq
    finds it to a few ulps.
    """
    from scipy.optimize import brentq  # only the binary path needs it; keeps the module import light

    estimate = x1 / n1 - x2 / n2
    end = float(side)
    if side * estimate >= 1.0:
        return end  # 0/n against n/n: the estimate is itself the end of the range

    def g(delta: float) -> float:
        return side * (delta - estimate) - z_crit * math.sqrt(_mn_variance(x1, n1, x2, n2, delta))

    inner = estimate
    if g(inner) >= 0.0:
        # Both proportions are 0 or 1, so V(estimate) = 0; V grows like |delta - estimate|
        # beside it, so g is negative a little way in: step out until it is.
        step = 1e-3
        while g(estimate + side * step) >= 0.0:
            step *= 1e-3
            if step < 1e-300:
                return estimate
        inner = estimate + side * step
    low, high = sorted((inner, end))
    # Relative tolerance only (xtol ~ 0): limits of huge arms are ~1e-12 and keep all digits.
    root = brentq(g, low, high, xtol=1e-300, rtol=4.0 * 2.0**-52, maxiter=2000, disp=False)
    return float(root)


def compare_binary(comparison: BinarySummary, pilot: BinarySummary, alpha: float = 0.05) -> Comparison:
    """Compare proportions with the Miettinen–Nurminen score test and its inverted CI for pilot - comparison.

    ``statistic`` is the signed score z at difference 0 (not z²): z² is Pearson's X² times
    (N - 1)/N, so p = P(|Z| > |z|) is R's prop.test(correct = FALSE) p-value with that
    statistic.  The CI is {delta : two-sided p(delta) >= alpha} for the same statistic, found
    by root-finding on each side of the estimate, so p < alpha exactly when 0 is outside it.
    """
    alpha = checks.open_unit("alpha", alpha)
    kind = "binary"
    if comparison.n == 0 or pilot.n == 0:
        return _undefined(kind, MN_METHOD, alpha, ("empty-arm",))
    x1, n1, x2, n2 = pilot.events, pilot.n, comparison.events, comparison.n
    estimate = x1 / n1 - x2 / n2
    warnings: tuple[str, ...] = ()
    if x1 + x2 == 0:
        warnings = ("no-events",)
    elif x1 == n1 and x2 == n2:
        warnings = ("all-events",)
    # Under delta = 0 the restricted MLE is the pooled proportion (no cubic needed).
    pooled = (x1 + x2) / (n1 + n2)
    variance0 = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2) * (n1 + n2) / (n1 + n2 - 1)
    # With no events or all events the estimate is 0 and so is its variance: z = 0, p = 1.
    z = estimate / math.sqrt(variance0) if variance0 > 0.0 else 0.0
    p_value = min(1.0, 2.0 * float(special.ndtr(-abs(z))))
    # -ndtri(alpha/2), not ndtri(1 - alpha/2): stays finite and exact for tiny alpha.
    z_crit = -float(special.ndtri(alpha / 2.0))
    ci_low = _mn_bound(x1, n1, x2, n2, z_crit, -1)
    ci_high = _mn_bound(x1, n1, x2, n2, z_crit, +1)
    # Unpooled Wald SE: for reference (e.g. charts of z = estimate / se); the CI is MN's.
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return Comparison(
        kind=kind,
        method=MN_METHOD,
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=1.0 - alpha,
        p_value=p_value,
        statistic=z,
        df=None,
        effect_size=None,
        se=se,
        warnings=warnings,
    )


# --- counts --------------------------------------------------------------------------------


def pearson_dispersion(arms: Sequence[CountSummary]) -> float | None:
    """Return the quasi-Poisson Pearson dispersion φ̂ of a one-way rate model over ``arms``, or None.

    Each arm has its own rate λ = events / exposure; per arm the Pearson statistic
    Σ (y - λt)² / (λt) equals Σ(y²/t) / λ - Σy, so ``sum_y2_over_t`` is all that is needed
    beyond the totals.  φ̂ = (sum over arms) / (units - arms), as R's
    summary(glm(y ~ arm + offset(log(t)), family = quasipoisson))$dispersion.  None when an arm
    lacks ``sum_y2_over_t``, when no unit has an event, or when there are no residual df.
    """
    units = sum(arm.n for arm in arms)
    df = units - len(arms)
    if df <= 0 or any(arm.sum_y2_over_t is None for arm in arms) or sum(arm.events for arm in arms) == 0:
        return None
    pearson = 0.0
    for arm in arms:
        sum_y2_over_t = arm.sum_y2_over_t
        if sum_y2_over_t is not None and arm.events > 0:  # no events: all residuals are 0 (y = fitted = 0)
            # Rounding can leave a tiny negative remainder when every unit has the same rate.
            pearson += max(sum_y2_over_t * arm.exposure / arm.events - arm.events, 0.0)
    return pearson / df


def _clopper_pearson(x: int, n: int, alpha: float) -> tuple[float, float]:
    """Return the Clopper–Pearson CI for a binomial proportion from beta quantiles, as R binom.test.

    Same interval as ``binomtest(...).proportion_ci(method="exact")``, which finds it by
    root-finding and is ~30 times slower than the two beta quantiles R uses.
    """
    low = special.betaincinv(x, n - x + 1, alpha / 2.0) if x > 0 else 0.0
    # The complemented inverse at alpha/2, not betaincinv at 1 - alpha/2: that rounds to 1
    # for tiny alpha (early sequential looks) and loses the tail the p-value is compared with.
    high = special.betainccinv(x + 1, n - x, alpha / 2.0) if x < n else 1.0
    return float(low), float(high)


def _binomial_central(x: int, n: int, q: float) -> float:
    """Return the central two-sided exact binomial p-value, min(1, 2 min(P(X <= x), P(X >= x))).

    The test whose inversion is the Clopper–Pearson interval.  Both tails are regularized
    incomplete beta functions, so time and memory do not grow with n (1e15 events take
    microseconds); not special.bdtr, whose n is a C int and gives NaN beyond 2**31.
    """
    lower = float(special.betaincc(x + 1, n - x, q)) if x < n else 1.0  # P(X <= x)
    upper = float(special.betainc(x, n - x + 1, q)) if x > 0 else 1.0  # P(X >= x)
    return min(1.0, 2.0 * min(lower, upper))


def _odds_to_ratio(q: float, comparison: CountSummary, pilot: CountSummary) -> float | None:
    """Map the conditional binomial probability q to the rate ratio; None where it is infinite."""
    if q >= 1.0:
        return None
    ratio = q / (1.0 - q) * (comparison.exposure / pilot.exposure)
    return ratio if math.isfinite(ratio) else None  # only with absurd exposure ratios


def _exact_counts(
    comparison: CountSummary,
    pilot: CountSummary,
    alpha: float,
    method: str,
    warnings: tuple[str, ...],
    dispersion: float | None,
) -> Comparison:
    """Compare rates with the central exact conditional test and its Clopper–Pearson inversion."""
    total = pilot.events + comparison.events
    # Conditional on the total, pilot events ~ Binomial(total, q) with
    # q = r T_pilot / (r T_pilot + T_comparison); H0 r = 1.
    q0 = pilot.exposure / (pilot.exposure + comparison.exposure)
    p_value = _binomial_central(pilot.events, total, q0)
    q_low, q_high = _clopper_pearson(pilot.events, total, alpha)
    estimate: float | None = None
    if comparison.events > 0:
        estimate = (pilot.events / pilot.exposure) / (comparison.events / comparison.exposure)
        estimate = estimate if math.isfinite(estimate) else None  # only with absurd exposure ratios
    if comparison.events == 0:
        warnings += ("no-comparison-events",)  # the ratio and its upper bound are infinite
    elif pilot.events == 0:
        warnings += ("no-pilot-events",)  # ratio 0: the log-scale SE is undefined
    zero_arm = pilot.events == 0 or comparison.events == 0
    se = None if zero_arm else math.sqrt(1 / pilot.events + 1 / comparison.events)
    return Comparison(
        kind="count",
        method=method,
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
        dispersion=dispersion,
    )


def _quasi_poisson(
    comparison: CountSummary, pilot: CountSummary, alpha: float, dispersion: float
) -> Comparison:
    """Compare rates on the log scale with the quasi-Poisson t test and the CI from the same t."""
    df = float(comparison.n + pilot.n - 2)
    log_ratio = math.log(pilot.events / pilot.exposure) - math.log(comparison.events / comparison.exposure)
    se = math.sqrt(dispersion * (1.0 / pilot.events + 1.0 / comparison.events))
    statistic = log_ratio / se
    p_value = 2.0 * float(special.stdtr(df, -abs(statistic)))
    # -stdtrit(df, alpha/2), not stdtrit(df, 1 - alpha/2): finite and exact for tiny alpha.
    half_width = -float(special.stdtrit(df, alpha / 2.0)) * se
    low, high = log_ratio - half_width, log_ratio + half_width
    # The bounds and estimate only overflow at absurd exposure ratios or levels; None above
    # means "unbounded", as with no comparison events.
    return Comparison(
        kind="count",
        method=QUASI_POISSON_METHOD,
        estimate=math.exp(log_ratio) if log_ratio < 709.0 else None,
        ci_low=math.exp(low) if low < 709.0 else None,
        ci_high=math.exp(high) if high < 709.0 else None,
        ci_level=1.0 - alpha,
        p_value=min(1.0, p_value),
        statistic=statistic,
        df=df,
        effect_size=None,
        se=se,
        dispersion=dispersion,
    )


def compare_counts(comparison: CountSummary, pilot: CountSummary, alpha: float = 0.05) -> Comparison:
    """Compare event rates; the estimate is the rate ratio pilot / comparison.

    With per-unit data (``sum_y2_over_t`` in both arms) the Pearson dispersion φ̂ is computed;
    if φ̂ > 1 (overdispersed counts) the test and CI are quasi-Poisson (t on N - 2 df for the
    log rate ratio).  Otherwise, or if φ̂ is unknown, the central exact conditional binomial
    test and the Clopper–Pearson CI it inverts.  Either way p < alpha exactly when the CI
    excludes 1.
    """
    alpha = checks.open_unit("alpha", alpha)
    if comparison.n == 0 or pilot.n == 0:
        return _undefined("count", POISSON_METHOD, alpha, ("empty-arm",))
    if pilot.events + comparison.events == 0:
        return _undefined("count", POISSON_METHOD, alpha, ("no-events",))
    dispersion = pearson_dispersion([comparison, pilot])
    warnings: tuple[str, ...] = ()
    if dispersion is None:
        if comparison.sum_y2_over_t is not None and pilot.sum_y2_over_t is not None:
            warnings = ("dispersion-undefined",)  # one unit per arm: no residual df
        return _exact_counts(comparison, pilot, alpha, POISSON_METHOD, warnings, None)
    if dispersion <= 1.0:
        # Under- or equi-dispersed: the exact Poisson test is valid (conservative if φ̂ < 1).
        return _exact_counts(comparison, pilot, alpha, POISSON_CHECKED_METHOD, (), dispersion)
    if pilot.events == 0 or comparison.events == 0:
        # The log rate ratio is infinite; no quasi-Poisson CI. Fall back, and say it is too narrow.
        return _exact_counts(
            comparison, pilot, alpha, POISSON_OVERDISPERSED_METHOD, ("overdispersion-ignored",), dispersion
        )
    return _quasi_poisson(comparison, pilot, alpha, dispersion)
