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

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from riskreg.models import observations
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
    session: Session, imports: Sequence[int], codes: dict[str, tuple[int, str]], by_import: bool = False
) -> dict[str, dict[Any, dict[int, SiteArm]]]:
    """Return {metric: {site: {arm: SiteArm}}} over the given imports' stored observations.

    With ``by_import`` the groups are (site, import id) instead, for designs whose periods
    are the stages (a stepped wedge). Squares are taken about each group's own mean (a
    second pass in the database), so a variance never comes from a raw sum of squares.
    """
    o = observations.c
    site = func.coalesce(o.site, NO_SITE)
    scope = o.import_id.in_(list(imports))
    keys = [o.metric, site.label("site"), o.arm, *([o.import_id] if by_import else [])]
    means = select(*keys, func.avg(o.value).label("mean")).where(scope).group_by(*keys).subquery()
    deviation = o.value - means.c.mean
    square = case((func.abs(deviation) < 1e-150, 0.0), else_=deviation * deviation)
    joined = [means.c.metric == o.metric, means.c.site == site, means.c.arm == o.arm]
    if by_import:
        joined.append(means.c.import_id == o.import_id)
    group = [o.metric, means.c.site, o.arm, *([o.import_id] if by_import else [])]
    query = (
        select(
            *group,
            func.count(o.value),
            func.sum(o.value),
            func.sum(square),
            func.sum(o.exposure),
        )
        .join(means, and_(*joined))
        .where(scope)
        .group_by(*group)
    )
    names = {code: name for name, (code, _kind) in codes.items()}
    found: dict[str, dict[Any, dict[int, SiteArm]]] = {}
    for row in session.execute(query):
        code, where, arm = row[0], row[1], row[2]
        key = (where, row[3]) if by_import else where
        n, total, squares, exposure = row[-4:]
        found.setdefault(names.get(code, str(code)), {}).setdefault(key, {})[arm] = SiteArm(
            n, total or 0.0, squares or 0.0, exposure or 0.0
        )
    return found


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
            return Comparison(
                kind="continuous",
                method=f"ANCOVA: {exc}",
                estimate=None,
                ci_low=None,
                ci_high=None,
                ci_level=1.0 - alpha,
                p_value=None,
                statistic=None,
                df=None,
                effect_size=None,
                se=None,
                warnings=("no-adjusted-estimate",),
            )
        return Comparison(
            kind="continuous",
            method=ADJUSTED_METHOD,
            estimate=found.difference,
            ci_low=found.ci[0],
            ci_high=found.ci[1],
            ci_level=1.0 - alpha,
            p_value=found.p_value,
            statistic=found.t,
            df=float(found.df),
            effect_size=None,
            se=found.se,
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
    ``by_site`` the keys are (site, arm, missing), for cluster designs. Deviations are
    taken about each group's own means (a second pass in the database).
    """
    from riskreg.stats.ancova import ArmMoments, MissingBaseline

    y, x = observations.alias("y"), observations.alias("x")
    scope = list(imports)
    site = [func.coalesce(y.c.site, NO_SITE).label("site")] if by_site else []
    rows = (
        select(
            *site,
            y.c.arm.label("arm"),
            case((x.c.value.is_(None), 1), else_=0).label("gap"),
            y.c.value.label("y"),
            x.c.value.label("x"),
        )
        .outerjoin(
            x,
            and_(
                x.c.unit_id == y.c.unit_id,
                x.c.arm == y.c.arm,
                x.c.metric == baseline,
                x.c.import_id.in_(scope),
                x.c.value.is_not(None),
            ),
        )
        .where(y.c.metric == outcome, y.c.import_id.in_(scope), y.c.value.is_not(None))
        .subquery()
    )
    keys = [*([rows.c.site] if by_site else []), rows.c.arm, rows.c.gap]
    means = (
        select(*keys, func.avg(rows.c.x).label("mx"), func.avg(rows.c.y).label("my"))
        .group_by(*keys)
        .subquery()
    )
    dx, dy = rows.c.x - means.c.mx, rows.c.y - means.c.my

    def product(a: Any, b: Any) -> Any:
        # PostgreSQL refuses a product that underflows: a deviation under 1e-150 counts as 0
        return case((func.abs(a) < 1e-150, 0.0), (func.abs(b) < 1e-150, 0.0), else_=a * b)

    query = (
        select(
            *keys,
            func.count(),
            means.c.mx,
            means.c.my,
            func.sum(product(dx, dx)),
            func.sum(product(dy, dy)),
            func.sum(product(dx, dy)),
        )
        .join(means, and_(*(means.c[key.name] == key for key in keys)))
        .group_by(*keys, means.c.mx, means.c.my)
    )
    groups: dict[tuple[Any, ...], Any] = {}
    for row in session.execute(query):
        *key, n, mx, my, sxx, syy, sxy = row
        gap = bool(key[-1])
        group = (*key[:-1], gap)
        if gap:
            groups[group] = MissingBaseline(n, my, syy or 0.0)
        else:
            groups[group] = ArmMoments(n, mx, my, sxx or 0.0, syy or 0.0, sxy or 0.0)
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
