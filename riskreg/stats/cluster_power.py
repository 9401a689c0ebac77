"""Power, clusters needed and detectable effects for a parallel cluster-randomised pilot.

A cluster-parallel pilot is analysed by the two-sample t test on the clusters' own summaries
(means, or proportions for a yes/no outcome), unweighted, on k₁ + k₀ − 2 degrees of freedom
(``riskreg.stats.clusters.compare_cluster_means``; Hayes & Moulton, Cluster Randomised Trials,
2nd ed., 2017, §9.2). The plan is for that test:

* a cluster summary of m units has variance σ²·DE/m, with the design effect
  DE = 1 + ((CV² + 1)·m − 1)·ICC (Eldridge, Ashby & Kerry 2006, Int J Epidemiol 35:1292–1300)
  and σ² one unit's variance: sd² for a measurement, p(1 − p) in each arm for a yes/no;
* power is the noncentral t: P(T′ > t_{1 − α/2, df}) with df = k_c + k_p − 2 and
  ncp = distance / √(v_c/k_c + v_p/k_p), where distance is |difference| (two-sided) or the
  benefit plus the margin (non-inferiority at one-sided α/2). As in ``riskreg.stats.power``,
  rejections in the wrong direction are not counted (R's ``strict = FALSE``).

The choice about the degrees of freedom: the design-effect rule k = ⌈n·DE/m⌉ (n from the
normal or large-df formula) gives too few clusters when clusters are few, because the
analysis has only k₁ + k₀ − 2 df. Hayes & Bennett (1999, Int J Epidemiol 28:319–326, eq. 1–3)
and Hayes & Moulton (2017, §7.3) correct that by adding one cluster per arm; CRTSize's
``n4means``/``n4props`` iterate the formula with t quantiles on 2(k − 1) df. Here the
t equation is solved exactly instead (the number of clusters is found where the noncentral-t
power reaches the target, treating k as continuous, then rounded up). With equal cluster sizes
and a normal outcome this is the exact power of the cluster-means t test, since the cluster
means are then independent normals with variance σ²(1 + (m − 1)·ICC)/m (Donner & Klar,
Design and Analysis of Cluster Randomization Trials in Health Research, 2000, §5.2); with
unequal sizes (CV > 0) or proportions it is the usual normal approximation with a t reference.
In practice it adds about one cluster per arm to the design-effect rule when clusters are few,
and none when they are many.

Pure: numbers in, numbers and frozen dataclasses out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import optimize as _optimize
from scipy import special

from riskreg.stats import checks
from riskreg.stats.clusters import design_effect

# more clusters than any pilot has: the search for a size stops here
MAX_CLUSTERS = 1e7


@dataclass(frozen=True)
class ClusterPower:
    """The t test on cluster summaries: its power, standard error and degrees of freedom."""

    power: float
    se: float
    df: float
    clusters: tuple[float, float]  # (comparison, pilot)


def summary_variance(unit_variance: float, mean_size: float, icc: float, size_cv: float = 0.0) -> float:
    """Return the variance of one cluster's summary: σ²·DE/m (Eldridge, Ashby & Kerry 2006)."""
    unit_variance = checks.positive("unit_variance", unit_variance)
    mean_size = checks.number("mean_size", mean_size)
    if mean_size < 1:
        raise ValueError(f"mean_size must be at least 1, got {mean_size}")
    if not 0.0 <= checks.number("icc", icc) < 1.0:
        raise ValueError(f"icc must be at least 0 and below 1, got {icc}")
    return unit_variance * design_effect(mean_size, icc, size_cv) / mean_size


def _check_variances(variances: tuple[float, float]) -> tuple[float, float]:
    v_c, v_p = variances
    return checks.positive("variance_comparison", v_c), checks.positive("variance_pilot", v_p)


def _check_clusters(clusters: tuple[float, float]) -> tuple[float, float]:
    k_c, k_p = (
        checks.number(name, k) for name, k in zip(("clusters", "clusters_pilot"), clusters, strict=True)
    )
    for name, k in (("clusters", k_c), ("clusters_pilot", k_p)):
        if k < 2:
            raise ValueError(f"{name} must be at least 2, got {k:g}")
    return k_c, k_p


def t_power(
    distance: float, variances: tuple[float, float], clusters: tuple[float, float], alpha: float = 0.05
) -> ClusterPower:
    """Return the power of the t test on cluster summaries to detect ``distance``.

    ``variances`` are the summaries' variances (comparison, pilot), ``clusters`` the
    clusters per arm (may be fractional while a size is searched for); df = k_c + k_p − 2.
    """
    distance = checks.number("distance", distance)
    v_c, v_p = _check_variances(variances)
    k_c, k_p = _check_clusters(clusters)
    alpha = checks.open_unit("alpha", alpha)
    df = k_c + k_p - 2.0
    se = math.sqrt(v_c / k_c + v_p / k_p)
    critical = special.stdtrit(df, 1.0 - alpha / 2.0)
    power = float(1.0 - special.nctdtr(df, distance / se, critical))
    return ClusterPower(power=power, se=se, df=df, clusters=(k_c, k_p))


def t_distance(
    power: float, variances: tuple[float, float], clusters: tuple[float, float], alpha: float = 0.05
) -> float:
    """Return the distance the t test on cluster summaries detects with ``power`` (the inverse of t_power)."""
    power, alpha = checks.open_unit("power", power), checks.open_unit("alpha", alpha)
    v_c, v_p = _check_variances(variances)
    k_c, k_p = _check_clusters(clusters)
    df = k_c + k_p - 2.0
    critical = special.stdtrit(df, 1.0 - alpha / 2.0)
    ncp = float(special.nctdtrinc(df, 1.0 - power, critical))
    if not math.isfinite(ncp):
        raise ValueError(f"no finite effect reaches power {power} with {k_c:g} and {k_p:g} clusters")
    return ncp * math.sqrt(v_c / k_c + v_p / k_p)


def clusters_for_power(
    distance: float,
    variances: tuple[float, float],
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> float:
    """Return the comparison arm's clusters k (continuous) at which the t test reaches ``power``.

    The pilot arm has k·ratio clusters; both arms have at least 2, so the smallest k is
    max(2, 2/ratio). Round up (and multiply by ``ratio``, then round up) for whole clusters.
    """
    distance = checks.positive("distance", distance)
    power, alpha = checks.open_unit("power", power), checks.open_unit("alpha", alpha)
    ratio = checks.positive("ratio", ratio)
    _check_variances(variances)

    def short(k: float) -> float:
        return t_power(distance, variances, (k, k * ratio), alpha).power - power

    low = max(2.0, 2.0 / ratio)
    if short(low) >= 0:
        return low
    if short(MAX_CLUSTERS) < 0:
        raise ValueError(f"distance {distance:g} needs more than {MAX_CLUSTERS:g} clusters per arm")
    return float(_optimize.brentq(short, low, MAX_CLUSTERS, xtol=1e-10, rtol=1e-12))


def binary_variances(
    p_comparison: float, p_pilot: float, mean_size: float, icc: float, size_cv: float = 0.0
) -> tuple[float, float]:
    """Return the variances of the two arms' cluster proportions: p(1 − p)·DE/m each."""
    p_c = checks.open_unit("p_comparison", p_comparison)
    p_p = checks.open_unit("p_pilot", p_pilot)
    return (
        summary_variance(p_c * (1 - p_c), mean_size, icc, size_cv),
        summary_variance(p_p * (1 - p_p), mean_size, icc, size_cv),
    )


def binary_mde(
    p_comparison: float,
    clusters: tuple[int, int],
    mean_size: float,
    icc: float,
    size_cv: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
    decrease: bool = False,
    margin: float = 0.0,
) -> float:
    """Return the change in proportion, p_pilot − p_comparison, the clusters detect with ``power``.

    An increase, or with ``decrease`` a (negative) decrease. With a non-inferiority
    ``margin`` the better direction is the decrease when ``decrease`` is set, and the result
    is the true change at which non-inferiority is shown with that power.
    """
    p_c = checks.open_unit("p_comparison", p_comparison)
    power = checks.open_unit("power", power)
    margin = checks.number("margin", margin)
    sign = -1.0 if decrease else 1.0

    def power_at(change: float) -> float:
        p_p = p_c + sign * change
        distance = change + margin if margin > 0 else change
        variances = binary_variances(p_c, p_p, mean_size, icc, size_cv)
        return t_power(distance, variances, clusters, alpha).power

    start = -margin + 1e-9 if margin > 0 else 1e-9
    top = (p_c if decrease else 1.0 - p_c) - 1e-9
    start = max(start, -((1.0 - p_c) if decrease else p_c) + 1e-9)  # p_pilot stays inside (0, 1)
    return sign * _first_crossing(power_at, power, start, top)


def _first_crossing(power_at: Callable[[float], float], target: float, low: float, high: float) -> float:
    """Return the smallest x in [low, high] where power_at(x) reaches target (found on a grid, then exactly)."""
    if power_at(low) >= target:
        return low
    grid = [low + (high - low) * i / 400 for i in range(1, 401)]
    previous = low
    for x in grid:
        if power_at(x) >= target:
            return float(_optimize.brentq(lambda y: power_at(y) - target, previous, x, xtol=1e-12))
        previous = x
    raise ValueError(f"no change in proportion reaches power {target} with these clusters")


__all__ = [
    "MAX_CLUSTERS",
    "ClusterPower",
    "binary_mde",
    "binary_variances",
    "clusters_for_power",
    "summary_variance",
    "t_distance",
    "t_power",
]
