"""Pilots: registering protocols (and amendments), linking risks, and recording gate decisions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.errors import InvalidInput, NotFound
from riskreg.filled import filled_later
from riskreg.models import (
    DECISIONS,
    DataImport,
    Decision,
    ImportCount,
    Pilot,
    PilotMetric,
    PilotRisk,
    ProtocolVersion,
    Risk,
)
from riskreg.protocol import Protocol, load_protocol, parse_protocol
from riskreg.register import Context, allocate_id, get_risk, iso_utc, parse_ref

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


# --- reading -------------------------------------------------------------------------------


def get_pilot(session: Session, ref: str) -> Pilot:
    """Return the pilot named by ``P-<n>`` or by its protocol key; raise NotFound otherwise."""
    text = (ref or "").strip()
    if _KEY.match(text):
        # a key first: a key such as p-2024 also reads as a pilot number
        pilot = session.scalars(select(Pilot).where(Pilot.key == text)).first()
        if pilot is not None:
            return pilot
        if not re.match(r"^p-?\d+$", text):
            raise NotFound(f"no pilot with key '{text}'")
    number = parse_ref(text, "P")
    pilot = session.get(Pilot, number)
    if pilot is None:
        raise NotFound(f"no pilot P-{number}")
    return pilot


# A board report reads each of a register's pilots several times: 32 entries thrashed with
# 100 pilots (370 parses, 0.1 s). A parsed protocol takes a few KiB.
@lru_cache(maxsize=1024)
def _parse_stored(text: str, sha256: str, source: str) -> Protocol:
    return parse_protocol(text.encode("utf-8"), source)


def protocol_of(pilot: Pilot) -> Protocol:
    """Return the pilot's current protocol, parsed from the stored text."""
    return _parse_stored(pilot.protocol_text, pilot.protocol_sha256, pilot.ref)


def metric_codes(session: Session, pilot: Pilot) -> dict[str, tuple[int, str]]:
    """Return {metric name: (code, kind)} for a pilot; observations store the codes."""
    rows = session.execute(
        select(PilotMetric.name, PilotMetric.code, PilotMetric.kind).where(PilotMetric.pilot_id == pilot.id)
    )
    return {name: (code, kind) for name, code, kind in rows}


def linked_risks(session: Session, pilot: Pilot) -> list[str]:
    """Return the ids of the risks a pilot tests, in order."""
    ids = session.scalars(
        select(PilotRisk.risk_id).where(PilotRisk.pilot_id == pilot.id).order_by(PilotRisk.risk_id)
    )
    return [f"R-{i}" for i in ids]


def has_data(session: Session, pilot: Pilot) -> bool:
    """Tell whether any outcome data were imported for a pilot."""
    found = session.scalar(
        select(DataImport.id).where(DataImport.pilot_id == pilot.id, DataImport.kind == "outcomes").limit(1)
    )
    return found is not None


def outcome_imports(session: Session, pilot: Pilot, upto_stage: int | None = None) -> list[int]:
    """Return the ids of a pilot's outcome imports (stages 0..upto_stage, or all): its observations' scope."""
    query = select(DataImport.id).where(DataImport.pilot_id == pilot.id, DataImport.kind == "outcomes")
    if upto_stage is not None:
        query = query.where(DataImport.stage_index <= upto_stage)
    return list(session.scalars(query.order_by(DataImport.id)))


def data_counts(session: Session, pilot: Pilot, upto_stage: int) -> dict[str, dict[str, dict[str, int]]]:
    """Return {metric: {arm: {"n": units with a value, "missing": units without}}} over stages 0..upto_stage.

    A unit missing in one import and present in a later one is counted present only (``riskreg.filled``).
    """
    return _data_counts(session, [pilot], {pilot.id: upto_stage})[pilot.id]


def current_data_counts(
    session: Session, pilots: Sequence[Pilot]
) -> dict[int, dict[str, dict[str, dict[str, int]]]]:
    """Return ``data_counts`` of each pilot at its current stage, by pilot id (a board's pipeline)."""
    return _data_counts(session, pilots, {pilot.id: pilot.stage_index for pilot in pilots})


def _data_counts(
    session: Session, pilots: Sequence[Pilot], upto: dict[int, int]
) -> dict[int, dict[str, dict[str, dict[str, int]]]]:
    """Return ``data_counts`` of each pilot over stages 0..upto[pilot id]: two queries, however many pilots."""
    names: dict[int, dict[int, str]] = {}
    metrics = select(PilotMetric.pilot_id, PilotMetric.code, PilotMetric.name)
    for pilot_id, code, name in session.execute(metrics.where(PilotMetric.pilot_id.in_(list(upto)))):
        names.setdefault(pilot_id, {})[code] = name
    c, d = ImportCount, DataImport
    rows = session.execute(
        select(d.pilot_id, d.stage_index, c.import_id, c.metric, c.arm, c.n, c.missing)
        .join(d, d.id == c.import_id)
        .where(d.pilot_id.in_(list(upto)), d.kind == "outcomes")
    )
    held: dict[int, list[Any]] = {}
    for pilot_id, stage_index, *counted in rows:
        if stage_index <= upto[pilot_id]:
            held.setdefault(pilot_id, []).append(tuple(counted))
    return {
        pilot.id: _counted(session, protocol_of(pilot), names.get(pilot.id, {}), held.get(pilot.id, []))
        for pilot in pilots
    }


def _counted(
    session: Session, protocol: Protocol, names: dict[int, str], rows: Sequence[Any]
) -> dict[str, dict[str, dict[str, int]]]:
    """Sum import_counts rows (import id, metric, arm, n, missing) into data_counts' shape."""
    summed: dict[tuple[int, int], list[int]] = {}
    for _import_id, code, arm, n, missing in rows:
        group = summed.setdefault((code, arm), [0, 0])
        group[0] += n
        group[1] += missing
    for (code, arm), units in filled_later(session, rows).items():  # present later: not missing too
        summed[(code, arm)][1] -= units
    counts: dict[str, dict[str, dict[str, int]]] = {
        m.name: {arm: {"n": 0, "missing": 0} for arm in protocol.design.arms} for m in protocol.metrics
    }
    for (code, arm), (n, missing) in summed.items():
        counts.setdefault(names[code], {})[protocol.design.arms[arm]] = {"n": n, "missing": missing}
    return counts


def pilot_to_dict(session: Session, pilot: Pilot, detail: bool = False) -> dict[str, Any]:
    """Return a pilot as the JSON object DESIGN §3 defines, with its protocol summary when ``detail``."""
    protocol = protocol_of(pilot)
    data: dict[str, Any] = {
        "id": pilot.ref,
        "key": pilot.key,
        "title": pilot.title,
        "stage": protocol.stages[pilot.stage_index].name,
        "stage_index": pilot.stage_index,
        "stages": [s.name for s in protocol.stages],
        "status": pilot.status,
        "protocol_sha256": pilot.protocol_sha256,
        "risks": linked_risks(session, pilot),
        "modes": list(protocol.modes),
        "owner": protocol.owner,
        "version": pilot.version,
        "amendments": _amendment_count(session, pilot),
    }
    if detail:
        data["protocol"] = protocol.to_dict()
        data["protocol_versions"] = [_version_to_dict(v) for v in protocol_versions(session, pilot)]
        data["decisions"] = [decision_to_dict(d, protocol) for d in decisions(session, pilot)]
        data["data"] = data_counts(session, pilot, pilot.stage_index)
        data["imports"] = [_import_to_dict(record, protocol) for record in data_imports(session, pilot)]
    return data


def data_imports(session: Session, pilot: Pilot) -> list[DataImport]:
    """Return the data files a pilot took (outcomes and resources), oldest first."""
    return list(
        session.scalars(select(DataImport).where(DataImport.pilot_id == pilot.id).order_by(DataImport.id))
    )


def _import_to_dict(record: DataImport, protocol: Protocol) -> dict[str, Any]:
    """One imported file: where it went, what it held and who brought it (a reviewer's provenance)."""
    return {
        "kind": record.kind,
        "stage": protocol.stages[record.stage_index].name,
        "file": record.source,
        "rows": record.rows,  # observations for outcome data, cost lines for resources
        "missing": record.missing,
        "replaced": record.replaced,  # earlier observations this file's --replace removed
        "at": iso_utc(record.at),
        "actor": record.actor,
        "sha256": record.sha256,
    }


def _amendment_count(session: Session, pilot: Pilot) -> int:
    count = session.scalar(select(func.count()).where(ProtocolVersion.pilot_id == pilot.id)) or 1
    return count - 1


def protocol_versions(session: Session, pilot: Pilot) -> list[ProtocolVersion]:
    """Return the registered protocol texts of a pilot, original first."""
    return list(
        session.scalars(
            select(ProtocolVersion)
            .where(ProtocolVersion.pilot_id == pilot.id)
            .order_by(ProtocolVersion.number)
        )
    )


def _version_to_dict(version: ProtocolVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "sha256": version.sha256,
        "reason": version.reason,
        "stage_index": version.stage_index,
        "after_data": version.after_data,
        "at": iso_utc(version.at),
        "actor": version.actor,
    }


def decisions(session: Session, pilot: Pilot) -> list[Decision]:
    """Return a pilot's gate decisions, oldest first."""
    return list(session.scalars(select(Decision).where(Decision.pilot_id == pilot.id).order_by(Decision.id)))


def decision_to_dict(decision: Decision, protocol: Protocol) -> dict[str, Any]:
    """Return a gate decision as a JSON-ready dict."""
    return {
        "pilot": f"P-{decision.pilot_id}",
        "stage": protocol.stages[decision.stage_index].name
        if decision.stage_index < len(protocol.stages)
        else decision.stage_index,
        "decision": decision.decision,
        "recommendation": decision.recommendation,
        "override": decision.override,
        "reason": decision.reason,
        "actor": decision.actor,
        "at": iso_utc(decision.at),
        "snapshot": json.loads(decision.snapshot),
    }


def list_pilots(session: Session) -> list[Pilot]:
    """Return every pilot by id."""
    return list(session.scalars(select(Pilot).order_by(Pilot.id)))


# --- registering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What `pilot register` did: registered a new pilot or recorded an amendment."""

    pilot: Pilot
    amendment: int | None
    after_data: bool
    warnings: tuple[str, ...] = ()


def register_pilot(
    session: Session, ctx: Context, path: str | Path, amend: bool = False, reason: str | None = None
) -> Registration:
    """Register a protocol file as a new pilot, or (with ``amend``) record a changed protocol as an amendment."""
    protocol = load_protocol(path)
    _check_risks_exist(session, protocol, str(path))
    existing = session.scalars(select(Pilot).where(Pilot.key == protocol.key)).first()
    if existing is None:
        if amend:
            raise InvalidInput(f"{path}: no pilot has key '{protocol.key}' yet; register it without --amend")
        return Registration(_create(session, ctx, protocol), None, False, _power_warnings(protocol))
    if existing.protocol_sha256 == protocol.sha256:
        raise InvalidInput(
            f"{path}: already registered as {existing.ref} with exactly this protocol; nothing to do"
        )
    if not amend:
        raise InvalidInput(
            f"{path}: differs from the protocol registered as {existing.ref}; a registered protocol is frozen, "
            "so record the change as an amendment: --amend --reason TEXT"
        )
    if not reason or not reason.strip():
        raise InvalidInput("reason: an amendment needs --reason (say what changed and why)")
    registration = _amend(session, ctx, existing, protocol, reason.strip())
    return replace(registration, warnings=_power_warnings(protocol))


def _power_warnings(protocol: Protocol) -> tuple[str, ...]:
    """Return a warning when the planned final n gives less than the protocol's stated power for its own assumptions."""
    from riskreg.planning import power_warning  # loads scipy only for protocols it can power

    warning = power_warning(protocol)
    return () if warning is None else (warning,)


def _check_risks_exist(session: Session, protocol: Protocol, source: str) -> None:
    for index, ref in enumerate(protocol.risks):
        try:
            get_risk(session, ref)
        except NotFound:
            raise InvalidInput(f"{source}: pilot.risks[{index}]: no risk {ref} in the register") from None


def _create(session: Session, ctx: Context, protocol: Protocol) -> Pilot:
    pilot = Pilot(
        id=allocate_id(session, "P"),
        key=protocol.key,
        title=protocol.title,
        status="active",
        stage_index=0,
        protocol_text=protocol.text,
        protocol_sha256=protocol.sha256,
        created_at=ctx.now,
        created_by=ctx.actor,
        updated_at=ctx.now,
        updated_by=ctx.actor,
    )
    session.add(pilot)
    session.flush()
    session.add_all(
        PilotMetric(pilot_id=pilot.id, code=i, name=m.name, kind=m.kind)
        for i, m in enumerate(protocol.metrics)
    )
    session.add(_version(pilot, protocol, 1, None, False, ctx))
    linked = _link(session, pilot, [get_risk(session, ref) for ref in protocol.risks])
    # the links it made, so `audit verify` can hold the pilot_risks rows to this event
    after = {**pilot_snapshot(pilot, protocol), "risks": linked}
    _record(session, ctx, pilot, "pilot.register", None, after, None)
    return pilot


def _version(
    pilot: Pilot, protocol: Protocol, number: int, reason: str | None, after_data: bool, ctx: Context
) -> ProtocolVersion:
    return ProtocolVersion(
        pilot_id=pilot.id,
        number=number,
        sha256=protocol.sha256,
        text=protocol.text,
        reason=reason,
        stage_index=pilot.stage_index,
        after_data=after_data,
        at=ctx.now,
        actor=ctx.actor,
    )


def pilot_snapshot(pilot: Pilot, protocol: Protocol) -> dict[str, Any]:
    """Return the stored fields of a pilot, as kept in the events that register, amend or decide it."""
    return {
        "key": pilot.key,
        "title": pilot.title,
        "status": pilot.status,
        "stage": protocol.stages[min(pilot.stage_index, len(protocol.stages) - 1)].name,
        "protocol_sha256": pilot.protocol_sha256,
        "version": pilot.version,
    }


def _record(
    session: Session, ctx: Context, pilot: Pilot, action: str, before: Any, after: Any, reason: str | None
) -> None:
    audit.log(session, ctx, action, pilot.ref, before, after, reason)


def _amend(session: Session, ctx: Context, pilot: Pilot, protocol: Protocol, reason: str) -> Registration:
    old = protocol_of(pilot)
    codes = metric_codes(session, pilot)
    _check_compatible(session, pilot, old, protocol, codes)
    before = pilot_snapshot(pilot, old)
    after_data = has_data(session, pilot)
    number = len(protocol_versions(session, pilot)) + 1
    pilot.protocol_text, pilot.protocol_sha256, pilot.title = protocol.text, protocol.sha256, protocol.title
    pilot.updated_at, pilot.updated_by = ctx.now, ctx.actor
    next_code = max((c for c, _ in codes.values()), default=-1) + 1
    for metric in protocol.metrics:
        if metric.name not in codes:
            session.add(PilotMetric(pilot_id=pilot.id, code=next_code, name=metric.name, kind=metric.kind))
            next_code += 1
    session.flush()
    session.add(_version(pilot, protocol, number, reason, after_data, ctx))
    linked = _link(session, pilot, [get_risk(session, ref) for ref in protocol.risks])
    after = {
        **pilot_snapshot(pilot, protocol),
        "amendment": number - 1,
        "after_data": after_data,
        "risks": linked,  # the links it made (audit verify holds pilot_risks to them)
    }
    _record(session, ctx, pilot, "pilot.amend", before, after, reason)
    return Registration(pilot, number - 1, after_data)


def _check_compatible(
    session: Session, pilot: Pilot, old: Protocol, new: Protocol, codes: dict[str, tuple[int, str]]
) -> None:
    """Refuse amendments that would orphan data or rewrite what has already happened."""
    where = f"amendment of {pilot.ref}"
    if new.design.arms != old.design.arms:
        raise InvalidInput(
            f"{where}: design.arms cannot change once registered ({', '.join(old.design.arms)})"
        )
    with_data = _metrics_with_data(session, pilot)
    if with_data:
        _check_same_design(where, pilot, old, new)
    for name, (code, kind) in codes.items():
        if code not in with_data:
            continue
        try:
            metric = new.metric(name)
        except NotFound:
            raise InvalidInput(f"{where}: metric '{name}' has data and cannot be removed") from None
        if metric.kind != kind:
            raise InvalidInput(
                f"{where}: metric '{name}' has data as {kind}; its kind cannot become {metric.kind}"
            )
    for index in range(pilot.stage_index + 1):
        if index >= len(new.stages) or new.stages[index].name != old.stages[index].name:
            raise InvalidInput(
                f"{where}: stage '{old.stages[index].name}' is reached and cannot be renamed, moved or removed"
            )


def _check_same_design(where: str, pilot: Pilot, old: Protocol, new: Protocol) -> None:
    """Once data have arrived, what was allocated (units or clusters, and how) cannot change.

    The same data analysed under another allocation would be a different analysis: clusters
    as if people had been randomised one by one, say. A stepped wedge may add clusters that
    switch at a stage not reached yet; a cluster's switch is fixed once its stage is reached.
    """
    for key in ("unit", "layout", "cluster"):
        before, after = getattr(old.design, key), getattr(new.design, key)
        if before != after:
            raise InvalidInput(
                f"{where}: design.{key} cannot change once data have arrived ({before!r} → {after!r})"
            )
    reached = {stage.name for stage in old.stages[: pilot.stage_index + 1]}
    old_schedule, new_schedule = dict(old.design.schedule), dict(new.design.schedule)
    for cluster in sorted(set(old_schedule) | set(new_schedule)):
        before, after = old_schedule.get(cluster), new_schedule.get(cluster)
        if before != after and (before in reached or after in reached):
            raise InvalidInput(
                f"{where}: the schedule of cluster {cluster!r} cannot change: its switching stage is reached "
                f"({before or 'none'} → {after or 'none'})"
            )


def _metrics_with_data(session: Session, pilot: Pilot) -> set[int]:
    c = ImportCount
    return set(session.scalars(select(c.metric).where(c.import_id.in_(outcome_imports(session, pilot)))))


def _link(session: Session, pilot: Pilot, risks: list[Risk]) -> list[str]:
    already = {int(r.removeprefix("R-")) for r in linked_risks(session, pilot)}
    added = []
    for risk in risks:
        if risk.id not in already:
            session.add(PilotRisk(pilot_id=pilot.id, risk_id=risk.id))
            already.add(risk.id)
            added.append(risk.ref)
    session.flush()
    return added


def link_risks(session: Session, ctx: Context, ref: str, risk_refs: list[str]) -> list[str]:
    """Link risks to a pilot (the risks it will test); return the ids newly linked."""
    pilot = get_pilot(session, ref)
    risks = [get_risk(session, r) for r in risk_refs]
    added = _link(session, pilot, risks)
    if not added:
        raise InvalidInput(f"{pilot.ref}: {', '.join(r.ref for r in risks)} already linked; nothing to do")
    _record(session, ctx, pilot, "pilot.link", None, {"risks": added}, None)
    return added


# --- gates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """A recorded gate decision and where it left the pilot."""

    decision: Decision
    pilot: Pilot
    now_stage: str


def gate_pilot(session: Session, ref: str, decision: str, reason: str | None) -> Pilot:
    """Return the pilot for a gate decision once the decision itself is acceptable; explain otherwise.

    Runs before any analysis, so a mistyped decision or a missing reason is answered at once.
    """
    if decision not in DECISIONS:
        raise InvalidInput(f"decision: expected one of {', '.join(DECISIONS)}, got {decision!r}")
    if not reason or not reason.strip():
        raise InvalidInput("reason: a gate decision needs --reason (what the board or team weighed)")
    pilot = active_pilot(session, ref)
    if decision == "adapt" and not _amended_since_last_gate(session, pilot):
        raise InvalidInput(
            f"{pilot.ref}: 'adapt' needs an amendment first: register the changed protocol with "
            "`riskreg pilot register FILE --amend --reason TEXT`, then record the decision"
        )
    return pilot


def record_gate(
    session: Session,
    ctx: Context,
    pilot: Pilot,
    decision: str,
    reason: str,
    analysis: dict[str, Any] | None = None,
    recommendation: str | None = None,
    override: bool = False,
) -> GateResult:
    """Record a gate decision (checked by gate_pilot) at the end of the pilot's current stage and move it on."""
    protocol = protocol_of(pilot)
    decided_at = pilot.stage_index
    before = pilot_snapshot(pilot, protocol)
    snapshot = {"stage": protocol.stages[decided_at].name, "counts": data_counts(session, pilot, decided_at)}
    if analysis is not None:
        snapshot["analysis"] = analysis
    _move(pilot, decision, len(protocol.stages))
    pilot.updated_at, pilot.updated_by = ctx.now, ctx.actor
    row = Decision(
        pilot_id=pilot.id,
        stage_index=decided_at,
        decision=decision,
        reason=reason.strip(),
        recommendation=recommendation,
        override=override,
        snapshot=audit.canonical_json(snapshot) or "{}",
        at=ctx.now,
        actor=ctx.actor,
    )
    session.add(row)
    session.flush()
    after = {
        **pilot_snapshot(pilot, protocol),
        "decision": decision,
        "decided_stage": snapshot["stage"],
        "override": override,
        "recommendation": recommendation,
        "counts": snapshot["counts"],
        # the decisions row and a digest of its whole snapshot (analysis included), so that
        # `audit verify` finds the row flipped, re-reasoned or its data rewritten
        "decision_id": row.id,
        "snapshot_sha256": hashlib.sha256(row.snapshot.encode("utf-8")).hexdigest(),
    }
    _record(session, ctx, pilot, "pilot.gate", before, after, reason.strip())
    return GateResult(row, pilot, protocol.stages[min(pilot.stage_index, len(protocol.stages) - 1)].name)


def active_pilot(session: Session, ref: str) -> Pilot:
    """Return a pilot that can still take a gate decision; explain why not otherwise."""
    pilot = get_pilot(session, ref)
    if pilot.status != "active":
        raise InvalidInput(f"{pilot.ref} is {pilot.status}; no more gate decisions can be recorded")
    return pilot


def _move(pilot: Pilot, decision: str, stage_count: int) -> None:
    """Move the pilot on: stop ends it; proceed, or adapt (proceed on an amended protocol), opens the next stage."""
    if decision == "stop":
        pilot.status = "stopped"
    elif decision in ("proceed", "adapt"):
        if pilot.stage_index + 1 >= stage_count:
            pilot.status = "completed"
        else:
            pilot.stage_index += 1


def _amended_since_last_gate(session: Session, pilot: Pilot) -> bool:
    last_gate = session.scalar(select(func.max(Decision.at)).where(Decision.pilot_id == pilot.id))
    query = select(func.count()).where(ProtocolVersion.pilot_id == pilot.id, ProtocolVersion.number > 1)
    if last_gate is not None:
        query = query.where(ProtocolVersion.at > last_gate)
    return (session.scalar(query) or 0) > 0
