"""Planning and achieved power, sample sizes and minimum detectable effects for pilots.

Every calculation compares a pilot arm with a comparison arm.  Sizes are given
as (comparison, pilot); ``ratio`` is n_pilot / n_comparison.

Conventions (the same for all three outcome types):

* Two-sided tests at level ``alpha``.  Power counts rejections in the direction of
  the true effect only and ignores the (negligible) chance of rejecting in the
  opposite direction: this is R's ``strict = FALSE`` default in ``power.t.test``
  and ``power.prop.test``, so with no effect the power is alpha/2.
* Non-inferiority (continuous outcomes, ``margin > 0``): a one-sided test at
  level alpha/2 of H0: pilot - comparison <= -margin, which is the same decision
  as checking that the lower bound of the two-sided (1 - alpha) confidence
  interval lies above -margin.  Higher outcome values are better; flip the sign
  of ``delta`` for outcomes where lower is better.  The effect to detect is
  ``delta + margin``.
* Continuous: noncentral t with df = n_c + n_p - 2 and
  ncp = effect / (sd · sqrt(1/n_c + 1/n_p)) (R ``power.t.test`` for equal sizes).
* Binary: normal approximation without continuity correction, pooled variance
  under H0 with the allocation-weighted mean proportion (Fleiss, Levin & Paik
  2003, Statistical Methods for Rates and Proportions, 3rd ed., §4.2; R
  ``power.prop.test`` for equal sizes).
* Count: Wald z-test on the log rate ratio with Var = 1/E_c + 1/E_p, where
  E = rate * exposure per unit * units is the expected number of events in an arm
  (delta-method variance of a log rate ratio, Rothman, Greenland & Lash 2008,
  Modern Epidemiology, 3rd ed., ch. 14).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from riskreg.stats import checks

# scipy.optimize (brentq) loads in the functions that need it: importing it costs about
# 0.15 s, which a continuous metric's power and MDE (scipy.special alone) never need.

__all__ = [
    "PowerResult",
    "mde_binary",
    "mde_continuous",
    "mde_count",
    "power_binary",
    "power_continuous",
    "power_count",
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
    "df = n_c + n_p - 2 and ncp = (delta + margin) / (sd * sqrt(1/n_c + 1/n_p))"
)
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


def _continuous_effect(delta: float, margin: float) -> float:
    """Return the standardised-scale effect tested: |delta| (two-sided) or delta + margin (NI)."""
    return delta + margin if margin > 0.0 else abs(delta)


def _check_margin(margin: object) -> float:
    """Return the non-inferiority margin, or raise ValueError if it is negative."""
    margin = checks.number("margin", margin)
    if margin < 0.0:
        raise ValueError(f"margin must be 0 (two-sided test) or positive (non-inferiority), got {margin}")
    return margin


def size_continuous(
    delta: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    margin: float = 0.0,
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
    margin = _check_margin(margin)
    _check_target(power, alpha)
    if margin == 0.0 and delta == 0.0:
        raise ValueError("delta must be non-zero to size a two-sided test")
    effect = _continuous_effect(delta, margin)
    if effect <= 0.0:
        raise ValueError(
            "delta + margin must be positive: a pilot worse by the margin cannot be shown non-inferior"
        )
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
        assumptions=_continuous_assumptions(sd, margin, ratio),
    )


def _continuous_assumptions(sd: float, margin: float, ratio: float | None = None) -> dict:
    """Return the assumptions record shared by the continuous calculations."""
    record: dict = {"sd": sd, "margin": margin, "test": "non-inferiority" if margin > 0.0 else "two-sided"}
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
) -> PowerResult:
    """Return the power of a two-sample t-test with the given arm sizes."""
    n_c, n_p = checks.whole("n_comparison", n_comparison, 2), checks.whole("n_pilot", n_pilot, 2)
    delta, sd = checks.number("delta", delta), checks.positive("sd", sd)
    alpha, margin = checks.open_unit("alpha", alpha), _check_margin(margin)
    achieved = _t_power(_continuous_effect(delta, margin), sd, n_c, n_p, alpha)
    return PowerResult(
        kind="power_continuous",
        method=METHOD_NONINFERIORITY if margin > 0.0 else METHOD_CONTINUOUS,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=achieved,
        effect=delta,
        alpha=alpha,
        assumptions=_continuous_assumptions(sd, margin),
    )


def mde_continuous(
    n_comparison: int,
    n_pilot: int,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    margin: float = 0.0,
) -> PowerResult:
    """Return the smallest absolute mean difference a two-sided t-test detects with the given power.

    With a non-inferiority ``margin`` it is the true difference at which the test shows
    non-inferiority with that power (negative when equal arms would already do).
    """
    n_c, n_p = checks.whole("n_comparison", n_comparison, 2), checks.whole("n_pilot", n_pilot, 2)
    sd, alpha, power = checks.positive("sd", sd), checks.open_unit("alpha", alpha), _check_power(power)
    margin = _check_margin(margin)
    _check_target(power, alpha)
    # the test's effect is delta + margin (see _continuous_effect): the same inverse, shifted
    delta = _t_effect(power, sd, n_c, n_p, alpha) - margin
    return PowerResult(
        kind="mde_continuous",
        method=METHOD_NONINFERIORITY if margin > 0.0 else METHOD_CONTINUOUS,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=power,
        effect=delta,
        alpha=alpha,
        assumptions=_continuous_assumptions(sd, margin),
    )


# ---------------------------------------------------------------- binary


def _binary_power(p_c: float, p_p: float, n_c: float, n_p: float, alpha: float) -> float:
    """Return the two-proportion z-test power (no continuity correction, strict = FALSE)."""
    pooled = (n_c * p_c + n_p * p_p) / (n_c + n_p)
    se_null = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_p))
    se_alt = math.sqrt(p_c * (1.0 - p_c) / n_c + p_p * (1.0 - p_p) / n_p)
    return float(special.ndtr((abs(p_p - p_c) + special.ndtri(alpha / 2.0) * se_null) / se_alt))


def size_binary(
    p_comparison: float,
    p_pilot: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> PowerResult:
    """Return the units per arm needed to detect proportions p_comparison vs p_pilot."""
    p_c, p_p = checks.open_unit("p_comparison", p_comparison), checks.open_unit("p_pilot", p_pilot)
    alpha, power, ratio = (
        checks.open_unit("alpha", alpha),
        _check_power(power),
        checks.positive("ratio", ratio),
    )
    _check_target(power, alpha)
    if p_c == p_p:
        raise ValueError("p_comparison and p_pilot must differ to size a test")
    lower = max(_MIN_N_APPROX, _MIN_N_APPROX / ratio)
    n_c = _solve_size(lambda n: _binary_power(p_c, p_p, n, ratio * n, alpha), power, lower)
    return PowerResult(
        kind="size_binary",
        method=METHOD_BINARY,
        n_per_arm=(n_c, ratio * n_c),
        n_required=_ceil_pair(n_c, ratio * n_c),
        power=power,
        effect=p_p - p_c,
        alpha=alpha,
        assumptions={"p_comparison": p_c, "p_pilot": p_p, "ratio": ratio},
    )


def power_binary(
    n_comparison: int,
    n_pilot: int,
    p_comparison: float,
    p_pilot: float,
    alpha: float = 0.05,
) -> PowerResult:
    """Return the power of a two-proportion z-test with the given arm sizes."""
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    p_c, p_p = checks.open_unit("p_comparison", p_comparison), checks.open_unit("p_pilot", p_pilot)
    alpha = checks.open_unit("alpha", alpha)
    return PowerResult(
        kind="power_binary",
        method=METHOD_BINARY,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=_binary_power(p_c, p_p, n_c, n_p, alpha),
        effect=p_p - p_c,
        alpha=alpha,
        assumptions={"p_comparison": p_c, "p_pilot": p_p},
    )


def mde_binary(
    n_comparison: int,
    n_pilot: int,
    p_comparison: float,
    alpha: float = 0.05,
    power: float = 0.8,
    decrease: bool = False,
) -> PowerResult:
    """Return the smallest change p_pilot - p_comparison detected with the given power.

    An increase by default; with ``decrease`` the (negative) decrease, found as the
    mirror image: the decrease detectable from baseline p is the increase from 1 - p.
    """
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    p_c, alpha, power = (
        checks.open_unit("p_comparison", p_comparison),
        checks.open_unit("alpha", alpha),
        _check_power(power),
    )
    _check_target(power, alpha)
    base = 1.0 - p_c if decrease else p_c
    # Search p_pilot over (base, 1); the open end stays a hair inside 1.
    top = 1.0 - 1e-9
    try:
        p_p = _first_crossing(lambda p: _binary_power(base, p, n_c, n_p, alpha), power, base, top)
    except ValueError:
        change = "decrease" if decrease else "increase"
        raise ValueError(
            f"no {change} from p_comparison = {p_c} reaches power {power} with {n_c} and {n_p} units"
        ) from None
    change = p_p - base
    effect = -change if decrease else change
    return PowerResult(
        kind="mde_binary",
        method=METHOD_BINARY,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=power,
        effect=effect,
        alpha=alpha,
        assumptions={
            "p_comparison": p_c,
            "p_pilot": p_c + effect,
            "direction": "decrease" if decrease else "increase",
        },
    )


# ---------------------------------------------------------------- count


def _count_power(
    rate_c: float, rate_ratio: float, exposure: float, n_c: float, n_p: float, alpha: float
) -> float:
    """Return the Wald log-rate-ratio test power with expected events as the variance inputs."""
    events_c = rate_c * exposure * n_c
    events_p = rate_c * rate_ratio * exposure * n_p
    se = math.sqrt(1.0 / events_c + 1.0 / events_p)
    return float(special.ndtr(abs(math.log(rate_ratio)) / se + special.ndtri(alpha / 2.0)))


def _count_assumptions(rate_c: float, exposure: float, **extra: float | str) -> dict:
    """Return the assumptions record shared by the count calculations."""
    return {"rate_comparison": rate_c, "exposure_per_unit": exposure, **extra}


def size_count(
    rate_comparison: float,
    rate_ratio: float,
    exposure_per_unit: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> PowerResult:
    """Return the units per arm needed to detect a rate ratio (pilot / comparison) for event counts."""
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
    _check_target(power, alpha)
    if rho == 1.0:
        raise ValueError("rate_ratio must differ from 1 to size a test")
    lower = max(_MIN_N_APPROX, _MIN_N_APPROX / ratio)
    n_c = _solve_size(lambda n: _count_power(rate_c, rho, exposure, n, ratio * n, alpha), power, lower)
    return PowerResult(
        kind="size_count",
        method=METHOD_COUNT,
        n_per_arm=(n_c, ratio * n_c),
        n_required=_ceil_pair(n_c, ratio * n_c),
        power=power,
        effect=rho,
        alpha=alpha,
        assumptions=_count_assumptions(rate_c, exposure, ratio=ratio),
    )


def power_count(
    n_comparison: int,
    n_pilot: int,
    rate_comparison: float,
    rate_ratio: float,
    exposure_per_unit: float,
    alpha: float = 0.05,
) -> PowerResult:
    """Return the power of the Wald log-rate-ratio test with the given arm sizes."""
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    rate_c, rho = (
        checks.positive("rate_comparison", rate_comparison),
        checks.positive("rate_ratio", rate_ratio),
    )
    exposure, alpha = (
        checks.positive("exposure_per_unit", exposure_per_unit),
        checks.open_unit("alpha", alpha),
    )
    return PowerResult(
        kind="power_count",
        method=METHOD_COUNT,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=_count_power(rate_c, rho, exposure, n_c, n_p, alpha),
        effect=rho,
        alpha=alpha,
        assumptions=_count_assumptions(rate_c, exposure),
    )


def mde_count(
    n_comparison: int,
    n_pilot: int,
    rate_comparison: float,
    exposure_per_unit: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerResult:
    """Return the rate ratio below 1 (a reduction) nearest 1 that is detected with the given power.

    Reductions are reported because pilots usually aim to cut adverse events.  The
    search runs on the log scale from a ratio of 1 down to 1e-6; power is not
    monotone there (a near-zero pilot rate leaves too few events to estimate it),
    so the first crossing from 1 is taken.
    """
    n_c, n_p = checks.whole("n_comparison", n_comparison, 1), checks.whole("n_pilot", n_pilot, 1)
    rate_c, exposure = (
        checks.positive("rate_comparison", rate_comparison),
        checks.positive("exposure_per_unit", exposure_per_unit),
    )
    alpha, power = checks.open_unit("alpha", alpha), _check_power(power)
    _check_target(power, alpha)
    try:
        log_rho = _first_crossing(
            lambda x: _count_power(rate_c, math.exp(x), exposure, n_c, n_p, alpha), power, 0.0, math.log(1e-6)
        )
    except ValueError:
        raise ValueError(
            f"no rate reduction reaches power {power} with {n_c} and {n_p} units: too few expected events"
        ) from None
    rho = math.exp(log_rho)
    return PowerResult(
        kind="mde_count",
        method=METHOD_COUNT,
        n_per_arm=(float(n_c), float(n_p)),
        n_required=None,
        power=power,
        effect=rho,
        alpha=alpha,
        assumptions=_count_assumptions(rate_c, exposure, direction="reduction"),
    )
