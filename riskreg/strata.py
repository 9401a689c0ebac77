"""Results beside the pooled ones: by site (``[design] stratify = "site"``) and baseline-adjusted.

Individually randomised pilots often run at several sites. Beside each metric's pooled
result, the analysis then gives the estimate combined within site (Mantel–Haenszel for
binary and count metrics, inverse-variance for continuous ones), each site's own estimate
and numbers, and Cochran's Q with I², so a board sees whether one site drives the result.
The decision rule still reads the pooled result (README, Analysis).

The per-site, per-arm sums come from the stored observations (each row keeps its site),
of the imports the analysis covers.

A continuous metric with ``covariate = "<baseline metric>"`` is also adjusted for that
baseline (ANCOVA, riskreg.stats.ancova), on the units that have both values; the baseline
is a metric of role ``baseline``, imported as any metric is (a column of the wide form,
rows of the long form).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from riskreg.models import ImportCount, observations
from riskreg.protocol import Protocol
from riskreg.stats.compare import Comparison

NO_SITE = "(no site)"


@dataclass(frozen=True)
class SiteArm:
    """One site's observations of one metric in one arm: units with a value, their sums."""

    n: int
    total: float  # Σ value (events for binary and count metrics)
    squares: float  # Σ (value − mean)², for continuous metrics
    exposure: float


def site_sums(
    session: Session,
    imports: Sequence[int],
    codes: dict[str, tuple[int, str]],
    by_import: bool = False,
    metrics: Sequence[str] | None = None,
) -> dict[str, dict[Any, dict[int, SiteArm]]]:
    """Return {metric: {site: {arm: SiteArm}}} over the given imports' stored observations.

    With ``by_import`` the groups are (site, import id) instead, for designs whose periods
    are the stages (a stepped wedge); ``metrics`` limits the metrics read. One pass: values
    are summed less a shift near their mean (each metric's mean from the imports' counts),
    so squares about each group's mean come from Σd² − (Σd)²/n without the cancellation of
    raw sums.
    """
    o = observations.c
    wanted = [codes[name] for name in (metrics if metrics is not None else list(codes))]
    if not wanted or not imports:
        return {}
    shifts = metric_shifts(session, imports)
    shift = case(*((o.metric == code, shifts.get(code, 0.0)) for code, _kind in wanted), else_=0.0)
    site = func.coalesce(o.site, NO_SITE)
    deviation = o.value - shift
    square = case((func.abs(deviation) < 1e-150, 0.0), else_=deviation * deviation)
    group = [o.metric, site, o.arm, *([o.import_id] if by_import else [])]
    query = (
        select(*group, func.count(o.value), func.sum(deviation), func.sum(square), func.sum(o.exposure))
        .where(o.import_id.in_(list(imports)), o.metric.in_([code for code, _kind in wanted]))
        .group_by(*group)
    )
    names = {code: name for name, (code, _kind) in codes.items()}
    found: dict[str, dict[Any, dict[int, SiteArm]]] = {}
    for row in session.execute(query):
        code, where, arm = row[0], row[1], row[2]
        key = (where, row[3]) if by_import else where
        n, total_d, squares_d, exposure = row[-4:]
        k = shifts.get(code, 0.0)
        total_d, squares_d = total_d or 0.0, squares_d or 0.0
        squares = max(squares_d - total_d * total_d / n, 0.0) if n else 0.0
        found.setdefault(names.get(code, str(code)), {}).setdefault(key, {})[arm] = SiteArm(
            n, total_d + n * k, squares, exposure or 0.0
        )
    return found


def metric_shifts(session: Session, imports: Sequence[int]) -> dict[int, float]:
    """Return each metric's mean present value over the imports, from their kept counts: a shift near every group's mean."""
    c = ImportCount
    rows = session.execute(
        select(c.metric, func.sum(c.total), func.sum(c.n))
        .where(c.import_id.in_(list(imports)))
        .group_by(c.metric)
    )
    return {code: (total or 0.0) / n if n else 0.0 for code, total, n in rows}


def stratified_results(
    session: Session, imports: Sequence[int], protocol: Protocol, codes: dict[str, tuple[int, str]]
) -> dict[str, Any]:
    """Return each metric's site-stratified result (JSON-ready), or {} when the design is not stratified."""
    if protocol.design.stratify is None or not imports:
        return {}
    sums = site_sums(session, imports, codes)
    return {
        metric.name: _metric(metric.kind, sums.get(metric.name, {}))
        for metric in protocol.metrics
        if metric.role != "baseline"
    }


def _metric(kind: str, sites: dict[str, dict[int, SiteArm]]) -> dict[str, Any]:
    from riskreg.stats import stratified as pool

    rows = [_site_row(kind, name, arms) for name, arms in sorted(sites.items())]
    try:
        if kind == "binary":
            strata = [pool.BinaryStratum(round(p.total), p.n, round(c.total), c.n) for p, c in _pairs(sites)]
            result = pool.mh_risk_difference(strata)
        elif kind == "count":
            strata = [pool.RateStratum(p.total, p.exposure, c.total, c.exposure) for p, c in _pairs(sites)]
            result = pool.mh_rate_ratio(strata)
        else:
            strata = [_mean_stratum(p, c) for p, c in _pairs(sites) if p.n > 1 and c.n > 1]
            result = pool.inverse_variance(strata)
    except ValueError as exc:  # too few sites with both arms, no events...
        return {"sites": rows, "estimate": None, "note": f"no stratified estimate: {exc}"}
    spread = result.heterogeneity
    return {
        "method": result.method,
        "level": 0.95,  # each site's data once, not adjusted for the pilot's looks
        "estimate": result.estimate,
        "ci": list(result.ci),
        "p_value": result.p_value,
        "heterogeneity": None
        if spread is None
        else {"q": spread.q, "df": spread.df, "p_value": spread.p_value, "i_squared": spread.i_squared},
        "sites": rows,
    }


def _pairs(sites: dict[str, dict[int, SiteArm]]) -> list[tuple[SiteArm, SiteArm]]:
    """Return (pilot, comparison) sums of every site with units in both arms (arm 1 is the pilot)."""
    return [(arms[1], arms[0]) for _name, arms in sorted(sites.items()) if arms.get(0) and arms.get(1)]


def _mean_stratum(pilot: SiteArm, comparison: SiteArm) -> Any:
    from riskreg.stats.stratified import MeanStratum

    var1, var0 = pilot.squares / (pilot.n - 1), comparison.squares / (comparison.n - 1)
    return MeanStratum(
        pilot.total / pilot.n - comparison.total / comparison.n, var1 / pilot.n + var0 / comparison.n
    )


def _site_row(kind: str, name: str, arms: dict[int, SiteArm]) -> dict[str, Any]:
    """One site's line of the site-by-arm table: units and the summary per arm, and its own estimate."""
    summary = {}
    for index, label in ((0, "comparison"), (1, "pilot")):
        arm = arms.get(index)
        if arm is None or arm.n == 0:
            summary[label] = {"n": 0, "summary": None}
        elif kind == "count":
            rate = arm.total / arm.exposure if arm.exposure > 0 else None
            summary[label] = {"n": arm.n, "events": arm.total, "exposure": arm.exposure, "summary": rate}
        else:
            summary[label] = {"n": arm.n, "summary": arm.total / arm.n}
    return {"site": name, **summary, "estimate": _own_estimate(kind, arms)}


def _own_estimate(kind: str, arms: dict[int, SiteArm]) -> float | None:
    pilot, comparison = arms.get(1), arms.get(0)
    if not pilot or not comparison or not pilot.n or not comparison.n:
        return None
    if kind == "count":
        if not (pilot.exposure and comparison.exposure and comparison.total):
            return None
        ratio = (pilot.total / pilot.exposure) / (comparison.total / comparison.exposure)
        return ratio if math.isfinite(ratio) else None
    return pilot.total / pilot.n - comparison.total / comparison.n


# --- baseline adjustment ----------------------------------------------------------------------


def adjusted_results(
    session: Session, imports: Sequence[int], protocol: Protocol, codes: dict[str, tuple[int, str]]
) -> tuple[dict[str, Any], dict[str, Callable[[float], Comparison]]]:
    """Return each covariate-adjusted metric's ANCOVA result (JSON-ready) and its comparer, by metric name.

    Every unit with the outcome counts once: a unit without its baseline takes the mean
    baseline, with a missing indicator in the model (riskreg.stats.ancova). The comparer
    (alpha → the adjusted comparison at 1 − alpha) is what the decision rule reads for the
    metric, as the protocol pre-specified the adjustment; the JSON result gives the adjusted
    difference at 95 % beside the unadjusted one, with the variance reduction achieved.
    """
    found: dict[str, Any] = {}
    comparers: dict[str, Callable[[float], Comparison]] = {}
    for metric in protocol.metrics:
        if metric.covariate is None or not imports:
            continue
        groups = _baseline_groups(session, imports, codes[metric.name][0], codes[metric.covariate][0])
        found[metric.name] = _ancova_dict(metric.covariate, groups)
        comparers[metric.name] = _ancova_comparer(groups)
    return found, comparers


ADJUSTED_METHOD = (
    "ANCOVA: one common slope on the baseline; a unit without it takes the mean baseline, "
    "with a missing indicator (White & Thompson 2005); t on N − 4 df (N − 3 with no baseline missing)"
)


def _fit(groups: dict[tuple[int, bool], Any], level: float) -> Any:
    from riskreg.stats.ancova import ancova_missing_indicator

    return ancova_missing_indicator(
        groups.get((1, False)), groups.get((0, False)), groups.get((1, True)), groups.get((0, True)), level
    )


def _ancova_comparer(groups: dict[tuple[int, bool], Any]) -> Callable[[float], Comparison]:
    def compare(alpha: float) -> Comparison:
        try:
            found = _fit(groups, 1.0 - alpha)
        except ValueError as exc:
            return Comparison.undefined("continuous", f"ANCOVA: {exc}", alpha, "no-adjusted-estimate")
        return Comparison.of_t(
            "continuous",
            ADJUSTED_METHOD,
            alpha,
            found.difference,
            found.ci,
            found.p_value,
            found.t,
            found.df,
            found.se,
        )

    return compare


def _ancova_dict(covariate: str, groups: dict[tuple[int, bool], Any]) -> dict[str, Any]:
    units = {
        arm: sum(groups[(index, gap)].n for gap in (False, True) if (index, gap) in groups)
        for index, arm in ((0, "comparison"), (1, "pilot"))
    }
    missing = {
        arm: groups[(index, True)].n if (index, True) in groups else 0
        for index, arm in ((0, "comparison"), (1, "pilot"))
    }
    try:
        result = _fit(groups, 0.95)
    except ValueError as exc:
        return {
            "covariate": covariate,
            "units": units,
            "missing_baseline": missing,
            "estimate": None,
            "note": f"no adjusted estimate: {exc}",
        }
    return {
        "covariate": covariate,
        "units": units,
        "missing_baseline": missing,
        "method": ADJUSTED_METHOD,
        "level": 0.95,
        "estimate": result.difference,
        "ci": list(result.ci),
        "p_value": result.p_value,
        "slope": result.slope,
        "unadjusted_estimate": result.unadjusted_difference,
        "variance_reduction": result.variance_reduction,
    }


def _baseline_groups(
    session: Session, imports: Sequence[int], outcome: int, baseline: int, by_site: bool = False
) -> dict[tuple[Any, ...], Any]:
    """Return {(arm, baseline missing): moments} of the units with a value of the outcome.

    Units with the baseline give ArmMoments, those without a MissingBaseline; with
    ``by_site`` the keys are (site, arm, missing), for cluster designs. Each unit's outcome
    and baseline are paired by one grouping of its rows (the observations have no index on
    units, so a join would search), then summed less shifts near the means (one pass).
    """
    from riskreg.stats.ancova import ArmMoments, MissingBaseline

    o = observations.c
    scope = list(imports)
    shifts = metric_shifts(session, scope)
    ky, kx = shifts.get(outcome, 0.0), shifts.get(baseline, 0.0)
    per_unit = (
        select(
            o.arm.label("arm"),
            func.max(case((o.metric == outcome, func.coalesce(o.site, NO_SITE)))).label("site"),
            func.max(case((o.metric == outcome, o.value))).label("y"),
            func.max(case((o.metric == baseline, o.value))).label("x"),
        )
        .where(o.import_id.in_(scope), o.metric.in_([outcome, baseline]))
        .group_by(o.unit_id, o.arm)
        .subquery()
    )
    u = per_unit.c
    dy, dx = u.y - ky, u.x - kx
    guarded = session.get_bind().dialect.name == "postgresql"

    def product(a: Any, b: Any) -> Any:
        # PostgreSQL refuses a product that underflows: a deviation under 1e-150 counts as 0
        # (SQLite rounds it to 0 itself, and the guard would cost a quarter of the query)
        if not guarded:
            return a * b
        return case((func.abs(a) < 1e-150, 0.0), (func.abs(b) < 1e-150, 0.0), else_=a * b)

    gap = case((u.x.is_(None), 1), else_=0)
    keys = [*([u.site] if by_site else []), u.arm, gap]
    query = (
        select(
            *keys,
            func.count(),
            func.sum(dx),
            func.sum(dy),
            func.sum(product(dx, dx)),
            func.sum(product(dy, dy)),
            func.sum(product(dx, dy)),
        )
        .where(u.y.is_not(None))
        .group_by(*keys)
    )
    groups: dict[tuple[Any, ...], Any] = {}
    for row in session.execute(query):
        *key, n, sx, sy, sxx, syy, sxy = row
        sx, sy, sxx, syy, sxy = (v or 0.0 for v in (sx, sy, sxx, syy, sxy))
        group = (*key[:-1], bool(key[-1]))
        centred_yy = max(syy - sy * sy / n, 0.0)
        if key[-1]:
            groups[group] = MissingBaseline(n, ky + sy / n, centred_yy)
        else:
            groups[group] = ArmMoments(
                n, kx + sx / n, ky + sy / n, max(sxx - sx * sx / n, 0.0), centred_yy, sxy - sx * sy / n
            )
    return groups


def baseline_groups_by_site(
    session: Session, imports: Sequence[int], outcome: int, baseline: int
) -> dict[tuple[Any, ...], Any]:
    """Return {(site, arm, baseline missing): moments} of the units with a value of the outcome."""
    return _baseline_groups(session, imports, outcome, baseline, by_site=True)


__all__ = [
    "NO_SITE",
    "SiteArm",
    "adjusted_results",
    "baseline_groups_by_site",
    "site_sums",
    "stratified_results",
]
