"""Cluster-randomised pilots: the ICC, the design effect, and a cluster-level comparison.

When teams, practices or estates are allocated instead of people, units in one cluster
are alike, and an analysis that treats them as independent gives intervals that are too
narrow. With few clusters the dependable analysis compares the clusters' own summaries
(Hayes & Moulton, Cluster Randomised Trials, 2nd ed., 2017, ch. 9): a two-sample t test on
the cluster means, unweighted, on k₁ + k₀ − 2 degrees of freedom. The one-way ANOVA
estimator of the ICC (Donner & Koval 1980; with n₀ for unequal sizes) and the design
effect 1 + ((CV² + 1)·m̄ − 1)·ICC (Eldridge, Ashby & Kerry 2006) say how much information
the clustering cost. Pure: numbers in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, pstdev

from riskreg.stats import checks, tails


@dataclass(frozen=True)
class Cluster:
    """One cluster's units with a value, their mean, and the sum of squares about that mean."""

    n: int
    mean: float
    within_ss: float


@dataclass(frozen=True)
class Clustering:
    """What the clustering cost: the ICC, the design effect and the effective sample size."""

    icc: float
    design_effect: float
    effective_n: float
    mean_size: float
    size_cv: float


@dataclass(frozen=True)
class ClusterComparison:
    """Pilot − comparison on the cluster means: estimate, interval and t test on k₁ + k₀ − 2 df."""

    estimate: float
    ci: tuple[float, float]
    se: float
    t: float
    df: int
    p_value: float
    clusters: tuple[int, int]  # (pilot, comparison)
    method: str = "two-sample t test on the cluster means (unweighted)"


def icc_anova(clusters: Sequence[Cluster]) -> float:
    """Return the one-way ANOVA estimate of the ICC, truncated at 0 (n₀ for unequal cluster sizes)."""
    used = [c for c in clusters if checks.whole("n", c.n, 0) > 0]
    if len(used) < 2:
        raise ValueError("the ICC needs at least two clusters with units")
    total = sum(c.n for c in used)
    if total <= len(used):
        raise ValueError("the ICC needs a cluster with more than one unit")
    grand = math.fsum(c.n * c.mean for c in used) / total
    between = math.fsum(c.n * (c.mean - grand) ** 2 for c in used) / (len(used) - 1)
    within = math.fsum(c.within_ss for c in used) / (total - len(used))
    n0 = (total - math.fsum(c.n**2 for c in used) / total) / (len(used) - 1)
    denominator = between + (n0 - 1) * within
    return max(0.0, (between - within) / denominator) if denominator > 0 else 0.0


def design_effect(mean_size: float, icc: float, size_cv: float = 0.0) -> float:
    """Return 1 + ((CV² + 1)·m̄ − 1)·ICC: the variance inflation of a cluster design (Eldridge et al. 2006)."""
    mean_size = checks.positive("mean_size", mean_size)
    if not 0.0 <= checks.number("icc", icc) <= 1.0:
        raise ValueError(f"icc must be between 0 and 1, got {icc}")
    if checks.number("size_cv", size_cv) < 0:
        raise ValueError(f"size_cv must be >= 0, got {size_cv}")
    return 1.0 + ((size_cv**2 + 1.0) * mean_size - 1.0) * icc


def clustering(clusters: Sequence[Cluster]) -> Clustering:
    """Return the estimated ICC, the design effect at the clusters' sizes and the effective n."""
    sizes = [c.n for c in clusters if c.n > 0]
    icc = icc_anova(clusters)
    mean_size = fmean(sizes)
    cv = pstdev(sizes) / mean_size if len(sizes) > 1 else 0.0
    effect = design_effect(mean_size, icc, cv)
    return Clustering(icc, effect, sum(sizes) / effect, mean_size, cv)


def compare_cluster_means(
    pilot: Sequence[Cluster], comparison: Sequence[Cluster], level: float = 0.95
) -> ClusterComparison:
    """Return the difference in mean cluster means, pilot − comparison, with its t interval and test."""
    level = checks.open_unit("level", level)
    ones = [c.mean for c in pilot if c.n > 0]
    zeros = [c.mean for c in comparison if c.n > 0]
    if len(ones) < 2 or len(zeros) < 2:
        raise ValueError("each arm needs at least two clusters with units")
    df = len(ones) + len(zeros) - 2
    pooled = (
        math.fsum((m - fmean(ones)) ** 2 for m in ones) + math.fsum((m - fmean(zeros)) ** 2 for m in zeros)
    ) / df
    se = math.sqrt(pooled * (1 / len(ones) + 1 / len(zeros)))
    estimate = fmean(ones) - fmean(zeros)
    if se == 0:
        raise ValueError("the cluster means do not vary: no interval")
    t = estimate / se
    half = tails.t_isf((1 - level) / 2, df) * se
    return ClusterComparison(
        estimate=estimate,
        ci=(estimate - half, estimate + half),
        se=se,
        t=t,
        df=df,
        p_value=2 * tails.t_sf(abs(t), df),
        clusters=(len(ones), len(zeros)),
    )


__all__ = [
    "Cluster",
    "ClusterComparison",
    "Clustering",
    "clustering",
    "compare_cluster_means",
    "design_effect",
    "icc_anova",
]
