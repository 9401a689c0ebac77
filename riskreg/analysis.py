"""Pilot analysis: database → sufficient statistics → statistics → recommendation (DESIGN §5).

``analyse`` reads a pilot's data cumulatively up to a stage as per-arm sufficient
statistics: those each import kept per metric and arm as it streamed (``import_counts``),
so raw values never leave the database and neither time nor memory grows with the number
of observations (only distinct units across several imports are counted from them). It
compares the pilot arm with the comparison arm for every metric, applies the
pre-registered tests, Holm's adjustment for secondary metrics and the Lan–DeMets
O'Brien–Fleming-type boundary for the primary metric at this look (``riskreg.looks``: the
gate decisions are the looks), checks the sample ratio and the progression criteria,
computes the primary's conditional power (futility), totals the costs, and recommends
``proceed``, ``adapt``, ``continue`` or ``stop`` by the rule in ``riskreg.recommend``.
``judge_look`` is everything after the database: the simulation test calls it directly.

Choices worth knowing (each is also stated in the output's ``method`` strings):

* The primary metric's ``ci`` is at the boundary-adjusted level: with this look's critical
  value b, the nominal two-sided level is 1 − α′ with α′ = 2(1 − Φ(b)); equivalence uses the
  1 − 2α′ interval for TOST, as the fixed design uses 1 − 2α.  (Welch's interval uses the t
  quantile at that level, so its critical value is t rather than exactly b.)  The primary's
  verdict, including harm, comes from that interval; the fixed-level (1 − α) interval and
  verdict are reported under ``nominal``.
* Secondary metrics: CI and verdict at 1 − α; ``p_adjusted`` is Holm's over the secondary
  p-values.  A verdict that rests on a p-value no longer below α after Holm is flagged in
  ``warnings``.  Safety metrics are unadjusted (``p_adjusted`` = ``p_value``).
* Harm (for ``stop``) is a CI entirely on the worse side: verdict ``harm`` or ``inferior``.
* Units: distinct ``unit_id`` per arm with any observation up to the stage.  A stage's
  planned n is compared with the smaller arm's units (recruited); the information fraction
  uses the units with a primary outcome (their harmonic mean over the arms).
* A unit is counted once per metric: imports refuse a repeat from an earlier stage; data
  imported before that check that hold a unit twice are summarised from the observations,
  each unit's first value counting (``_summaries_once``).
* Futility is the conditional power under the drift the planned final n was sized for
  (not the current trend, which at a first look stops too many pilots that work: README).
* When an arm has no units yet, the criteria are ``no-data`` (not red); a safety metric
  with no data in an arm blocks an interim ``proceed`` (no data is not evidence of no
  harm), while one with no events does not.
* Costs are cumulative over stages up to the analysed stage.  Rows with an arm are costed
  per arm; rows without one (whole-pilot inputs such as co-design workshops) are reported
  under ``unallocated`` and are not spread over the arms; ``overall`` sums everything.
  ``incremental`` divides the difference in cost per unit (pilot − comparison) by the
  primary estimate (for a count primary, by the difference in rates instead of the ratio).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from scipy import special
from sqlalchemy import and_, case, distinct, func, literal, select
from sqlalchemy.orm import Session

from riskreg.config import Config
from riskreg.errors import InvalidInput
from riskreg.filled import filled_later
from riskreg.looks import Look, LookPlan, look_plan, previous_looks
from riskreg.models import DataImport, ImportCount, ImportUnits, Pilot, Resource, observations
from riskreg.pilots import get_pilot, metric_codes, outcome_imports, protocol_of
from riskreg.protocol import CRITERIA, Design, Metric, Protocol
from riskreg.recommend import ESTIMATE_NAMES, Recommendation, recommend, test_words
from riskreg.stats.compare import Comparison, compare_binary, compare_continuous, compare_counts
from riskreg.stats.sequential import conditional_power, lan_demets_boundaries, stagewise_inference
from riskreg.stats.srm import sample_ratio_check
from riskreg.stats.summaries import BinarySummary, ContinuousSummary, CountSummary
from riskreg.stats.verdicts import holm, judge
from riskreg.strata import adjusted_results, stratified_results
from riskreg.units import double_counted
from riskreg.wording import level_text

__all__ = [
    "Analysis",
    "CriterionResult",
    "MetricResult",
    "analyse",
    "analyse_pilot",
]

RECOMMENDATIONS = ("proceed", "adapt", "continue", "stop")
SUMMARY_NAMES = {"continuous": "mean", "binary": "proportion", "count": "rate"}

Summary = ContinuousSummary | BinarySummary | CountSummary


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricResult:
    """The comparison of one metric, pilot arm vs comparison arm, on cumulative data."""

    name: str
    kind: str
    role: str
    test: str
    better: str
    margin: float | None
    method: str
    n: dict[str, int]
    missing: dict[str, int]
    summary: dict[str, float | None]
    detail: dict[str, dict[str, Any]]
    estimate: float | None
    ci: tuple[float | None, float | None]
    ci_level: float
    p_value: float | None
    p_adjusted: float | None
    boundary: float | None
    verdict: str
    statistic: float | None
    df: float | None
    effect_size: float | None
    se: float | None
    equivalence_ci: tuple[float | None, float | None] | None
    nominal: dict[str, Any] | None
    power: dict[str, Any] | None
    warnings: tuple[str, ...] = ()
    stagewise: dict[str, Any] | None = None  # the primary's inference after an early crossing
    dispersion: float | None = None  # counts: the Pearson dispersion φ̂ from per-unit data
    prior: tuple[float, float] | None = None  # the probabilities' normal prior (mean, sd), analysis scale
    prior_source: str = "flat"

    def chance(self) -> dict[str, Any] | None:
        """Return how likely the pilot arm is better, worse, and beyond the margin, for a board; None without an estimate.

        The normal posterior of the effect under ``prior`` (riskreg.stats.designs.board_chances):
        not adjusted for the looks, and no verdict (the gate rests on the pre-registered test).
        ``beyond_margin``: the pilot is not worse by more than the margin (it clears a
        non-inferiority or equivalence margin); ``harm``: it is worse by more than the margin.
        """
        from riskreg.stats.designs import NormalPrior, board_chances

        if self.estimate is None or not self.se or (self.kind == "count" and self.estimate <= 0):
            return None
        margin = self.margin if self.test != "superiority" and self.margin else None
        prior = None if self.prior is None else NormalPrior(*self.prior)
        found = board_chances(
            self.estimate, self.se, self.better == "higher", self.kind == "count", margin, prior
        )
        harm = found.harm_beyond_margin
        return {
            "better": found.better,
            "worse": found.worse,
            "beyond_margin": None if harm is None else 1.0 - harm,
            "harm": harm,
            "prior": None if self.prior is None else {"mean": self.prior[0], "sd": self.prior[1]},
            "prior_source": self.prior_source,
            "words": found.words(with_gain=harm is None),
            "method": f"normal approximation to the posterior, {found.prior}; not adjusted for the looks, "
            "and no verdict: the gate rests on the pre-registered test",
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the metric as DESIGN §3's analysis metric object (plus extras)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "test": self.test,
            "better": self.better,
            "margin": self.margin,
            "method": self.method,
            "n": dict(self.n),
            "missing": dict(self.missing),
            "summary": dict(self.summary),
            "detail": {arm: dict(values) for arm, values in self.detail.items()},
            "estimate": self.estimate,
            "estimate_type": ESTIMATE_NAMES[self.kind],
            "ci": list(self.ci),
            "ci_level": self.ci_level,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "boundary": self.boundary,
            "verdict": self.verdict,
            "statistic": self.statistic,
            "df": self.df,
            "effect_size": self.effect_size,
            "se": self.se,
            "equivalence_ci": None if self.equivalence_ci is None else list(self.equivalence_ci),
            "nominal": None if self.nominal is None else dict(self.nominal),
            "power": None if self.power is None else dict(self.power),
            "stagewise": None if self.stagewise is None else _plain(self.stagewise),
            "dispersion": self.dispersion,
            "chance": self.chance(),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CriterionResult:
    """A progression criterion of the stage with its observed value and status."""

    name: str
    description: str
    value: float | None
    green: float
    red: float
    status: str  # green | amber | red | no-data

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready plain values."""
        return {
            "name": self.name,
            "description": self.description,
            "value": self.value,
            "green": self.green,
            "red": self.red,
            "status": self.status,
        }


@dataclass(frozen=True)
class Analysis:
    """The analysis of one pilot at one stage; ``to_dict`` is the ``pilot analyse --json`` document."""

    pilot: str
    key: str
    title: str
    stage: str
    stage_index: int
    stages_included: tuple[str, ...]
    recommendation: str
    reasons: tuple[str, ...]
    alpha: float
    arms: tuple[str, str]
    primary: str
    units: dict[str, int]
    primary_units: dict[str, int]
    planned_n: int
    information_fraction: float
    boundaries: dict[str, Any]
    srm: dict[str, Any]
    metrics: tuple[MetricResult, ...]
    criteria: tuple[CriterionResult, ...]
    costs: dict[str, Any]
    primary_meets_boundary: bool
    information: dict[str, Any] = field(default_factory=dict)
    futility: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    stratified: dict[str, Any] = field(default_factory=dict)  # by metric, when [design] stratify is set
    adjusted: dict[str, Any] = field(default_factory=dict)  # by metric, for metrics with a covariate
    design: dict[str, Any] = field(default_factory=dict)  # a cluster design's clusters, ICC and design effect

    def metric(self, name: str) -> MetricResult:
        """Return the result of the metric called ``name``."""
        for result in self.metrics:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON data (DESIGN §3 analysis shape, snake_case keys, no NaN)."""
        return {
            "pilot": self.pilot,
            "key": self.key,
            "title": self.title,
            "stage": self.stage,
            "stage_index": self.stage_index,
            "stages_included": list(self.stages_included),
            "recommendation": self.recommendation,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "alpha": self.alpha,
            "arms": list(self.arms),
            "primary": self.primary,
            "primary_meets_boundary": self.primary_meets_boundary,
            "units": dict(self.units),
            "primary_units": dict(self.primary_units),
            "planned_n": self.planned_n,
            "information_fraction": self.information_fraction,
            "information": _plain(self.information),
            "futility": _plain(self.futility),
            "boundaries": _plain(self.boundaries),
            "srm": _plain(self.srm),
            "metrics": [m.to_dict() for m in self.metrics],
            "criteria": [c.to_dict() for c in self.criteria],
            "costs": _plain(self.costs),
            **({"stratified": _plain(self.stratified)} if self.stratified else {}),
            **({"adjusted": _plain(self.adjusted)} if self.adjusted else {}),
            **({"design": _plain(self.design)} if self.design else {}),
        }


# --- the analysis --------------------------------------------------------------------------


def analyse(
    session: Session,
    pilot: Pilot,
    stage_index: int | None = None,
    config: Config | None = None,
    with_power: bool = True,
) -> Analysis:
    """Analyse a pilot at a stage (default: its current stage) on data from stages 0..stage.

    ``with_power=False`` leaves out achieved power and minimum detectable effects (their
    searches are most of an analysis' time), for overviews such as the board report.
    """
    protocol = protocol_of(pilot)
    config = config or Config()
    k = pilot.stage_index if stage_index is None else stage_index
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(protocol.stages):
        raise InvalidInput(f"{pilot.ref} has no stage number {k!r} (it has {len(protocol.stages)} stages)")
    if k > pilot.stage_index:
        raise InvalidInput(
            f"stage '{protocol.stages[k].name}' of {pilot.ref} has not started: the pilot is at "
            f"'{protocol.stages[pilot.stage_index].name}' (a gate 'proceed' opens the next stage)"
        )
    stage = protocol.stages[k]
    arms = protocol.design.arms
    alpha = protocol.design.alpha
    codes = metric_codes(session, pilot)
    primary = protocol.primary

    imports = outcome_imports(session, pilot, k)  # the observations of stages 0..k
    if _counted_twice(session, pilot, imports):
        summaries, missing, holding = _summaries_once(session, imports, protocol, codes)
    else:
        summaries, missing, holding = _summaries(session, imports, protocol, codes)
    units, primary_units = _units(session, imports, holding, arms, codes[primary.name][0])

    clusters = None
    if protocol.design.clustered:  # the decision rule reads the cluster-level analysis
        from riskreg.clustered import cluster_analysis

        clusters = cluster_analysis(session, imports, protocol, codes)
        comparers, adjusted = clusters.comparers, clusters.adjusted
    else:
        adjusted, comparers = adjusted_results(session, imports, protocol, codes)
    # The primary's boundary at this look: looks are the gate decisions (riskreg.looks).
    previous = previous_looks(session, pilot, protocol, k)
    rule_units, rule_primary_units, idle = units, primary_units, frozenset[str]()
    if protocol.design.stepped:
        # A stepped wedge's stages are periods whose arms the schedule sets: a stage's planned n
        # counts the units measured in both arms, and before any cluster switches the pilot
        # arm has no data by design (README, Designs).
        rule_units = dict.fromkeys(arms, sum(units.values()))
        rule_primary_units = dict.fromkeys(arms, sum(primary_units.values()))
        switches = [protocol.stage_index(stage) for _cluster, stage in protocol.design.schedule]
        idle = frozenset([protocol.design.pilot]) if k < min(switches) else idle
    look = judge_look(
        protocol,
        k,
        summaries,
        missing,
        rule_units,
        rule_primary_units,
        previous,
        config,
        with_power,
        comparers=comparers,
        allocated=None if clusters is None else clusters.clusters,
        idle_arms=idle,
    )
    looks, results, rule = look.looks, look.results, look.rule
    primary_result = next(r for r in results if r.role == "primary")
    costs = _costs(session, pilot, protocol, k, units, primary_result, summaries[primary.name], config)
    srm_check, criteria, futility = look.srm, look.criteria, look.futility
    srm = {**srm_check.to_dict(), "units": dict(units), "allocation": list(protocol.design.allocation)}
    if clusters is not None:
        srm["clusters"] = dict(clusters.clusters)
    if protocol.design.stepped:
        srm.update(
            ok=True,
            p_value=None,
            method="not applicable: a stepped wedge's schedule sets each stage's arms (checked at import)",
        )
    warnings = [*looks.warnings, *_warnings(srm_check, arms, protocol.design.allocation, results)]

    boundaries = _boundaries_dict(protocol, looks)
    return Analysis(
        pilot=pilot.ref,
        key=pilot.key,
        title=pilot.title,
        stage=stage.name,
        stage_index=k,
        stages_included=tuple(s.name for s in protocol.stages[: k + 1]),
        recommendation=rule.recommendation,
        reasons=rule.reasons,
        notes=rule.notes,
        alpha=alpha,
        arms=arms,
        primary=primary.name,
        units=units,
        primary_units=primary_units,
        planned_n=stage.planned_n,
        information_fraction=looks.current.fraction,
        information={
            "effective_n": looks.current.effective_n,
            "fraction": looks.current.fraction,
            "final_n": protocol.stages[-1].planned_n,
            "look": looks.number,
            "final": looks.current.final,
        },
        futility=futility,
        boundaries=boundaries,
        srm=srm,
        metrics=tuple(results),
        criteria=tuple(criteria),
        costs=costs,
        primary_meets_boundary=rule.primary_meets,
        warnings=tuple(warnings),
        stratified=stratified_results(session, imports, protocol, codes),
        adjusted=adjusted,
        design={} if clusters is None else _design_dict(protocol.design, clusters),
    )


def _design_dict(design: Design, clusters: Any) -> dict[str, Any]:
    """What a cluster design's analysis shows beside the results: layout, clusters and per-metric clustering."""
    return {
        "unit": design.unit,
        "layout": design.layout,
        "cluster_column": design.cluster,
        "weighting": design.weighting if not design.stepped else None,
        "clusters": dict(clusters.clusters),
        "planned": {
            "clusters_per_arm": design.clusters_per_arm,
            "cluster_size": design.cluster_size,
            "icc": design.icc,
        },
        **({"schedule": dict(design.schedule)} if design.stepped else {}),
        "metrics": clusters.details,
    }


@dataclass(frozen=True)
class JudgedLook:
    """What one look concludes from per-arm summaries: metric results, boundaries, criteria and the rule's verdict."""

    looks: LookPlan
    results: list[MetricResult]
    criteria: list[CriterionResult]
    srm: Any
    futility: dict[str, Any] | None
    rule: Recommendation


def judge_look(
    protocol: Protocol,
    k: int,
    summaries: dict[str, tuple[Summary, Summary]],
    missing: dict[str, dict[str, int]],
    units: dict[str, int],
    primary_units: dict[str, int],
    previous: tuple[Look, ...],
    config: Config,
    with_power: bool = True,
    comparers: dict[str, Callable[[float], Comparison]] | None = None,
    allocated: dict[str, int] | None = None,
    idle_arms: frozenset[str] = frozenset(),
) -> JudgedLook:
    """Judge one look from sufficient statistics and the looks before it: the analysis without the database.

    ``analyse`` gathers its inputs from the register; the simulation test calls this
    directly, so that what it measures is the rule users get. ``comparers`` (by metric)
    replace the unit-level comparison, for cluster designs (riskreg.clustered), and
    ``allocated`` are then the clusters per arm the sample-ratio check counts. ``idle_arms``
    have no data at this look by design (a stepped wedge's pilot arm before any switch).
    """
    arms, alpha = protocol.design.arms, protocol.design.alpha
    looks = look_plan(protocol, k, previous, units, primary_units)
    results = [
        _analyse_metric(
            metric,
            summaries[metric.name],
            missing[metric.name],
            protocol.design,
            looks,
            with_power,
            None if comparers is None else comparers.get(metric.name),
        )
        for metric in protocol.metrics
        if metric.role != "baseline"  # a covariate is measured, never tested
    ]
    results = _adjust(results, alpha)
    allocated = units if allocated is None else allocated
    srm_check = sample_ratio_check(
        [allocated[a] for a in arms], protocol.design.allocation, config.srm_threshold
    )
    criteria = _criteria(protocol.stages[k].criteria, units, primary_units, arms)
    primary_result = next(r for r in results if r.role == "primary")
    futility = _futility(protocol.design, primary_result, looks)
    rule = recommend(
        last_stage=k == len(protocol.stages) - 1,
        exhausted=looks.exhausted,
        planned_n=protocol.stages[k].planned_n,
        results=results,
        criteria=criteria,
        units=units,
        futility=futility,
        idle_arms=idle_arms,
    )
    if rule.early_evidence:
        results = [_with_stagewise(r, looks, alpha) if r.role == "primary" else r for r in results]
    return JudgedLook(looks, results, criteria, srm_check, futility, rule)


def analyse_pilot(
    session: Session, ref: str, stage: str | None = None, config: Config | None = None
) -> Analysis:
    """Analyse the pilot named by ``ref`` (``P-1`` or its key) at the stage called ``stage``.

    Without ``stage`` the pilot's current stage is analysed; an unknown pilot or stage
    raises NotFound naming what exists.
    """
    pilot = get_pilot(session, ref)
    index = None if stage is None else protocol_of(pilot).stage_index(stage)
    return analyse(session, pilot, index, config)


# --- sufficient statistics from the database ------------------------------------------------


def _summaries(
    session: Session, imports: list[int], protocol: Protocol, codes: dict[str, tuple[int, str]]
) -> tuple[dict[str, tuple[Summary, Summary]], dict[str, dict[str, int]], set[int]]:
    """Return {metric: (comparison summary, pilot summary)}, {metric: {arm: missing}} and the imports holding data.

    Each import keeps its sufficient statistics per metric and arm (``import_counts``,
    written as it streamed), so this reads a few rows per import, never the observations:
    counts, event and exposure totals add up, and continuous groups, each shifted by one of
    its own values, become per-import summaries merged with Chan's parallel formula. A unit
    missing in one import and present in a later one counts as present only
    (``riskreg.filled``: the one case that reads observations).
    """
    c = ImportCount
    rows = session.execute(
        select(
            c.import_id,
            c.metric,
            c.arm,
            c.n,
            c.missing,
            c.total,
            c.exposure,
            c.shift,
            c.sum_d,
            c.sum_d2,
            c.sum_y2_t,
        )
        .where(c.import_id.in_(imports))
        .order_by(c.import_id, c.metric, c.arm)
    ).all()
    groups: dict[tuple[int, int], list[Any]] = {}
    filled = filled_later(session, (row[:5] for row in rows))
    for (code, arm), units in filled.items():  # present in a later import: not missing as well
        groups.setdefault((code, arm), [0, 0, 0.0, 0.0, ContinuousSummary.empty(), 0.0])[1] -= units
    for _import_id, code, arm, n, n_missing, total, exposure, shift, sum_d, sum_d2, sum_y2_t in rows:
        group = groups.setdefault((code, arm), [0, 0, 0.0, 0.0, ContinuousSummary.empty(), 0.0])
        group[0] += n
        group[1] += n_missing
        group[2] += total
        group[3] += exposure
        if shift is not None and n:
            group[4] = group[4].combine(_continuous(n, shift, sum_d, sum_d2, code, protocol, codes))
        if n:
            # Σy²/t for the dispersion of counts; unknown (None) once any import lacks it
            group[5] = None if sum_y2_t is None or group[5] is None else group[5] + sum_y2_t

    def arm_summary(metric: Metric, code: int, arm_index: int) -> tuple[Summary, int]:
        n, n_missing, total, exposure, continuous, sum_y2_t = groups.get(
            (code, arm_index), (0, 0, 0.0, 0.0, ContinuousSummary.empty(), None)
        )
        if metric.kind == "continuous":
            return continuous, n_missing
        if metric.kind == "binary":
            return BinarySummary(n, round(total)), n_missing
        return _count_summary(n, total, exposure, sum_y2_t), n_missing

    summaries, missing = _by_metric_and_arm(protocol, codes, arm_summary)
    holding = {import_id for import_id, _code, _arm, n, n_missing, *_ in rows if n + n_missing}
    return summaries, missing, holding


def _counted_twice(session: Session, pilot: Pilot, imports: list[int]) -> bool:
    """True if these imports hold a unit twice for a metric (possible only in data imported before riskreg refused it)."""
    unchecked = select(func.count()).where(
        DataImport.id.in_(imports), DataImport.stage_index > 0, DataImport.units_checked.is_(False)
    )
    if not session.scalar(unchecked):
        return False
    return any(double_counted(session, pilot, imports).values())


def _summaries_once(
    session: Session, imports: list[int], protocol: Protocol, codes: dict[str, tuple[int, str]]
) -> tuple[dict[str, tuple[Summary, Summary]], dict[str, dict[str, int]], set[int]]:
    """Return what ``_summaries`` does, from the observations, counting each unit once per metric.

    Only for legacy data that holds a unit twice: its earliest value counts (the stage
    that measured it first), and a unit missing in one stage and present in another is
    present. The observations are read row by row, so this is for the small registers
    that such data come from.
    """
    t = observations.c
    stage_of = dict(
        session.execute(select(DataImport.id, DataImport.stage_index).where(DataImport.id.in_(imports))).all()
    )
    rows = session.execute(
        select(t.import_id, t.metric, t.arm, t.unit_id, t.value, t.exposure).where(t.import_id.in_(imports))
    ).all()
    rows.sort(key=lambda row: (stage_of[row[0]], row[0]))
    first: dict[tuple[int, str], tuple[int, float | None, float | None]] = {}
    for _import_id, code, arm, unit, value, exposure in rows:
        known = first.get((code, unit))
        if known is None or (known[1] is None and value is not None):
            first[(code, unit)] = (arm, value, exposure)

    def arm_summary(metric: Metric, code: int, arm_index: int) -> tuple[Summary, int]:
        kept = [(v, e) for (c, _u), (a, v, e) in first.items() if c == code and a == arm_index]
        present = [(v, e) for v, e in kept if v is not None]
        return _summary_of(metric.kind, present), len(kept) - len(present)

    summaries, missing = _by_metric_and_arm(protocol, codes, arm_summary)
    return summaries, missing, {row[0] for row in rows}


def _by_metric_and_arm(
    protocol: Protocol,
    codes: dict[str, tuple[int, str]],
    arm_summary: Callable[[Metric, int, int], tuple[Summary, int]],
) -> tuple[dict[str, tuple[Summary, Summary]], dict[str, dict[str, int]]]:
    """Return {metric: (comparison, pilot) summaries} and {metric: {arm: missing}} from one arm's summariser."""
    summaries: dict[str, tuple[Summary, Summary]] = {}
    missing: dict[str, dict[str, int]] = {}
    for metric in protocol.metrics:
        code = codes[metric.name][0]
        comparison, pilot = (arm_summary(metric, code, i) for i in range(len(protocol.design.arms)))
        summaries[metric.name] = (comparison[0], pilot[0])
        missing[metric.name] = dict(zip(protocol.design.arms, (comparison[1], pilot[1]), strict=True))
    return summaries, missing


def _summary_of(kind: str, present: list[tuple[float, float | None]]) -> Summary:
    """Return one arm's summary of present (value, exposure) pairs."""
    if kind == "continuous":
        return ContinuousSummary.from_values(v for v, _e in present)
    if kind == "binary":
        return BinarySummary(len(present), round(math.fsum(v for v, _e in present)))
    if not present:
        return CountSummary(0, 0, 0.0)
    return CountSummary(
        len(present),
        round(math.fsum(v for v, _e in present)),
        math.fsum(e or 0.0 for _v, e in present),
        sum_y2_over_t=math.fsum(v * v / e for v, e in present) if all(e for _v, e in present) else None,
    )


def _count_summary(n: int, total: float, exposure: float, sum_y2_t: float | None) -> CountSummary:
    """Return one arm's count summary; a Σy²/t that rounding left below its bound y²/t is left out."""
    if not n:
        return CountSummary(0, 0, 0.0)
    events = round(total)
    if sum_y2_t is not None and sum_y2_t < events * events / exposure * (1.0 - 1e-9):
        sum_y2_t = None  # cannot be: not the sum of these units' y²/t (data imported before it was kept)
    return CountSummary(n, events, float(exposure), sum_y2_over_t=sum_y2_t)


def _continuous(
    n: int,
    shift: float,
    sum_d: float,
    sum_d2: float,
    code: int,
    protocol: Protocol,
    codes: dict[str, tuple[int, str]],
) -> ContinuousSummary:
    """Return one import's summary of a continuous group; values too large to summarise are a one-line error."""
    try:
        return ContinuousSummary.from_shifted_sums(n, shift, sum_d, sum_d2)
    except ValueError:
        # imports refuse such values now; data imported before may still hold them
        name = next(name for name, (c, _kind) in codes.items() if c == code)
        raise InvalidInput(
            f"the data of {protocol.key} hold {name} values too large to summarise (beyond 1e15 in size); "
            f"replace them with pilot data --replace"
        ) from None


def _units(
    session: Session, imports: list[int], holding: set[int], arms: tuple[str, ...], primary_code: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Return distinct units per arm with any observation, and with a non-missing primary outcome.

    While one import holds all the data, the counts it kept serve: its unit count (when it
    could count its units exactly) and its present primary observations, which are its
    units with a primary outcome since an import refuses a unit's second row for a metric.
    Otherwise the observations are counted, distinct unit by distinct unit.
    """
    t, c = observations.c, ImportCount
    primary = session.execute(
        select(c.import_id, c.arm, c.n).where(c.import_id.in_(imports), c.metric == primary_code)
    ).all()
    units = dict.fromkeys(arms, 0)
    primary_units = dict.fromkeys(arms, 0)
    if len({import_id for import_id, _arm, _n in primary}) <= 1:
        for _import_id, arm, n in primary:
            primary_units[arms[arm]] += n
        counted = _counted_units(session, holding)
        if counted is not None:
            units.update({arms[arm]: n for arm, n in counted.items() if 0 <= arm < len(arms)})
            return units, primary_units
        distinct_primary: Any = literal(0)  # known already: only the units are counted below
    else:
        with_primary = case((and_(t.metric == primary_code, t.value.is_not(None)), t.unit_id))
        distinct_primary = func.count(distinct(with_primary))
    rows = session.execute(
        select(t.arm, func.count(distinct(t.unit_id)), distinct_primary)
        .where(t.import_id.in_(imports))
        .group_by(t.arm)
        .order_by(t.arm)
    )
    for arm, all_units, primary_units_n in rows:
        if 0 <= arm < len(arms):
            units[arms[arm]] = int(all_units)
            primary_units[arms[arm]] += int(primary_units_n)
    return units, primary_units


def _counted_units(session: Session, holding: set[int]) -> dict[int, int] | None:
    """Return {arm: units} kept by the one import that holds data, or None if more hold data or it kept none."""
    if len(holding) != 1:
        return None if holding else {}
    rows = session.execute(
        select(ImportUnits.arm, ImportUnits.units).where(ImportUnits.import_id == next(iter(holding)))
    ).all()
    return {int(arm): int(n) for arm, n in rows} if rows else None


# --- one metric ----------------------------------------------------------------------------


def _boundary_alpha(boundary: float) -> float:
    """Return the nominal two-sided α′ = 2(1 − Φ(b)) whose CI has critical value b."""
    return float(2.0 * special.ndtr(-boundary))


def _compare(kind: str) -> Callable[[Any, Any, float], Comparison]:
    return {"continuous": compare_continuous, "binary": compare_binary, "count": compare_counts}[kind]


def _safe_compare(kind: str, comparison: Summary, pilot: Summary, alpha: float) -> Comparison:
    """Compare at level 1 − alpha; an extreme level that overflows gives undefined bounds."""
    try:
        return _compare(kind)(comparison, pilot, alpha)
    except ValueError:
        result = _compare(kind)(comparison, pilot, 0.05)
        return Comparison(
            kind=result.kind,
            method=result.method,
            estimate=result.estimate,
            ci_low=None,
            ci_high=None,
            ci_level=1.0 - alpha,
            p_value=result.p_value,
            statistic=result.statistic,
            df=result.df,
            effect_size=result.effect_size,
            se=result.se,
            warnings=(*result.warnings, "ci-level-too-extreme"),
            dispersion=result.dispersion,
        )


def _bounds(kind: str, result: Comparison) -> tuple[float | None, float | None]:
    """Return the CI for judging; a rate ratio with no comparison events is unbounded above.

    compare_counts reports that infinite upper bound as None (JSON has no infinity); judged
    as None it would make "15 events against none" inconclusive and hide harm.
    """
    if kind == "count" and result.ci_low is not None and result.ci_high is None:
        return result.ci_low, math.inf
    return result.ci_low, result.ci_high


def _verdict(metric: Metric, result: Comparison, tost: Comparison | None) -> str:
    low, high = _bounds(metric.kind, result)
    return judge(
        metric.test,
        metric.better,
        low,
        high,
        margin=metric.margin,
        ratio=metric.kind == "count",
        equivalence_ci=None if tost is None else _bounds(metric.kind, tost),
    )


def _analyse_metric(
    metric: Metric,
    arms_summaries: tuple[Summary, Summary],
    missing: dict[str, int],
    design: Design,
    looks: LookPlan,
    with_power: bool = True,
    comparer: Callable[[float], Comparison] | None = None,
) -> MetricResult:
    """Compare one metric; the primary's CI is at this look's boundary, the others' at 1 − α.

    ``comparer`` (alpha → comparison) replaces the unit-level comparison of the summaries:
    a cluster design's cluster-level analysis, or a covariate-adjusted one. Power is left
    out for cluster designs (it would assume units were allocated one by one).
    """
    arms, alpha, boundary = design.arms, design.alpha, looks.boundary
    comparison_summary, pilot_summary = arms_summaries
    is_primary = metric.role == "primary"
    level_alpha = _boundary_alpha(boundary) if is_primary else alpha

    def compare(at: float) -> Comparison:
        if comparer is not None:
            return comparer(at)
        return _safe_compare(metric.kind, comparison_summary, pilot_summary, at)

    result = compare(level_alpha)
    tost = None
    if metric.test == "equivalence":
        tost = compare(min(2.0 * level_alpha, 0.999999))
    verdict = _verdict(metric, result, tost)

    nominal = None
    if is_primary:
        fixed = compare(alpha)
        fixed_tost = compare(2.0 * alpha) if metric.test == "equivalence" else None
        nominal = {
            "ci": [fixed.ci_low, fixed.ci_high],
            "ci_level": fixed.ci_level,
            "verdict": _verdict(metric, fixed, fixed_tost),
        }

    warnings = list(result.warnings)
    for arm, summary in zip(arms, arms_summaries, strict=True):
        if summary.n == 0:
            warnings.append(f"no-data-{arm}")
    n = {arm: s.n for arm, s in zip(arms, arms_summaries, strict=True)}
    summary_values = {arm: _summary_value(s) for arm, s in zip(arms, arms_summaries, strict=True)}
    detail = {arm: _plain(s.to_dict()) for arm, s in zip(arms, arms_summaries, strict=True)}

    method = _method(metric, result, tost, looks, level_alpha)
    prior, prior_source = default_prior(metric, comparison_summary, pilot_summary)
    return MetricResult(
        name=metric.name,
        kind=metric.kind,
        role=metric.role,
        test=metric.test,
        better=metric.better,
        margin=metric.margin,
        method=method,
        n=n,
        missing=dict(missing),
        summary=summary_values,
        detail=detail,
        estimate=result.estimate,
        ci=(result.ci_low, result.ci_high),
        ci_level=result.ci_level,
        p_value=result.p_value,
        p_adjusted=result.p_value,  # secondaries are replaced by Holm's in _adjust
        boundary=boundary if is_primary else None,
        verdict=verdict,
        statistic=result.statistic,
        df=result.df,
        effect_size=result.effect_size,
        se=result.se,
        equivalence_ci=None if tost is None else (tost.ci_low, tost.ci_high),
        nominal=nominal,
        power=_power(metric, comparison_summary, pilot_summary, alpha, design.power)
        if with_power and not design.clustered
        else None,
        warnings=tuple(warnings),
        dispersion=result.dispersion,
        prior=prior,
        prior_source=prior_source,
    )


def _summary_value(summary: Summary) -> float | None:
    if isinstance(summary, ContinuousSummary):
        return summary.mean if summary.n > 0 else None
    if isinstance(summary, BinarySummary):
        return summary.proportion
    return summary.rate


def _method(
    metric: Metric,
    result: Comparison,
    tost: Comparison | None,
    looks: LookPlan,
    level_alpha: float,
) -> str:
    margin = ""
    if metric.margin is not None:
        margin = f", margin {metric.margin:g}" + (" (ratio)" if metric.kind == "count" else "")
    test = f"{metric.test} test ({metric.better} is better{margin})"
    estimate = ESTIMATE_NAMES[metric.kind] + (
        " pilot / comparison" if metric.kind == "count" else " pilot − comparison"
    )
    parts = [test, result.method]
    if metric.role == "primary":
        look = looks.current
        which = "final look, spending the α left" if look.final else f"look {looks.number}"
        parts.append(
            f"two-sided {level_text(1.0 - level_alpha)} CI for the {estimate} at the O'Brien–Fleming-type boundary "
            f"|z| = {looks.boundary:.2f} (Lan–DeMets, gsDesign sfLDOF; {which}, information fraction "
            f"t = {look.fraction:.3g} = effective primary n {look.effective_n:.4g} / planned final n); "
            f"nominal α′ = 2(1 − Φ(|z|)) = {level_alpha:.3g}"
        )
        if tost is not None:
            parts.append(f"equivalence by TOST on the {level_text(tost.ci_level)} CI (1 − 2α′)")
        parts.append("primary at full α, spent across stages; p unadjusted")
    else:
        parts.append(f"two-sided {level_text(1.0 - level_alpha)} CI for the {estimate}")
        if tost is not None:
            parts.append(f"equivalence by TOST on the {level_text(tost.ci_level)} CI (1 − 2α)")
        if metric.role == "secondary":
            parts.append("p Holm-adjusted over the secondary metrics; verdict from the unadjusted CI")
        else:
            parts.append("safety: unadjusted, so harm is never hidden; harm = CI entirely on the worse side")
    return "; ".join(parts)


def _adjust(results: list[MetricResult], alpha: float) -> list[MetricResult]:
    """Holm-adjust the secondary p-values (None excluded); primary and safety stay unadjusted."""
    secondary = [i for i, r in enumerate(results) if r.role == "secondary" and r.p_value is not None]
    adjusted = holm([results[i].p_value for i in secondary]) if secondary else ()
    out = list(results)
    for i, p_adj in zip(secondary, adjusted, strict=True):
        r = results[i]
        warnings = r.warnings
        # A superiority verdict (superior or harm) is the p < α decision that Holm raises.
        decisive = r.test == "superiority" and r.verdict in ("superior", "harm")
        if decisive and r.p_value is not None and r.p_value < alpha <= p_adj:
            warnings = (*warnings, "not-significant-after-holm")
        out[i] = replace(r, p_adjusted=p_adj, warnings=warnings)
    for i, r in enumerate(results):
        if r.role == "secondary" and r.p_value is None:
            out[i] = replace(r, p_adjusted=None)
    return out


# --- achieved power / minimum detectable effect ---------------------------------------------


def _power(
    metric: Metric, comparison: Summary, pilot: Summary, alpha: float, target: float
) -> dict[str, Any] | None:
    """Return the minimum detectable effect at the current n (fixed-sample α, the design's power).

    For a non-inferiority metric also the power to show non-inferiority if the arms are equal.
    """
    from riskreg.stats import power as power_calc  # only when power is asked for (reports skip it)

    try:
        if isinstance(comparison, ContinuousSummary) and isinstance(pilot, ContinuousSummary):
            if comparison.n < 2 or pilot.n < 2:
                return None
            source = "protocol"
            sd = metric.sd
            if sd is None:
                source = "observed (pooled)"
                pooled = (comparison.m2 + pilot.m2) / (comparison.n + pilot.n - 2)
                sd = math.sqrt(pooled) if pooled > 0 else None
            if sd is None:
                return None
            mde = power_calc.mde_continuous(comparison.n, pilot.n, sd, alpha, target)
            out: dict[str, Any] = {
                "mde": mde.effect,
                "mde_scale": "difference in means",
                "power_target": target,
                "sd": sd,
                "sd_source": source,
                "alpha": alpha,
                "method": mde.method,
            }
            if metric.test == "non-inferiority" and metric.margin is not None:
                ni = power_calc.power_continuous(comparison.n, pilot.n, 0.0, sd, alpha, metric.margin)
                out["power_non_inferiority_if_equal"] = ni.power
            return _plain(out)
        if isinstance(comparison, BinarySummary) and isinstance(pilot, BinarySummary):
            if comparison.n < 1 or pilot.n < 1:
                return None
            source = "protocol baseline" if metric.baseline is not None else "observed comparison arm"
            p = metric.baseline if metric.baseline is not None else comparison.proportion
            if p is None or not 0.0 < p < 1.0:
                return None
            mde = power_calc.mde_binary(comparison.n, pilot.n, p, alpha, target, metric.better == "lower")
            return _plain(
                {
                    "mde": mde.effect,
                    "mde_scale": f"difference in proportions ({mde.assumptions['direction']})",
                    "power_target": target,
                    "baseline": p,
                    "baseline_source": source,
                    "alpha": alpha,
                    "method": mde.method,
                }
            )
        if isinstance(comparison, CountSummary) and isinstance(pilot, CountSummary):
            if comparison.n < 1 or pilot.n < 1:
                return None
            source = "protocol baseline" if metric.baseline is not None else "observed comparison arm"
            rate = metric.baseline if metric.baseline is not None else comparison.rate
            if rate is None or rate <= 0.0:
                return None
            exposure = (comparison.exposure + pilot.exposure) / (comparison.n + pilot.n)
            mde = power_calc.mde_count(comparison.n, pilot.n, rate, exposure, alpha, target)
            return _plain(
                {
                    "mde": mde.effect,
                    "mde_scale": "rate ratio (reduction)",
                    "power_target": target,
                    "baseline": rate,
                    "baseline_source": source,
                    "exposure_per_unit": exposure,
                    "alpha": alpha,
                    "method": mde.method,
                }
            )
    except (ValueError, ArithmeticError, RuntimeError):
        return None
    return None


def default_prior(
    metric: Metric, comparison: Summary, pilot: Summary
) -> tuple[tuple[float, float] | None, str]:
    """Return the probabilities' prior (mean, sd) on the analysis scale, and where it came from.

    The protocol's ``prior`` if it gives one; else a weakly informative normal prior centred
    on no difference: one standard deviation of the outcome for a continuous metric (the
    protocol's ``sd``, else the pooled observed one), 0.25 for a difference in proportions
    (95 % of its weight within ±0.49), and 1 on the log rate ratio (95 % within ratios
    0.14 to 7). Data of any useful size outweigh it; with little data it keeps a
    probability from overstating a noisy estimate.
    """
    if metric.prior is not None:
        return metric.prior, "protocol"
    if metric.kind == "binary":
        return (0.0, 0.25), "default"
    if metric.kind == "count":
        return (0.0, 1.0), "default"
    if metric.sd is not None:
        return (0.0, metric.sd), "default (the protocol's sd)"
    if isinstance(comparison, ContinuousSummary) and isinstance(pilot, ContinuousSummary):
        df = comparison.n + pilot.n - 2
        pooled = (comparison.m2 + pilot.m2) / df if df > 0 else 0.0
        if pooled > 0:
            return (0.0, math.sqrt(pooled)), "default (the observed sd)"
    return None, "flat (no sd to scale a prior)"


# --- criteria, costs, recommendation ---------------------------------------------------------


def _criteria(
    criteria: Iterable[Any], units: dict[str, int], primary_units: dict[str, int], arms: tuple[str, str]
) -> list[CriterionResult]:
    """Evaluate the stage's progression criteria; ``no-data`` while an arm has no units."""
    complete = all(units[a] > 0 for a in arms)
    total = sum(units[a] for a in arms)
    values = {
        "recruited": float(min(units[a] for a in arms)),
        "retention": (sum(primary_units[a] for a in arms) / total) if total else None,
    }
    results = []
    for criterion in criteria:
        value = values.get(criterion.name)
        status = criterion.status(value) if complete and value is not None else "no-data"
        if criterion.name == "recruited" and value is not None:
            value = int(value)
        results.append(
            CriterionResult(
                name=criterion.name,
                description=CRITERIA.get(criterion.name, ""),
                value=value,
                green=criterion.green,
                red=criterion.red,
                status=status,
            )
        )
    return results


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _costs(
    session: Session,
    pilot: Pilot,
    protocol: Protocol,
    k: int,
    units: dict[str, int],
    primary: MetricResult,
    primary_summaries: tuple[Summary, Summary],
    config: Config,
) -> dict[str, Any]:
    """Cumulative costs per arm (public, citizen, total, per unit) and incremental cost-effect."""
    r = Resource
    valued_hours = case((and_(r.side == "citizen", r.amount.is_(None)), r.hours), else_=0.0)
    rows = session.execute(
        select(
            r.arm,
            r.side,
            func.count(),
            func.sum(r.amount),
            func.sum(r.hours),
            func.sum(valued_hours),
        )
        .where(r.pilot_id == pilot.id, r.stage_index <= k)
        .group_by(r.arm, r.side)
    ).all()
    if not rows:
        return {}
    hour_value = config.citizen_hour_value
    buckets: dict[str, dict[str, float]] = {}
    for arm, side, _count, amount, hours, valued in sorted(rows, key=lambda x: (x[0] or "", x[1])):
        key = arm if arm in protocol.design.arms else "unallocated"
        b = buckets.setdefault(
            key,
            {
                "public_cash": 0.0,
                "public_hours": 0.0,
                "citizen_cash": 0.0,
                "citizen_hours": 0.0,
                "valued": 0.0,
            },
        )
        b[f"{side}_cash"] += float(amount or 0.0)
        b[f"{side}_hours"] += float(hours or 0.0)
        b["valued"] += float(valued or 0.0) * hour_value

    def row(b: dict[str, float] | None, n_units: int | None) -> dict[str, Any]:
        b = b or {
            "public_cash": 0.0,
            "public_hours": 0.0,
            "citizen_cash": 0.0,
            "citizen_hours": 0.0,
            "valued": 0.0,
        }
        public = b["public_cash"]
        citizen = b["citizen_cash"] + b["valued"]
        total = public + citizen
        per_unit = total / n_units if n_units else None
        per_unit_public = public / n_units if n_units else None
        return {
            "public": _money(public),
            "citizen": _money(citizen),
            "total": _money(total),
            "per_unit": _money(per_unit),
            "per_unit_public": _money(per_unit_public),
            "units": n_units,
            "public_hours": round(b["public_hours"], 2),
            "citizen_hours": round(b["citizen_hours"], 2),
            "citizen_cash": _money(b["citizen_cash"]),
            "citizen_hours_valued": _money(b["valued"]),
        }

    costs: dict[str, Any] = {}
    for arm in protocol.design.arms:
        costs[arm] = row(buckets.get(arm), units[arm])
    if "unallocated" in buckets:
        costs["unallocated"] = row(buckets["unallocated"], None)
    overall: dict[str, float] = {}
    for b in buckets.values():
        for key, value in b.items():
            overall[key] = overall.get(key, 0.0) + value
    costs["overall"] = row(overall, sum(units.values()) or None)

    comparison_arm, pilot_arm = protocol.design.arms
    c, p = costs[comparison_arm], costs[pilot_arm]
    diff_all = _diff(p["per_unit"], c["per_unit"])
    diff_public = _diff(p["per_unit_public"], c["per_unit_public"])
    effect, basis = primary.estimate, ESTIMATE_NAMES[primary.kind] + " (pilot − comparison)"
    if primary.kind == "count":
        rates = [s.rate if isinstance(s, CountSummary) else None for s in primary_summaries]
        effect = None if None in rates else rates[1] - rates[0]
        basis = "difference in rates (pilot − comparison)"
    costs["incremental"] = {
        "per_unit_with_citizen": _money(diff_all),
        "per_unit_public_only": _money(diff_public),
        "effect": effect,
        "effect_basis": f"primary {primary.name}: {basis}",
        "per_unit_of_effect_with_citizen": _money(_ratio(diff_all, effect)),
        "per_unit_of_effect_public_only": _money(_ratio(diff_public, effect)),
    }
    costs["hour_value"] = hour_value
    costs["note"] = (
        "cumulative to this stage; citizen = citizen cash + citizen hours without an amount valued at "
        "hour_value; unallocated (no arm) inputs are not spread over the arms"
    )
    return costs


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0.0:
        return None
    value = a / b
    return value if math.isfinite(value) else None


# --- the primary across looks: futility, inference after an early crossing, boundaries ---------


def _test_z(result: MetricResult) -> tuple[float, ...] | None:
    """Return the primary's test statistics in the wanted direction (normal approximation), or None.

    Superiority: the estimate over its standard error, signed so that better is positive;
    non-inferiority: the distance from the margin; equivalence: the distances from both
    margins (the two one-sided tests). Rate ratios are on the log scale.
    """
    if result.estimate is None or result.se is None or result.se <= 0.0:
        return None
    estimate, margin = result.estimate, result.margin
    if result.kind == "count":
        if estimate <= 0.0:
            return None
        estimate = math.log(estimate)
        margin = None if margin is None else math.log(margin)
    sign = 1.0 if result.better == "higher" else -1.0
    if result.test == "superiority":
        return (sign * estimate / result.se,)
    if margin is None:
        return None
    if result.test == "non-inferiority":
        return ((sign * estimate + margin) / result.se,)
    return ((estimate + margin) / result.se, (margin - estimate) / result.se)


def _futility(design: Design, primary: MetricResult, looks: LookPlan) -> dict[str, Any] | None:
    """Return the primary's conditional power at the final look if the rest of the pilot went as planned.

    "As planned" is the drift the planned final n was sized for, z₁₋α/₂ + z_power (the
    design's α and power): the chance of meeting the test at the final boundary given the
    data so far. Equivalence needs both one-sided tests, so its chance is
    P(lower) + P(upper) − 1 (the same final estimate decides both). Below the protocol's
    ``[design] futility`` the primary is futile (a non-binding rule: it spends no α).
    None at the final look, where there is nothing left to plan, or while the statistic
    is undefined.
    """
    zs = _test_z(primary)
    t = looks.current.fraction
    if zs is None or looks.final_boundary is None or t >= 1.0:
        return None
    drift = float(-special.ndtri(design.alpha / 2.0) + special.ndtri(design.power))
    sides = [conditional_power(z, t, looks.final_boundary, drift=drift) for z in zs]
    power = max(0.0, sum(sides) - (len(sides) - 1))
    futile = power < design.futility
    text = (
        f"the chance of showing {test_words(primary)}, if the rest of the pilot went as planned, "
        f"is {_percent(power)}"
        + (f" (below the protocol's {_percent(design.futility)}: futile)" if futile else "")
    )
    return {
        "conditional_power": power,
        "threshold": design.futility,
        "futile": futile,
        "z": list(zs),
        "drift": drift,
        "final_boundary": looks.final_boundary,
        "text": text,
        "method": (
            "conditional power at the final boundary under the drift the planned final n was sized for "
            "(z₁₋α/₂ + z_power), given the B-value so far (Lan & Wittes 1988); non-binding"
        ),
    }


def _percent(value: float) -> str:
    percent = 100.0 * value
    return f"{percent:.0f} %" if percent >= 1.0 or percent == 0.0 else "below 1 %"


def _with_stagewise(result: MetricResult, looks: LookPlan, alpha: float) -> MetricResult:
    """Add the stage-wise-ordering p-value and median-unbiased estimate to a primary that crossed early.

    The ordering is by the primary's own test statistic (for non-inferiority, the distance
    from the margin), and the estimates are mapped back to the estimate's scale. None for
    equivalence, whose two one-sided tests have no single ordering.
    """
    zs = _test_z(result)
    if looks.boundaries is None or zs is None or len(zs) != 1 or result.se is None:
        return result
    log_scale = result.kind == "count"
    sign = 1.0 if result.better == "higher" else -1.0
    margin = 0.0
    if result.test == "non-inferiority" and result.margin is not None:
        margin = math.log(result.margin) if log_scale else result.margin
    try:
        inference = stagewise_inference(
            looks.boundaries.fractions, looks.boundaries.z, len(looks.boundaries.z), zs[0], result.se, alpha
        )
    except ValueError:
        return (
            result  # the statistic did not cross this look's boundary after all (a CI at its rounding edge)
        )

    def back(value: float) -> float:
        # value estimates sign·δ + margin on the test's scale; δ on the estimate's scale
        delta = sign * (value - margin)
        return math.exp(delta) if log_scale else delta

    low, high = sorted(back(v) for v in inference.ci)
    return replace(
        result,
        stagewise={
            "p_value": inference.p_value,
            "p_value_against": "the margin" if margin else "no difference",
            "median_unbiased": back(inference.median_unbiased),
            "ci": [low, high],
            "ci_level": 1.0 - alpha,
            "naive": {"estimate": result.estimate, "p_value": result.p_value},
            "method": inference.method,
            "note": (
                "the naive estimate overstates an effect that crossed early; the median-unbiased estimate "
                "and stage-wise-ordering p-value allow for the looks"
            ),
        },
    )


def _boundaries_dict(protocol: Protocol, looks: LookPlan) -> dict[str, Any]:
    """Return the looks taken and their boundaries, and the planned schedule for comparison."""
    final_n = protocol.stages[-1].planned_n
    planned = lan_demets_boundaries([s.planned_n / final_n for s in protocol.stages], protocol.design.alpha)
    all_looks = [*looks.previous, looks.current]
    spent = looks.boundaries
    return {
        "looks": [look.to_dict(protocol) for look in all_looks],
        "stages": [protocol.stages[look.stage_index].name for look in all_looks],
        "fractions": [look.fraction for look in all_looks],
        "z": list(spent.z) if spent is not None else None,
        "alpha_spent": list(spent.alpha_spent) if spent is not None else None,
        "look": looks.number,
        "final": looks.current.final,
        "exhausted": looks.exhausted,
        "boundary": looks.boundary,
        "final_boundary": looks.final_boundary,
        "nominal_alpha": _boundary_alpha(looks.boundary),
        "alpha": protocol.design.alpha,
        "method": planned.method + "; at the observed information of the looks taken (the gate decisions)",
        "planned": {
            "stages": [s.name for s in protocol.stages],
            "fractions": list(planned.fractions),
            "z": list(planned.z),
            "alpha_spent": list(planned.alpha_spent),
        },
    }


def _warnings(
    check: Any, arms: tuple[str, str], allocation: tuple[float, float], results: list[MetricResult]
) -> list[str]:
    warnings = []
    if not check.ok:
        counts = " vs ".join(f"{n} {arm}" for n, arm in zip(check.counts, arms, strict=True))
        ratio = ":".join(f"{a:g}" for a in allocation)
        warnings.append(
            f"sample ratio mismatch: {counts} units against a {ratio} allocation (p = {check.p_value:.3g}, "
            f"below {check.threshold:g}); check the assignment, losses after randomisation and the data "
            "extraction before trusting the comparisons"
        )
    for r in results:
        if "not-significant-after-holm" in r.warnings:
            warnings.append(
                f"{r.name}: the {r.verdict} verdict does not survive Holm's adjustment (p_adjusted = {r.p_adjusted:.3g})"
            )
    return warnings


def _plain(value: Any) -> Any:
    """Return ``value`` with tuples as lists, numpy scalars as Python numbers and NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "dtype") and "int" in str(value.dtype):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else None
