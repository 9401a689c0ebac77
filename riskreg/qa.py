"""QA checks of the register and the pilots: each rule is a small function that returns findings.

A finding names its rule, severity, the object concerned, what is wrong and what to do.
Rules read prepared facts (``Facts``), never the CLI; severities can be changed per rule in
``riskreg.toml`` (``[check.severity]``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from riskreg import audit, trail
from riskreg.config import Config
from riskreg.errors import ConfigError
from riskreg.models import (
    Action,
    DataImport,
    Decision,
    Event,
    Pilot,
    PilotRisk,
    ProtocolVersion,
    Resource,
    Risk,
)
from riskreg.pilots import protocol_of
from riskreg.register import next_review
from riskreg.units import CountedTwice, counted_twice

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
CO_PRODUCING_MODES = ("design", "delivery")


@dataclass(frozen=True)
class Finding:
    """One thing a careful reviewer would challenge."""

    rule: str
    severity: str
    subject: str
    message: str
    advice: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "advice": self.advice,
        }


@dataclass
class Facts:
    """Everything the rules look at, read once."""

    config: Config
    today: dt.date
    risks: list[Risk]
    pilots: list[Pilot]
    links: dict[int, list[int]]  # risk id -> pilot ids
    rescores: dict[int, list[Event]]  # risk id -> risk.rescore events, oldest first
    first_data: dict[int, dt.datetime]  # pilot id -> when outcome data first arrived
    decisions: dict[int, list[Decision]]
    amendments: list[ProtocolVersion]
    resources: dict[int, list[Resource]]
    chain: audit.ChainCheck
    state: trail.StateCheck
    # pilot id -> units counted twice per metric (data imported before riskreg refused it)
    counted_twice: dict[int, list[CountedTwice]] = field(default_factory=dict)
    # the assurance framework: actions, and each risk's reviews and re-scores in order
    actions: list[Action] = field(default_factory=list)
    score_events: dict[int, list[Event]] = field(default_factory=dict)  # risk id -> rescore and review events


def pilot_links(session: Session) -> dict[int, list[int]]:
    """Return the pilots each risk is linked to: {risk id: [pilot id, ...]}."""
    links: dict[int, list[int]] = {}
    for pilot_id, risk_id in session.execute(select(PilotRisk.pilot_id, PilotRisk.risk_id)):
        links.setdefault(risk_id, []).append(pilot_id)
    return links


def rescore_events(session: Session) -> dict[int, list[Event]]:
    """Return each risk's re-score events in order: {risk id: [event, ...]}."""
    rescores: dict[int, list[Event]] = {}
    for event in session.scalars(select(Event).where(Event.action == "risk.rescore").order_by(Event.seq)):
        rescores.setdefault(int(event.entity_id.removeprefix("R-")), []).append(event)
    return rescores


def gather(session: Session, config: Config, today: dt.date) -> Facts:
    """Read the facts every rule needs in a handful of queries."""
    links = pilot_links(session)
    rescores = rescore_events(session)
    first_data: dict[int, dt.datetime] = {}
    for row in session.scalars(
        select(DataImport).where(DataImport.kind == "outcomes").order_by(DataImport.id)
    ):
        first_data.setdefault(row.pilot_id, row.at)
    decisions: dict[int, list[Decision]] = {}
    for decision in session.scalars(select(Decision).order_by(Decision.id)):
        decisions.setdefault(decision.pilot_id, []).append(decision)
    resources: dict[int, list[Resource]] = {}
    for resource in session.scalars(select(Resource)):
        resources.setdefault(resource.pilot_id, []).append(resource)
    return Facts(
        config=config,
        today=today,
        risks=list(session.scalars(select(Risk).options(selectinload(Risk.controls)).order_by(Risk.id))),
        pilots=list(session.scalars(select(Pilot).order_by(Pilot.id))),
        links=links,
        rescores=rescores,
        first_data=first_data,
        decisions=decisions,
        amendments=list(
            session.scalars(
                select(ProtocolVersion)
                .where(ProtocolVersion.after_data.is_(True))
                .order_by(ProtocolVersion.id)
            )
        ),
        resources=resources,
        chain=audit.verify(session),
        state=trail.check_state(session),
        counted_twice=_counted_twice(session),
        actions=list(session.scalars(select(Action).order_by(Action.id))),
        score_events=_score_events(session),
    )


def _score_events(session: Session) -> dict[int, list[Event]]:
    """Each risk's ``risk.rescore`` and ``risk.review`` events, oldest first."""
    found: dict[int, list[Event]] = {}
    query = select(Event).where(Event.action.in_(("risk.rescore", "risk.review"))).order_by(Event.seq)
    for event in session.scalars(query):
        found.setdefault(int(event.entity_id.removeprefix("R-")), []).append(event)
    return found


def _counted_twice(session: Session) -> dict[int, list[CountedTwice]]:
    """Each pilot's units counted twice; a pilot without unchecked imports after its first stage costs one small query."""
    found = {}
    for pilot in session.scalars(select(Pilot).order_by(Pilot.id)):
        twice = counted_twice(session, pilot)
        if twice:
            found[pilot.id] = twice
    return found


Rule = Callable[[Facts], Iterator[Finding]]
RULES: dict[str, tuple[str, Rule]] = {}


def rule(name: str, severity: str) -> Callable[[Rule], Rule]:
    """Register a rule under a name with its default severity."""

    def register(function: Rule) -> Rule:
        RULES[name] = (severity, function)
        return function

    return register


def _finding(name: str, subject: str, message: str, advice: str, severity: str | None = None) -> Finding:
    return Finding(name, severity or RULES[name][0], subject, message, advice)


def _open(facts: Facts) -> Iterator[Risk]:
    return (r for r in facts.risks if r.status == "open")


# --- the register ------------------------------------------------------------------------------


@rule("review-overdue", "warning")
def review_overdue(facts: Facts) -> Iterator[Finding]:
    """Open risks past their next review date; long overdue ones are errors."""
    for risk in _open(facts):
        late = (facts.today - next_review(risk, facts.config)).days
        if late > 0:
            severity = "error" if late > facts.config.overdue_error_days else None
            yield _finding(
                "review-overdue",
                risk.ref,
                f"review overdue by {late} days (due {next_review(risk, facts.config)})",
                f"review it: riskreg review record {risk.ref} --outcome ... --note ...",
                severity,
            )


@rule("no-owner", "warning")
def no_owner(facts: Facts) -> Iterator[Finding]:
    """Open risks nobody owns."""
    for risk in _open(facts):
        if not risk.owner:
            yield _finding(
                "no-owner",
                risk.ref,
                "the risk has no owner",
                f"name one: riskreg risk update {risk.ref} --owner NAME --reason ...",
            )


def _controls_in_place(risk: Risk) -> int:
    return sum(1 for c in risk.controls if c.status == "in-place")


@rule("above-appetite-untreated", "error")
def above_appetite_untreated(facts: Facts) -> Iterator[Finding]:
    """Open risks above appetite with neither a treatment nor any control."""
    for risk in _open(facts):
        appetite = facts.config.appetite_for(risk.category)
        if risk.score > appetite and not risk.treatment and not risk.controls:
            yield _finding(
                "above-appetite-untreated",
                risk.ref,
                f"current score {risk.score} is above the {risk.category} appetite of {appetite}, with no treatment and no control",
                "choose a treatment (or test it in a pilot) and add controls",
            )


@rule("lowered-without-control", "warning")
def lowered_without_control(facts: Facts) -> Iterator[Finding]:
    """Current score better than inherent with no control in place and no pilot evidence behind it."""
    for risk in _open(facts):
        rescores = facts.rescores.get(risk.id, [])
        on_evidence = bool(rescores) and "evidence" in json.loads(rescores[-1].after or "{}")
        if risk.score < risk.inherent_score and _controls_in_place(risk) == 0 and not on_evidence:
            yield _finding(
                "lowered-without-control",
                risk.ref,
                f"current score {risk.score} is below the inherent {risk.inherent_score} but no control is in place",
                "record the control that lowers it, or re-score to the inherent level",
            )


@rule("target-worse-than-current", "warning")
def target_worse_than_current(facts: Facts) -> Iterator[Finding]:
    """A target tier worse than where the risk already is."""
    for risk in _open(facts):
        if risk.target_score is not None and risk.target_score > risk.score:
            yield _finding(
                "target-worse-than-current",
                risk.ref,
                f"target score {risk.target_score} is worse than the current {risk.score}",
                "set a target at or below the current score",
            )


@rule("closed-with-open-controls", "info")
def closed_with_open_controls(facts: Facts) -> Iterator[Finding]:
    """Closed risks that still have planned controls."""
    for risk in facts.risks:
        planned = [c.ref for c in risk.controls if c.status == "planned"]
        if risk.status == "closed" and planned:
            yield _finding(
                "closed-with-open-controls",
                risk.ref,
                f"closed, but controls {', '.join(planned)} are still planned",
                "mark them in place or drop them from the plan",
            )


@rule("one-sided-register", "warning")
def one_sided_register(facts: Facts) -> Iterator[Finding]:
    """A service that runs pilots records risks on one side only, or one side markedly thinner."""
    if not facts.pilots:
        return
    counts = {side: sum(1 for r in _open(facts) if r.side == side) for side in ("citizen", "professional")}
    ratio = facts.config.one_sided_ratio
    for side, other in (("professional", "citizen"), ("citizen", "professional")):
        if counts[other] and counts[side] < ratio * counts[other]:
            yield _finding(
                "one-sided-register",
                "register",
                f"{counts[side]} open {side}-side risks against {counts[other]} {other}-side: the {side} side is markedly thinner",
                f"record the risks of {'professional provision, the status quo included' if side == 'professional' else 'citizens taking part'}; both sides carry risk",
            )
    sides_of: dict[int, set[str]] = {}  # pilot id: the sides of the risks linked to it
    for r in facts.risks:
        for pilot_id in facts.links.get(r.id, ()):
            sides_of.setdefault(pilot_id, set()).add(r.side)
    for pilot in facts.pilots:
        sides = sides_of.get(pilot.id, set())
        if sides and not {"citizen", "professional"} <= sides:
            yield _finding(
                "one-sided-register",
                pilot.ref,
                f"the pilot tests risks on one side only ({', '.join(sorted(sides))})",
                f"link the other side's risks too: riskreg pilot link {pilot.ref} R-...",
            )


# --- risks and pilots ----------------------------------------------------------------------------


def _pilots_of(facts: Facts, risk: Risk) -> list[Pilot]:
    ids = facts.links.get(risk.id, [])
    return [p for p in facts.pilots if p.id in ids]


@rule("test-without-pilot", "warning")
def test_without_pilot(facts: Facts) -> Iterator[Finding]:
    """Risks to be settled by a pilot that no pilot tests."""
    for risk in _open(facts):
        if risk.treatment == "test" and not _pilots_of(facts, risk):
            yield _finding(
                "test-without-pilot",
                risk.ref,
                "treatment is 'test' but no pilot is linked",
                f"link a pilot: riskreg pilot link P-... {risk.ref}",
            )


@rule("test-not-rescored", "warning")
def test_not_rescored(facts: Facts) -> Iterator[Finding]:
    """Risks to be settled by a pilot whose pilot has stopped or finished with no re-score since."""
    for risk in _open(facts):
        if risk.treatment != "test":
            continue
        for pilot in _pilots_of(facts, risk):
            if pilot.status == "active" or not facts.decisions.get(pilot.id):
                continue
            ended = facts.decisions[pilot.id][-1].at
            if not any(e.at >= ended for e in facts.rescores.get(risk.id, [])):
                yield _finding(
                    "test-not-rescored",
                    risk.ref,
                    f"{pilot.ref} is {pilot.status} but the risk has not been re-scored since",
                    f"re-score on its evidence: riskreg risk rescore {risk.ref} --likelihood L --impact I --evidence {pilot.ref} --reason ...",
                )


@rule("rescore-without-evidence", "warning")
def rescore_without_evidence(facts: Facts) -> Iterator[Finding]:
    """Re-scores of pilot-linked risks that cite no evidence although the pilot had data."""
    for risk in facts.risks:
        for event in facts.rescores.get(risk.id, []):
            after = json.loads(event.after or "{}")
            with_data = [
                p
                for p in _pilots_of(facts, risk)
                if p.id in facts.first_data and facts.first_data[p.id] <= event.at
            ]
            if with_data and "evidence" not in after:
                pilots = ", ".join(p.ref for p in with_data)
                yield _finding(
                    "rescore-without-evidence",
                    risk.ref,
                    f"re-scored on {event.at:%Y-%m-%d} by {event.actor} without evidence while {pilots} had data",
                    f"re-score with --evidence {with_data[0].ref} so the change rests on the pilot's result",
                )


@rule("amended-after-data", "warning")
def amended_after_data(facts: Facts) -> Iterator[Finding]:
    """Protocol amendments made after outcome data arrived."""
    refs = {p.id: p.ref for p in facts.pilots}
    for version in facts.amendments:
        yield _finding(
            "amended-after-data",
            refs[version.pilot_id],
            f"protocol amendment {version.number - 1} on {version.at:%Y-%m-%d} came after data arrived: {version.reason}",
            "check the change was not driven by the results; say so in the pilot report",
        )


@rule("gate-override", "warning")
def gate_override(facts: Facts) -> Iterator[Finding]:
    """Gates decided against the analysis' recommendation; going on against a 'stop' is an error."""
    for pilot in facts.pilots:
        for decision in facts.decisions.get(pilot.id, []):
            if decision.override:
                stage = protocol_of(pilot).stages[decision.stage_index].name
                went_on = decision.recommendation == "stop" and decision.decision != "stop"
                yield _finding(
                    "gate-override",
                    pilot.ref,
                    f"'{decision.decision}' at {stage} by {decision.actor} against the recommendation "
                    f"'{decision.recommendation}': {decision.reason}",
                    "the board should ratify it, knowing why the evidence was overridden"
                    + (
                        ": the analysis said stop (harm, a red criterion, futility or not shown)"
                        if went_on
                        else ""
                    ),
                    "error" if went_on else None,
                )


def _analysis(decision: Decision) -> dict[str, Any]:
    return json.loads(decision.snapshot).get("analysis") or {}


@rule("sample-ratio-mismatch", "error")
def sample_ratio_mismatch(facts: Facts) -> Iterator[Finding]:
    """Stages decided on data whose arm sizes do not match the allocation."""
    for pilot in facts.pilots:
        for decision in facts.decisions.get(pilot.id, []):
            srm = _analysis(decision).get("srm") or {}
            if srm.get("ok") is False:
                yield _finding(
                    "sample-ratio-mismatch",
                    pilot.ref,
                    f"stage {_analysis(decision).get('stage')} was decided with a sample-ratio mismatch (p = {srm.get('p_value'):.2g})",
                    "check allocation and data loss before trusting the comparison",
                )


@rule("decided-below-planned-size", "warning")
def decided_below_planned_size(facts: Facts) -> Iterator[Finding]:
    """Proceed decisions taken before the stage recruited its planned size."""
    for pilot in facts.pilots:
        protocol = protocol_of(pilot)
        for decision in facts.decisions.get(pilot.id, []):
            snapshot = json.loads(decision.snapshot)
            # the units recruited, as the recommendation judges them (older analyses: the primary's counts)
            units = (snapshot.get("analysis") or {}).get("units")
            if not units:
                counts = snapshot.get("counts", {}).get(protocol.primary.name, {})
                units = {arm: c.get("n", 0) for arm, c in counts.items()}
            smallest = min(units.values(), default=0)
            planned = protocol.stages[decision.stage_index].planned_n
            if decision.decision in ("proceed", "adapt") and smallest < planned:
                yield _finding(
                    "decided-below-planned-size",
                    pilot.ref,
                    f"'{decision.decision}' at {protocol.stages[decision.stage_index].name} with {smallest} of "
                    f"{planned} planned units per arm",
                    "say why the stage ended early, or collect to the planned size",
                )


# --- resources -----------------------------------------------------------------------------------


@rule("resource-blindness", "warning")
def resource_blindness(facts: Facts) -> Iterator[Finding]:
    """Co-designed or co-delivered pilots with no citizen inputs, or citizen hours left unvalued."""
    for pilot in facts.pilots:
        modes = set(protocol_of(pilot).modes)
        rows = facts.resources.get(pilot.id, [])
        citizen = [r for r in rows if r.side == "citizen"]
        if modes & set(CO_PRODUCING_MODES) and not citizen:
            yield _finding(
                "resource-blindness",
                pilot.ref,
                f"co-{' and co-'.join(sorted(modes & set(CO_PRODUCING_MODES)))} pilot with no citizen inputs recorded",
                "record citizens' time and costs: riskreg pilot resources",
            )
        unvalued = sum(r.hours or 0 for r in citizen if r.amount is None)
        if unvalued and facts.config.citizen_hour_value == 0:
            yield _finding(
                "resource-blindness",
                pilot.ref,
                f"{unvalued:g} citizen hours recorded without a valuation (citizen_hour_value is 0)",
                "set citizen_hour_value in riskreg.toml or record an amount",
            )


@rule("audit-chain-broken", "error")
def audit_chain_broken(facts: Facts) -> Iterator[Finding]:
    """The audit trail has been edited or cut."""
    if not facts.chain.ok:
        yield _finding(
            "audit-chain-broken",
            f"event {facts.chain.broken_at}",
            facts.chain.problem or "broken",
            "restore the database from a backup and find out who changed it",
        )


@rule("register-edited", "error")
def register_edited(facts: Facts) -> Iterator[Finding]:
    """Register rows that differ from what the audit trail recorded (see `audit verify`).

    Risks, controls, pilots, data files, protocol texts, pilot-risk links, gate decisions,
    reviews and evidence: each is held to the events that made it (riskreg.trail).
    """
    for mismatch in facts.state.mismatches:
        yield _finding(
            "register-edited",
            mismatch.subject,
            mismatch.problem,
            "the database was changed outside riskreg: restore it from a backup and find out who changed it",
        )


@rule("units-counted-twice", "error")
def units_counted_twice(facts: Facts) -> Iterator[Finding]:
    """Units with a value for the same metric in more than one stage: data imported before riskreg refused them."""
    for pilot in facts.pilots:
        protocol = protocol_of(pilot)
        for found in facts.counted_twice.get(pilot.id, []):
            held = "; ".join(f"{protocol.stages[r.stage_index].name}: {r.source}" for r in found.imports)
            latest = found.latest
            stage = protocol.stages[latest.stage_index].name
            if pilot.status == "active" and latest.stage_index == pilot.stage_index:
                advice = (
                    f"import the stage's file again without them: riskreg pilot data {pilot.ref} "
                    f"{latest.source} --stage {stage} --replace --new-units-only"
                )
            else:
                advice = (
                    f"stage '{stage}' is closed: note it for the board (a gate decided on data "
                    "that counted these units twice)"
                )
            yield _finding(
                "units-counted-twice",
                pilot.ref,
                f"{found.units} unit{' has' if found.units == 1 else 's have'} a value for {found.metric} in "
                f"more than one stage ({held}); a unit is counted once per metric",
                advice,
            )


# --- assurance: controls, actions and re-scores --------------------------------------------------


@rule("action-overdue", "warning")
def action_overdue(facts: Facts) -> Iterator[Finding]:
    """Open actions past their due date."""
    for action in facts.actions:
        late = (facts.today - action.due).days
        if action.status == "open" and late > 0:
            yield _finding(
                "action-overdue",
                action.ref,
                f"'{action.title}' on R-{action.risk_id}, owned by {action.owner}, was due {action.due} "
                f"({late} day{'s' if late != 1 else ''} overdue)",
                f"finish it (riskreg action update {action.ref} --status done) or re-plan it: "
                f"riskreg action update {action.ref} --due DATE --reason ...",
            )


@rule("control-ineffective-but-relied-on", "warning")
def control_ineffective_but_relied_on(facts: Facts) -> Iterator[Finding]:
    """Open risks scored below their inherent level while resting on a control rated ineffective."""
    for risk in _open(facts):
        ineffective = [
            c.ref for c in risk.controls if c.status == "in-place" and c.effectiveness == "ineffective"
        ]
        if ineffective and risk.score < risk.inherent_score:
            yield _finding(
                "control-ineffective-but-relied-on",
                risk.ref,
                f"current score {risk.score} is below the inherent {risk.inherent_score} while resting on "
                f"{', '.join(ineffective)}, rated ineffective",
                f"re-score to what the working controls support (riskreg risk rescore {risk.ref} ...), "
                "or fix the control and record its effectiveness",
            )


def _score_of(snapshot: dict[str, Any]) -> int | None:
    likelihood, impact = snapshot.get("likelihood"), snapshot.get("impact")
    return likelihood * impact if isinstance(likelihood, int) and isinstance(impact, int) else None


@rule("rescore-on-inconclusive-evidence", "warning")
def rescore_on_inconclusive_evidence(facts: Facts) -> Iterator[Finding]:
    """Re-scores down that cited a pilot result whose verdict was inconclusive, while the lower score stands."""
    for risk in _open(facts):
        for event in facts.rescores.get(risk.id, []):
            before, after = json.loads(event.before or "{}"), json.loads(event.after or "{}")
            evidence = after.get("evidence")
            old, new = _score_of(before), _score_of(after)
            if not isinstance(evidence, dict) or evidence.get("verdict") != "inconclusive":
                continue
            # a later re-score back up (to the old score or above) settles it
            if old is None or new is None or new >= old or risk.score >= old:
                continue
            yield _finding(
                "rescore-on-inconclusive-evidence",
                risk.ref,
                f"re-scored down from {old} to {new} on {event.at:%Y-%m-%d} by {event.actor} on "
                f"{evidence.get('pilot')}'s {evidence.get('metric')} result, which was inconclusive",
                "an inconclusive result does not show the risk is lower: restore the earlier score "
                "until the pilot shows it, or record what else justified the change",
            )


@rule("review-rescored-without-rescore", "warning")
def review_rescored_without_rescore(facts: Facts) -> Iterator[Finding]:
    """Reviews recorded as 'rescored' with no re-score of the risk since the review before.

    riskreg refuses such a review when it is recorded; this finds those recorded before it did.
    """
    for risk in facts.risks:
        rescored = False
        for event in facts.score_events.get(risk.id, []):
            if event.action == "risk.rescore":
                rescored = True
                continue
            review = json.loads(event.after or "{}").get("review") or {}
            if review.get("outcome") == "rescored" and not rescored:
                yield _finding(
                    "review-rescored-without-rescore",
                    risk.ref,
                    f"review on {event.at:%Y-%m-%d} by {event.actor} says 'rescored', but the risk was "
                    "not re-scored since the review before",
                    f"re-score it (riskreg risk rescore {risk.ref} ...) or treat the review as confirmed",
                )
            rescored = False


@rule("target-above-appetite", "warning")
def target_above_appetite(facts: Facts) -> Iterator[Finding]:
    """Open risks whose target score is above their category's appetite."""
    for risk in _open(facts):
        appetite = facts.config.appetite_for(risk.category)
        if risk.target_score is not None and risk.target_score > appetite:
            yield _finding(
                "target-above-appetite",
                risk.ref,
                f"target score {risk.target_score} is above the {risk.category} appetite of {appetite}",
                "plan treatment that brings the target within appetite, or record the board's "
                "acceptance of a risk above appetite",
            )


# --- running -------------------------------------------------------------------------------------


def run_checks(session: Session, config: Config, today: dt.date) -> list[Finding]:
    """Run every rule and return the findings, errors first."""
    return checked(session, config, today)[0]


def checked(session: Session, config: Config, today: dt.date) -> tuple[list[Finding], Facts]:
    """Run every rule; return the findings, errors first, and the facts they were read from.

    The facts hold the audit chain's verification and the register's check against the
    trail (``chain``, ``state``), the slowest part on a large register: the QA report shows
    them too, without running them again.
    """
    unknown = sorted(set(config.severity) - set(RULES))
    if unknown:
        raise ConfigError(
            f"{config.source}: check.severity: unknown rule {', '.join(unknown)} (rules: {', '.join(RULES)})"
        )
    facts = gather(session, config, today)
    findings = [f for _severity, function in RULES.values() for f in function(facts)]
    findings = [_with_configured_severity(f, config) for f in findings]
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.rule, f.subject)), facts


def _with_configured_severity(finding: Finding, config: Config) -> Finding:
    configured = config.severity.get(finding.rule)
    if configured is None:
        return finding
    return Finding(finding.rule, configured, finding.subject, finding.message, finding.advice)
