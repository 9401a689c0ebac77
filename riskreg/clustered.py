"""Results for cluster designs: the cluster-level analysis that the decision rule reads.

When whole clusters (teams, wards, GP practices, estates) are allocated (``[design] unit =
"cluster"``), units of one cluster resemble each other, and an analysis as if units had
been randomised one by one gives intervals that are too narrow. The analysis then rests on
the clusters themselves, and the gate, the boundaries and the probabilities read it:

* **cluster-parallel**: each cluster's summary (mean, proportion, or log event rate) per
  arm, compared by a t test on k₁ + k₀ − 2 degrees of freedom, with ``[design] weighting``
  "equal" (the default: each cluster counts once, valid with few clusters; Hayes & Moulton,
  Cluster Randomised Trials, 2nd ed., 2017, §9.2), "size" or "minimum-variance"
  (riskreg.stats.designs). Counts are compared as the ratio of geometric mean cluster rates.
  Beside it: the ICC estimated within arms, the design effect at the clusters' sizes and
  the effective sample size (riskreg.stats.clusters). A metric with a covariate is adjusted
  by the two-stage method (Hayes & Moulton §10.3): the outcome regressed on the baseline
  over every unit, ignoring the arm, then the clusters' mean residuals compared the same way;
* **stepped wedge**: the stages are the periods. Every cluster starts in the comparison arm
  and crosses to the pilot at the stage its schedule names; the Hussey–Hughes mixed model
  (period fixed effects, random cluster intercept, REML; riskreg.stats.stepped) is fitted to
  the cluster-by-stage cells, with a t reference on clusters − 2 df (conservative with few
  clusters). Binary metrics are analysed on the risk-difference scale, as Hussey & Hughes did.

Everything comes from per-cluster, per-arm (and per-stage) counts, sums and sums of
squares that the database computes from the stored observations (riskreg.strata.site_sums).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg.models import DataImport
from riskreg.protocol import Design, Metric, Protocol
from riskreg.stats.compare import Comparison
from riskreg.strata import NO_SITE, SiteArm, baseline_groups_by_site, site_sums

Comparer = Callable[[float], Comparison]  # alpha → the comparison at level 1 − alpha


@dataclass(frozen=True)
class ClusterAnalysis:
    """Each metric's comparer (by name) for the decision rule, and what the report shows of the clusters."""

    comparers: dict[str, Comparer]
    details: dict[str, Any]
    clusters: dict[str, int]  # arm → clusters with any observation (parallel), or all clusters (stepped)
    # metrics with a covariate: the two-stage adjusted result beside the unadjusted one
    adjusted: dict[str, Any] = field(default_factory=dict)


def cluster_analysis(
    session: Session, imports: Sequence[int], protocol: Protocol, codes: dict[str, tuple[int, str]]
) -> ClusterAnalysis:
    """Return the cluster-level comparers and details for a cluster design's metrics at this look."""
    design = protocol.design
    metrics = [m for m in protocol.metrics if m.role != "baseline"]
    if design.stepped:
        stages = _import_stages(session, imports)
        sums = site_sums(session, imports, codes, by_import=True, metrics=[m.name for m in metrics])
        cells = {m.name: _stage_cells(sums.get(m.name, {}), stages) for m in metrics}
        found = {m.name: _stepped(m, cells[m.name], design) for m in metrics}
        named = {cluster for by_metric in cells.values() for (cluster, _stage) in by_metric}
        arms = {design.comparison: len(named), design.pilot: len(named)}
    else:
        # a metric with a covariate has its cluster sums from the pairing of outcome and baseline
        paired = [m for m in metrics if m.covariate is not None]
        sums = site_sums(session, imports, codes, metrics=[m.name for m in metrics if m.covariate is None])
        groups = {
            m.name: baseline_groups_by_site(session, imports, codes[m.name][0], codes[m.covariate][0])
            for m in paired
            if m.covariate is not None
        }
        sums.update({name: _outcome_sums(by_site) for name, by_site in groups.items()})
        found = {m.name: _parallel(m, sums.get(m.name, {}), design) for m in metrics}
        arms = {
            arm: len(
                {
                    site
                    for by_metric in sums.values()
                    for site, by_arm in by_metric.items()
                    if index in by_arm and site != NO_SITE
                }
            )
            for index, arm in enumerate(design.arms)
        }
    comparers = {name: comparer for name, (comparer, _details) in found.items()}
    adjusted: dict[str, Any] = {}
    if not design.stepped:
        for metric in paired:
            comparers[metric.name], adjusted[metric.name] = _adjusted(
                metric, groups[metric.name], design, comparers[metric.name]
            )
    return ClusterAnalysis(
        comparers=comparers,
        details={name: details for name, (_comparer, details) in found.items()},
        clusters=arms,
        adjusted=adjusted,
    )


def _outcome_sums(groups: dict[tuple[Any, ...], Any]) -> dict[str, dict[int, SiteArm]]:
    """Return {site: {arm: SiteArm}} of the outcome from its pairing with the baseline (units with and without one)."""
    found: dict[str, dict[int, SiteArm]] = {}
    for (site, arm, _gap), part in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])
    ):
        sums = SiteArm(part.n, part.n * part.mean_y, part.syy, 0.0)
        held = found.setdefault(site, {}).get(arm)
        found[site][arm] = sums if held is None else _merged(held, sums)
    return found


def _adjusted(
    metric: Metric, groups: dict[tuple[Any, ...], Any], design: Design, unadjusted: Comparer
) -> tuple[Comparer, dict[str, Any]]:
    """The two-stage cluster-level baseline adjustment's comparer, and its 95 % result beside the unadjusted one."""
    from riskreg.stats import designs

    parts: dict[tuple[str, int], dict[bool, Any]] = {}
    for (site, arm, gap), moments in groups.items():
        parts.setdefault((site, arm), {})[gap] = moments
    arms = [
        [
            designs.CovariateCluster(held.get(False), held.get(True))
            for (_site, a), held in sorted(parts.items())
            if a == index
        ]
        for index in (1, 0)
    ]
    method = (
        "two-stage cluster-level adjustment for the baseline (Hayes & Moulton 2017, §10.3): the outcome regressed "
        "on the baseline over every unit, ignoring the arm (a missing baseline takes the mean, with a missing "
        "indicator); the clusters' mean residuals compared by the cluster-level t test"
    )

    def compare(alpha: float) -> Comparison:
        try:
            found = designs.cluster_adjusted_difference(
                arms[0], arms[1], weighting=design.weighting, icc=design.icc, level=1.0 - alpha
            )
        except (ValueError, ArithmeticError) as exc:
            return _no_comparison(metric.kind, alpha, f"cluster-level adjustment: {exc}")
        return Comparison.of_t(
            metric.kind,
            f"{method}, {found.weighting} weights, {found.df} df",
            alpha,
            found.estimate,
            found.ci,
            found.p_value,
            found.t,
            found.df,
            found.se,
        )

    at_95, plain = compare(0.05), unadjusted(0.05)
    missing = {
        name: sum(m.n for (_s, a, gap), m in groups.items() if gap and a == index)
        for index, name in enumerate(design.arms)
    }
    units = {
        name: sum(m.n for (_s, a, _g), m in groups.items() if a == index)
        for index, name in enumerate(design.arms)
    }
    result: dict[str, Any] = {
        "covariate": metric.covariate,
        "units": units,
        "missing_baseline": missing,
        "method": method,
    }
    if at_95.estimate is None:
        result.update(estimate=None, note=f"no adjusted estimate: {at_95.method}")
    else:
        reduction = 1 - (at_95.se / plain.se) ** 2 if plain.se else None
        result.update(
            level=0.95,
            estimate=at_95.estimate,
            ci=[at_95.ci_low, at_95.ci_high],
            p_value=at_95.p_value,
            unadjusted_estimate=plain.estimate,
            variance_reduction=reduction,
        )
    return compare, result


# --- cluster-parallel ----------------------------------------------------------------------


def _parallel(
    metric: Metric, sites: dict[str, dict[int, SiteArm]], design: Design
) -> tuple[Comparer, dict[str, Any]]:
    from riskreg.stats import designs

    named = {
        site: arms for site, arms in sites.items() if site != NO_SITE
    }  # rows without a cluster are no cluster
    pilot = [arms[1] for _site, arms in sorted(named.items()) if arms.get(1) and arms[1].n]
    comparison = [arms[0] for _site, arms in sorted(named.items()) if arms.get(0) and arms[0].n]
    details: dict[str, Any] = {
        "clusters": {design.comparison: len(comparison), design.pilot: len(pilot)},
        "weighting": design.weighting,
        "unassigned_units": sum(arm.n for arm in sites.get(NO_SITE, {}).values()),
    }
    if metric.kind == "count":
        groups: tuple[Any, Any] = (
            [designs.RateCluster(a.total, a.exposure) for a in pilot],
            [designs.RateCluster(a.total, a.exposure) for a in comparison],
        )
        test = designs.cluster_rate_ratio
        details.update(_rate_spread(*groups))
    else:
        if metric.kind == "binary":
            groups = (
                [designs.BinaryCluster(a.n, round(a.total)) for a in pilot],
                [designs.BinaryCluster(a.n, round(a.total)) for a in comparison],
            )
            test = designs.cluster_risk_difference
            as_means = (designs.binary_as_clusters(groups[0]), designs.binary_as_clusters(groups[1]))
        else:
            groups = (_means(pilot), _means(comparison))
            test = designs.cluster_mean_difference
            as_means = groups
        details.update(_clustering(*as_means))
    icc = details.get("icc")
    if design.weighting == "minimum-variance" and icc is None:
        icc = design.icc  # too few clusters to estimate it: the planning assumption

    def compare(alpha: float) -> Comparison:
        try:
            found = test(groups[0], groups[1], weighting=design.weighting, icc=icc, level=1.0 - alpha)
        except ValueError as exc:
            return _no_comparison(metric.kind, alpha, f"cluster-level t test: {exc}")
        note = (
            f"; {found.zero_correction:g} added to each cluster's events (a cluster had none)"
            if found.zero_correction
            else ""
        )
        return Comparison.of_t(
            metric.kind,
            f"{found.method}, {found.weighting} weights, {found.df} df ({found.clusters[0]} + "
            f"{found.clusters[1]} clusters − 2){note}",
            alpha,
            found.estimate,
            found.ci,
            found.p_value,
            found.t,
            found.df,
            found.se,
        )

    return compare, details


def _means(arms: list[SiteArm]) -> list[Any]:
    from riskreg.stats.clusters import Cluster

    return [Cluster(a.n, a.total / a.n, a.squares) for a in arms]


def _clustering(pilot: list[Any], comparison: list[Any]) -> dict[str, Any]:
    """The ICC within arms, the design effect at the clusters' sizes and the effective n (None if too few clusters)."""
    from riskreg.stats import clusters, designs

    sizes = [c.n for c in (*pilot, *comparison)]
    try:
        icc = designs.icc_within_arms(pilot, comparison)
    except ValueError as exc:
        return {"icc": None, "design_effect": None, "effective_n": None, "note": f"no ICC: {exc}"}
    mean = sum(sizes) / len(sizes)
    cv = math.sqrt(sum((s - mean) ** 2 for s in sizes) / len(sizes)) / mean
    effect = clusters.design_effect(mean, icc, cv)
    return {
        "icc": icc,
        "design_effect": effect,
        "effective_n": sum(sizes) / effect,
        "mean_cluster_size": mean,
        "size_cv": cv,
        "icc_method": "one-way ANOVA within arms (n₀ for unequal sizes), truncated at 0",
    }


def _rate_spread(pilot: list[Any], comparison: list[Any]) -> dict[str, Any]:
    from riskreg.stats import designs

    try:
        k = designs.rate_cv_within_arms(pilot, comparison)
    except ValueError as exc:
        return {"rate_cv": None, "note": f"no between-cluster variation: {exc}"}
    return {
        "rate_cv": k,
        "rate_cv_method": "between-cluster coefficient of variation of rates (Hayes & Bennett 1999)",
    }


def _no_comparison(kind: str, alpha: float, why: str) -> Comparison:
    return Comparison.undefined(kind, why, alpha, "too-few-clusters")


# --- stepped wedge -------------------------------------------------------------------------


def _import_stages(session: Session, imports: Sequence[int]) -> dict[int, int]:
    """Return {import id: stage index} of the given imports."""
    rows = session.execute(
        select(DataImport.id, DataImport.stage_index).where(DataImport.id.in_(list(imports)))
    )
    return {import_id: stage for import_id, stage in rows}


def _stage_cells(
    groups: dict[tuple[str, int], dict[int, SiteArm]], stages: dict[int, int]
) -> dict[tuple[str, int], tuple[int, SiteArm]]:
    """Merge each cluster's imports of one stage into one cell: {(cluster, stage): (arm, sums)}."""
    cells: dict[tuple[str, int], tuple[int, SiteArm]] = {}
    for (cluster, import_id), arms in groups.items():
        for arm, sums in arms.items():
            if sums.n == 0:
                continue
            key = (cluster, stages[import_id])
            held = cells.get(key)
            cells[key] = (arm, sums if held is None else _merged(held[1], sums))
    return cells


def _merged(a: SiteArm, b: SiteArm) -> SiteArm:
    """Pool two groups' sums; squares about the pooled mean (Chan, Golub & LeVeque 1979)."""
    n = a.n + b.n
    delta = b.total / b.n - a.total / a.n
    return SiteArm(
        n, a.total + b.total, a.squares + b.squares + delta * delta * a.n * b.n / n, a.exposure + b.exposure
    )


def _stepped(
    metric: Metric, cells: dict[tuple[str, int], tuple[int, SiteArm]], design: Design
) -> tuple[Comparer, dict[str, Any]]:
    from riskreg.stats import stepped

    shaped = [
        stepped.Cell(cluster, stage, arm == 1, sums.n, sums.total / sums.n, sums.squares)
        for (cluster, stage), (arm, sums) in sorted(cells.items())
    ]
    clusters = sorted({cell.cluster for cell in shaped})
    df = max(len(clusters) - 2, 1)
    details: dict[str, Any] = {
        "clusters": len(clusters),
        "periods": len({cell.period for cell in shaped}),
        "df": df,
    }
    fitted: dict[str, Any] = {}

    def compare(alpha: float) -> Comparison:
        # REML once per look: the other levels reuse its variance components (the same GLS fit)
        known = (fitted["sigma2"], fitted["tau2"]) if fitted and fitted["sigma2"] > 0 else None
        try:
            found = stepped.hussey_hughes_fit(shaped, level=1.0 - alpha, df=df, components=known)
        except (ValueError, ArithmeticError) as exc:
            return _no_comparison(metric.kind, alpha, f"Hussey–Hughes model: {exc}")
        if not fitted:
            fitted.update(tau2=found.tau2, sigma2=found.sigma2, icc=found.icc, method=found.method)
        return Comparison.of_t(
            metric.kind,
            f"{fitted['method']}; t on {df} df (clusters − 2); stages are the periods",
            alpha,
            found.estimate,
            found.ci,
            found.p_value,
            found.statistic,
            df,
            found.se,
        )

    details["model"] = fitted  # filled by the first comparison: the variance components
    return compare, details


__all__ = ["ClusterAnalysis", "Comparer", "cluster_analysis"]
