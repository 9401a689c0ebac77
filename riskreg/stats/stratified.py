"""Stratified comparisons for multi-site pilots: Mantel–Haenszel and inverse-variance pooling.

Individually randomised pilots often run at several sites. Pooling the sites' 2×2 tables
(or their rates, or their mean differences) within site, then combining, keeps a site with
more pilot units from passing its own baseline off as an effect. Each site also gets its
own estimate, and Cochran's Q with I² says whether the sites disagree more than chance
would make them, so a board sees whether one site drives the result.

Pure: numbers in, frozen dataclasses out. Estimates compare the pilot arm with the
comparison arm (ratios pilot/comparison, differences pilot − comparison).

References: Mantel & Haenszel (1959); Greenland & Robins (1985, Biometrics 41:55–68) for
the risk-ratio, risk-difference and rate-ratio variances; Robins, Breslow & Greenland
(1986, Biometrics 42:311–323) for the odds-ratio variance; Cochran (1954) and Higgins &
Thompson (2002, Stat Med 21:1539–58) for Q and I².
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from riskreg.stats import checks, tails


@dataclass(frozen=True)
class BinaryStratum:
    """One site's 2×2 table: events and units in the pilot and comparison arms."""

    pilot_events: int
    pilot_n: int
    comparison_events: int
    comparison_n: int


@dataclass(frozen=True)
class RateStratum:
    """One site's events and exposure (person-time) in each arm."""

    pilot_events: float
    pilot_exposure: float
    comparison_events: float
    comparison_exposure: float


@dataclass(frozen=True)
class MeanStratum:
    """One site's difference in means (pilot − comparison) and its variance."""

    difference: float
    variance: float


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q across the strata that give an estimate, its p-value and I² (0 to 1)."""

    q: float
    df: int
    p_value: float
    i_squared: float


@dataclass(frozen=True)
class Pooled:
    """A pooled estimate across strata with its confidence interval, test and heterogeneity.

    ``log_scale`` says whether ``se`` is on the log scale (ratios) or the estimate's own
    scale (differences); ``per_stratum`` holds each stratum's own estimate (None where its
    table cannot give one, such as no events in an arm for a ratio).
    """

    estimate: float
    ci: tuple[float, float]
    se: float
    log_scale: bool
    z: float
    p_value: float
    per_stratum: tuple[float | None, ...]
    heterogeneity: Heterogeneity | None
    method: str


def _interval(centre: float, se: float, level: float, log: bool) -> tuple[float, float]:
    half = tails.norm_isf((1.0 - level) / 2.0) * se
    if log:
        return math.exp(centre - half), math.exp(centre + half)
    return centre - half, centre + half


def _p_two_sided(z: float) -> float:
    return 2.0 * tails.norm_sf(abs(z))


def cochran_q(estimates: Sequence[float], variances: Sequence[float]) -> Heterogeneity | None:
    """Return Cochran's Q, its chi-square p-value on k − 1 df and I², for k ≥ 2 estimates.

    I² = max(0, (Q − df) / Q): the share of the variation across strata beyond chance.
    """
    pairs = [(e, v) for e, v in zip(estimates, variances, strict=True) if v > 0 and math.isfinite(v)]
    if len(pairs) < 2:
        return None
    weights = [1.0 / v for _e, v in pairs]
    pooled = math.fsum(w * e for w, (e, _v) in zip(weights, pairs, strict=True)) / math.fsum(weights)
    q = math.fsum(w * (e - pooled) ** 2 for w, (e, _v) in zip(weights, pairs, strict=True))
    df = len(pairs) - 1
    i_squared = max(0.0, (q - df) / q) if q > 0 else 0.0
    return Heterogeneity(q=q, df=df, p_value=tails.chi2_sf(q, df), i_squared=i_squared)


def _check_binary(strata: Sequence[BinaryStratum]) -> list[BinaryStratum]:
    if not strata:
        raise ValueError("at least one stratum is needed")
    for s in strata:
        for name, events, n in (
            ("pilot", s.pilot_events, s.pilot_n),
            ("comparison", s.comparison_events, s.comparison_n),
        ):
            checks.whole(f"{name}_n", n, 0)
            checks.whole(f"{name}_events", events, 0)
            if events > n:
                raise ValueError(f"{name}_events ({events}) cannot exceed {name}_n ({n})")
    used = [
        s for s in strata if s.pilot_n > 0 and s.comparison_n > 0
    ]  # a stratum with one arm only says nothing
    if not used:
        raise ValueError("no stratum has units in both arms")
    return used


def mh_risk_ratio(strata: Sequence[BinaryStratum], level: float = 0.95) -> Pooled:
    """Return the Mantel–Haenszel risk ratio with the Greenland–Robins (1985) variance of its log."""
    used = _check_binary(strata)
    r = s = v = 0.0
    for t in used:
        total = t.pilot_n + t.comparison_n
        r += t.pilot_events * t.comparison_n / total
        s += t.comparison_events * t.pilot_n / total
        v += (
            t.pilot_n * t.comparison_n * (t.pilot_events + t.comparison_events)
            - t.pilot_events * t.comparison_events * total
        ) / total**2
    if r == 0 or s == 0:
        raise ValueError("the risk ratio needs events in both arms")
    log_rr = math.log(r / s)
    se = math.sqrt(v / (r * s))
    logs, variances = _per_stratum_log_rr(used)
    return _pooled(
        log_rr, se, level, True, logs, variances, "Mantel-Haenszel risk ratio (Greenland-Robins variance)"
    )


def _per_stratum_log_rr(used: Sequence[BinaryStratum]) -> tuple[list[float | None], list[float]]:
    logs: list[float | None] = []
    variances: list[float] = []
    for t in used:
        if t.pilot_events and t.comparison_events:
            logs.append(math.log((t.pilot_events / t.pilot_n) / (t.comparison_events / t.comparison_n)))
            variances.append(
                1 / t.pilot_events - 1 / t.pilot_n + 1 / t.comparison_events - 1 / t.comparison_n
            )
        else:
            logs.append(None)
            variances.append(math.inf)
    return logs, variances


def mh_odds_ratio(strata: Sequence[BinaryStratum], level: float = 0.95) -> Pooled:
    """Return the Mantel–Haenszel odds ratio with the Robins–Breslow–Greenland (1986) variance of its log."""
    used = _check_binary(strata)
    sum_r = sum_s = sum_pr = sum_ps_qr = sum_qs = 0.0
    for t in used:
        total = t.pilot_n + t.comparison_n
        a, b = t.pilot_events, t.pilot_n - t.pilot_events
        c, d = t.comparison_events, t.comparison_n - t.comparison_events
        p, q = (a + d) / total, (b + c) / total
        r, s = a * d / total, b * c / total
        sum_r, sum_s = sum_r + r, sum_s + s
        sum_pr, sum_qs, sum_ps_qr = sum_pr + p * r, sum_qs + q * s, sum_ps_qr + p * s + q * r
    if sum_r == 0 or sum_s == 0:
        raise ValueError("the odds ratio needs discordant counts in both directions")
    variance = sum_pr / (2 * sum_r**2) + sum_ps_qr / (2 * sum_r * sum_s) + sum_qs / (2 * sum_s**2)
    logs: list[float | None] = []
    variances: list[float] = []
    for t in used:
        a, b = t.pilot_events, t.pilot_n - t.pilot_events
        c, d = t.comparison_events, t.comparison_n - t.comparison_events
        if a and b and c and d:
            logs.append(math.log(a * d / (b * c)))
            variances.append(1 / a + 1 / b + 1 / c + 1 / d)
        else:
            logs.append(None)
            variances.append(math.inf)
    return _pooled(
        math.log(sum_r / sum_s),
        math.sqrt(variance),
        level,
        True,
        logs,
        variances,
        "Mantel-Haenszel odds ratio (RBG variance)",
    )


def mh_risk_difference(strata: Sequence[BinaryStratum], level: float = 0.95) -> Pooled:
    """Return the Mantel–Haenszel risk difference with the Greenland–Robins (1985) variance."""
    used = _check_binary(strata)
    weights = numerator = variance = 0.0
    for t in used:
        total = t.pilot_n + t.comparison_n
        a, b = t.pilot_events, t.pilot_n - t.pilot_events
        c, d = t.comparison_events, t.comparison_n - t.comparison_events
        weight = t.pilot_n * t.comparison_n / total
        weights += weight
        numerator += (a * t.comparison_n - c * t.pilot_n) / total
        variance += (a * b * t.comparison_n**3 + c * d * t.pilot_n**3) / (
            t.pilot_n * t.comparison_n * total**2
        )
    estimate = numerator / weights
    se = math.sqrt(variance) / weights
    differences: list[float | None] = []
    variances: list[float] = []
    for t in used:
        p1, p0 = t.pilot_events / t.pilot_n, t.comparison_events / t.comparison_n
        v = p1 * (1 - p1) / t.pilot_n + p0 * (1 - p0) / t.comparison_n
        differences.append(p1 - p0)
        variances.append(v if v > 0 else math.inf)
    return _pooled(
        estimate,
        se,
        level,
        False,
        differences,
        variances,
        "Mantel-Haenszel risk difference (Greenland-Robins variance)",
    )


def mh_rate_ratio(strata: Sequence[RateStratum], level: float = 0.95) -> Pooled:
    """Return the Mantel–Haenszel rate ratio for person-time with the Greenland–Robins (1985) variance."""
    if not strata:
        raise ValueError("at least one stratum is needed")
    r = s = v = 0.0
    used = []
    for t in strata:
        for name in ("pilot_events", "comparison_events", "pilot_exposure", "comparison_exposure"):
            if checks.number(name, getattr(t, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(t, name)}")
        if t.pilot_exposure <= 0 or t.comparison_exposure <= 0:
            continue
        used.append(t)
        total = t.pilot_exposure + t.comparison_exposure
        r += t.pilot_events * t.comparison_exposure / total
        s += t.comparison_events * t.pilot_exposure / total
        v += t.pilot_exposure * t.comparison_exposure * (t.pilot_events + t.comparison_events) / total**2
    if r == 0 or s == 0:
        raise ValueError("the rate ratio needs events in both arms")
    logs: list[float | None] = []
    variances: list[float] = []
    for t in used:
        if t.pilot_events and t.comparison_events:
            logs.append(
                math.log((t.pilot_events / t.pilot_exposure) / (t.comparison_events / t.comparison_exposure))
            )
            variances.append(1 / t.pilot_events + 1 / t.comparison_events)
        else:
            logs.append(None)
            variances.append(math.inf)
    return _pooled(
        math.log(r / s),
        math.sqrt(v / (r * s)),
        level,
        True,
        logs,
        variances,
        "Mantel-Haenszel rate ratio (Greenland-Robins variance)",
    )


def inverse_variance(strata: Sequence[MeanStratum], level: float = 0.95) -> Pooled:
    """Return the inverse-variance (fixed-effect) pooled difference in means across strata."""
    usable = [
        t for t in strata if t.variance > 0 and math.isfinite(t.variance) and math.isfinite(t.difference)
    ]
    if not usable:
        raise ValueError("no stratum has a difference with a positive, finite variance")
    weights = [1.0 / t.variance for t in usable]
    estimate = math.fsum(w * t.difference for w, t in zip(weights, usable, strict=True)) / math.fsum(weights)
    se = math.sqrt(1.0 / math.fsum(weights))
    return _pooled(
        estimate,
        se,
        level,
        False,
        [t.difference for t in strata],
        [t.variance for t in strata],
        "inverse-variance pooled difference in means",
    )


def _pooled(
    centre: float,
    se: float,
    level: float,
    log: bool,
    per_stratum: Sequence[float | None],
    variances: Sequence[float],
    method: str,
) -> Pooled:
    level = checks.open_unit("level", level)
    z = centre / se if se > 0 else math.copysign(math.inf, centre) if centre else 0.0
    estimates = [e for e in per_stratum if e is not None]
    spread = [v for e, v in zip(per_stratum, variances, strict=True) if e is not None]
    shown = tuple(None if e is None else (math.exp(e) if log else e) for e in per_stratum)
    return Pooled(
        estimate=math.exp(centre) if log else centre,
        ci=_interval(centre, se, level, log),
        se=se,
        log_scale=log,
        z=z,
        p_value=_p_two_sided(z),
        per_stratum=shown,
        heterogeneity=cochran_q(estimates, spread),
        method=method,
    )


@dataclass(frozen=True)
class CmhTest:
    """The Cochran–Mantel–Haenszel test of no association in any stratum (2×2×K)."""

    statistic: float
    p_value: float
    continuity: bool


def cmh_test(strata: Sequence[BinaryStratum], continuity: bool = True) -> CmhTest:
    """Return the CMH chi-square (1 df), with Yates's continuity correction by default as R's mantelhaen.test."""
    used = _check_binary(strata)
    deviation = variance = 0.0
    for t in used:
        total = t.pilot_n + t.comparison_n
        events = t.pilot_events + t.comparison_events
        deviation += t.pilot_events - t.pilot_n * events / total
        if total > 1:
            variance += t.pilot_n * t.comparison_n * events * (total - events) / (total**2 * (total - 1))
    if variance == 0:
        raise ValueError("no stratum has both events and non-events")
    numerator = max(abs(deviation) - (0.5 if continuity else 0.0), 0.0)
    statistic = numerator**2 / variance
    return CmhTest(statistic, tails.chi2_sf(statistic, 1), continuity)


__all__ = [
    "BinaryStratum",
    "CmhTest",
    "Heterogeneity",
    "MeanStratum",
    "Pooled",
    "RateStratum",
    "cmh_test",
    "cochran_q",
    "inverse_variance",
    "mh_odds_ratio",
    "mh_rate_ratio",
    "mh_risk_difference",
    "mh_risk_ratio",
]
