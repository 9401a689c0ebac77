"""Cluster-level analyses for cluster-randomised pilots, for every kind of outcome.

``riskreg.stats.clusters`` gives the ICC, the design effect and the unweighted t test on
continuous cluster means. This module adds what a cluster-parallel pilot needs beside it:

* the comparison of cluster summaries with a choice of weights: ``"equal"`` (each cluster
  counts once: the t test Hayes & Moulton recommend when clusters are few, Cluster
  Randomised Trials, 2nd ed., 2017, §9.2), ``"size"`` (each cluster weighted by its units or
  exposure, so the estimate is the individual-level difference; efficient when the ICC is
  near 0, but one large cluster can dominate) or ``"minimum-variance"`` (w = m/(1 + (m − 1)·ICC),
  the inverse of a cluster mean's variance under the ICC, Kerry & Bland 2001, Stat Med
  20:377–390; it moves from "size" at ICC 0 to "equal" as the ICC grows). In each case the
  test is weighted least squares of the cluster summaries on the arm, on k₁ + k₀ − 2 df,
  i.e. R's ``lm(summary ~ arm, weights = w)``;
* binary and count outcomes: the risk or rate difference on cluster proportions or rates, and
  the risk or rate ratio from the t test on their logarithms (the ratio of geometric means,
  Hayes & Moulton §9.2.2). A cluster with no events has no logarithm: then 0.5 is added to
  every cluster's events (and 1 to its units, for proportions, so a proportion stays below 1)
  in both arms, and the result says so;
* probabilities a board can read: how likely the pilot is better, worse, better by more than
  the margin, and worse by more than the margin (harm), from the normal posterior of the
  effect on the analysis scale (the log scale for ratios) under a flat or a normal prior
  (conjugate update: Spiegelhalter, Abrams & Myles, Bayesian Approaches to Clinical Trials
  and Health-Care Evaluation, 2004, §3.6). They read the data as they stand, are not
  adjusted for looks, and are no verdict: the gate still rests on the pre-registered test;
* the ICC estimated within arms (one-way ANOVA with the arm as a fixed factor; the
  estimator pooled over arms would count the pilot's effect as clustering), for binary
  outcomes too (the ANOVA estimator on 0/1 values, Ridout, Demétrio & Firth 1999,
  Biometrics 55:137–148), and the between-cluster coefficient of variation k of event
  rates (Hayes & Bennett 1999, Int J Epidemiol 28:319–326; Hayes & Moulton §8.3).

Estimates compare pilot with comparison (differences pilot − comparison, ratios
pilot/comparison). Pure: numbers in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from riskreg.stats import checks, tails
from riskreg.stats.ancova import ArmMoments, MissingBaseline
from riskreg.stats.clusters import Cluster, design_effect

Weighting = Literal["equal", "size", "minimum-variance"]
WEIGHTINGS = ("equal", "size", "minimum-variance")
ZERO_EVENTS_ADDED = 0.5  # added to every cluster's events when any cluster has none (log scale only)


@dataclass(frozen=True)
class BinaryCluster:
    """One cluster's units and units with the event."""

    n: int
    events: int


@dataclass(frozen=True)
class RateCluster:
    """One cluster's events and exposure (person-time)."""

    events: float
    exposure: float


@dataclass(frozen=True)
class ClusterResult:
    """Pilot vs comparison on cluster summaries: estimate, interval and t test on k₁ + k₀ − 2 df.

    ``se`` is on the analysis scale: the log scale when ``log_scale`` (ratios), else the
    estimate's own. ``zero_correction`` is the amount added to each cluster's events (0 if none).
    """

    estimate: float
    ci: tuple[float, float]
    se: float
    log_scale: bool
    t: float
    df: int
    p_value: float
    clusters: tuple[int, int]  # (pilot, comparison)
    weighting: str
    zero_correction: float
    method: str


@dataclass(frozen=True)
class _Fit:
    difference: float
    se: float
    df: int


def _weighted_t(pilot: Sequence[tuple[float, float]], comparison: Sequence[tuple[float, float]]) -> _Fit:
    """Return the WLS difference of (value, weight) pairs between arms, its SE, and k₁ + k₀ − 2 df."""
    if len(pilot) < 2 or len(comparison) < 2:
        raise ValueError("each arm needs at least two clusters with units")
    residual = 0.0
    means = []
    inverse_weights = 0.0
    for arm in (pilot, comparison):
        total = math.fsum(w for _v, w in arm)
        mean = math.fsum(v * w for v, w in arm) / total
        residual += math.fsum(w * (v - mean) ** 2 for v, w in arm)
        means.append(mean)
        inverse_weights += 1.0 / total
    df = len(pilot) + len(comparison) - 2
    se = math.sqrt(residual / df * inverse_weights)
    if se == 0:
        raise ValueError("the cluster summaries do not vary within the arms: no interval")
    return _Fit(means[0] - means[1], se, df)


def _weights(sizes: Sequence[float], weighting: str, icc: float | None) -> list[float]:
    if weighting == "equal":
        return [1.0] * len(sizes)
    if weighting == "size":
        return list(sizes)
    if weighting == "minimum-variance":
        if icc is None:
            raise ValueError("minimum-variance weights need the icc")
        if not 0.0 <= checks.number("icc", icc) <= 1.0:
            raise ValueError(f"icc must be between 0 and 1, got {icc}")
        return [m / (1.0 + (m - 1.0) * icc) for m in sizes]
    raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")


def _result(
    fit: _Fit, log: bool, level: float, clusters: tuple[int, int], weighting: str, added: float, method: str
) -> ClusterResult:
    level = checks.open_unit("level", level)
    half = tails.t_isf((1 - level) / 2, fit.df) * fit.se
    low, high = fit.difference - half, fit.difference + half
    t = fit.difference / fit.se
    return ClusterResult(
        estimate=math.exp(fit.difference) if log else fit.difference,
        ci=(math.exp(low), math.exp(high)) if log else (low, high),
        se=fit.se,
        log_scale=log,
        t=t,
        df=fit.df,
        p_value=2 * tails.t_sf(abs(t), fit.df),
        clusters=clusters,
        weighting=weighting,
        zero_correction=added,
        method=method,
    )


def cluster_mean_difference(
    pilot: Sequence[Cluster],
    comparison: Sequence[Cluster],
    weighting: Weighting = "equal",
    icc: float | None = None,
    level: float = 0.95,
) -> ClusterResult:
    """Return the difference in cluster means, pilot − comparison, by a weighted cluster-level t test.

    ``icc`` is needed for ``"minimum-variance"`` weights only (e.g. from ``icc_within_arms``).
    """
    arms = [[c for c in arm if checks.whole("n", c.n, 0) > 0] for arm in (pilot, comparison)]
    summaries = [[c.mean for c in arm] for arm in arms]
    sizes = [[float(c.n) for c in arm] for arm in arms]
    return _summary_test(summaries, sizes, weighting, icc, level, "cluster-level t test on cluster means")


def _summary_test(
    summaries: list[list[float]],
    sizes: list[list[float]],
    weighting: Weighting,
    icc: float | None,
    level: float,
    method: str,
    log: bool = False,
    added: float = 0.0,
) -> ClusterResult:
    """Compare the (pilot, comparison) cluster summaries by a weighted t test; ``log``: they are logs of a ratio."""
    pairs = [
        list(zip(values, _weights(size, weighting, icc), strict=True))
        for values, size in zip(summaries, sizes, strict=True)
    ]
    fit = _weighted_t(pairs[0], pairs[1])
    return _result(fit, log, level, (len(summaries[0]), len(summaries[1])), weighting, added, method)


def _check_binary(arm: Sequence[BinaryCluster]) -> list[BinaryCluster]:
    used = []
    for c in arm:
        n, events = checks.whole("n", c.n, 0), checks.whole("events", c.events, 0)
        if events > n:
            raise ValueError(f"events ({events}) cannot exceed n ({n})")
        if n > 0:
            used.append(c)
    return used


def _check_rates(arm: Sequence[RateCluster]) -> list[RateCluster]:
    used = []
    for c in arm:
        if checks.number("events", c.events) < 0:
            raise ValueError(f"events must be >= 0, got {c.events}")
        if checks.number("exposure", c.exposure) < 0:
            raise ValueError(f"exposure must be >= 0, got {c.exposure}")
        if c.exposure > 0:
            used.append(c)
    return used


def cluster_risk_difference(
    pilot: Sequence[BinaryCluster],
    comparison: Sequence[BinaryCluster],
    weighting: Weighting = "equal",
    icc: float | None = None,
    level: float = 0.95,
) -> ClusterResult:
    """Return the difference in cluster proportions, pilot − comparison, by a weighted cluster-level t test."""
    arms = [_check_binary(pilot), _check_binary(comparison)]
    summaries = [[c.events / c.n for c in arm] for arm in arms]
    sizes = [[float(c.n) for c in arm] for arm in arms]
    return _summary_test(
        summaries, sizes, weighting, icc, level, "cluster-level t test on cluster proportions"
    )


def cluster_risk_ratio(
    pilot: Sequence[BinaryCluster],
    comparison: Sequence[BinaryCluster],
    weighting: Weighting = "equal",
    icc: float | None = None,
    level: float = 0.95,
) -> ClusterResult:
    """Return the ratio of geometric mean cluster proportions, pilot/comparison, by a t test on their logs."""
    arms = [_check_binary(pilot), _check_binary(comparison)]
    added = ZERO_EVENTS_ADDED if any(c.events == 0 for arm in arms for c in arm) else 0.0
    summaries = [[math.log((c.events + added) / (c.n + 2 * added)) for c in arm] for arm in arms]
    sizes = [[float(c.n) for c in arm] for arm in arms]
    method = "cluster-level t test on log cluster proportions (ratio of geometric means)"
    return _summary_test(summaries, sizes, weighting, icc, level, method, log=True, added=added)


def cluster_rate_difference(
    pilot: Sequence[RateCluster],
    comparison: Sequence[RateCluster],
    weighting: Weighting = "equal",
    icc: float | None = None,
    level: float = 0.95,
) -> ClusterResult:
    """Return the difference in cluster event rates, pilot − comparison; ``"size"`` weights by exposure."""
    arms = [_check_rates(pilot), _check_rates(comparison)]
    summaries = [[c.events / c.exposure for c in arm] for arm in arms]
    sizes = [[c.exposure for c in arm] for arm in arms]
    return _summary_test(summaries, sizes, weighting, icc, level, "cluster-level t test on cluster rates")


def cluster_rate_ratio(
    pilot: Sequence[RateCluster],
    comparison: Sequence[RateCluster],
    weighting: Weighting = "equal",
    icc: float | None = None,
    level: float = 0.95,
) -> ClusterResult:
    """Return the ratio of geometric mean cluster rates, pilot/comparison, by a t test on log rates.

    With ``"minimum-variance"`` the ``icc`` plays its part for the exposure as for a size.
    """
    arms = [_check_rates(pilot), _check_rates(comparison)]
    added = ZERO_EVENTS_ADDED if any(c.events == 0 for arm in arms for c in arm) else 0.0
    summaries = [[math.log((c.events + added) / c.exposure) for c in arm] for arm in arms]
    sizes = [[c.exposure for c in arm] for arm in arms]
    method = "cluster-level t test on log cluster rates (ratio of geometric means)"
    return _summary_test(summaries, sizes, weighting, icc, level, method, log=True, added=added)


@dataclass(frozen=True)
class CovariateCluster:
    """One cluster's units with the outcome: those with the baseline, and those without it."""

    with_baseline: ArmMoments | None
    without: MissingBaseline | None = None

    @property
    def n(self) -> int:
        """Units with the outcome."""
        return sum(part.n for part in (self.with_baseline, self.without) if part is not None)


def cluster_adjusted_difference(
    pilot: Sequence[CovariateCluster],
    comparison: Sequence[CovariateCluster],
    weighting: Weighting = "equal",
    icc: float | None = None,
    level: float = 0.95,
) -> ClusterResult:
    """Return the baseline-adjusted difference by the two-stage cluster-level method.

    Stage 1 regresses the outcome on the baseline over every unit, ignoring the arm (a unit
    without a baseline takes the mean one, with a missing indicator); stage 2 compares the
    clusters' mean residuals by the cluster-level t test on k₁ + k₀ − 2 df (Hayes & Moulton,
    Cluster Randomised Trials, 2nd ed., 2017, §10.3: the baseline is measured on units, so
    no degree of freedom is lost to it).
    """
    arms = [[c for c in arm if c.n > 0] for arm in (pilot, comparison)]
    intercept, slope, shift, grand_x = _pooled_fit([c for arm in arms for c in arm])
    residuals = [[_mean_residual(c, intercept, slope, shift, grand_x) for c in arm] for arm in arms]
    sizes = [[float(c.n) for c in arm] for arm in arms]
    method = (
        "two-stage cluster-level adjustment: t test on cluster mean residuals from the baseline regression"
    )
    return _summary_test(residuals, sizes, weighting, icc, level, method)


def _pooled_fit(clusters: Sequence[CovariateCluster]) -> tuple[float, float, float, float]:
    """Return (a, b, g, x̄) of y = a + b·(x − x̄) + g·missing over every unit, by least squares."""
    present = [c.with_baseline for c in clusters if c.with_baseline is not None and c.with_baseline.n > 0]
    absent = [c.without for c in clusters if c.without is not None and c.without.n > 0]
    n_present = sum(p.n for p in present)
    if n_present < 3:
        raise ValueError("the adjustment needs at least 3 units with the baseline")
    grand_x = math.fsum(p.n * p.mean_x for p in present) / n_present
    xtx = np.zeros((3, 3))
    xty = np.zeros(3)
    for part in present:
        dx = part.mean_x - grand_x
        row = np.array([1.0, dx, 0.0])
        xtx += part.n * np.outer(row, row)
        xtx[1, 1] += part.sxx
        xty += part.n * part.mean_y * row
        xty[1] += part.sxy
    for part in absent:
        row = np.array([1.0, 0.0, 1.0])
        xtx += part.n * np.outer(row, row)
        xty += part.n * part.mean_y * row
    if xtx[1, 1] <= 1e-12 * n_present:
        raise ValueError("the baseline does not vary: there is nothing to adjust for")
    if not absent:
        xtx[2, 2] = 1.0  # no missing indicator to fit: its coefficient is 0
    a, b, g = np.linalg.solve(xtx, xty)
    return float(a), float(b), float(g), grand_x


def _mean_residual(cluster: CovariateCluster, a: float, b: float, g: float, grand_x: float) -> float:
    total = 0.0
    part = cluster.with_baseline
    if part is not None and part.n:
        total += part.n * (part.mean_y - a - b * (part.mean_x - grand_x))
    gap = cluster.without
    if gap is not None and gap.n:
        total += gap.n * (gap.mean_y - a - g)
    return total / cluster.n


def clusters_needed(individual_n: int, mean_size: float, icc: float, size_cv: float = 0.0) -> int:
    """Return the clusters per arm that carry ``individual_n`` units' worth of information.

    k = ⌈n · DE / m̄⌉ with DE = 1 + ((CV² + 1)·m̄ − 1)·ICC (Eldridge, Ashby & Kerry 2006;
    Hayes & Moulton §7.3 without their optional extra cluster per arm for the t test).
    """
    n = checks.whole("individual_n", individual_n, 1)
    effect = design_effect(mean_size, icc, size_cv)
    # a hair below a whole number is rounding, not a need for one more cluster
    return max(2, math.ceil(n * effect / mean_size - 1e-9))


def binary_as_clusters(arm: Sequence[BinaryCluster]) -> list[Cluster]:
    """Return binary clusters as n, mean and within-cluster sum of squares of their 0/1 values."""
    return [Cluster(c.n, c.events / c.n, c.events - c.events**2 / c.n) for c in _check_binary(arm)]


def icc_within_arms(pilot: Sequence[Cluster], comparison: Sequence[Cluster]) -> float:
    """Return the one-way ANOVA ICC with the arm as a fixed factor, truncated at 0.

    MSB is taken about each arm's own mean on k − 2 df, MSW on N − k df, and the size
    coefficient is n₀ = (N − Σ_arms Σ m²/N_arm)/(k − 2), so unequal cluster sizes are allowed
    for (Donner & Koval 1980, with the arm as a covariate).
    """
    arms = [[c for c in arm if checks.whole("n", c.n, 0) > 0] for arm in (pilot, comparison)]
    k = len(arms[0]) + len(arms[1])
    total = sum(c.n for arm in arms for c in arm)
    if len(arms[0]) < 1 or len(arms[1]) < 1 or k < 3:
        raise ValueError("the ICC needs at least three clusters with units, in both arms")
    if total <= k:
        raise ValueError("the ICC needs a cluster with more than one unit")
    between = squares = 0.0
    for arm in arms:
        size = sum(c.n for c in arm)
        mean = math.fsum(c.n * c.mean for c in arm) / size
        between += math.fsum(c.n * (c.mean - mean) ** 2 for c in arm)
        squares += math.fsum(c.n**2 for c in arm) / size
    between /= k - 2
    within = math.fsum(checks.number("within_ss", c.within_ss) for arm in arms for c in arm) / (total - k)
    n0 = (total - squares) / (k - 2)
    denominator = between + (n0 - 1) * within
    return max(0.0, (between - within) / denominator) if denominator > 0 else 0.0


def rate_cv_within_arms(pilot: Sequence[RateCluster], comparison: Sequence[RateCluster]) -> float:
    """Return k, the between-cluster coefficient of variation of the true rates, pooled over arms (≥ 0).

    A cluster's observed rate r = y/t varies by σ_B² between clusters plus λ/t from Poisson
    counting, so σ_B² = s² − r̄·mean(1/t) in each arm, and k = σ_B/r̄ (the moment estimator of
    Hayes & Bennett 1999); the arms' σ_B² and r̄² are pooled with weights k_arm − 1.
    """
    spread = level = weight = 0.0
    for arm in (_check_rates(pilot), _check_rates(comparison)):
        if len(arm) < 2:
            raise ValueError("each arm needs at least two clusters with exposure")
        rates = [c.events / c.exposure for c in arm]
        mean = math.fsum(rates) / len(rates)
        s2 = math.fsum((r - mean) ** 2 for r in rates) / (len(rates) - 1)
        sigma_b2 = s2 - mean * math.fsum(1 / c.exposure for c in arm) / len(arm)
        spread += (len(arm) - 1) * sigma_b2
        level += (len(arm) - 1) * mean**2
        weight += len(arm) - 1
    if level == 0:
        raise ValueError("there are no events: the rates' variation is undefined")
    return math.sqrt(max(spread / weight, 0.0) / (level / weight))


@dataclass(frozen=True)
class NormalPrior:
    """A normal prior for the effect on the analysis scale (log scale for ratios): mean and SD."""

    mean: float
    sd: float


@dataclass(frozen=True)
class BoardChances:
    """Posterior probabilities for the pilot's effect, each between 0 and 1.

    ``better`` and ``worse`` add to 1; ``clears_margin`` (better by more than the margin)
    and ``harm_beyond_margin`` (worse by more than the margin) are None without a margin.
    The posterior mean and SD are on the analysis scale.
    """

    better: float
    worse: float
    clears_margin: float | None
    harm_beyond_margin: float | None
    posterior_mean: float
    posterior_sd: float
    prior: str

    def words(self, with_gain: bool = True) -> str:
        """Return the chances as a board would read them, e.g. "an 87 % chance the pilot is better".

        ``with_gain`` False leaves out the chance of beating the margin (for a margin that only
        bounds a loss, as a non-inferiority margin does).
        """
        parts = [chance_phrase(self.better, "the pilot is better")]
        if self.clears_margin is not None and with_gain:
            parts.append(chance_phrase(self.clears_margin, "it is better by more than the margin"))
        if self.harm_beyond_margin is not None:
            parts.append(chance_phrase(self.harm_beyond_margin, "it is worse by more than the margin"))
        return "; ".join(parts)


def chance_phrase(probability: float, what: str) -> str:
    """Return "an 87 % chance <what>": the article as the percentage is spoken."""
    return f"{_article(probability)} {percent(probability)} chance {what}"


def percent(probability: float) -> str:
    """Return a probability as a whole percentage, never claiming certainty: "< 1 %" and "> 99 %" at the ends."""
    probability = checks.number("probability", probability)
    if probability < 0.005:
        return "< 1 %"
    if probability > 0.995:
        return "> 99 %"
    return f"{round(probability * 100)} %"


def _article(probability: float) -> str:
    # "an" before 8, 11, 18, 80–89 % spoken aloud; "a" otherwise
    shown = percent(probability)
    return "an" if shown.startswith(("8", "11 ", "18 ")) else "a"


def board_chances(
    estimate: float,
    se: float,
    higher_is_better: bool,
    ratio: bool = False,
    margin: float | None = None,
    prior: NormalPrior | None = None,
) -> BoardChances:
    """Return P(better), P(worse), P(better by more than the margin) and P(worse by more than it).

    ``estimate`` is on its own scale (a ratio for ``ratio``), ``se`` on the analysis scale
    (the log ratio's for a ratio). ``margin`` is a positive difference, or a ratio above 1
    for ratios (1.1: 10 % either way). ``prior`` None is flat: the posterior is then
    N(estimate, se²) on the analysis scale.
    """
    estimate = checks.number("estimate", estimate)
    se = checks.positive("se", se)
    centre = math.log(checks.positive("estimate", estimate)) if ratio else estimate
    if prior is None:
        mean, sd, described = centre, se, "flat prior"
    else:
        prior_sd = checks.positive("prior.sd", prior.sd)
        prior_mean = checks.number("prior.mean", prior.mean)
        precision = 1 / se**2 + 1 / prior_sd**2
        mean = (centre / se**2 + prior_mean / prior_sd**2) / precision
        sd = math.sqrt(1 / precision)
        described = f"normal prior, mean {prior_mean:g}, sd {prior_sd:g} on the analysis scale"
    sign = 1.0 if higher_is_better else -1.0
    # With the effect oriented so that larger is better, P(effect > line) = Φ((mean − line)/sd).
    oriented = sign * mean
    better = tails.norm_sf(-oriented / sd)
    clears = harm = None
    if margin is not None:
        line = math.log(_ratio_margin(margin)) if ratio else checks.positive("margin", margin)
        clears = tails.norm_sf((line - oriented) / sd)
        harm = tails.norm_cdf((-line - oriented) / sd)
    return BoardChances(
        better=better,
        worse=tails.norm_cdf(-oriented / sd),
        clears_margin=clears,
        harm_beyond_margin=harm,
        posterior_mean=mean,
        posterior_sd=sd,
        prior=described,
    )


def _ratio_margin(margin: float) -> float:
    if checks.number("margin", margin) <= 1.0:
        raise ValueError(f"a ratio's margin must be above 1, got {margin}")
    return margin


__all__ = [
    "WEIGHTINGS",
    "BinaryCluster",
    "BoardChances",
    "ClusterResult",
    "CovariateCluster",
    "NormalPrior",
    "RateCluster",
    "Weighting",
    "binary_as_clusters",
    "board_chances",
    "chance_phrase",
    "cluster_adjusted_difference",
    "cluster_mean_difference",
    "cluster_rate_difference",
    "cluster_rate_ratio",
    "cluster_risk_difference",
    "cluster_risk_ratio",
    "clusters_needed",
    "icc_within_arms",
    "percent",
    "rate_cv_within_arms",
]
