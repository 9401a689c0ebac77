"""The board report as a board paper (issue 17): cover, key messages, asks, assurance, BAF, appetite.

A board member with ten minutes reads page 1: who the paper is from and for which meeting,
three to five key messages and "the board is asked to:", each generated from the register.
Further on, each top risk is shown in the shape of a board assurance framework (inherent →
current → target, its score history, controls, gaps and actions), the appetite in force, and
the resources of each pilot's two arms apart.

The ``*_lines``/``*_messages``/``board_asks`` functions are pure (plain values in, frozen
dataclasses out); ``board_paper`` reads the database once for them.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from markupsafe import Markup
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from riskreg.config import Config
from riskreg.errors import ConfigError, InvalidInput
from riskreg.models import Action, Decision, Event, Pilot, Resource, Risk
from riskreg.pilot_paper import currency_amount
from riskreg.pilots import protocol_of
from riskreg.qa import Finding
from riskreg.register import next_review
from riskreg.report_context import DASH, BarChart, PilotLine, TopRisk, bar_chart, bdi, hours, pct

T = TypeVar("T")
PURPOSES = ("decision", "assurance", "information")
REPORT_KEYS = ("meeting", "meeting_date", "lead", "purpose", "marking")
PURPOSE_TEXT = {
    "decision": "the board is asked to decide the items below",
    "assurance": "the board is asked to take assurance from the evidence below",
    "information": "the board is asked to note the report; no decision is sought",
}
# the QA rules whose findings a board should see, most serious for a board first
# (the integrity rules, audit-chain-broken and register-edited, re-read the whole trail: the
# QA report runs them, and the board shows the audit seal of the data it reports)
BOARD_RULES = {
    "gate-override": "Gate decisions taken against the analysis",
    "control-ineffective-but-relied-on": "Scores rely on controls rated ineffective",
    "above-appetite-untreated": "Risks above appetite with no treatment or control",
    "rescore-on-inconclusive-evidence": "Scores lowered on inconclusive pilot evidence",
    "action-overdue": "Actions past their due date",
    "test-not-rescored": "Pilot evidence awaits a re-score",
    "review-overdue": "Risk reviews overdue",
}
ASKS_SHOWN = 10  # asks of one kind listed; a large register gets one more line with the rest
SUBJECTS_SHOWN = 8  # subjects named per assurance gap; the count gives the rest
SPARK_POINTS = 12  # the last score changes a sparkline draws
SPARK_W, SPARK_H, SPARK_PAD = 140, 36, 4


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSettings:
    """The board paper's cover facts: the ``[report]`` table of riskreg.toml, then ``report board`` options."""

    meeting: str = ""  # "Board meeting in public"
    meeting_date: str = ""  # ISO date of the meeting; "" shows the report's as-of date
    lead: str = ""  # executive lead
    purpose: str = ""  # decision | assurance | information ("" derives it from the asks)
    marking: str = ""  # protective marking, e.g. "OFFICIAL"; "" prints none


def report_settings(table: Any, source: str) -> ReportSettings:
    """Validate a ``[report]`` table (meeting, meeting_date, lead, purpose, marking) into settings."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: report: expected a table like [report]")
    for key in table:
        if key not in REPORT_KEYS:
            raise ConfigError(f"{source}: report.{key}: unknown key; known keys: {', '.join(REPORT_KEYS)}")
    values: dict[str, str] = {}
    for key in REPORT_KEYS:
        value = table.get(key, "")
        if not isinstance(value, str) or len(value) > 200 or "\n" in value:
            raise ConfigError(f"{source}: report.{key}: expected one line of text, got {value!r}")
        values[key] = value.strip()
    return with_options(ReportSettings(), source=f"{source}: report.", **values)


def read_report_settings(path: Path | None) -> ReportSettings:
    """Return the ``[report]`` settings of a riskreg.toml (the defaults without a file or table)."""
    if path is None or not path.exists():
        return ReportSettings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    return report_settings(raw.get("report", {}), str(path))


def with_options(base: ReportSettings, source: str = "--", **options: str | None) -> ReportSettings:
    """Return ``base`` with every option given (not None) in place of its value, validated."""
    values = {key: getattr(base, key) for key in REPORT_KEYS}
    values.update({k: v.strip() for k, v in options.items() if v is not None})
    error = ConfigError if source != "--" else InvalidInput
    purpose = values["purpose"]
    if purpose and purpose not in PURPOSES:
        raise error(f"{source}purpose: expected one of {', '.join(PURPOSES)}, got {purpose!r}")
    if values["meeting_date"]:
        try:
            dt.date.fromisoformat(values["meeting_date"])
        except ValueError:
            raise error(
                f"{source}meeting-date: expected a date as YYYY-MM-DD, got {values['meeting_date']!r}"
            ) from None
    return ReportSettings(**values)


# --- context ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cover:
    """Page 1's masthead facts: from whom, for which meeting, led by whom, for what purpose."""

    organisation: str
    meeting: str  # "" when none is set
    date: str  # the meeting date, else the as-of date
    lead: str  # "" when none is set
    purpose: str  # decision | assurance | information
    purpose_text: str  # what the purpose asks of the board, in a sentence
    marking: str  # protective marking, "" for none


@dataclass(frozen=True)
class Ask:
    """One item of "The board is asked to:"."""

    kind: str  # approve | decide | note-stop | ratify | plan | rescore
    subject: str  # P-1, R-5
    text: Markup  # the sentence, starting with a verb; user text in it escaped inside <bdi>


@dataclass(frozen=True)
class AssuranceGap:
    """A QA rule a board should know about, with how many findings it has and whom they concern."""

    rule: str
    severity: str  # the most serious severity among its findings
    what: str  # plain title of the gap
    count: int
    subjects: str  # "R-1, R-4, … and 3 more"


@dataclass(frozen=True)
class SparkPoint:
    """One score in a risk's history."""

    at: str  # ISO date
    score: str  # "12", or "closed"
    x: float
    y: float


@dataclass(frozen=True)
class Sparkline:
    """A risk's current score over its last changes, laid out for a small inline SVG."""

    label: str  # the aria-label: every value and its date
    path: str  # SVG path data
    points: tuple[SparkPoint, ...]
    width: int
    height: int
    appetite_y: float  # where the risk's appetite runs across the sparkline


@dataclass(frozen=True)
class ControlLine:
    """A control on a risk with its effectiveness and the assurance behind it."""

    ref: str
    description: str
    status: str
    effectiveness: str
    assurance: str  # "second line: quarterly audit", "" when none recorded
    weak: bool  # rated ineffective or partially effective


@dataclass(frozen=True)
class ActionLine:
    """An open action on a risk: what, who, by when, and how late."""

    ref: str
    title: str
    owner: str
    due: str
    days_overdue: int


@dataclass(frozen=True)
class BafRisk:
    """A top risk in the shape of a board assurance framework entry."""

    top: TopRisk
    inherent: str  # "20 (very high)"
    current: str
    target: str  # "6 (medium)" or "not set"
    appetite: int
    spark: Sparkline
    controls: tuple[ControlLine, ...]
    gaps_in_control: str
    gaps_in_assurance: str
    actions: tuple[ActionLine, ...]


@dataclass(frozen=True)
class AppetiteInForce:
    """The risk appetite the report judges against and when the register last changed it."""

    default: int
    categories: tuple[tuple[str, int], ...]  # (category, appetite) besides the default
    statement: str
    changed: str  # "2030-01-02 by alice: reason", or how it is set when never changed


@dataclass(frozen=True)
class ArmCosts:
    """One arm's recorded inputs, citizen time valued, in the configured currency."""

    arm: str
    public: str  # public cash
    citizen: str  # citizen cash + valued citizen time
    citizen_hours: str
    total: str
    citizen_share: str  # citizen part of the arm's total


@dataclass(frozen=True)
class ArmResources:
    """A pilot's inputs with the pilot arm and the comparison arm apart (never added together)."""

    pilot: str
    title: str
    pilot_arm: ArmCosts
    comparison_arm: ArmCosts
    unallocated: str  # inputs recorded without an arm ("" when none)


@dataclass(frozen=True)
class BoardPaper:
    """Everything the board paper adds to the board report's data sections."""

    cover: Cover
    messages: tuple[str, ...]  # 3–5 key messages
    asks: tuple[Ask, ...]
    gaps: tuple[AssuranceGap, ...]
    baf: tuple[BafRisk, ...]
    appetite: AppetiteInForce
    resources: tuple[ArmResources, ...]
    resource_chart: BarChart  # the pilot arms' inputs
    currency: str


# --- money --------------------------------------------------------------------------------------


def money_in(value: float | None, currency: str) -> str:
    """Return an amount in the configured currency for the board ("£1,234.50", "GBP 1,234.50")."""
    return currency_amount(value, currency)


# --- the asks and the messages ------------------------------------------------------------------


def _final_stage(line: PilotLine) -> bool:
    at, _, of = line.stage_position.partition(" of ")
    return at == of


def _reasons(line: PilotLine) -> Markup:
    if not line.reasons:
        return Markup("no reason stored with the analysis")
    return Markup("; ").join(bdi(reason) for reason in line.reasons)


def pilot_asks(pipeline: Sequence[PilotLine], since: str) -> list[Ask]:
    """Return the asks of pilots: gates due with their recommendation, and stops decided since ``since``."""
    asks = []
    for p in pipeline:
        named = Markup("{} ({})").format(p.id, bdi(p.title))
        stage = bdi(p.stage)
        if p.status == "active" and p.decision_due:
            if p.recommendation == "proceed":
                step = (
                    Markup("scale-up")
                    if _final_stage(p)
                    else Markup("progression beyond the {} stage").format(stage)
                )
                text = Markup("Approve {} of {}: the analysis recommends proceed.").format(step, named)
                if p.primary:
                    text += Markup(" Primary result: {}.").format(bdi(p.primary))
                asks.append(Ask("approve", p.id, text))
            elif p.recommendation == "stop":
                text = Markup(
                    "Decide whether to stop {} at the {} stage: the analysis recommends stop because {}."
                ).format(named, stage, _reasons(p))
                asks.append(Ask("decide", p.id, text))
            else:
                text = Markup("Decide the {} gate of {}: {}.").format(stage, named, p.decision_due)
                asks.append(Ask("decide", p.id, text))
        decision = p.decision
        if (
            p.status == "stopped"
            and decision is not None
            and decision.decision == "stop"
            and decision.at[:10] >= since
        ):
            text = Markup("Note that {} was stopped at the {} stage on {} because {}.").format(
                named, bdi(decision.stage), decision.at[:10], _reasons(p)
            )
            asks.append(Ask("note-stop", p.id, text))
    return asks


def override_asks(decisions: Iterable[Any], since: str, in_force: Iterable[Any] = ()) -> list[Ask]:
    """Return an ask to ratify each gate decision taken against its recommendation.

    ``decisions`` are DecisionLines; those taken since ``since`` are asked, and so are older ones
    still ``in_force`` (a pilot's latest decision), since nothing records a ratification.
    Going on against a 'stop' says so, as the QA check does.
    """
    latest = set(in_force)
    asks = []
    for d in decisions:
        if not d.override or (d.at[:10] < since and d not in latest):
            continue
        text = Markup(
            "Ratify or reverse the '{}' decision on {} at the {} stage, taken by {} on {} "
            "against the recommendation '{}': {}."
        ).format(d.decision, d.pilot, bdi(d.stage), bdi(d.actor), d.at[:10], d.recommendation, bdi(d.reason))
        if d.recommendation == "stop" and d.decision != "stop":
            text += Markup(" The analysis said stop (harm, a red criterion, futility or benefit not shown).")
        asks.append(Ask("ratify", d.pilot, text))
    return asks


@dataclass(frozen=True)
class AboveAppetite:
    """An open risk above appetite, with what its plan holds (plain values for ``plan_asks``)."""

    ref: str
    title: str
    score: int
    appetite: int
    target: int | None  # the target score, None when not set
    open_actions: int


def plan_gap(risk: AboveAppetite) -> str:
    """Say why a plan for a risk above appetite is not adequate ("" when it is)."""
    missing = []
    if risk.open_actions == 0:
        missing.append("no open action")
    if risk.target is None:
        missing.append("no target score")
    elif risk.target > risk.appetite:
        missing.append(f"its target {risk.target} is itself above appetite")
    return " and ".join(missing)


def capped(
    kind: str, items: Sequence[T], build: Callable[[T], Ask], subject: Callable[[T], str], what: str
) -> list[Ask]:
    """Return the asks of the first ASKS_SHOWN items and, when there are more, one ask that counts the rest.

    Only the asks shown are built: a register with thousands of risks above appetite stays quick.
    """
    asks = [build(item) for item in items[:ASKS_SHOWN]]
    rest = items[ASKS_SHOWN:]
    if rest:
        refs = ", ".join(subject(item) for item in rest[:SUBJECTS_SHOWN])
        more = ", …" if len(rest) > SUBJECTS_SHOWN else ""
        asks.append(
            Ask(kind, "", Markup("Do the same for {} more {} ({}{}).").format(len(rest), what, refs, more))
        )
    return asks


def _plan_ask(risk: AboveAppetite) -> Ask:
    text = Markup("Require a plan for {} ({}), scored {} against an appetite of {}: {}.").format(
        risk.ref, bdi(risk.title), risk.score, risk.appetite, plan_gap(risk)
    )
    return Ask("plan", risk.ref, text)


def plan_asks(risks: Iterable[AboveAppetite]) -> list[Ask]:
    """Return an ask for each risk above appetite without an adequate plan (open action and target within appetite)."""
    needing = [risk for risk in risks if plan_gap(risk)]
    return capped(
        "plan", needing, _plan_ask, lambda r: r.ref, "risks above appetite without an adequate plan"
    )


def _rescore_ask(finding: Finding) -> Ask:
    text = Markup("Ask the owner of {} to re-score it on its pilot's evidence: {}.").format(
        finding.subject, finding.message
    )
    return Ask("rescore", finding.subject, text)


def rescore_asks(findings: Iterable[Finding]) -> list[Ask]:
    """Return an ask for each risk whose pilot evidence awaits a re-score (the test-not-rescored check)."""
    waiting = [f for f in findings if f.rule == "test-not-rescored"]
    return capped(
        "rescore", waiting, _rescore_ask, lambda f: f.subject, "risks whose pilot evidence awaits a re-score"
    )


def assurance_gaps(findings: Iterable[Finding]) -> tuple[AssuranceGap, ...]:
    """Return the QA findings a board should see, one line per rule, in BOARD_RULES order."""
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        if f.rule in BOARD_RULES:
            by_rule.setdefault(f.rule, []).append(f)
    gaps = []
    for rule, what in BOARD_RULES.items():
        found = by_rule.get(rule)
        if not found:
            continue
        subjects = list(dict.fromkeys(f.subject for f in found))
        shown = ", ".join(subjects[:SUBJECTS_SHOWN])
        more = len(subjects) - SUBJECTS_SHOWN
        severity = "error" if any(f.severity == "error" for f in found) else found[0].severity
        gaps.append(
            AssuranceGap(rule, severity, what, len(found), shown + (f" and {more} more" if more > 0 else ""))
        )
    return tuple(gaps)


def key_messages(
    open_risks: int,
    above: Sequence[AboveAppetite],
    top: Sequence[TopRisk],
    since: str,
    pipeline: Sequence[PilotLine],
    gaps: Sequence[AssuranceGap],
    overrides: int,
) -> tuple[str, ...]:
    """Return three to five key messages drawn from the register, the pilots and the QA checks."""
    unplanned = sum(1 for r in above if plan_gap(r))
    messages = [
        f"{open_risks} open risk{'s' if open_risks != 1 else ''}; {len(above)} above appetite"
        + (f", {unplanned} of them without an adequate plan." if above else ".")
    ]
    up = sum(1 for t in top if t.direction == "up")
    down = sum(1 for t in top if t.direction == "down")
    if top:
        messages.append(f"Of the {len(top)} highest risks, {up} worsened and {down} improved since {since}.")
    due = sum(1 for p in pipeline if p.decision_due)
    stopped = sum(1 for p in pipeline if p.status == "stopped")
    messages.append(
        f"{len(pipeline)} pilot{'s' if len(pipeline) != 1 else ''}: {due} at a gate with a decision due, {stopped} stopped."
    )
    if gaps:
        worst = ", ".join(f"{g.what.lower()} ({g.count})" for g in gaps[:3])
        messages.append(f"Assurance gaps found by the QA checks: {worst}.")
    else:
        messages.append("The QA checks found no assurance gap that needs the board.")
    if overrides:
        messages.append(
            f"{overrides} gate decision{'s' if overrides != 1 else ''} went against the analysis since {since} and await ratification."
        )
    return tuple(messages[:5])


def purpose_of(settings: ReportSettings, asks: Sequence[Ask]) -> str:
    """Return the paper's purpose: the one set, else decision when anything is asked, else information."""
    return settings.purpose or ("decision" if asks else "information")


# --- the assurance framework ----------------------------------------------------------------------


def _spark_y(score: int) -> float:
    return round(SPARK_H - SPARK_PAD - (score - 1) * (SPARK_H - 2 * SPARK_PAD) / 24, 1)


def sparkline(
    ref: str, timeline: Sequence[tuple[dt.datetime, int | None]], current: int, as_of: str, appetite: int
) -> Sparkline:
    """Lay out a risk's score over its last changes (evenly spaced) on a 1–25 scale, ending at ``as_of``."""
    history = [(at.date().isoformat(), score) for at, score in timeline][-(SPARK_POINTS - 1) :]
    if not history or history[-1][1] != current:
        history.append((as_of, current))
    step = (SPARK_W - 2 * SPARK_PAD) / max(len(history) - 1, 1)
    points = []
    for i, (day, score) in enumerate(history):
        # a closed spell sits on the floor of the scale
        points.append(
            SparkPoint(
                day,
                "closed" if score is None else str(score),
                round(SPARK_PAD + i * step, 1),
                _spark_y(score or 1),
            )
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{p.x} {p.y}" for i, p in enumerate(points))
    label = (
        f"Score history of {ref}: "
        + ", ".join(f"{p.score} on {p.at}" for p in points)
        + f"; appetite {appetite}"
    )
    return Sparkline(label, path, tuple(points), SPARK_W, SPARK_H, _spark_y(appetite))


def _scored(likelihood: int | None, impact: int | None, config: Config) -> str:
    if likelihood is None or impact is None:
        return "not set"
    score = likelihood * impact
    return f"{score} ({config.rating(score)})"


def _control_line(control: Any) -> ControlLine:
    line = (control.assurance_line or "").replace("_", " ")
    assurance = ": ".join(part for part in (f"{line} line" if line else "", control.assurance or "") if part)
    return ControlLine(
        ref=control.ref,
        description=control.description,
        status=control.status,
        effectiveness=control.effectiveness,
        assurance=assurance,
        weak=control.effectiveness in ("ineffective", "partially effective"),
    )


def baf_risk(
    top: TopRisk, risk: Risk, actions: Sequence[Action], timeline: Any, config: Config, as_of: dt.date
) -> BafRisk:
    """Return a top risk as a BAF entry: scores, sparkline, controls, gaps and open actions."""
    open_actions = sorted((a for a in actions if a.status == "open"), key=lambda a: (a.due, a.id))
    return BafRisk(
        top=top,
        inherent=_scored(risk.inherent_likelihood, risk.inherent_impact, config),
        current=_scored(risk.likelihood, risk.impact, config),
        target=_scored(risk.target_likelihood, risk.target_impact, config),
        appetite=config.appetite_for(risk.category),
        spark=sparkline(
            risk.ref, timeline, risk.score, as_of.isoformat(), config.appetite_for(risk.category)
        ),
        controls=tuple(_control_line(c) for c in risk.controls),
        gaps_in_control=risk.gaps_in_control or "",
        gaps_in_assurance=risk.gaps_in_assurance or "",
        actions=tuple(
            ActionLine(a.ref, a.title, a.owner, a.due.isoformat(), max((as_of - a.due).days, 0))
            for a in open_actions
        ),
    )


# --- appetite and resources -------------------------------------------------------------------------


def appetite_in_force(config: Config, history: Sequence[Mapping[str, Any]], until: str) -> AppetiteInForce:
    """Return the appetite in force and its last change in the register before ``until`` (an ISO instant)."""
    changes = [h for h in history if str(h.get("key") or "").startswith("appetite") and str(h["at"]) < until]
    if changes:
        last = changes[-1]
        changed = (
            f"last changed on {str(last['at'])[:10]} by {last['actor']} ({last['key']}): {last['reason']}"
        )
    else:
        changed = "not changed in the register: " + (
            f"as set in {Path(config.source).name}" if config.source else "the default"
        )
    return AppetiteInForce(
        default=config.appetite["default"],
        categories=tuple(sorted((k, v) for k, v in config.appetite.items() if k != "default")),
        statement=config.appetite_statement,
        changed=changed,
    )


def arm_totals(session: Session, config: Config) -> dict[int, dict[str | None, dict[str, float]]]:
    """Return {pilot id: {arm (None: no arm): public, citizen_cash, valued, citizen_hours}} in one query."""
    r = Resource
    unpriced = case((r.amount.is_(None), r.hours), else_=0.0)
    query = select(
        r.pilot_id, r.arm, r.side, func.sum(r.amount), func.sum(r.hours), func.sum(unpriced)
    ).group_by(r.pilot_id, r.arm, r.side)
    totals: dict[int, dict[str | None, dict[str, float]]] = {}
    for pilot_id, arm, side, amount, hours_sum, unpriced_hours in session.execute(query):
        t = totals.setdefault(pilot_id, {}).setdefault(
            arm, {"public": 0.0, "citizen_cash": 0.0, "valued": 0.0, "citizen_hours": 0.0}
        )
        if side == "citizen":
            t["citizen_cash"] += float(amount or 0.0)
            t["citizen_hours"] += float(hours_sum or 0.0)
            t["valued"] += float(unpriced_hours or 0.0) * config.citizen_hour_value
        else:
            t["public"] += float(amount or 0.0)
    return totals


def arm_costs(arm: str, t: Mapping[str, float] | None, currency: str) -> ArmCosts:
    """Return one arm's inputs as text; its citizen share is of that arm's total only."""
    if t is None:
        return ArmCosts(arm, DASH, DASH, DASH, DASH, DASH)
    citizen = t["citizen_cash"] + t["valued"]
    total = t["public"] + citizen
    return ArmCosts(
        arm=arm,
        public=money_in(t["public"], currency),
        citizen=money_in(citizen, currency),
        citizen_hours=hours(t["citizen_hours"]),
        total=money_in(total, currency),
        citizen_share=pct(citizen / total) if total else DASH,
    )


Totals = Mapping[int, Mapping[str | None, Mapping[str, float]]]


def pilot_arms(totals: Totals, pilots: Sequence[Pilot]) -> dict[int, tuple[str, str]]:
    """Return {pilot id: (pilot arm, comparison arm)} of the pilots with recorded inputs (each protocol read once)."""
    arms = {}
    for pilot in pilots:
        if totals.get(pilot.id):
            design = protocol_of(pilot).design
            arms[pilot.id] = (design.pilot, design.comparison)
    return arms


def arm_resources(
    totals: Totals, arms: Mapping[int, tuple[str, str]], pilots: Sequence[Pilot], currency: str
) -> tuple[ArmResources, ...]:
    """Return each pilot's pilot-arm and comparison-arm inputs apart, plus any recorded without an arm."""
    out = []
    for pilot in pilots:
        if pilot.id not in arms:
            continue
        by_arm = totals[pilot.id]
        pilot_arm, comparison_arm = arms[pilot.id]
        loose = by_arm.get(None)
        unallocated = (
            money_in(loose["public"] + loose["citizen_cash"] + loose["valued"], currency) if loose else ""
        )
        out.append(
            ArmResources(
                pilot=pilot.ref,
                title=pilot.title,
                pilot_arm=arm_costs(pilot_arm, by_arm.get(pilot_arm), currency),
                comparison_arm=arm_costs(comparison_arm, by_arm.get(comparison_arm), currency),
                unallocated=unallocated,
            )
        )
    return tuple(out)


def pilot_arm_chart(
    totals: Totals, arms: Mapping[int, tuple[str, str]], pilots: Sequence[Pilot], config: Config
) -> BarChart:
    """Return the bar chart of each pilot arm's public cash, citizen cash and valued citizen time."""
    groups = []
    for pilot in pilots:
        arm = totals[pilot.id].get(arms[pilot.id][0]) if pilot.id in arms else None
        if arm:
            groups.append((pilot.ref, (arm["public"], arm["citizen_cash"], arm["valued"])))
    return bar_chart(
        groups,
        ("public cash", "citizen cash", "citizen time (valued)"),
        f"Inputs to each pilot's pilot arm, all stages, in {config.currency}; unpaid citizen hours valued at "
        f"{money_in(config.citizen_hour_value, config.currency)} an hour and shown apart from cash. "
        "The comparison arms are in the table.",
    )


# --- from the database ------------------------------------------------------------------------------


def _above_appetite(session: Session, config: Config, above: Sequence[Any]) -> list[AboveAppetite]:
    ids = [r.id for r in above]
    counts: dict[int, int] = {}
    for start in range(0, len(ids), 500):  # bounded IN lists on both backends
        chunk = ids[start : start + 500]
        query = (
            select(Action.risk_id, func.count())
            .where(Action.risk_id.in_(chunk), Action.status == "open")
            .group_by(Action.risk_id)
        )
        counts.update({rid: n for rid, n in session.execute(query)})
    return [
        AboveAppetite(
            ref=f"R-{r.id}",
            title=r.title,
            score=r.likelihood * r.impact,
            appetite=config.appetite_for(r.category),
            target=None
            if r.target_likelihood is None or r.target_impact is None
            else r.target_likelihood * r.target_impact,
            open_actions=counts.get(r.id, 0),
        )
        for r in above
    ]


def _baf(
    session: Session, config: Config, top: Sequence[TopRisk], as_of: dt.date, until: dt.datetime
) -> tuple[BafRisk, ...]:
    from riskreg.report import score_timeline  # report imports this module; the helper is shared

    ids = [int(t.risk.id.removeprefix("R-")) for t in top]
    if not ids:
        return ()
    risks = {
        r.id: r
        for r in session.scalars(select(Risk).where(Risk.id.in_(ids)).options(selectinload(Risk.controls)))
    }
    actions: dict[int, list[Action]] = {}
    for action in session.scalars(select(Action).where(Action.risk_id.in_(ids)).order_by(Action.id)):
        actions.setdefault(action.risk_id, []).append(action)
    events: dict[str, list[Event]] = {t.risk.id: [] for t in top}
    query = (
        select(Event)
        .where(Event.scope.in_(list(events)), Event.entity == "risk", Event.at < until)
        .order_by(Event.seq)
    )
    for event in session.scalars(query):
        events[event.scope].append(event)
    return tuple(
        baf_risk(t, risks[i], actions.get(i, []), score_timeline(events[t.risk.id]), config, as_of)
        for t, i in zip(top, ids, strict=True)
    )


@dataclass(frozen=True)
class _ControlView:
    """The fields of a control the board's rules read, from a plain row."""

    id: int
    status: str
    effectiveness: str

    @property
    def ref(self) -> str:
        return f"C-{self.id}"


class _RiskView:
    """A ``list_risks`` row with its controls, read as the QA rules read a ``Risk`` (no ORM objects:
    a register of 10,000 risks stays quick, as ``list_risks`` does for listings)."""

    __slots__ = ("_row", "controls")

    def __init__(self, row: Any, controls: Sequence[_ControlView]):
        self._row, self.controls = row, list(controls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)

    @property
    def ref(self) -> str:
        return f"R-{self._row.id}"

    @property
    def score(self) -> int:
        return int(self._row.likelihood * self._row.impact)

    @property
    def inherent_score(self) -> int:
        return int(self._row.inherent_likelihood * self._row.inherent_impact)


def _risk_views(session: Session, rows: Sequence[Any]) -> list[Any]:
    """Return the rows as ``_RiskView``s with their controls, read in one query."""
    from riskreg.models import Control

    c = Control.__table__.c
    controls: dict[int, list[_ControlView]] = {}
    for risk_id, control_id, status, effectiveness in session.execute(
        select(c.risk_id, c.id, c.status, c.effectiveness).order_by(c.id)
    ):
        controls.setdefault(risk_id, []).append(_ControlView(control_id, status, effectiveness))
    return [_RiskView(row, controls.get(row.id, ())) for row in rows]


def _could_be_found(
    row: Any, config: Config, today: dt.date, rescored: set[int], late: Mapping[int, int]
) -> bool:
    """Tell whether any board rule could find something on a risk (every one looks at open risks only).

    ``late`` may hold the days each open risk's review is overdue, already worked out.
    """
    if row.status != "open":
        return False
    score = row.likelihood * row.impact
    return (
        row.treatment == "test"  # test-not-rescored
        or row.id in rescored  # rescore-on-inconclusive-evidence
        or score < row.inherent_likelihood * row.inherent_impact  # control-ineffective-but-relied-on
        or score > config.appetite_for(row.category)  # above-appetite-untreated
        or (late[row.id] if row.id in late else (today - next_review(row, config)).days) > 0  # review-overdue
    )


def board_findings(
    session: Session,
    config: Config,
    today: dt.date,
    rows: Sequence[Any] | None = None,
    late: Mapping[int, int] | None = None,
) -> list[Finding]:
    """Run the QA rules of BOARD_RULES, with their configured severity, on the facts those rules read.

    ``qa.run_checks`` also verifies the audit chain and every row against the trail, which
    takes seconds on a large register; the board's rules read neither, so their facts are
    gathered here without them (the fields they would fill stay None, and a rule reading
    them would fail loudly: tests/test_board_paper.py runs every board rule this way).
    Given the register's ``rows`` (``list_risks``, by id), the rules read those rows of the
    risks they could find something on, with their controls, instead of loading every risk
    (``late``: {risk id: days its review is overdue} of the open ones, if already known).
    """
    from riskreg import qa

    links = qa.pilot_links(session)
    rescores = qa.rescore_events(session)
    decisions: dict[int, list[Decision]] = {}
    for decision in session.scalars(select(Decision).order_by(Decision.id)):
        decisions.setdefault(decision.pilot_id, []).append(decision)
    if rows is None:
        query = select(Risk).options(selectinload(Risk.controls)).order_by(Risk.id)
        risks: list[Any] = list(session.scalars(query))
    else:
        rescored = set(rescores)
        known = late or {}
        risks = _risk_views(session, [r for r in rows if _could_be_found(r, config, today, rescored, known)])
    facts = qa.Facts(
        config=config,
        today=today,
        risks=risks,
        pilots=list(session.scalars(select(Pilot).order_by(Pilot.id))),
        links=links,
        rescores=rescores,
        first_data={},
        decisions=decisions,
        amendments=[],
        resources={},
        chain=cast(Any, None),
        state=cast(Any, None),
        actions=list(session.scalars(select(Action).order_by(Action.id))),
    )
    findings = [f for rule in BOARD_RULES for f in qa.RULES[rule][1](facts)]
    return [replace(f, severity=config.severity.get(f.rule, f.severity)) for f in findings]


def board_paper(
    session: Session,
    config: Config,
    settings: ReportSettings,
    *,
    as_of: dt.date,
    until: dt.datetime,
    since: str,
    findings: Sequence[Finding],
    above: Sequence[Any],
    open_risks: int,
    top: Sequence[TopRisk],
    pipeline: Sequence[PilotLine],
    overrides: Sequence[Any],
    pilots: Sequence[Pilot],
) -> BoardPaper:
    """Build the board paper from the board report's own lines, the QA findings and a few queries."""
    from riskreg.settings import history

    above_lines = _above_appetite(session, config, above)
    gaps = assurance_gaps(findings)
    asks = (
        pilot_asks(pipeline, since)
        + override_asks(overrides, since, (p.decision for p in pipeline if p.decision is not None))
        + plan_asks(above_lines)
        + rescore_asks(findings)
    )
    ratify = sum(1 for a in asks if a.kind == "ratify")
    purpose = purpose_of(settings, asks)
    totals = arm_totals(session, config)
    arms = pilot_arms(totals, pilots)
    return BoardPaper(
        cover=Cover(
            organisation=config.organisation,
            meeting=settings.meeting,
            date=settings.meeting_date or as_of.isoformat(),
            lead=settings.lead,
            purpose=purpose,
            purpose_text=PURPOSE_TEXT[purpose],
            marking=settings.marking,
        ),
        messages=key_messages(open_risks, above_lines, top, since, pipeline, gaps, ratify),
        asks=tuple(asks),
        gaps=gaps,
        baf=_baf(session, config, top, as_of, until),
        appetite=appetite_in_force(config, history(session), until.isoformat()),
        resources=arm_resources(totals, arms, pilots, config.currency),
        resource_chart=pilot_arm_chart(totals, arms, pilots, config),
        currency=config.currency,
    )


def write_board_report(
    database: Any,
    path: str | None = None,
    as_of: str | None = None,
    since: str | None = None,
    settings: ReportSettings | None = None,
    pdf: bool = False,
) -> Any:
    """Build the board report with its cover settings and write it to ``path`` (default ``board.html``).

    The file is replaced atomically, so a reader never sees half a report; with ``pdf`` it is
    printed to an A4 PDF (default ``board.pdf``). Returns a WrittenReport.
    """
    from riskreg.report import board_context, default_path, output_path, render_report, write_rendered

    with database.read() as session:
        context = board_context(session, database.config, database.url, as_of, since, settings=settings)
    html = render_report("board", context)
    return write_rendered("board", html, output_path(path, default_path("board"), pdf), pdf)


__all__ = [
    "PURPOSES",
    "AboveAppetite",
    "Ask",
    "BoardPaper",
    "ReportSettings",
    "assurance_gaps",
    "board_paper",
    "key_messages",
    "money_in",
    "override_asks",
    "pilot_asks",
    "plan_asks",
    "read_report_settings",
    "report_settings",
    "rescore_asks",
    "sparkline",
    "with_options",
    "write_board_report",
]
