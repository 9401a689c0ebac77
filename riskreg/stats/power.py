"""Planning and achieved power, sample sizes and minimum detectable effects for pilots.

Every calculation compares a pilot arm with a comparison arm.  Sizes are given
as (comparison, pilot); ``ratio`` is n_pilot / n_comparison.

Conventions (the same for all three outcome types):

* Two-sided tests at level ``alpha``.  Power counts rejections in the direction of
  the true effect only and ignores the (negligible) chance of rejecting in the
  opposite direction: this is R's ``strict = FALSE`` default in ``power.t.test``
  and ``power.prop.test``, so with no effect the power is alpha/2.
* Non-inferiority (any outcome, ``margin > 0``): a one-sided test at level
  alpha/2 (alpha is two-sided throughout) of H0: the pilot is worse than the
  comparison by the margin or more, which is the same decision as checking that
  the two-sided (1 - alpha) confidence interval excludes a loss of the margin.
  ``better`` ("higher" by default, or "lower") says which direction is a gain;
  the benefit is the difference (or log rate ratio) signed so that a gain is
  positive, and the effect the test must detect is benefit + margin.  The margin
  is in the outcome's units (continuous), a difference in proportions (binary), or
  a rate ratio above 1 on the log scale (count: the tolerated worse ratio is
  ``margin`` when lower is better and 1/``margin`` when higher is better, as in
  ``riskreg.stats.verdicts``).
* Continuous: noncentral t with df = n_c + n_p - 2 and
  ncp = effect / (sd · sqrt(1/n_c + 1/n_p)) (R ``power.t.test`` for equal sizes).
* Binary: normal approximation without continuity correction, pooled variance
  under H0 with the allocation-weighted mean proportion (Fleiss, Levin & Paik
  2003, Statistical Methods for Rates and Proportions, 3rd ed., §4.2; R
  ``power.prop.test`` for equal sizes).
* Binary non-inferiority: z-test of the difference with the unpooled variance
  p_c(1 - p_c)/n_c + p_p(1 - p_p)/n_p (there is no common proportion under an H0
  at -margin), so n_c = (z_{1-alpha/2} + z_{power})^2 [p_c(1-p_c) + p_p(1-p_p)/ratio]
  / (benefit + margin)^2: Chow, Shao & Wang 2008, Sample Size Calculations in
  Clinical Research, 2nd ed., §4.2 (Blackwelder 1982); Julious 2010, Sample Sizes
  for Clinical Trials, ch. 5.
* Count: Wald z-test on the log rate ratio with Var = 1/E_c + 1/E_p, where
  E = rate * exposure per unit * units is the expected number of events in an arm
  (delta-method variance of a log rate ratio, Rothman, Greenland & Lash 2008,
  Modern Epidemiology, 3rd ed., ch. 14).
* Group-sequential designs: a staged pilot is tested at each stage against the
  two-sided symmetric Lan–DeMets O'Brien–Fleming-type boundaries of
  ``riskreg.stats.sequential``.  Its power is the probability that the
  standardised statistic, a Brownian motion with drift theta observed at the
  information fractions, crosses the upper boundary at some look before leaving
  through the lower one (paths that cross the lower boundary stop and count as
  failures; for a positive drift that probability is below alpha/2 and usually
  far smaller).  It is computed by the Armitage–McPherson–Rowe recursion
  (Jennison & Turnbull 2000, Group Sequential Methods, ch. 19) with Simpson's rule.
  The inflation factor is the maximum information relative to the fixed design
  with the same power, (theta / (z_{1-alpha/2} + z_{power}))^2 (gsDesign
  ``max(n.I)`` for ``n.fix = 1``, rpact ``inflationFactor``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from riskreg.stats import checks

# scipy.optimize (brentq) loads in the functions that need it: importing it costs about
# 0.15 s, which a continuous metric's power and MDE (scipy.special alone) never need.

__all__ = [
    "BETTER",
    "PowerResult",
    "crossing_probabilities",
    "inflation_factor",
    "mde_binary",
    "mde_continuous",
    "mde_count",
    "power_binary",
    "power_continuous",
    "power_count",
    "sequential_power",
    "size_binary",
    "size_continuous",
    "size_count",
]

METHOD_CONTINUOUS = (
    "two-sided two-sample t-test, noncentral t with df = n_c + n_p - 2 and "
    "ncp = delta / (sd * sqrt(1/n_c + 1/n_p)); R power.t.test strict = FALSE convention "
    "(opposite-direction rejections ignored)"
)
METHOD_NONINFERIORITY = (
    "non-inferiority: one-sided t-test at level alpha/2 of pilot - comparison <= -margin "
    "(lower bound of the two-sided 1 - alpha CI above -margin), noncentral t with "
    "df = n_c + n_p - 2 and ncp = (delta + margin) / (sd * sqrt(1/n_c + 1/n_p)); "
    "delta is negated when lower is better"
)
METHOD_BINARY_NONINFERIORITY = (
    "non-inferiority: one-sided z-test at level alpha/2 of a loss in proportion of at least the margin "
    "(the two-sided 1 - alpha CI excludes it), unpooled variance p_c(1-p_c)/n_c + p_p(1-p_p)/n_p "
    "(Chow, Shao & Wang 2008, §4.2)"
)
METHOD_COUNT_NONINFERIORITY = (
    "non-inferiority: one-sided Wald z-test at level alpha/2 on the log rate ratio against the "
    "margin ratio (log scale), Var = 1/E_c + 1/E_p with expected events E = rate * exposure_per_unit * n"
)
METHOD_SEQUENTIAL = (
    "two-sided symmetric Lan-DeMets O'Brien-Fleming-type boundaries (gsDesign sfLDOF), non-binding, "
    "no futility; power = P(crossing the upper boundary at some look before the lower one), "
    "Armitage-McPherson-Rowe recursive integration"
)

BETTER = ("higher", "lower")
METHOD_BINARY = (
    "two-sided two-proportion z-test without continuity correction, pooled variance under H0 "
    "(allocation-weighted mean proportion), unpooled under H1; R power.prop.test strict = FALSE "
    "convention (opposite-direction rejections ignored)"
)
METHOD_COUNT = (
    "two-sided Wald z-test on the log rate ratio, Var = 1/E_c + 1/E_p with expected events "
    "E = rate * exposure_per_unit * n; opposite-direction rejections ignored"
)

# Largest sample size per arm searched before giving up: far beyond any pilot.
_MAX_N = 1e9
# Smallest designs considered.  Continuous: two units per arm (R's power.t.test also
# starts its search at n = 2; the noncentral t is unreliable at tiny df).  Binary and
# count: one unit per arm.  If such a design already reaches the target it is returned.
_MIN_N_CONTINUOUS = 2.0
_MIN_N_APPROX = 1.0
# Grid used to locate the first crossing when power is not monotone in the effect.
_SCAN_POINTS = 400
_XTOL = 1e-12


@dataclass(frozen=True)
class PowerResult:
    """Result of a power, sample-size or minimum-detectable-effect calculation.

    For sizing results ``n_per_arm`` is the exact real-valued solution
    (comparison, pilot) and ``n_required`` its ceiling per arm; for power and MDE
    results ``n_per_arm`` holds the sizes used and ``n_required`` is None.
    ``effect`` is a difference (continuous, binary) or a rate ratio (count).
    For sizing results ``power`` is the target power; when even the smallest design
    (2 units per arm for continuous outcomes, 1 otherwise) reaches it, that design is
    returned as ``n_per_arm``.
    """

    kind: str
    method: str
    n_per_arm: tuple[float, float] | None
    n_required: tuple[int, int] | None
    power: float | None
    effect: float | None
    alpha: float
    assumptions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the result as JSON-ready plain values."""
        return {
            "kind": self.kind,
            "method": self.method,
            "n_per_arm": None if self.n_per_arm is None else [float(n) for n in self.n_per_arm],
            "n_required": None if self.n_required is None else [int(n) for n in self.n_required],
            "power": None if self.power is None else float(self.power),
            "effect": None if self.effect is None else float(self.effect),
            "alpha": float(self.alpha),
            "assumptions": {key: _plain(value) for key, value in self.assumptions.items()},
        }


def _plain(value: object) -> object:
    """Return value converted to a JSON-ready Python scalar."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


# ---------------------------------------------------------------- validation


def _check_power(power: object) -> float:
    """Return the target power, or raise ValueError if it is not in (0, 1)."""
    return checks.open_unit("power", power)


def _check_target(power: float, alpha: float) -> None:
    """Raise ValueError unless the target power exceeds alpha/2, the power with no effect."""
    if power <= alpha / 2.0:
        raise ValueError(
            f"power must exceed alpha/2 = {alpha / 2.0}, the power of the test when there is no effect"
        )


# ---------------------------------------------------------------- root finding


def _solve_size(power_at: Callable[[float], float], target: float, lower: float) -> float:
    """Return the real n_comparison at which power_at(n) reaches target (power rises with n).

    If the smallest design considered already reaches the target, that design is returned.
    """
    if power_at(lower) >= target:
        return lower
    upper = max(2.0 * lower, 10.0)
    while power_at(upper) < target:
        if upper >= _MAX_N:
            raise ValueError(
                f"the target power needs more than {_MAX_N:.0e} units per arm; the effect is too small"
            )
        upper = min(upper * 4.0, _MAX_N)
    from scipy.optimize import brentq

    return float(brentq(lambda n: power_at(n) - target, lower, upper, xtol=_XTOL, rtol=1e-14, maxiter=500))


def _first_crossing(power_at: Callable[[float], float], target: float, start: float, stop: float) -> float:
    """Return the effect nearest start at which power_at first reaches target.

    The grid scan from start towards stop guards against power curves that are not
    monotone (e.g. a rate ratio so small that the pilot arm expects almost no events).
    """
    from scipy.optimize import brentq

    grid = [float(x) for x in np.linspace(start, stop, _SCAN_POINTS + 1)]
    # power is computed point by point, and only up to the first point that reaches the target
    for below, at in itertools.pairwise(grid):
        if power_at(at) >= target:
            return float(
                brentq(lambda x: power_at(x) - target, below, at, xtol=_XTOL, rtol=1e-14, maxiter=500)
            )
    raise ValueError("no effect in the allowed range reaches the target power with these sample sizes")


def _ceil_pair(n_comparison: float, n_pilot: float) -> tuple[int, int]:
    """Return both arm sizes rounded up, tolerating float noise just above an integer."""
    return (math.ceil(n_comparison - 1e-9), math.ceil(n_pilot - 1e-9))


# ---------------------------------------------------------------- continuous


def _t_power(effect: float, sd: float, n_comparison: float, n_pilot: float, alpha: float) -> float:
    """Return P(T > t_{1-alpha/2, df}) for the noncentral t of a two-sample t-test."""
    df = n_comparison + n_pilot - 2.0
    ncp = effect / (sd * math.sqrt(1.0 / n_comparison + 1.0 / n_pilot))
    # t and noncentral t from scipy.special (stdtrit, nctdtr): the same functions that
    # scipy.stats.t / nct wrap, without loading scipy.stats
    critical = special.stdtrit(df, 1.0 - alpha / 2.0)
    return float(1.0 - special.nctdtr(df, ncp, critical))


def _t_effect(power: float, sd: float, n_comparison: float, n_pilot: float, alpha: float) -> float:
    """Return the mean difference at which _t_power reaches power: the inverse of the noncentral t in its
    noncentrality (special.nctdtrinc, cdflib), so no root finding of our own."""
    df = n_comparison + n_pilot - 2.0
    critical = special.stdtrit(df, 1.0 - alpha / 2.0)
    ncp = float(special.nctdtrinc(df, 1.0 - power, critical))
    if not math.isfinite(ncp):
        raise ValueError("no finite effect reaches the target power with these sample sizes")
    return ncp * sd * math.sqrt(1.0 / n_comparison + 1.0 / n_pilot)


def _check_better(better: object) -> str:
    """Return the better direction, or raise ValueError unless it is 'higher' or 'lower'."""
    if better not in BETTER:
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    return str(better)


def _benefit(difference: float, better: str) -> float:
    """Return the difference signed so that a gain for the pilot is positive."""
    return difference if better == "higher" else -difference


def _continuous_effect(delta: float, margin: float, better: str = "higher") -> float:
    """Return the standardised-scale effect tested: |delta| (two-sided) or benefit + margin (NI)."""
    return _benefit(delta, better) + margin if margin > 0.0 else abs(delta)


def _check_margin(margin: object) -> float:
    """Return the non-inferiority margin, or raise ValueError if it is negative."""
    margin = checks.number("margin", margin)
    if margin < 0.0:
        raise ValueError(f"margin must be 0 (two-sided test) or positive (non-inferiority), got {margin}")
    return margin


def _not_non_inferior(what: str) -> ValueError:
    """Return the error for a true effect that is at or beyond the margin's loss."""
    return ValueError(f"{what} must be positive: a pilot worse by the margin cannot be shown non-inferior")


def size_continuous(
    delta: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the units per arm needed to detect a mean difference ``delta`` (pilot - comparison).

    With ``margin > 0`` the design is for non-inferiority (see module docstring).
    """
    delta, sd = checks.number("delta", delta), checks.positive("sd", sd)
    alpha, power, ratio = (
        checks.open_unit("alpha", alpha),
        _check_power(power),
        checks.positive("ratio", ratio),
    )
    margin, better = _check_margin(margin), _check_better(better)
    _check_target(power, alpha)
    if margin == 0.0 and delta == 0.0:
        raise ValueError("delta must be non-zero to size a two-sided test")
    effect = _continuous_effect(delta, margin, better)
    if effect <= 0.0:
        raise _not_non_inferior("delta + margin" if better == "higher" else "margin - delta")
    lower = max(_MIN_N_CONTINUOUS, _MIN_N_CONTINUOUS / ratio)
    n_c = _solve_size(lambda n: _t_power(effect, sd, n, ratio * n, alpha), power, lower)
    return PowerResult(
        kind="size_continuous",
        method=METHOD_NONINFERIORITY if margin > 0.0 else METHOD_CONTINUOUS,
        n_per_arm=(n_c, ratio * n_c),
        n_required=_ceil_pair(n_c, ratio * n_c),
        power=power,
        effect=delta,
        alpha=alpha,
        assumptions=_continuous_assumptions(sd, margin, better, ratio),
    )


def _test_name(margin: float) -> str:
    """Return the assumptions' name of the test: non-inferiority with a margin, else two-sided."""
    return "non-inferiority" if margin > 0.0 else "two-sided"


def _continuous_assumptions(sd: float, margin: float, better: str, ratio: float | None = None) -> dict:
    """Return the assumptions record shared by the continuous calculations."""
    record: dict = {"sd": sd, "margin": margin, "test": _test_name(margin)}
    if margin > 0.0:
        record["better"] = better
    if ratio is not None:
        record["ratio"] = ratio
    return record


def power_continuous(
    n_comparison: int,
    n_pilot: int,
    delta: float,
    sd: float,
    alpha: float = 0.05,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the power of a two-sample t-test with the given arm sizes."""
    n_c, n_p = checks.whole("n_comparison", n_comparison, 2), checks.whole("n_pilot", n_pilot, 2)
    delta, sd = checks.number("delta", delta), checks.positive("sd", sd)
    alpha, margin = checks.open_unit("alpha", alpha), _check_margin(margin)
    better = _check_better(better)
    achieved = _t_power(_continuous_effect(delta, margin, better), sd, n_c, n_p, alpha)
    return PowerResult(
        kind="power_continuous",
        method=METHOD_NONINFERIORITY if margin > 0.0 else METHOD_CONTINUOUS,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=achieved,
        effect=delta,
        alpha=alpha,
        assumptions=_continuous_assumptions(sd, margin, better),
    )


def mde_continuous(
    n_comparison: int,
    n_pilot: int,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the smallest absolute mean difference a two-sided t-test detects with the given power.

    With a non-inferiority ``margin`` it is the true difference at which the test shows
    non-inferiority with that power (a loss, negative when higher is better, when equal
    arms would already do).
    """
    n_c, n_p = checks.whole("n_comparison", n_comparison, 2), checks.whole("n_pilot", n_pilot, 2)
    sd, alpha, power = checks.positive("sd", sd), checks.open_unit("alpha", alpha), _check_power(power)
    margin, better = _check_margin(margin), _check_better(better)
    _check_target(power, alpha)
    # the test's effect is benefit + margin (see _continuous_effect): the same inverse, shifted
    benefit = _t_effect(power, sd, n_c, n_p, alpha) - margin
    delta = _benefit(benefit, better) if margin > 0.0 else benefit
    return PowerResult(
        kind="mde_continuous",
        method=METHOD_NONINFERIORITY if margin > 0.0 else METHOD_CONTINUOUS,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=power,
        effect=delta,
        alpha=alpha,
        assumptions=_continuous_assumptions(sd, margin, better),
    )


# ---------------------------------------------------------------- binary


def _binary_power(p_c: float, p_p: float, n_c: float, n_p: float, alpha: float) -> float:
    """Return the two-proportion z-test power (no continuity correction, strict = FALSE)."""
    pooled = (n_c * p_c + n_p * p_p) / (n_c + n_p)
    se_null = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_p))
    se_alt = math.sqrt(p_c * (1.0 - p_c) / n_c + p_p * (1.0 - p_p) / n_p)
    return float(special.ndtr((abs(p_p - p_c) + special.ndtri(alpha / 2.0) * se_null) / se_alt))


def _binary_ni_power(
    p_c: float, p_p: float, n_c: float, n_p: float, alpha: float, margin: float, better: str
) -> float:
    """Return the power of the one-sided (alpha/2) non-inferiority z-test, unpooled variance."""
    se = math.sqrt(p_c * (1.0 - p_c) / n_c + p_p * (1.0 - p_p) / n_p)
    return float(special.ndtr((_benefit(p_p - p_c, better) + margin) / se + special.ndtri(alpha / 2.0)))


def _binary_power_at(
    p_c: float, p_p: float, n_c: float, n_p: float, alpha: float, margin: float, better: str
) -> float:
    """Return the power of the test the margin selects: two-sided (0) or non-inferiority."""
    if margin > 0.0:
        return _binary_ni_power(p_c, p_p, n_c, n_p, alpha, margin, better)
    return _binary_power(p_c, p_p, n_c, n_p, alpha)


def _check_binary_margin(margin: object) -> float:
    """Return a difference-in-proportions margin, or raise ValueError unless 0 <= margin < 1."""
    margin = checks.number("margin", margin)
    if not 0.0 <= margin < 1.0:
        raise ValueError(
            f"margin must be 0 (two-sided test) or a difference in proportions between 0 and 1 "
            f"(non-inferiority), got {margin}"
        )
    return margin


def _binary_assumptions(margin: float, better: str, **values: float | str) -> dict:
    """Return the assumptions record shared by the binary calculations."""
    record: dict = {**values, "margin": margin, "test": _test_name(margin)}
    if margin > 0.0:
        record["better"] = better
    return record


def size_binary(
    p_comparison: float,
    p_pilot: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the units per arm needed to detect proportions p_comparison vs p_pilot.

    With ``margin > 0`` the units needed to show non-inferiority (see module docstring);
    p_pilot may then equal p_comparison.
    """
    p_c, p_p = checks.open_unit("p_comparison", p_comparison), checks.open_unit("p_pilot", p_pilot)
    alpha, power, ratio = (
        checks.open_unit("alpha", alpha),
        _check_power(power),
        checks.positive("ratio", ratio),
    )
    margin, better = _check_binary_margin(margin), _check_better(better)
    _check_target(power, alpha)
    if margin == 0.0 and p_c == p_p:
        raise ValueError("p_comparison and p_pilot must differ to size a test")
    if margin > 0.0 and _benefit(p_p - p_c, better) + margin <= 0.0:
        raise _not_non_inferior("the difference p_pilot - p_comparison, signed as a gain, plus the margin")
    lower = max(_MIN_N_APPROX, _MIN_N_APPROX / ratio)
    n_c = _solve_size(lambda n: _binary_power_at(p_c, p_p, n, ratio * n, alpha, margin, better), power, lower)
    return PowerResult(
        kind="size_binary",
        method=METHOD_BINARY_NONINFERIORITY if margin > 0.0 else METHOD_BINARY,
        n_per_arm=(n_c, ratio * n_c),
        n_required=_ceil_pair(n_c, ratio * n_c),
        power=power,
        effect=p_p - p_c,
        alpha=alpha,
        assumptions=_binary_assumptions(margin, better, p_comparison=p_c, p_pilot=p_p, ratio=ratio),
    )


def power_binary(
    n_comparison: int,
    n_pilot: int,
    p_comparison: float,
    p_pilot: float,
    alpha: float = 0.05,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the power of a two-proportion z-test (or non-inferiority test) with the given arm sizes."""
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    p_c, p_p = checks.open_unit("p_comparison", p_comparison), checks.open_unit("p_pilot", p_pilot)
    alpha = checks.open_unit("alpha", alpha)
    margin, better = _check_binary_margin(margin), _check_better(better)
    return PowerResult(
        kind="power_binary",
        method=METHOD_BINARY_NONINFERIORITY if margin > 0.0 else METHOD_BINARY,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=_binary_power_at(p_c, p_p, n_c, n_p, alpha, margin, better),
        effect=p_p - p_c,
        alpha=alpha,
        assumptions=_binary_assumptions(margin, better, p_comparison=p_c, p_pilot=p_p),
    )


def mde_binary(
    n_comparison: int,
    n_pilot: int,
    p_comparison: float,
    alpha: float = 0.05,
    power: float = 0.8,
    decrease: bool = False,
    margin: float = 0.0,
) -> PowerResult:
    """Return the smallest change p_pilot - p_comparison detected with the given power.

    An increase by default; with ``decrease`` the (negative) decrease, found as the
    mirror image: the decrease detectable from baseline p is the increase from 1 - p.
    With a non-inferiority ``margin`` the better direction is lower if ``decrease`` is
    set (higher otherwise), and the result is the true change at which non-inferiority
    is shown with that power: a loss (against the better direction) when equal arms
    would already do.
    """
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    p_c, alpha, power = (
        checks.open_unit("p_comparison", p_comparison),
        checks.open_unit("alpha", alpha),
        _check_power(power),
    )
    margin = _check_binary_margin(margin)
    _check_target(power, alpha)
    base = 1.0 - p_c if decrease else p_c
    # Search p_pilot over (base, 1) (or from base - margin for non-inferiority, where the
    # power is alpha/2); the open ends stay a hair inside (0, 1).
    top = 1.0 - 1e-9
    start = max(base - margin, 1e-9)

    def power_at(p: float) -> float:
        return _binary_power_at(base, p, n_c, n_p, alpha, margin, "higher")

    if margin > 0.0 and power_at(start) >= power:
        p_p = start  # even a pilot proportion at the far end would be shown non-inferior
    else:
        try:
            p_p = _first_crossing(power_at, power, start, top)
        except ValueError:
            change = "decrease" if decrease else "increase"
            what = (
                f"pilot proportion shows non-inferiority against p_comparison = {p_c} with"
                if margin > 0.0
                else f"{change} from p_comparison = {p_c} reaches"
            )
            raise ValueError(f"no {what} power {power} with {n_c} and {n_p} units") from None
    change = p_p - base
    effect = -change if decrease else change
    direction = {"direction": "decrease" if decrease else "increase"}
    return PowerResult(
        kind="mde_binary",
        method=METHOD_BINARY_NONINFERIORITY if margin > 0.0 else METHOD_BINARY,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=power,
        effect=effect,
        alpha=alpha,
        assumptions=_binary_assumptions(
            margin, "lower" if decrease else "higher", p_comparison=p_c, p_pilot=p_c + effect, **direction
        ),
    )


# ---------------------------------------------------------------- count


def _count_power(
    rate_c: float,
    rate_ratio: float,
    exposure: float,
    n_c: float,
    n_p: float,
    alpha: float,
    margin: float = 0.0,
    better: str = "higher",
) -> float:
    """Return the Wald log-rate-ratio test power with expected events as the variance inputs.

    Two-sided for ``margin`` 0; with a ratio margin > 1 the one-sided non-inferiority test.
    """
    events_c = rate_c * exposure * n_c
    events_p = rate_c * rate_ratio * exposure * n_p
    se = math.sqrt(1.0 / events_c + 1.0 / events_p)
    if margin > 0.0:
        effect = _benefit(math.log(rate_ratio), better) + math.log(margin)
    else:
        effect = abs(math.log(rate_ratio))
    return float(special.ndtr(effect / se + special.ndtri(alpha / 2.0)))


def _check_count_margin(margin: object) -> float:
    """Return a rate-ratio margin, or raise ValueError unless it is 0 (none) or above 1."""
    margin = checks.number("margin", margin)
    if margin != 0.0 and not margin > 1.0:
        raise ValueError(
            f"margin must be 0 (two-sided test) or a rate ratio greater than 1 (non-inferiority), got {margin}"
        )
    return margin


def _count_assumptions(
    rate_c: float, exposure: float, margin: float = 0.0, better: str = "higher", **extra: float | str
) -> dict:
    """Return the assumptions record shared by the count calculations."""
    record: dict = {
        "rate_comparison": rate_c,
        "exposure_per_unit": exposure,
        **extra,
        "margin": margin,
        "test": _test_name(margin),
    }
    if margin > 0.0:
        record["better"] = better
    return record


def size_count(
    rate_comparison: float,
    rate_ratio: float,
    exposure_per_unit: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the units per arm needed to detect a rate ratio (pilot / comparison) for event counts.

    With a rate-ratio ``margin`` > 1 the units needed to show non-inferiority (see module
    docstring); the rate ratio may then be 1.
    """
    rate_c, rho = (
        checks.positive("rate_comparison", rate_comparison),
        checks.positive("rate_ratio", rate_ratio),
    )
    exposure = checks.positive("exposure_per_unit", exposure_per_unit)
    alpha, power, ratio = (
        checks.open_unit("alpha", alpha),
        _check_power(power),
        checks.positive("ratio", ratio),
    )
    margin, better = _check_count_margin(margin), _check_better(better)
    _check_target(power, alpha)
    if margin == 0.0 and rho == 1.0:
        raise ValueError("rate_ratio must differ from 1 to size a test")
    if margin > 0.0 and _benefit(math.log(rho), better) + math.log(margin) <= 0.0:
        raise ValueError(
            "rate_ratio must be better than the margin: a pilot worse by the margin cannot be shown non-inferior"
        )
    lower = max(_MIN_N_APPROX, _MIN_N_APPROX / ratio)
    n_c = _solve_size(
        lambda n: _count_power(rate_c, rho, exposure, n, ratio * n, alpha, margin, better), power, lower
    )
    return PowerResult(
        kind="size_count",
        method=METHOD_COUNT_NONINFERIORITY if margin > 0.0 else METHOD_COUNT,
        n_per_arm=(n_c, ratio * n_c),
        n_required=_ceil_pair(n_c, ratio * n_c),
        power=power,
        effect=rho,
        alpha=alpha,
        assumptions=_count_assumptions(rate_c, exposure, margin, better, ratio=ratio),
    )


def power_count(
    n_comparison: int,
    n_pilot: int,
    rate_comparison: float,
    rate_ratio: float,
    exposure_per_unit: float,
    alpha: float = 0.05,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the power of the Wald log-rate-ratio test (or non-inferiority test) with the given arm sizes."""
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    rate_c, rho = (
        checks.positive("rate_comparison", rate_comparison),
        checks.positive("rate_ratio", rate_ratio),
    )
    exposure, alpha = (
        checks.positive("exposure_per_unit", exposure_per_unit),
        checks.open_unit("alpha", alpha),
    )
    margin, better = _check_count_margin(margin), _check_better(better)
    return PowerResult(
        kind="power_count",
        method=METHOD_COUNT_NONINFERIORITY if margin > 0.0 else METHOD_COUNT,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=_count_power(rate_c, rho, exposure, n_c, n_p, alpha, margin, better),
        effect=rho,
        alpha=alpha,
        assumptions=_count_assumptions(rate_c, exposure, margin, better),
    )


def mde_count(
    n_comparison: int,
    n_pilot: int,
    rate_comparison: float,
    exposure_per_unit: float,
    alpha: float = 0.05,
    power: float = 0.8,
    margin: float = 0.0,
    better: str = "higher",
) -> PowerResult:
    """Return the rate ratio below 1 (a reduction) nearest 1 that is detected with the given power.

    Reductions are reported because pilots usually aim to cut adverse events.  The
    search runs on the log scale from a ratio of 1 down to 1e-6; power is not
    monotone there (a near-zero pilot rate leaves too few events to estimate it),
    so the first crossing from 1 is taken.  With a rate-ratio ``margin`` > 1 it is the
    true rate ratio at which non-inferiority is shown with that power, searched from
    the margin's worse ratio (``margin`` when lower is better, 1/``margin`` when higher
    is better) towards the better side.
    """
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    rate_c, exposure = (
        checks.positive("rate_comparison", rate_comparison),
        checks.positive("exposure_per_unit", exposure_per_unit),
    )
    alpha, power = checks.open_unit("alpha", alpha), _check_power(power)
    margin, better = _check_count_margin(margin), _check_better(better)
    _check_target(power, alpha)
    if margin > 0.0:
        # from the worst tolerated ratio (power alpha/2) towards the better side, 1e6-fold at most
        worst = _benefit(-math.log(margin), better)
        start, stop = worst, worst + _benefit(math.log(1e6), better)
        extra: dict = {}
    else:
        start, stop = 0.0, math.log(1e-6)
        extra = {"direction": "reduction"}
    try:
        log_rho = _first_crossing(
            lambda x: _count_power(rate_c, math.exp(x), exposure, n_c, n_p, alpha, margin, better),
            power,
            start,
            stop,
        )
    except ValueError:
        what = "rate ratio shows non-inferiority with" if margin > 0.0 else "rate reduction reaches"
        raise ValueError(
            f"no {what} power {power} with {n_c} and {n_p} units: too few expected events"
        ) from None
    rho = math.exp(log_rho)
    return PowerResult(
        kind="mde_count",
        method=METHOD_COUNT_NONINFERIORITY if margin > 0.0 else METHOD_COUNT,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=power,
        effect=rho,
        alpha=alpha,
        assumptions=_count_assumptions(rate_c, exposure, margin, better, **extra),
    )


# ---------------------------------------------------------------- group-sequential designs

# The continuation density is negligible beyond this many standard deviations of the
# score statistic from its mean (mass outside < 1e-23), so grids never reach further.
_TAIL_SD = 10.0
# Simpson's rule on Gaussians sampled this finely (points per standard deviation of the
# narrower of the density and the next increment's kernel) is accurate to about 1e-9.
_POINTS_PER_SD = 40
_MAX_GRID = 2001
# Rows of the transition kernel built at once: bounds the memory of one step to a few MB.
_KERNEL_ROWS = 256


def _check_looks(fractions: object) -> tuple[float, ...]:
    """Return information fractions strictly increasing in (0, 1], or raise ValueError."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (Sequence, np.ndarray)):
        raise ValueError("fractions must be a sequence of information fractions in (0, 1]")
    looks = tuple(checks.number("fractions", t) for t in np.ravel(np.asarray(fractions, dtype=object)))
    if not looks:
        raise ValueError("fractions must contain at least one look")
    if not all(0.0 < t <= 1.0 for t in looks):
        raise ValueError(f"fractions must lie in (0, 1], got {list(looks)}")
    if any(later <= earlier for earlier, later in itertools.pairwise(looks)):
        raise ValueError(f"fractions must be strictly increasing, got {list(looks)}")
    return looks


def _check_bounds(name: str, values: object, k: int) -> tuple[float, ...]:
    """Return one finite critical value per look, or raise ValueError."""
    if not isinstance(values, (Sequence, np.ndarray)) or isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of critical values, one per look")
    bounds = tuple(checks.number(name, z) for z in values)
    if len(bounds) != k:
        raise ValueError(f"{name} has {len(bounds)} critical values for {k} looks")
    return bounds


def _simpson_grid(low: float, high: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Return an odd-length uniform grid on [low, high] and its composite Simpson weights."""
    intervals = max(2, math.ceil((high - low) / step))
    intervals = min(intervals + intervals % 2, _MAX_GRID - 1)
    grid = np.linspace(low, high, intervals + 1)
    weights = np.ones(intervals + 1)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return grid, weights * (grid[1] - grid[0]) / 3.0


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    """Standard normal density."""
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def crossing_probabilities(
    fractions: Sequence[float],
    upper: Sequence[float],
    drift: float,
    lower: Sequence[float] | None = None,
) -> tuple[float, ...]:
    """Return the cumulative probability of crossing the upper boundary by each look.

    Z_k, the standardised statistic at information fraction t_k, is S(t_k) / sqrt(t_k) for
    a Brownian motion S with drift ``drift`` per unit of information, so E[Z_k] =
    drift * sqrt(t_k) and ``drift`` is the expected Z at full information (t = 1).  A path
    stops at the first look where Z_k >= upper[k] (counted) or Z_k <= lower[k] (not
    counted; ``lower`` None means no lower boundary, i.e. a one-sided design).  This is
    gsDesign's ``gsProbability(...)$upper$prob`` cumulated, or rpact's ``power`` of a
    design characteristics object.
    """
    looks = _check_looks(fractions)
    k = len(looks)
    up = _check_bounds("upper", upper, k)
    low = None if lower is None else _check_bounds("lower", lower, k)
    if low is not None and any(a >= b for a, b in zip(low, up, strict=True)):
        raise ValueError("each lower critical value must be below the upper one")
    theta = checks.number("drift", drift)

    # Look 1 needs no integration: Z_1 ~ N(theta sqrt(t_1), 1).
    root = math.sqrt(looks[0])
    total = float(special.ndtr(theta * root - up[0]))
    cumulative = [total]
    if k == 1:
        return (total,)

    # Sub-density of S_1 on the continuation region, truncated where it is negligible.
    mean, sd = theta * looks[0], root
    grid, weights, density = None, None, None
    for i in range(1, k + 1):
        if i > 1:
            step_var = looks[i - 1] - looks[i - 2]
            step_sd, step_mean = math.sqrt(step_var), theta * step_var
            # exits upwards at look i from each surviving S_{i-1} = x
            edge = up[i - 1] * math.sqrt(looks[i - 1])
            exit_up = special.ndtr((grid + step_mean - edge) / step_sd)
            total += float(np.dot(weights * density, exit_up))
            cumulative.append(total)
            if i == k:
                break
            mean, sd = theta * looks[i - 1], math.sqrt(looks[i - 1])
        # continuation region of S at look i (1-based), cut to mean +- _TAIL_SD sd
        t_i = looks[i - 1]
        hi = min(up[i - 1] * math.sqrt(t_i), mean + _TAIL_SD * sd)
        lo = mean - _TAIL_SD * sd if low is None else max(low[i - 1] * math.sqrt(t_i), mean - _TAIL_SD * sd)
        if hi <= lo:
            # no path survives with any probability that matters: nothing more crosses
            cumulative.extend([total] * (k - len(cumulative)))
            break
        next_sd = math.sqrt(looks[i] - t_i)
        new_grid, new_weights = _simpson_grid(lo, hi, min(sd, next_sd) / _POINTS_PER_SD)
        if i == 1:
            density = _normal_pdf((new_grid - mean) / sd) / sd
        else:
            # S_i = S_{i-1} + N(theta dt, dt): convolve the surviving density with the step
            source = weights * density
            density = np.empty_like(new_grid)
            for start in range(0, len(new_grid), _KERNEL_ROWS):
                rows = new_grid[start : start + _KERNEL_ROWS, None]
                kernel = _normal_pdf((rows - grid[None, :] - step_mean) / step_sd) / step_sd
                density[start : start + _KERNEL_ROWS] = kernel @ source
        grid, weights = new_grid, new_weights
    return tuple(min(1.0, max(0.0, p)) for p in cumulative)


def _symmetric_power(looks: tuple[float, ...], z: tuple[float, ...], drift: float) -> float:
    """Return the power of the two-sided symmetric design with critical values z at the drift."""
    return crossing_probabilities(looks, z, drift, [-c for c in z])[-1]


def _design_looks(fractions: Sequence[float]) -> tuple[float, ...]:
    """Return the looks of a planned design, whose last look is at full information."""
    looks = _check_looks(fractions)
    if looks[-1] != 1.0:
        raise ValueError(
            f"the last look of a planned design must be at information fraction 1, got {looks[-1]}"
        )
    return looks


def inflation_factor(fractions: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> float:
    """Return the maximum sample size of the staged design relative to the fixed design with the same power.

    The design tests at each look against the two-sided symmetric Lan–DeMets
    O'Brien–Fleming-type boundaries of ``riskreg.stats.sequential`` (non-binding, no
    futility boundary).  The drift theta at which it has the target power solves
    P(cross the upper boundary at some look | theta) = power (see ``crossing_probabilities``;
    paths through the lower boundary count as failures), and the factor is
    (theta / (z_{1-alpha/2} + z_{power}))^2.  A single look gives exactly 1.
    """
    looks = _design_looks(fractions)
    alpha, power = checks.open_unit("alpha", alpha), _check_power(power)
    _check_target(power, alpha)
    if len(looks) == 1:
        return 1.0
    from scipy.optimize import brentq

    from riskreg.stats.sequential import lan_demets_boundaries

    z = lan_demets_boundaries(looks, alpha).z
    fixed = float(special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power))
    low, high = 0.5 * fixed, 2.0 * fixed
    while _symmetric_power(looks, z, high) < power:
        high *= 2.0
    theta = brentq(lambda d: _symmetric_power(looks, z, d) - power, low, high, xtol=1e-12, rtol=1e-14)
    return float((theta / fixed) ** 2)


def sequential_power(fractions: Sequence[float], alpha: float, fixed_power: float) -> float:
    """Return the power of the staged design whose final look has the n of a fixed design with ``fixed_power``.

    The fixed design's power Phi(theta - z_{1-alpha/2}) gives the drift theta at full
    information (exact for the z-tests, the normal approximation of the t-test), and the
    staged design's power is the probability of crossing its upper boundary at that
    drift.  A single look returns ``fixed_power`` unchanged.
    """
    looks = _design_looks(fractions)
    alpha = checks.open_unit("alpha", alpha)
    fixed_power = checks.number("fixed_power", fixed_power)
    if not 0.0 <= fixed_power <= 1.0:
        raise ValueError(f"fixed_power must be between 0 and 1, got {fixed_power}")
    if len(looks) == 1 or fixed_power in (0.0, 1.0):
        return fixed_power
    from riskreg.stats.sequential import lan_demets_boundaries

    z = lan_demets_boundaries(looks, alpha).z
    drift = float(special.ndtri(1.0 - alpha / 2.0) + special.ndtri(fixed_power))
    return _symmetric_power(looks, z, drift)
