"""HTML reports (DESIGN §6): one Jinja2 environment, one ``render_report``, contexts built here.

Each report is built in two steps, as datasette does it: a ``*_context`` function reads the
database and returns a frozen context dataclass (``riskreg.report_context``) with every value
prepared; ``render_report(name, context)`` renders the template of that name with it. Templates
never see a session. The output is one self-contained file: inline CSS and SVG, no scripts,
no external requests, and with ``--as-of`` no clock at all, so reruns are byte-identical.

Only ``riskreg report`` imports this module (it loads Jinja2 and, through the analysis, SciPy).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg import __version__
from riskreg.audit import head
from riskreg.board_paper import ReportSettings, board_findings, board_paper, money_in
from riskreg.config import RATINGS, Config
from riskreg.db import Database, safe_url
from riskreg.errors import InvalidInput
from riskreg.evidence import evidence_for
from riskreg.models import (
    PILOT_STATUSES,
    SIDES,
    DataImport,
    Decision,
    Event,
    Pilot,
    ProtocolVersion,
    Risk,
)
from riskreg.outfile import replaced_whole
from riskreg.pilot_paper import (
    arm_count,
    currency_amount,
    decision_panel,
    funnel,
    metric_sentence,
    per_effect_text,
    plain_ci,
    plain_reason,
    stage_effects,
)
from riskreg.pilots import (
    current_data_counts,
    data_imports,
    decisions,
    get_pilot,
    linked_risks,
    list_pilots,
    protocol_of,
    protocol_versions,
)
from riskreg.protocol import Protocol
from riskreg.qa import RULES, SEVERITY_ORDER, checked
from riskreg.register import changed_fields, get_risk, is_above_appetite, list_risks, next_review, parse_date
from riskreg.report_context import (
    AmendmentLine,
    ArmValue,
    Assurance,
    BoardContext,
    BoundaryChart,
    Change,
    CostLine,
    CostSummary,
    CriterionLine,
    DataFileLine,
    DecisionLine,
    EventLine,
    EvidenceLine,
    FindingGroup,
    FindingLine,
    ForestPlot,
    Headline,
    LinkedRisk,
    MetricDefinition,
    Page,
    PilotContext,
    PilotLine,
    PilotSummary,
    PowerLine,
    QaContext,
    ResultLine,
    RiskLine,
    RiskList,
    RuleLine,
    SideCounts,
    SiteLine,
    StageAnalysis,
    StageDefinition,
    TopRisk,
    bar_chart,
    bdi,
    boundary_chart,
    ci_text,
    css_string,
    estimate_text,
    forest_plot,
    heat_legend,
    heat_map,
    label,
    level_text,
    margin_text,
    num,
    observed_z,
    p_text,
    pct,
    rating_class,
)

if TYPE_CHECKING:  # annotations only
    from riskreg.audit import ChainCheck
    from riskreg.trail import StateCheck

REPORTS = ("board", "pilot", "qa")
CONTEXTS: dict[str, type] = {"board": BoardContext, "pilot": PilotContext, "qa": QaContext}
DEFAULT_PERIOD_DAYS = 90
TOP_RISKS = 10
LIST_LIMIT = 25  # rows shown in the board's risk lists; the total is always given
# Pilots without a stored analysis are analysed while the board report is built (about
# 0.1 s each); beyond this many the pipeline says so instead of making the report slow.
FRESH_ANALYSES = 20
HIGH_RATINGS = ("high", "very high")
SIDE_HEADINGS = {"citizen": "Citizen side", "professional": "Professional side", "shared": "Shared"}


# --- rendering ----------------------------------------------------------------------------------


def _load(name: str) -> str | None:
    """Return a template's source from the ``riskreg.templates`` package (editable or wheel)."""
    resource = files("riskreg.templates")
    for part in name.split("/"):
        resource = resource.joinpath(part)
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """A compiled-template cache that is only ever a speed-up: a cache it cannot read or write is skipped."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _template_cache() -> jinja2.BytecodeCache | None:
    """Return the cache of compiled report templates (keyed by each template's source checksum).

    Compiling the templates costs about 0.15 s a report; the cache lives in the user's cache
    folder (XDG_CACHE_HOME, else ~/.cache), one per riskreg version. RISKREG_TEMPLATE_CACHE=off
    turns it off; without a usable folder there is simply no cache.
    """
    if os.environ.get("RISKREG_TEMPLATE_CACHE", "").lower() in {"off", "0", "no"}:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "riskreg" / f"templates-{__version__}"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return _QuietBytecodeCache(str(folder))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Return the one Jinja2 environment: autoescaped everywhere, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        bytecode_cache=_template_cache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["css_string"] = css_string
    env.filters["bdi"] = bdi
    return env


def render_report(name: str, context: Any) -> str:
    """Render the report template ``name`` (board, pilot or qa) with its context dataclass."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r} (reports: {', '.join(REPORTS)})")
    if not isinstance(context, CONTEXTS[name]):
        raise TypeError(f"the {name} report takes a {CONTEXTS[name].__name__}, got {type(context).__name__}")
    return environment().get_template(f"{name}.html.j2").render(report=context)


# --- time -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """The report's date and the instant that stands for "now" (the end of that date with --as-of)."""

    as_of: dt.date
    until: dt.datetime  # events before this instant count as happened
    generated: str


def clock(as_of: str | dt.date | None, now: dt.datetime | None = None) -> Clock:
    """Return the report clock: with ``as_of`` no wall-clock time is used at all (determinism)."""
    if as_of is not None:
        day = parse_date("--as-of", as_of)
        assert day is not None
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return Clock(day, end, f"{day.isoformat()} (as of)")
    now = now or dt.datetime.now(dt.UTC)
    return Clock(now.date(), now, now.strftime("%Y-%m-%d %H:%M UTC"))


def period_start(since: str | dt.date | None, when: Clock) -> dt.date:
    """Return the start of the report period: ``since``, else 90 days before the as-of date."""
    day = parse_date("--since", since) if since is not None else None
    if day is None:
        return when.as_of - dt.timedelta(days=DEFAULT_PERIOD_DAYS)
    if day > when.as_of:
        raise InvalidInput(f"--since: {day} is after the report date {when.as_of}")
    return day


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _page(
    kind: str, title: str, config: Config, url: str, when: Clock, seal: str = "", marking: str = ""
) -> Page:
    return Page(
        kind=kind,
        title=title,
        organisation=config.organisation,
        database=safe_url(url),
        version=__version__,
        generated=when.generated,
        as_of=when.as_of.isoformat(),
        seal=seal,
        marking=marking,
    )


# --- board ------------------------------------------------------------------------------------


def board_context(
    session: Session,
    config: Config,
    url: str,
    as_of: str | dt.date | None = None,
    since: str | dt.date | None = None,
    now: dt.datetime | None = None,
    settings: ReportSettings | None = None,
) -> BoardContext:
    """Build the board report's context: cover, asks, counts, heat maps, top risks, pipeline, resources.

    ``settings`` holds the cover facts (meeting, lead, purpose, marking; riskreg.toml's
    ``[report]`` table and the command's options), by default none.
    """
    when = clock(as_of, now)
    settings = settings or ReportSettings()
    start = period_start(since, when)
    rows = list_risks(session, config)
    open_rows = [r for r in rows if r.status == "open"]
    escalated = _escalated(session)
    late = {r.id: (when.as_of - next_review(r, config)).days for r in open_rows}
    by_score = sorted(open_rows, key=lambda r: (-r.likelihood * r.impact, r.id))
    above = [r for r in by_score if is_above_appetite(r, config)]
    overdue = sorted((r for r in open_rows if late[r.id] > 0), key=lambda r: (-late[r.id], f"R-{r.id}"))
    lines = _RiskLines(config, when, escalated)
    pilots = list_pilots(session)
    by_id = {p.id: p for p in pilots}
    decided = _all_decisions(session)
    amended = list(
        session.scalars(
            select(ProtocolVersion).where(ProtocolVersion.number > 1).order_by(ProtocolVersion.id)
        )
    )
    pipeline, forest_entries, note = _pipeline(session, config, pilots, decided, amended)
    top = _top_risks(session, config, lines.of(by_score[:TOP_RISKS]), by_score, start, when)
    overrides = tuple(_decision_line(d, by_id[d.pilot_id]) for d in decided if d.override)
    paper = board_paper(
        session,
        config,
        settings,
        as_of=when.as_of,
        until=when.until,
        since=start.isoformat(),
        findings=board_findings(session, config, when.as_of, rows, late),
        above=above,
        open_risks=len(open_rows),
        top=top,
        pipeline=pipeline,
        overrides=overrides,
        pilots=pilots,
    )
    return BoardContext(
        # the head as rendered: the same data give the same seal, so the same bytes
        page=_page(
            "board",
            "Board report: risks and pilots",
            config,
            url,
            when,
            head(session).seal(),
            settings.marking,
        ),
        paper=paper,
        since=start.isoformat(),
        headline=_headline(open_rows, len(rows) - len(open_rows), config, above, overdue, escalated, pilots),
        heatmaps=_heatmaps(open_rows, config),
        heat_legend=heat_legend(config.rating),
        top_risks=top,
        escalated=lines.capped([r for r in by_score if r.id in escalated]),
        above_appetite=lines.capped(above),
        overdue=lines.capped(overdue),
        pipeline=tuple(pipeline),
        analysis_note=note,
        overrides=overrides,
        amendments=tuple(_amendment_line(v, by_id[v.pilot_id]) for v in amended),
        forest=forest_plot(
            forest_entries,
            "Primary result of each pilot against its margin or no-difference line; "
            "each result has its own axis because units and scales differ.",
        ),
        hour_value=money_in(config.citizen_hour_value, config.currency),
    )


def _escalated(session: Session) -> set[int]:
    from riskreg.reviews import escalated_risks

    return escalated_risks(session)


def _risk_line(risk: Any, config: Config, when: Clock, escalated: bool) -> RiskLine:
    score = risk.likelihood * risk.impact
    due = next_review(risk, config)
    rating = config.rating(score)
    return RiskLine(
        id=f"R-{risk.id}",
        title=risk.title,
        side=risk.side,
        mode=risk.mode,
        category=risk.category,
        owner=risk.owner or "",
        likelihood=risk.likelihood,
        impact=risk.impact,
        score=score,
        rating=rating,
        rating_class=rating_class(rating),
        appetite=config.appetite_for(risk.category),
        next_review=due.isoformat(),
        days_overdue=max((when.as_of - due).days, 0),
        escalated=escalated,
    )


class _RiskLines:
    """Board lines for open risks, built only for the risks a list shows (each once)."""

    def __init__(self, config: Config, when: Clock, escalated: set[int]):
        self.config, self.when, self.escalated = config, when, escalated
        self.built: dict[int, RiskLine] = {}

    def of(self, risks: Sequence[Any]) -> list[RiskLine]:
        for risk in risks:
            if risk.id not in self.built:
                self.built[risk.id] = _risk_line(risk, self.config, self.when, risk.id in self.escalated)
        return [self.built[risk.id] for risk in risks]

    def capped(self, risks: Sequence[Any]) -> RiskList:
        """The first LIST_LIMIT lines of a list of risks, and its length."""
        return RiskList(tuple(self.of(risks[:LIST_LIMIT])), len(risks))


def _headline(
    open_rows: Sequence[Any],
    closed: int,
    config: Config,
    above: Sequence[Any],
    overdue: Sequence[Any],
    escalated: set[int],
    pilots: Sequence[Pilot],
) -> Headline:
    table = {(side, rating): 0 for side in SIDES for rating in RATINGS}
    for r in open_rows:
        table[(r.side, config.rating(r.likelihood * r.impact))] += 1
    by_side = tuple(
        SideCounts(side, tuple(table[(side, rt)] for rt in RATINGS), sum(table[(side, rt)] for rt in RATINGS))
        for side in SIDES
    )
    statuses = tuple((status, sum(1 for p in pilots if p.status == status)) for status in PILOT_STATUSES)
    return Headline(
        open_risks=len(open_rows),
        closed_risks=closed,
        ratings=RATINGS,
        by_side=by_side,
        rating_totals=tuple(sum(s.counts[i] for s in by_side) for i in range(len(RATINGS))),
        above_appetite=len(above),
        overdue=len(overdue),
        escalated=sum(1 for r in open_rows if r.id in escalated),
        pilots=len(pilots),
        pilots_by_status=statuses,
    )


def _heatmaps(open_rows: Sequence[Any], config: Config) -> tuple[Any, ...]:
    counts: dict[str, dict[tuple[int, int], int]] = {side: {} for side in SIDES}
    ids: dict[str, dict[tuple[int, int], list[str]]] = {side: {} for side in SIDES}
    for r in sorted(open_rows, key=lambda r: r.id):
        cell = counts[r.side]
        cell[(r.likelihood, r.impact)] = cell.get((r.likelihood, r.impact), 0) + 1
        ids[r.side].setdefault((r.likelihood, r.impact), []).append(f"R-{r.id}")
    appetite = config.appetite["default"]
    return tuple(
        heat_map(side, SIDE_HEADINGS[side], counts[side], config.rating, ids[side], appetite)
        for side in SIDES
    )


# --- direction of travel --------------------------------------------------------------------------


def score_timeline(events: Iterable[Event]) -> list[tuple[dt.datetime, int | None]]:
    """Return (time, current score) after each event that recorded one; None once the risk is closed."""
    timeline: list[tuple[dt.datetime, int | None]] = []
    for event in events:
        after = json.loads(event.after) if event.after else {}
        if "likelihood" not in after or "impact" not in after:
            continue
        score = None if after.get("status") == "closed" else after["likelihood"] * after["impact"]
        timeline.append((event.at, score))
    return timeline


def score_at(timeline: Sequence[tuple[dt.datetime, int | None]], instant: dt.datetime) -> int | None:
    """Return the score in force just before ``instant`` (None if the risk did not exist or was closed)."""
    score = None
    for at, value in timeline:
        if at >= instant:
            break
        score = value
    return score


def days_rated(
    timeline: Sequence[tuple[dt.datetime, int | None]],
    until: dt.datetime,
    config: Config,
    ratings: Sequence[str],
) -> int:
    """Return the whole days, up to ``until``, that the current score sat in one of ``ratings``."""
    seconds = 0.0
    for (at, score), following in zip(timeline, [*timeline[1:], (until, None)], strict=True):
        end = min(following[0], until)
        if score is not None and config.rating(score) in ratings and end > at:
            seconds += (end - at).total_seconds()
    return int(seconds // 86400)


def _top_risks(
    session: Session,
    config: Config,
    lines: Sequence[RiskLine],
    ranked: Sequence[Any],
    start: dt.date,
    when: Clock,
) -> tuple[TopRisk, ...]:
    if not lines:
        return ()
    rows = {f"R-{r.id}": r for r in ranked[: len(lines)]}
    events: dict[str, list[Event]] = {ref: [] for ref in rows}
    query = select(Event).where(Event.scope.in_(list(rows)), Event.entity == "risk").order_by(Event.seq)
    for event in session.scalars(query):
        events[event.scope].append(event)
    out = []
    for line in lines:
        row = rows[line.id]
        timeline = score_timeline(events[line.id])
        then = score_at(timeline, _start_of(start))
        out.append(
            TopRisk(
                risk=line,
                score_then=then,
                direction=_direction(then, line.score),
                direction_text=_direction_text(then, line.score),
                target=_target_text(row, config),
                target_gap=_target_gap(row, line.score),
                days_high=days_rated(timeline, when.until, config, HIGH_RATINGS),
            )
        )
    return tuple(out)


def _direction(then: int | None, now: int) -> str:
    if then is None:
        return "new"
    return "up" if now > then else "down" if now < then else "same"


def _direction_text(then: int | None, now: int) -> str:
    if then is None:
        return "new"  # registered after the start date (the column heading names it)
    if now > then:
        return f"up from {then}: worse"
    if now < then:
        return f"down from {then}: better"
    return "no change"


def _target_text(row: Any, config: Config) -> str:
    if row.target_likelihood is None or row.target_impact is None:
        return "not set"
    score = row.target_likelihood * row.target_impact
    return f"{score} ({config.rating(score)})"


def _target_gap(row: Any, score: int) -> str:
    if row.target_likelihood is None or row.target_impact is None:
        return ""
    gap = score - row.target_likelihood * row.target_impact
    return f"{gap} above target" if gap > 0 else "on target"


# --- pilot pipeline ------------------------------------------------------------------------------


def _all_decisions(session: Session) -> list[Decision]:
    return list(session.scalars(select(Decision).order_by(Decision.id)))


def _stage_name(protocol: Protocol, index: int) -> str:
    return protocol.stages[index].name if 0 <= index < len(protocol.stages) else str(index)


def _decision_line(decision: Decision, pilot: Pilot) -> DecisionLine:
    return DecisionLine(
        pilot=pilot.ref,
        stage=_stage_name(protocol_of(pilot), decision.stage_index),
        decision=decision.decision,
        recommendation=decision.recommendation or "",
        override=decision.override,
        actor=decision.actor,
        at=_when(decision.at),
        reason=decision.reason,
    )


def _data_file_line(record: DataImport, protocol: Protocol) -> DataFileLine:
    return DataFileLine(
        kind=record.kind,
        stage=_stage_name(protocol, record.stage_index),
        file=record.source,
        rows=record.rows,
        missing=record.missing,
        replaced=record.replaced,
        actor=record.actor,
        at=_when(record.at),
    )


def _amendment_line(version: ProtocolVersion, pilot: Pilot) -> AmendmentLine:
    return AmendmentLine(
        pilot=pilot.ref,
        number=version.number - 1,
        sha256=version.sha256,
        at=_when(version.at),
        actor=version.actor,
        reason=version.reason or "",
        stage=_stage_name(protocol_of(pilot), version.stage_index),
        after_data=version.after_data,
    )


def _pipeline(
    session: Session,
    config: Config,
    pilots: Sequence[Pilot],
    decided: Sequence[Decision],
    amended: Sequence[ProtocolVersion],
) -> tuple[list[PilotLine], list[tuple[str, str, dict[str, Any], str | None]], str]:
    """Return pipeline lines, forest entries and a note on where the recommendations came from."""
    from riskreg.analysis import analyse  # scipy: only the reports that analyse load it

    by_pilot: dict[int, list[Decision]] = {}
    for decision in decided:
        by_pilot.setdefault(decision.pilot_id, []).append(decision)
    amendments: dict[int, list[ProtocolVersion]] = {}
    for version in amended:
        amendments.setdefault(version.pilot_id, []).append(version)
    lines, entries, fresh, skipped = [], [], 0, 0
    counted = current_data_counts(session, pilots)
    for pilot in pilots:
        protocol = protocol_of(pilot)
        decided = by_pilot.get(pilot.id, [])
        counts = counted[pilot.id][protocol.primary.name]
        smallest = min(counts[arm]["n"] for arm in protocol.design.arms)
        has_data = any(c["n"] or c["missing"] for c in counts.values())
        stored, source = _stored_analysis(protocol, decided)
        # The current stage of an active pilot has no stored analysis until its gate (a
        # 'continue' keeps one): analyse it now, within a budget that keeps the report quick.
        current = bool(decided) and decided[-1].stage_index == pilot.stage_index and stored is not None
        analysis = stored
        if pilot.status == "active" and not current and has_data:
            if fresh < FRESH_ANALYSES:
                analysis, source, fresh = (
                    analyse(session, pilot, None, config, with_power=False).to_dict(),
                    FRESH,
                    fresh + 1,
                )
            else:
                skipped += 1
                source = (source + "; " if source else "") + (
                    f"the current stage is not analysed here (over {FRESH_ANALYSES} pilots to analyse): "
                    f"see riskreg report pilot {pilot.ref}"
                )
        elif not decided and not has_data:
            source = "no outcome data yet"
        lines.append(
            _pilot_line(pilot, protocol, decided, amendments.get(pilot.id, []), analysis, source, smallest)
        )
        primary = _primary(analysis)
        if analysis is not None and primary is not None and primary.get("estimate") is not None:
            detail = f"{analysis['stage']} · {primary['test']}"
            entries.append(
                (
                    f"{pilot.ref} {label(primary['name'])}",
                    detail,
                    primary,
                    protocol_unit(protocol, primary["name"]),
                )
            )
    note = (
        "Recommendations of active pilots come from analysing their current stage while this report is built "
        f"({fresh} analysed this time"
        + (f"; {skipped} more were left for their pilot reports" if skipped else "")
        + "); those of pilots that are stopped or completed, or decided 'continue' at their current stage, "
        "come from the analysis stored with the latest gate decision."
    )
    return lines, entries, note


FRESH = "analysed for this report"


def _stored_analysis(protocol: Protocol, decided: Sequence[Decision]) -> tuple[dict[str, Any] | None, str]:
    """Return the analysis stored with the latest gate decision and where it comes from."""
    if not decided:
        return None, ""
    last = decided[-1]
    stage = _stage_name(protocol, last.stage_index)
    analysis = json.loads(last.snapshot).get("analysis")
    if analysis is None:
        return None, f"no analysis stored with the decision at {stage}"
    return analysis, f"stored with the '{last.decision}' decision at {stage}, {_when(last.at)[:10]}"


def protocol_unit(protocol: Protocol, name: str) -> str | None:
    """Return the unit of a protocol metric, if the protocol gives one."""
    return next((m.unit for m in protocol.metrics if m.name == name), None)


def _primary(analysis: dict[str, Any] | None) -> dict[str, Any] | None:
    if not analysis:
        return None
    return next((m for m in analysis.get("metrics", []) if m.get("role") == "primary"), None)


def _primary_text(primary: dict[str, Any]) -> str:
    """Say the primary's verdict and estimate in one line, with the board probabilities where the analysis has them."""
    text = f"{label(primary['name'])}: {primary['verdict']} ({estimate_text(primary)}, {ci_text(primary)})"
    words = (primary.get("chance") or {}).get("words")
    return f"{text}; {words} (a reading of the data, not the verdict)" if words else text


def _pilot_line(
    pilot: Pilot,
    protocol: Protocol,
    decided: Sequence[Decision],
    amendments: Sequence[ProtocolVersion],
    analysis: dict[str, Any] | None,
    source: str,
    smallest: int,
) -> PilotLine:
    stage = protocol.stages[pilot.stage_index]
    primary = _primary(analysis)
    recommendation = analysis.get("recommendation", "") if analysis else ""
    due = ""
    if pilot.status == "active":
        if source == FRESH and recommendation in ("proceed", "stop"):
            due = f"gate due: the analysis recommends {recommendation}"
        elif smallest >= stage.planned_n:
            due = f"gate due: planned n reached ({smallest} of {stage.planned_n} per arm)"
    last = ""
    if decided:
        d = decided[-1]
        last = f"{d.decision}{' (override)' if d.override else ''} at {_stage_name(protocol, d.stage_index)} by {d.actor}, {_when(d.at)[:10]}"
    return PilotLine(
        id=pilot.ref,
        key=pilot.key,
        title=pilot.title,
        status=pilot.status,
        stage=stage.name,
        stage_position=f"{pilot.stage_index + 1} of {len(protocol.stages)}",
        recommendation=recommendation,
        source=source,
        reasons=tuple(analysis.get("reasons", ())) if analysis else (),
        primary="" if primary is None else _primary_text(primary),
        progress=f"{smallest} of {stage.planned_n} per arm",
        decision_due=due,
        last_decision=last,
        decision=_decision_line(decided[-1], pilot) if decided else None,
        overrides=sum(1 for d in decided if d.override),
        amendments=len(amendments),
        late_amendments=sum(1 for v in amendments if v.after_data),
    )


# --- pilot ------------------------------------------------------------------------------------


def pilot_context(
    session: Session,
    config: Config,
    url: str,
    ref: str,
    as_of: str | dt.date | None = None,
    now: dt.datetime | None = None,
) -> PilotContext:
    """Build a pilot report's context: protocol, per-stage analyses, charts, costs, risks, decisions."""
    when = clock(as_of, now)
    pilot = get_pilot(session, ref)
    protocol = protocol_of(pilot)
    from riskreg.analysis import analyse  # scipy: only the reports that analyse load it

    analyses = [analyse(session, pilot, k, config).to_dict() for k in range(pilot.stage_index + 1)]
    latest = analyses[-1]
    units = {m.name: m.unit for m in protocol.metrics}
    forest = _pilot_forest(latest, units)
    planned = [s.planned_n for s in protocol.stages]
    decided = tuple(_decision_line(d, pilot) for d in decisions(session, pilot))
    return PilotContext(
        page=_page("pilot", f"Pilot report {pilot.ref}: {pilot.title}", config, url, when),
        pilot=_pilot_summary(session, pilot, protocol),
        metrics=tuple(_metric_definition(m) for m in protocol.metrics),
        stages=tuple(_stage_definition(s, i, pilot) for i, s in enumerate(protocol.stages)),
        amendments=tuple(_amendment_line(v, pilot) for v in protocol_versions(session, pilot)[1:]),
        analyses=tuple(
            _stage_analysis(a, units, analyses[k - 1]["units"] if k else None) for k, a in enumerate(analyses)
        ),
        latest_stage=latest["stage"],
        forest=forest,
        boundary=_boundary(analyses),
        power=tuple(_power_line(m) for m in latest["metrics"] if m.get("power")),
        costs=_costs(latest, config.currency, units),
        risks=tuple(_linked_risk(session, config, pilot, ref) for ref in linked_risks(session, pilot)),
        decisions=decided,
        data_files=tuple(_data_file_line(record, protocol) for record in data_imports(session, pilot)),
        panel=decision_panel(analyses, decided, units, planned, config.currency),
        funnel=funnel(analyses, planned),
        stage_effects=stage_effects(analyses, units),
    )


def _pilot_summary(session: Session, pilot: Pilot, protocol: Protocol) -> PilotSummary:
    design = protocol.design
    return PilotSummary(
        id=pilot.ref,
        key=pilot.key,
        title=pilot.title,
        status=pilot.status,
        stage=protocol.stages[pilot.stage_index].name,
        service=protocol.service or "",
        modes=", ".join(protocol.modes),
        owner=protocol.owner or "",
        hypothesis=protocol.hypothesis,
        sha256=pilot.protocol_sha256,
        arms=design.arms,
        allocation=":".join(f"{a:g}" for a in design.allocation),
        alpha=f"{design.alpha:g}",
        power=f"{design.power:g}",
        linked_risks=", ".join(linked_risks(session, pilot)) or "none linked",
    )


def _metric_definition(metric: Any) -> MetricDefinition:
    return MetricDefinition(
        name=metric.name,
        description=metric.description or "",
        unit=metric.unit or "",
        kind=metric.kind,
        role=metric.role,
        better=metric.better,
        test=metric.test,
        margin=margin_text(metric.kind, metric.test, metric.margin, metric.unit).removeprefix("margin ")
        or "–",
    )


def _stage_definition(stage: Any, index: int, pilot: Pilot) -> StageDefinition:
    criteria = "; ".join(f"{c.name} green ≥ {c.green:g}, red < {c.red:g}" for c in stage.criteria)
    return StageDefinition(
        name=stage.name,
        planned_n=stage.planned_n,
        evidence_level="–" if stage.evidence_level is None else str(stage.evidence_level),
        criteria=criteria or "none set",
        reached=index <= pilot.stage_index,
        current=index == pilot.stage_index and pilot.status == "active",
    )


def _arm_values(values: dict[str, Any], arms: Sequence[str], fmt: Any) -> tuple[ArmValue, ...]:
    return tuple(ArmValue(arm, fmt(values.get(arm))) for arm in arms)


def _arm_summaries(m: dict[str, Any], arms: Sequence[str], unit: str | None) -> tuple[ArmValue, ...]:
    """Return each arm's summary; a binary or count metric also shows its numerator and denominator."""
    if m["kind"] == "continuous":
        return _arm_values(m.get("summary") or {}, arms, _summary_format(m["kind"]))
    detail = m.get("detail") or {}
    return tuple(ArmValue(arm, arm_count(m["kind"], detail.get(arm), unit)) for arm in arms)


def _summary_format(kind: str) -> Any:
    if kind == "binary":
        return pct
    return lambda v: num(v, 4)


def _result_line(m: dict[str, Any], arms: Sequence[str], unit: str | None, final: bool = True) -> ResultLine:
    missing = m.get("missing") or {}
    return ResultLine(
        name=m["name"],
        role=m["role"],
        kind=m["kind"],
        test=m["test"],
        n=tuple(ArmValue(arm, f"{m['n'].get(arm, 0):,}") for arm in arms),
        missing=tuple(
            ArmValue(arm, f"+{missing[arm]:,} missing" if missing.get(arm) else "") for arm in arms
        ),
        summary=_arm_summaries(m, arms, unit),
        estimate=estimate_text(m),
        ci=plain_ci(m, final, unit),
        p_value=p_text(m.get("p_value")),
        p_adjusted=p_text(m.get("p_adjusted")),
        boundary="–" if m.get("boundary") is None else num(m["boundary"], 4),
        verdict=m["verdict"],
        method=m["method"],
        sentence=metric_sentence(m, final, unit),
        warnings=tuple(m.get("warnings") or ()),
    )


def _stagewise_text(metric: dict[str, Any]) -> str:
    """Return the primary's estimate allowing for the looks, after an early crossing, in words."""
    s = metric["stagewise"]
    low, high = s["ci"]
    return (
        f"Allowing for the looks taken, the median-unbiased estimate of {metric['name']} is {num(s['median_unbiased'])} "
        f"({level_text(s['ci_level'])} CI {num(low)} to {num(high)}; stage-wise-ordering p = {p_text(s['p_value'])}); "
        f"the naive estimate {num(s['naive']['estimate'])} in the table does not allow for them."
    )


def _stage_analysis(
    a: dict[str, Any], units: dict[str, str | None], earlier: dict[str, int] | None
) -> StageAnalysis:
    arms = a["arms"]
    note = ""
    if earlier is not None and earlier == a["units"]:
        note = "No data have arrived at this stage yet: the analysis repeats the earlier stages' data at this stage's boundary."
    elif not any(a["units"].values()):
        note = "No outcome data yet."
    srm = a["srm"]
    counted = srm.get("clusters") or srm.get("units", {})  # a cluster design allocates clusters
    counts = ", ".join(f"{n:,} {arm}" for arm, n in counted.items()) + (
        " clusters" if srm.get("clusters") else ""
    )
    ok = bool(srm.get("ok", True))
    futility = (a.get("futility") or {}).get("text", "")
    stagewise = next((_stagewise_text(m) for m in a["metrics"] if m.get("stagewise")), "")
    return StageAnalysis(
        stage=a["stage"],
        index=a["stage_index"],
        stages_included=", ".join(a["stages_included"]),
        note=note,
        recommendation=a["recommendation"],
        reasons=tuple(plain_reason(r) for r in a["reasons"]),
        warnings=tuple(a.get("warnings") or ()),
        units=_arm_values(a["units"], arms, lambda v: f"{v:,}"),
        information_fraction=num(a["information_fraction"]),
        boundary=num(a["boundaries"]["boundary"], 4),
        srm=_srm_sentence(srm, counts, ok),
        srm_ok=ok,
        notes=tuple(a.get("notes") or ()),
        futility=futility,
        stagewise=stagewise,
        criteria=tuple(
            CriterionLine(
                c["name"],
                c["description"],
                _criterion_value(c),
                _criterion_value({**c, "value": c["green"]}),
                _criterion_value({**c, "value": c["red"]}),
                c["status"],
            )
            for c in a["criteria"]
        ),
        results=tuple(
            _result_line(m, arms, units.get(m["name"]), bool(a["boundaries"].get("final")))
            for m in a["metrics"]
        ),
        by_site=tuple(_site_line(name, s) for name, s in (a.get("stratified") or {}).items()),
        adjusted=tuple(_adjusted_sentence(name, x) for name, x in (a.get("adjusted") or {}).items()),
        design=_design_sentences(a.get("design") or {}),
    )


def _design_sentences(design: dict[str, Any]) -> tuple[str, ...]:
    """Say a cluster design's layout, clusters and each metric's clustering, for the pilot report."""
    if not design:
        return ()
    column = design["cluster_column"]
    if design["layout"] == "stepped-wedge":
        by_stage: dict[str, list[str]] = {}
        for cluster, stage in design.get("schedule", {}).items():
            by_stage.setdefault(stage, []).append(cluster)
        said = [
            f"A stepped wedge by {column}: every cluster starts in the comparison arm and crosses to the pilot "
            "at its scheduled stage; the stages are the periods. The results above are the Hussey–Hughes model's "
            "(period effects, a random cluster effect), and the recommendation reads them.",
            "Schedule: "
            + "; ".join(f"{', '.join(names)} at {stage}" for stage, names in by_stage.items())
            + ".",
        ]
        for name, d in design["metrics"].items():
            model = d.get("model") or {}
            if model.get("icc") is not None:
                said.append(
                    f"{name}: {d['clusters']} clusters over {d['periods']} periods; estimated ICC {num(model['icc'], 3)}."
                )
        return tuple(said)
    clusters = " and ".join(f"{n:,} {arm}" for arm, n in design["clusters"].items())
    said = [
        f"Clusters ({column}) were allocated whole: {clusters} clusters. The results above compare the clusters "
        f"(a cluster-level t test, {design['weighting']} weights), and the recommendation reads them: an analysis "
        "of units as if each had been randomised would give intervals too narrow."
    ]
    for name, d in design["metrics"].items():
        if d.get("design_effect") is not None:
            said.append(
                f"{name}: estimated ICC {num(d['icc'], 3)}, design effect {num(d['design_effect'], 3)}: the units "
                f"carry the information of {num(d['effective_n'], 4)} randomised one by one."
            )
        elif d.get("rate_cv") is not None:
            said.append(f"{name}: the clusters' event rates vary by a coefficient of {num(d['rate_cv'], 3)}.")
    planned = design.get("planned") or {}
    if planned.get("icc") is not None:
        said.append(
            f"Planned: ICC {planned['icc']:g}, {planned['cluster_size']:g} units per cluster, "
            f"{planned['clusters_per_arm']} clusters per arm."
        )
    return tuple(said)


def _srm_sentence(srm: dict[str, Any], counts: str, ok: bool) -> str:
    """Say the sample-ratio check: the counts against the allocation, its test and verdict."""
    if srm.get("p_value") is None and "not applicable" in str(srm.get("method", "")):
        return f"{counts}; {srm['method']}"
    return (
        f"{counts} against allocation {':'.join(f'{x:g}' for x in srm.get('allocation', []))}; "
        f"{'exact binomial' if 'binomial' in str(srm.get('method', '')) else 'χ²'} p = {p_text(srm.get('p_value'))}: "
        f"{'no mismatch' if ok else 'MISMATCH (p < ' + format(srm.get('threshold', 0.01), 'g') + ')'}"
    )


def _adjusted_sentence(metric: str, a: dict[str, Any]) -> str:
    """Say a metric's baseline-adjusted result beside the unadjusted one, in one sentence."""
    if a.get("estimate") is None:
        return f"{metric}, adjusted for {a['covariate']}: {a.get('note', 'no estimate')}."
    low, high = a["ci"]
    units = a.get("units", {})
    gaps = sum((a.get("missing_baseline") or {}).values())
    kept = f" ({gaps:,} without a baseline, kept in by a missing indicator)" if gaps else ""
    return (
        f"{metric}, adjusted for {a['covariate']}: difference {num(a['estimate'])} (95% interval {num(low)} to "
        f"{num(high)}, p = {p_text(a.get('p_value'))}) against {num(a['unadjusted_estimate'])} unadjusted, on "
        f"{units.get('comparison', 0):,} comparison and {units.get('pilot', 0):,} pilot units{kept}; "
        f"the baseline cut the variance of the difference by {a['variance_reduction']:.0%}."
    )


def _site_line(metric: str, s: dict[str, Any]) -> SiteLine:
    """Say one metric's site-stratified result for the pilot report's by-site table."""
    spread = s.get("heterogeneity")
    low, high = s.get("ci") or (None, None)

    def arm(site: dict[str, Any], name: str) -> str:
        held = site.get(name) or {}
        if not held.get("n"):
            return "–"
        return f"{num(held.get('summary'))} (n = {held['n']:,})"

    return SiteLine(
        metric=metric,
        estimate=num(s.get("estimate")) if s.get("estimate") is not None else "–",
        interval="–" if low is None else f"{num(low)} to {num(high)}",
        heterogeneity=s.get("note", "–")
        if spread is None
        else f"Q = {num(spread['q'])} on {spread['df']} df, p = {p_text(spread['p_value'])}; I² = {spread['i_squared']:.0%}",
        sites=tuple(
            (
                site["site"],
                arm(site, "comparison"),
                arm(site, "pilot"),
                num(site["estimate"]) if site["estimate"] is not None else "–",
            )
            for site in s.get("sites", [])
        ),
        method=s.get("method", ""),
    )


def _criterion_value(c: dict[str, Any]) -> str:
    if c["value"] is None:
        return "–"
    return pct(c["value"]) if c["name"] == "retention" else num(c["value"])


def _pilot_forest(latest: dict[str, Any], units: dict[str, str | None]) -> ForestPlot | None:
    entries = [
        (label(m["name"]), f"{m['role']} · {m['test']}", m, units.get(m["name"]))
        for m in latest["metrics"]
        if m.get("estimate") is not None
    ]
    if not entries:
        return None
    return forest_plot(
        entries,
        f"Every metric at {latest['stage']} (cumulative data) against its no-difference line and margins; "
        "the primary's interval is at its stage boundary's level.",
    )


def _boundary(analyses: Sequence[dict[str, Any]]) -> BoundaryChart:
    planned = analyses[-1]["boundaries"]["planned"]
    observed: dict[int, float | None] = {}
    for a in analyses:
        primary = _primary(a)
        observed[a["stage_index"]] = None if primary is None else observed_z(primary)
    return boundary_chart(
        planned["stages"],
        planned["fractions"],
        planned["z"],
        planned["alpha_spent"],
        observed,
        analyses[-1]["primary"],
    )


def _power_line(m: dict[str, Any]) -> PowerLine:
    p = m["power"]
    if "sd" in p:
        assumption = f"sd {num(p['sd'])} ({p.get('sd_source', '')})"
    else:
        assumption = f"baseline {num(p.get('baseline'))} ({p.get('baseline_source', '')})"
    ni = p.get("power_non_inferiority_if_equal")
    return PowerLine(
        metric=m["name"],
        mde=num(p.get("mde")),
        scale=p.get("mde_scale", ""),
        assumption=assumption,
        power_target=pct(p.get("power_target"), 0),
        non_inferiority_power="" if ni is None else pct(ni),
    )


def _costs(latest: dict[str, Any], currency: str, units: dict[str, str | None]) -> CostSummary | None:
    """Return the costs to the latest stage in ``currency``, per arm and per unit of the primary effect."""
    costs = latest.get("costs") or {}
    if not costs:
        return None

    def cash(value: float | None) -> str:
        return currency_amount(value, currency)

    names = [k for k in (*latest["arms"], "unallocated", "overall") if isinstance(costs.get(k), dict)]
    lines = tuple(
        CostLine(
            name=name,
            public=cash(costs[name]["public"]),
            citizen=cash(costs[name]["citizen"]),
            citizen_time_valued=cash(costs[name].get("citizen_hours_valued")),
            total=cash(costs[name]["total"]),
            units="–" if costs[name].get("units") is None else f"{costs[name]['units']:,}",
            per_unit=cash(costs[name].get("per_unit")),
            per_unit_public=cash(costs[name].get("per_unit_public")),
        )
        for name in names
    )
    inc = costs.get("incremental") or {}
    primary = next((m for m in latest["metrics"] if m["role"] == "primary"), None)
    groups = [
        (
            name,
            (
                costs[name]["public"],
                costs[name].get("citizen_cash") or 0.0,
                costs[name].get("citizen_hours_valued") or 0.0,
            ),
        )
        for name in names
        if name != "overall"
    ]
    chart = bar_chart(
        groups,
        ("public cash", "citizen cash", "citizen time (valued)"),
        f"Inputs per arm to {latest['stage']}, public and citizen; unpaid citizen hours valued at "
        f"{cash(costs.get('hour_value'))} an hour, shown apart from cash; amounts in {currency}.",
    )
    return CostSummary(
        stage=latest["stage"],
        hour_value=cash(costs.get("hour_value")),
        lines=lines,
        incremental_with_citizen=cash(inc.get("per_unit_with_citizen")),
        incremental_public_only=cash(inc.get("per_unit_public_only")),
        per_effect_with_citizen=_per_effect(inc, "per_unit_with_citizen", primary, currency, units),
        per_effect_public_only=_per_effect(inc, "per_unit_public_only", primary, currency, units),
        effect_basis=f"{inc.get('effect_basis', '')} = {num(inc.get('effect'))}" if inc else "",
        chart=chart,
    )


def _per_effect(
    inc: dict[str, Any], key: str, primary: dict[str, Any] | None, currency: str, units: dict[str, str | None]
) -> str:
    """Return the cost per unit of primary effect in words ("Dominant (cheaper and better)", "£142.40 per …")."""
    if primary is None:
        return "–"
    unit = units.get(primary["name"])
    text = per_effect_text(
        inc.get(key), inc.get("effect"), primary["kind"], primary["better"], currency, unit
    )
    return text or "–"


def _tier(likelihood: int | None, impact: int | None, config: Config) -> str:
    if likelihood is None or impact is None:
        return "not set"
    score = likelihood * impact
    return f"{likelihood}×{impact} = {score} ({config.rating(score)})"


def _score_of(payload: dict[str, Any] | None, config: Config) -> str:
    if not payload or "likelihood" not in payload:
        return "–"
    score = payload["likelihood"] * payload["impact"]
    return f"{score} ({config.rating(score)})"


def _linked_risk(session: Session, config: Config, pilot: Pilot, ref: str) -> LinkedRisk:
    risk: Risk = get_risk(session, ref)
    protocol = protocol_of(pilot)
    evidence = []
    for row in evidence_for(session, risk.id):
        if row.pilot_id != pilot.id:
            continue
        event = session.get(Event, row.event_seq)
        before = json.loads(event.before) if event is not None and event.before else None
        after = json.loads(event.after) if event is not None and event.after else None
        kinds = {m.name: m.kind for m in protocol.metrics}
        result = {"kind": kinds.get(row.metric, "continuous"), "estimate": row.estimate}
        result.update({"ci": [row.ci_low, row.ci_high], "ci_level": None})
        evidence.append(
            EvidenceLine(
                at=_when(row.at),
                stage=_stage_name(protocol, row.stage_index),
                metric=row.metric,
                verdict=row.verdict or "",
                estimate=estimate_text(result),
                ci=ci_text(result),
                score_before=_score_of(before, config),
                score_after=_score_of(after, config),
            )
        )
    return LinkedRisk(
        id=risk.ref,
        title=risk.title,
        side=risk.side,
        status=risk.status,
        inherent=_tier(risk.inherent_likelihood, risk.inherent_impact, config),
        current=_tier(risk.likelihood, risk.impact, config),
        target=_tier(risk.target_likelihood, risk.target_impact, config),
        current_rating_class=rating_class(config.rating(risk.score)),
        evidence=tuple(evidence),
    )


# --- qa ---------------------------------------------------------------------------------------


def qa_context(
    session: Session,
    config: Config,
    url: str,
    as_of: str | dt.date | None = None,
    since: str | dt.date | None = None,
    now: dt.datetime | None = None,
) -> QaContext:
    """Build the QA report's context: findings by severity and the audit trail of the period."""
    when = clock(as_of, now)
    start = period_start(since, when)
    findings, facts = checked(session, config, when.as_of)
    names = _subject_names(session, {f.subject for f in findings})
    groups = []
    for severity in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__):
        chosen = tuple(
            FindingLine(f.rule, f.subject, f.message, f.advice, *names.get(f.subject, ("", "")))
            for f in findings
            if f.severity == severity
        )
        if chosen:
            groups.append(FindingGroup(severity, chosen))
    query = select(Event).where(Event.at >= _start_of(start), Event.at < when.until).order_by(Event.seq)
    events = _event_lines(session.scalars(query))
    return QaContext(
        page=_page("qa", "Quality assurance report", config, url, when, head(session).seal()),
        since=start.isoformat(),
        until=when.as_of.isoformat(),
        assurance=assurance(facts.chain, facts.state),
        counts=tuple(
            (s, sum(1 for f in findings if f.severity == s))
            for s in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__)
        ),
        groups=tuple(groups),
        rules=tuple(
            RuleLine(
                name, config.severity.get(name, severity), (function.__doc__ or "").strip().splitlines()[0]
            )
            for name, (severity, function) in RULES.items()
        ),
        events=tuple(events),
        event_count=sum(e.run for e in events),
    )


def _subject_names(session: Session, subjects: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Return {subject: (title, owner)} for the R-n and P-n subjects the register has."""
    wanted: dict[str, set[int]] = {"R": set(), "P": set()}
    for subject in subjects:
        prefix, _, number = subject.partition("-")
        if prefix in wanted and number.isdigit():
            wanted[prefix].add(int(number))
    names: dict[str, tuple[str, str]] = {}
    if wanted["R"]:
        rows = session.execute(
            select(Risk.id, Risk.title, Risk.owner).where(Risk.id.in_(sorted(wanted["R"])))
        )
        names.update({f"R-{i}": (title or "", owner or "") for i, title, owner in rows})
    if wanted["P"]:
        rows = session.execute(select(Pilot.id, Pilot.title).where(Pilot.id.in_(sorted(wanted["P"]))))
        names.update({f"P-{i}": (title or "", "") for i, title in rows})
    return names


def assurance(chain: ChainCheck, state: StateCheck) -> Assurance:
    """Word the audit chain's verification and the register's check against it, as ``riskreg audit verify`` does."""
    events = f"{chain.events:,} event{'' if chain.events == 1 else 's'}"
    if chain.ok:
        chain_text = f"audit chain verified: {events} intact"
    else:
        chain_text = f"audit chain BROKEN at event {chain.broken_at} of {events}: {chain.problem}"
    if state.ok:
        counted = ", ".join(
            f"{n:,} {noun}{'' if n == 1 else 's'}"
            for n, noun in (
                (state.risks, "risk"),
                (state.controls, "control"),
                (state.pilots, "pilot"),
                (state.data_files, "data file"),
                (state.protocols, "protocol text"),
                (state.links, "risk link"),
                (state.decisions, "gate decision"),
                (state.reviews, "review"),
                (state.evidence, "evidence record"),
            )
        )
        state_text = f"the register matches the trail: {counted}"
    else:
        n = len(state.mismatches)
        state_text = f"the register was edited outside riskreg: {n} difference{'' if n == 1 else 's'} from the audit trail"
    return Assurance(
        chain_ok=chain.ok,
        events=chain.events,
        chain=chain_text,
        state_ok=state.ok,
        state=state_text,
        mismatches=tuple(m.text() for m in state.mismatches[:LIST_LIMIT]),
    )


def _value(value: Any, limit: int = 240) -> str:
    """Return one audit value for reading: text as it is, numbers rounded, lists joined, never JSON."""
    if value is None:
        text = "–"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = num(value, 6)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        text = ", ".join(_value(v) for v in value) if value else "none"
    elif isinstance(value, dict) and not value:
        text = "none"
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _leaves(value: Any, path: str) -> dict[str, Any]:
    """Flatten nested objects to {"counts.wellbeing.pilot.n": 54, …}; a list of scalars is one leaf."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_leaves(value[key], f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        out = {}
        for i, item in enumerate(value, start=1):
            out.update(_leaves(item, f"{path}[{i}]"))
        return out
    return {path: value}


CHANGE_LINES = 12  # an event shows this many changed fields; the rest are counted


def _changes(fields: dict[str, tuple[Any, Any]]) -> tuple[list[Change], int]:
    """Return readable changes, one leaf field a line (field, old, new), and how many are left out."""
    lines = []
    for key, (before, after) in fields.items():
        old, new = _leaves(before, key), _leaves(after, key)
        for leaf in sorted(set(old) | set(new), key=lambda k: (k not in old, k)):
            b, a = old.get(leaf), new.get(leaf)
            if b != a:
                lines.append(Change(leaf, _value(b, 120), _value(a, 120)))
    return lines[:CHANGE_LINES], max(len(lines) - CHANGE_LINES, 0)


RUN = 10  # this many alike events in a row (a bulk import) become one line of the trail


def _event_lines(events: Iterable[Event]) -> list[EventLine]:
    """Return the trail's lines; runs of RUN or more alike events are summarised as one line."""
    lines: list[EventLine] = []
    run: list[Event] = []

    def flush() -> None:
        if len(run) >= RUN:
            lines.append(_run_line(run))
        else:
            lines.extend(_event_line(e) for e in run)
        run.clear()

    for event in events:
        if run and _key(run[-1]) != _key(event):
            flush()
        run.append(event)
    flush()
    return lines


def _key(event: Event) -> tuple[Any, ...]:
    # alike: same person, action, reason and minute, on the same kind of thing
    return (event.actor, event.action, event.entity, event.reason, _when(event.at))


def _run_line(run: Sequence[Event]) -> EventLine:
    first, last = run[0], run[-1]
    return EventLine(
        seq=f"{first.seq:,}–{last.seq:,}",
        at=_when(first.at),
        actor=first.actor,
        action=first.action,
        entity=f"{first.entity_id} … {last.entity_id}",
        reason=first.reason or "",
        created=f"{len(run):,} {first.action} events in one go (e.g. an import); "
        f"riskreg risk history shows each one",
        changes=(),
        run=len(run),
    )


def _event_line(event: Event) -> EventLine:
    fields = changed_fields(event)
    created = event.before is None
    if created:  # what was recorded: only the values that were set
        fields = {k: (None, after) for k, (_b, after) in fields.items() if after is not None}
    changes, more = _changes(fields)
    return EventLine(
        seq=str(event.seq),
        at=_when(event.at),
        actor=event.actor,
        action=event.action,
        entity=event.entity_id,
        reason=event.reason or "",
        created="",
        changes=() if created else tuple(changes),
        run=1,
        recorded=tuple(changes) if created else (),
        more=more,
    )


# --- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenReport:
    """A report file that was written: which report, where, and how big."""

    report: str
    path: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` document of ``riskreg report ...``."""
        return {"report": self.report, "path": self.path, "bytes": self.bytes}


def default_path(kind: str, pilot: str | None = None) -> str:
    """Return the default file name of a report in the current folder."""
    return f"pilot-{pilot}.html" if kind == "pilot" else f"{kind}.html"


def build_report(
    database: Database,
    kind: str,
    pilot: str | None = None,
    as_of: str | None = None,
    since: str | None = None,
) -> tuple[str, str]:
    """Return (HTML, default file name) of a report over an open database."""
    with database.read() as session:
        if kind == "board":
            context: Any = board_context(session, database.config, database.url, as_of, since)
            name = default_path(kind)
        elif kind == "pilot":
            context = pilot_context(session, database.config, database.url, pilot or "", as_of)
            name = default_path(kind, context.pilot.id)
        elif kind == "qa":
            context = qa_context(session, database.config, database.url, as_of, since)
            name = default_path(kind)
        else:
            raise InvalidInput(f"unknown report {kind!r} (reports: {', '.join(REPORTS)})")
    return render_report(kind, context), name


def write_report(
    database: Database,
    kind: str,
    path: str | None = None,
    pilot: str | None = None,
    as_of: str | None = None,
    since: str | None = None,
    pdf: bool = False,
) -> WrittenReport:
    """Build a report and write it to ``path`` (default ``board.html``, ``pilot-P-1.html``, ``qa.html``).

    The file is replaced atomically, so a reader never sees half a report; with ``pdf`` it is
    printed to an A4 PDF (default ``board.pdf`` and so on).
    """
    html, name = build_report(database, kind, pilot, as_of, since)
    return write_rendered(kind, html, output_path(path, name, pdf), pdf)


def output_path(path: str | None, default_name: str, pdf: bool) -> Path:
    """Return where a report goes: ``path`` as given, else its default name (``.pdf`` for a PDF)."""
    if path:
        return Path(path)
    return Path(default_name).with_suffix(".pdf") if pdf else Path(default_name)


def write_rendered(kind: str, html: str, target: Path, pdf: bool = False) -> WrittenReport:
    """Write a rendered report to ``target``, as HTML or printed to an A4 PDF, replacing it whole.

    The browser prints before anything is written, so a failed print leaves any earlier
    file as it was.
    """
    if pdf:
        from riskreg.printpdf import html_to_pdf

        data = html_to_pdf(html)
    else:
        data = html.encode("utf-8")
    with replaced_whole(target, binary=True) as out:
        out.write(data)
    return WrittenReport(kind, str(target), len(data))


__all__ = [
    "REPORTS",
    "WrittenReport",
    "board_context",
    "build_report",
    "clock",
    "days_rated",
    "environment",
    "pilot_context",
    "qa_context",
    "render_report",
    "score_at",
    "score_timeline",
    "write_rendered",
    "write_report",
]
