"""Whether the register holds what its audit trail says it became.

The hash chain (``audit.verify``) proves that no event was edited or deleted. It says
nothing of the register's own tables: an UPDATE run on the risks table behind riskreg's
back leaves every event intact. Each change to a risk, control, pilot or action records the
subject's stored fields as they became (its snapshot) in the same transaction, so the
last recorded snapshot must equal the row: a field that differs, a row that no event
created, or a recorded subject whose row is gone was changed outside riskreg.

Data files are held to their events too: each outcome import's file, stage and counts
(observations and missing values per metric and arm, less what a later --replace
removed) and each resource import's file, lines and cash and hours by side. The sums that
analyses read (import_counts) are held to the sums each import's event recorded (events
written before imports recorded them are compared by counts alone), and the stored
observation rows to those counts and sums: the database recounts and re-adds them, so an
edited value or exposure, a deleted, added or repeated row is found. What no sum can show
is two units of one arm trading values; that changes no analysis.

So is every other row that can change an outcome: a pilot's protocol text (and each
registered version) against its SHA-256, and each version against the event that
registered it; the pilot–risk links against the events that made them; each gate
decision against its ``pilot.gate`` event (decision, stage, reason, recommendation,
override, actor, time, and the snapshot it rested on, by digest where the event has one,
else by its counts); each review against its ``risk.review`` event; and each piece of
re-scoring evidence against the ``risk.rescore`` event it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.orm import Session

from riskreg.actions import action_snapshot
from riskreg.audit import canonical_json
from riskreg.errors import RiskregError
from riskreg.ingest import SUM_COLUMNS, event_number
from riskreg.models import (
    Action,
    Control,
    DataImport,
    Decision,
    Event,
    Evidence,
    ImportCount,
    Pilot,
    PilotRisk,
    ProtocolVersion,
    Review,
    Risk,
    observations,
)
from riskreg.pilots import metric_codes, pilot_snapshot, protocol_of
from riskreg.protocol import Protocol, parse_protocol
from riskreg.register import control_snapshot, iso_utc, parse_ref, snapshot
from riskreg.resources import resource_totals

ENTITIES = ("risk", "control", "pilot", "action")


@dataclass(frozen=True)
class Mismatch:
    """One place where the register differs from the trail, in words."""

    subject: str  # R-3, C-1, P-2
    problem: str

    def text(self) -> str:
        return f"{self.subject}: {self.problem}"

    def to_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "problem": self.problem}


@dataclass(frozen=True)
class StateCheck:
    """How many rows of each kind were compared with the trail, and where they differ."""

    risks: int
    controls: int
    pilots: int
    data_files: int
    mismatches: tuple[Mismatch, ...]
    protocols: int = 0  # registered protocol texts (the original and each amendment)
    links: int = 0  # pilot–risk links
    decisions: int = 0
    reviews: int = 0
    evidence: int = 0
    actions: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "risks": self.risks,
            "controls": self.controls,
            "pilots": self.pilots,
            "data_files": self.data_files,
            "protocols": self.protocols,
            "links": self.links,
            "decisions": self.decisions,
            "reviews": self.reviews,
            "evidence": self.evidence,
            "actions": self.actions,
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


@dataclass
class _Recorded:
    """A subject's fields as its events left them, and the event that last set each."""

    fields: dict[str, Any]
    set_by: dict[str, int]
    events: list[int]  # the events that recorded a state, oldest first


def check_state(session: Session) -> StateCheck:
    """Compare every row that can change an outcome with what its events recorded."""
    events = list(session.scalars(select(Event).where(Event.entity.in_(ENTITIES)).order_by(Event.seq)))
    texts = _ProtocolTexts(session, events)
    recorded = _recorded_states(events)
    current = dict(_current_states(session, texts))
    mismatches = [
        mismatch
        for subject in sorted(current.keys() | recorded.keys(), key=_subject_order)
        for mismatch in _compare(subject, current.get(subject), recorded.get(subject))
    ]
    files = _DataFiles(session, events, texts)
    mismatches += files.mismatches()
    mismatches += texts.mismatches()
    links, linked = _links(session, events, texts)
    mismatches += links
    decided, decisions = _decisions(session, events, texts)
    mismatches += decided
    reviewed, reviews = _reviews(session, events)
    mismatches += reviewed
    evident, evidence = _evidence(session, events, texts)
    mismatches += evident
    kinds = [subject.split("-", 1)[0] for subject in current]
    return StateCheck(
        kinds.count("R"),
        kinds.count("C"),
        kinds.count("P"),
        files.compared,
        tuple(mismatches),
        protocols=texts.compared,
        links=linked,
        decisions=decisions,
        reviews=reviews,
        evidence=evidence,
        actions=kinds.count("A"),
    )


def _recorded_states(events: Iterable[Event]) -> dict[str, _Recorded]:
    """Fold each subject's snapshots, oldest first: what the trail says each subject is now."""
    states: dict[str, _Recorded] = {}
    for event in events:
        after = json.loads(event.after) if event.after else None
        # a pilot's link, data and resources events carry other facts than its snapshot
        if after is None or (event.entity == "pilot" and "version" not in after):
            continue
        state = states.setdefault(event.entity_id, _Recorded({}, {}, []))
        state.fields.update(after)
        state.set_by.update(dict.fromkeys(after, event.seq))
        state.events.append(event.seq)
    return states


# a protocol whose every copy was edited no longer says what its stages are called
_NO_PROTOCOL = SimpleNamespace(stages=[SimpleNamespace(name=None)])


def _current_states(session: Session, texts: _ProtocolTexts) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield each risk, control, pilot and action with its snapshot, as events spell values (JSON)."""
    for risk in session.scalars(select(Risk)):
        yield risk.ref, _as_recorded(snapshot(risk))
    for control in session.scalars(select(Control)):
        yield control.ref, _as_recorded(control_snapshot(control))
    for pilot in session.scalars(select(Pilot)):
        protocol = texts.protocol(pilot.id)
        fields = pilot_snapshot(pilot, protocol or _NO_PROTOCOL)  # type: ignore[arg-type]
        if protocol is None:
            del fields["stage"]  # the edited text is reported; its stage name would only mislead
        yield pilot.ref, _as_recorded(fields)
    for action in session.scalars(select(Action)):
        yield action.ref, _as_recorded(action_snapshot(action))


def _as_recorded(fields: dict[str, Any]) -> dict[str, Any]:
    return json.loads(canonical_json(fields) or "{}")  # type: ignore[no-any-return]


def _compare(subject: str, current: dict[str, Any] | None, recorded: _Recorded | None) -> Iterator[Mismatch]:
    if recorded is None:
        yield Mismatch(subject, "in the register, but no event records it")
        return
    if current is None:
        first, last = recorded.events[0], recorded.events[-1]
        which = f"event {first}" if first == last else f"events {first} to {last}"
        yield Mismatch(subject, f"recorded by {which}, but missing from the register")
        return
    for name, value in current.items():
        if name in recorded.fields and recorded.fields[name] != value:
            yield Mismatch(
                subject,
                f"{name} is {_shown(value)} in the register, but {_shown(recorded.fields[name])} "
                f"in its last recorded state (event {recorded.set_by[name]})",
            )


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _subject_order(subject: str) -> tuple[int, int]:
    kind, number = subject.split("-", 1)
    return "RCPA".index(kind), int(number)


# --- data files ----------------------------------------------------------------------------------

FILE_EVENTS = {"pilot.data": "outcomes", "pilot.resources": "resources"}


class _DataFiles:
    """Each pilot's data imports, paired in order with the events that recorded them."""

    def __init__(self, session: Session, events: Sequence[Event], texts: _ProtocolTexts):
        self.session, self.texts = session, texts
        self.events: dict[tuple[str, str], list[tuple[Event, dict[str, Any]]]] = defaultdict(list)
        for event in events:
            if event.action in FILE_EVENTS and event.after:
                self.events[event.entity_id, FILE_EVENTS[event.action]].append(
                    (event, json.loads(event.after))
                )
        self.imports: dict[tuple[int, str], list[DataImport]] = defaultdict(list)
        for record in session.scalars(select(DataImport).order_by(DataImport.id)):
            self.imports[record.pilot_id, record.kind].append(record)

    @property
    def compared(self) -> int:
        return sum(map(len, self.imports.values()))

    def mismatches(self) -> list[Mismatch]:
        found: list[Mismatch] = []
        refs = set()
        for pilot in self.session.scalars(select(Pilot).order_by(Pilot.id)):
            refs.add(pilot.ref)
            found += self._outcomes(
                pilot, self.imports[pilot.id, "outcomes"], self.events[pilot.ref, "outcomes"]
            )
            found += self._resources(
                pilot, self.imports[pilot.id, "resources"], self.events[pilot.ref, "resources"]
            )
        for (ref, kind), orphans in sorted(self.events.items()):  # events of a pilot whose row is gone
            if ref not in refs:
                found += [_file_missing(ref, kind, event, after) for event, after in orphans]
        return found

    def _outcomes(
        self, pilot: Pilot, records: list[DataImport], events: list[tuple[Event, dict[str, Any]]]
    ) -> Iterator[Mismatch]:
        protocol = self.texts.protocol(pilot.id)
        if protocol is None:  # its arms and stages are unknown: the edited text is what is reported
            return
        names = {code: name for name, (code, _kind) in metric_codes(self.session, pilot).items()}
        counts = self._counts([r.id for r in records], names, protocol.design.arms)
        expected = _left_after_replacing([after for _event, after in events])
        pairs, unpaired = _paired(pilot.ref, "outcomes", records, events)
        yield from unpaired
        for index, record, event, after in pairs:
            metrics = expected[index]
            stage = (
                protocol.stages[record.stage_index].name
                if record.stage_index < len(protocol.stages)
                else None
            )
            fields = {
                "file": (record.source, after.get("file")),
                "stage": (stage, after.get("stage")),
                "observations": (record.rows, after.get("observations")),
                "missing values": (record.missing, after.get("missing")),
                "replaced rows": (record.replaced, after.get("replaced")),
            }
            yield from _differences(pilot.ref, record, event, fields)
            yield from _count_differences(pilot.ref, record, event, counts.get(record.id, {}), metrics)
        by_import = {record.id: record for record in records}
        recorded_sums = {record.id: after.get("sums") for _i, record, _e, after in pairs}
        stored = self._sums(list(by_import))
        yield from _sum_differences(pilot.ref, by_import, names, protocol.design.arms, stored, recorded_sums)
        yield from _observation_differences(
            pilot.ref, by_import, names, protocol.design.arms, stored, self._observed(list(by_import))
        )

    def _sums(self, import_ids: list[int]) -> dict[tuple[int, int, int], ImportCount]:
        """The import_counts rows of these imports, by (import, metric code, arm)."""
        rows = self.session.scalars(select(ImportCount).where(ImportCount.import_id.in_(import_ids)))
        return {(row.import_id, row.metric, row.arm): row for row in rows}

    def _observed(self, import_ids: list[int]) -> dict[tuple[int, int, int], ObservedRows]:
        """Recount and re-add the stored observation rows of these imports, by (import, metric code, arm).

        Values are added shifted as the import added them (d = value - shift for continuous
        metrics), so the sums compare like for like; a square under 1e-300 counts as 0, since
        PostgreSQL refuses a float that underflows (a value of 1e-300 squared).
        """
        o, c = observations.c, ImportCount
        shifted = o.value - func.coalesce(c.shift, 0.0)
        square = case((func.abs(shifted) < 1e-150, 0.0), else_=shifted * shifted)
        query = (
            select(
                o.import_id,
                o.metric,
                o.arm,
                func.count(),
                func.count(o.value),
                func.sum(shifted),
                func.sum(square),
                func.sum(o.exposure),
                func.count(distinct(o.unit_id)),
            )
            .select_from(observations)
            .outerjoin(c, and_(c.import_id == o.import_id, c.metric == o.metric, c.arm == o.arm))
            .where(o.import_id.in_(import_ids))
            .group_by(o.import_id, o.metric, o.arm)
        )
        return {(row[0], row[1], row[2]): ObservedRows(*row[3:]) for row in self.session.execute(query)}

    def _counts(
        self, import_ids: list[int], names: dict[int, str], arms: Sequence[str]
    ) -> dict[int, dict[str, dict[str, dict[str, int]]]]:
        """The stored observation and missing counts of each import, as its event spells them."""
        counts: dict[int, dict[str, dict[str, dict[str, int]]]] = {}
        rows = self.session.scalars(select(ImportCount).where(ImportCount.import_id.in_(import_ids)))
        for row in rows:
            metric = counts.setdefault(row.import_id, {}).setdefault(
                names.get(row.metric, str(row.metric)), {}
            )
            arm = arms[row.arm] if row.arm < len(arms) else str(row.arm)
            metric[arm] = {"n": row.n, "missing": row.missing}
        return counts

    def _resources(
        self, pilot: Pilot, records: list[DataImport], events: list[tuple[Event, dict[str, Any]]]
    ) -> Iterator[Mismatch]:
        pairs, unpaired = _paired(pilot.ref, "resources", records, events)
        yield from unpaired
        # a file replaced by a later one (pilot resources --replace) keeps its record, not its lines
        replaced = {after["replaces"]["import"] for _event, after in events if after.get("replaces")}
        for _index, record, event, after in pairs:
            # hours are valued at the rate of the day, which may have changed since: compare cash and hours
            try:
                stored = resource_totals(self.session, pilot, 0.0, import_id=record.id)["total"]
            except (RiskregError, IndexError):
                # the pilot's text was edited (reported on its own) or a row moved to a stage it lacks
                yield Mismatch(
                    pilot.ref,
                    f"resources file {record.source!r}: its rows can no longer be totalled by the protocol's stages",
                )
                continue
            recorded = {} if record.id in replaced else after.get("totals", {})
            fields = {
                "file": (record.source, after.get("file")),
                "lines": (record.rows, after.get("rows")),
                "replaced lines": (record.replaced or 0, (after.get("replaces") or {}).get("rows", 0)),
            }
            for side in sorted(stored.keys() | recorded.keys()):
                for amount in ("cash", "hours"):
                    fields[f"{side} {amount}"] = (
                        stored.get(side, {}).get(amount),
                        recorded.get(side, {}).get(amount),
                    )
            yield from _differences(pilot.ref, record, event, fields)


def _paired(
    ref: str, kind: str, records: list[DataImport], events: list[tuple[Event, dict[str, Any]]]
) -> tuple[list[tuple[int, DataImport, Event, dict[str, Any]]], list[Mismatch]]:
    """Pair a pilot's imports of one kind with their events, in order; say which have no partner."""
    pairs, unpaired = [], []
    for index, (record, recorded) in enumerate(zip_longest(records, events)):
        if recorded is None:
            unpaired.append(_file_unrecorded(ref, record))
        elif record is None:
            unpaired.append(_file_missing(ref, kind, *recorded))
        else:
            pairs.append((index, record, *recorded))
    return pairs, unpaired


def _left_after_replacing(afters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each outcome import's recorded counts, less the metrics a later --replace in its stage took away."""
    left = [dict(after.get("metrics", {})) for after in afters]
    for later, after in enumerate(afters):
        if after.get("replaced"):
            for earlier in range(later):
                if afters[earlier].get("stage") == after.get("stage"):
                    for metric in after.get("metrics", {}):
                        left[earlier].pop(metric, None)
    return left


def _differences(
    ref: str, record: DataImport, event: Event, fields: dict[str, tuple[Any, Any]]
) -> Iterator[Mismatch]:
    for name, (stored, recorded) in fields.items():
        if stored != recorded:
            yield Mismatch(
                ref,
                f"{record.kind} file {record.source!r}: {name} {_shown(stored)} in the register, "
                f"but {_shown(recorded)} in event {event.seq}",
            )


def _count_differences(
    ref: str, record: DataImport, event: Event, stored: dict[str, Any], recorded: dict[str, Any]
) -> Iterator[Mismatch]:
    for metric in sorted(stored.keys() | recorded.keys()):
        for arm in sorted(stored.get(metric, {}).keys() | recorded.get(metric, {}).keys()):
            here, there = stored.get(metric, {}).get(arm), recorded.get(metric, {}).get(arm)
            if here != there:
                yield Mismatch(
                    ref,
                    f"outcomes file {record.source!r}: {metric} in arm {arm} counts {_shown(here)} "
                    f"in the register, but {_shown(there)} in event {event.seq}",
                )


@dataclass(frozen=True)
class ObservedRows:
    """What the stored observation rows of one import, metric and arm add up to."""

    rows: int
    present: int
    total: float | None
    squares: float | None
    exposure: float | None
    units: int


def _sum_differences(
    ref: str,
    records: dict[int, DataImport],
    names: dict[int, str],
    arms: Sequence[str],
    stored: dict[tuple[int, int, int], ImportCount],
    recorded: dict[int, dict[str, Any] | None],
) -> Iterator[Mismatch]:
    """Hold each import's stored sums (what analyses read) to the sums its event recorded."""
    for (import_id, code, arm), row in sorted(stored.items()):
        sums = recorded.get(import_id)
        if sums is None:  # an event written before imports recorded their sums
            continue
        metric, arm_name = names.get(code, str(code)), arms[arm] if arm < len(arms) else str(arm)
        there = sums.get(metric, {}).get(arm_name)
        if there is None:
            continue  # a row the event does not count is reported with the counts
        changed = [key for key in SUM_COLUMNS if event_number(getattr(row, key)) != there.get(key)]
        if changed:
            yield Mismatch(
                ref,
                f"outcomes file {records[import_id].source!r}: {metric} in arm {arm_name}: the sums analyses "
                f"read ({', '.join(changed)}) differ from those its event recorded",
            )


def _observation_differences(
    ref: str,
    records: dict[int, DataImport],
    names: dict[int, str],
    arms: Sequence[str],
    stored: dict[tuple[int, int, int], ImportCount],
    observed: dict[tuple[int, int, int], ObservedRows],
) -> Iterator[Mismatch]:
    """Hold the stored observation rows to the counts and sums their import recorded."""
    for key in sorted(stored.keys() | observed.keys()):
        import_id, code, arm = key
        place = (
            f"outcomes file {records[import_id].source!r}: {names.get(code, str(code))} in arm "
            f"{arms[arm] if arm < len(arms) else arm}"
        )
        problem = _observed_problem(stored.get(key), observed.get(key))
        if problem:
            yield Mismatch(ref, f"{place}: {problem}")


def _observed_problem(counted: ImportCount | None, rows: ObservedRows | None) -> str | None:
    """Say how an import's stored rows differ from what it counted (None when they agree)."""
    if counted is None:
        return f"{_rows_stored(rows.rows if rows else 0)} that the import never counted"
    found = rows or ObservedRows(0, 0, None, None, None, 0)
    expected_rows = counted.n + counted.missing
    if found.rows != expected_rows:
        return f"{_rows_stored(found.rows)}, but the import counted {expected_rows}"
    if found.units != found.rows:
        repeated = found.rows - found.units
        return f"{repeated} {'unit appears' if repeated == 1 else 'units appear'} twice among its observation rows"
    if found.present != counted.n:
        return f"{found.present} of its observation rows have values, but the import counted {counted.n}"
    if counted.shift is not None:  # continuous: the sums of d = value - shift and of d²
        scale = abs(counted.sum_d or 0.0) + counted.n * abs(counted.shift)
        if not _close(found.total, counted.sum_d or 0.0, scale) or not _close(
            found.squares, counted.sum_d2 or 0.0, abs(counted.sum_d2 or 0.0)
        ):
            return "the stored values no longer add up to what the import counted"
    elif not _close(found.total, counted.total, abs(counted.total)):
        return "the stored values no longer add up to what the import counted"
    if not _close(found.exposure, counted.exposure, abs(counted.exposure)):
        return "the stored exposures no longer add up to what the import counted"
    return None


def _rows_stored(count: int) -> str:
    return f"{count} observation {'row is' if count == 1 else 'rows are'} stored"


def _close(found: float | None, expected: float, scale: float) -> bool:
    """Whether a sum the database added equals the import's exact sum, up to rounding in the database's order."""
    value = found or 0.0
    if not (math.isfinite(value) and math.isfinite(expected)):
        return value == expected
    return abs(value - expected) <= 1e-9 * max(scale, 1.0)


def _file_unrecorded(ref: str, record: DataImport) -> Mismatch:
    return Mismatch(
        ref,
        f"{record.kind} file {record.source!r} (import {record.id}) is in the register, but no event records it",
    )


def _file_missing(ref: str, kind: str, event: Event, after: dict[str, Any]) -> Mismatch:
    return Mismatch(
        ref,
        f"event {event.seq} records {kind} file {after.get('file')!r}, but the register has no such import",
    )


# --- shared by the rows below ---------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(ref: str) -> int:
    """The number of an identifier such as ``P-3`` (0 for anything else), for ordering."""
    tail = ref.split("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _same(stored: Any, recorded: Any) -> bool:
    """Equal as values, with NaN equal to NaN (an estimate can be NaN, and JSON keeps it)."""
    if isinstance(stored, float) and isinstance(recorded, float):
        return stored == recorded or (math.isnan(stored) and math.isnan(recorded))
    if isinstance(stored, list) and isinstance(recorded, list):
        return len(stored) == len(recorded) and all(map(_same, stored, recorded))
    if isinstance(stored, dict) and isinstance(recorded, dict):
        return stored.keys() == recorded.keys() and all(_same(stored[k], recorded[k]) for k in stored)
    return bool(stored == recorded)


_ABSENT = object()  # a field an older event does not carry: nothing to compare it with


def _field_differences(
    subject: str, what: str, event: Event, fields: dict[str, tuple[Any, Any]]
) -> list[Mismatch]:
    """Name each field whose stored value differs from the one its event recorded."""
    return [
        Mismatch(
            subject,
            f"{what}: {name} {_shown(stored)} in the register, but {_shown(recorded)} in event {event.seq}",
        )
        for name, (stored, recorded) in fields.items()
        if recorded is not _ABSENT and not _same(stored, recorded)
    ]


def _stage_name(protocol: Protocol, index: int) -> str | int:
    return protocol.stages[index].name if 0 <= index < len(protocol.stages) else index


def _pair(
    rows: Sequence[Any],
    recorded: Sequence[tuple[Event, dict[str, Any]]],
    named: Callable[[dict[str, Any]], Any],
) -> tuple[list[tuple[Any, Event, dict[str, Any]]], list[Any], list[tuple[Event, dict[str, Any]]]]:
    """Pair rows with the events that recorded them: by the row id an event names, else (older events) in order.

    Return the pairs, the rows no event records and the events whose row is gone.
    """
    by_id = {row.id: row for row in rows}
    pairs, missing, older, claimed = [], [], [], set()
    for event, after in recorded:
        ident = named(after)
        if ident is None:
            older.append((event, after))
        elif ident in by_id and ident not in claimed:
            claimed.add(ident)
            pairs.append((by_id[ident], event, after))
        else:
            missing.append((event, after))
    unrecorded = []
    for row, old in zip_longest([r for r in rows if r.id not in claimed], older):
        if old is None:
            unrecorded.append(row)
        elif row is None:
            missing.append(old)
        else:
            pairs.append((row, *old))
    pairs.sort(key=lambda pair: pair[1].seq)
    missing.sort(key=lambda pair: pair[0].seq)
    return pairs, unrecorded, missing


def _by_subject(events: Iterable[Event], action: str) -> dict[str, list[tuple[Event, dict[str, Any]]]]:
    recorded: dict[str, list[tuple[Event, dict[str, Any]]]] = defaultdict(list)
    for event in events:
        if event.action == action and event.after:
            recorded[event.entity_id].append((event, json.loads(event.after)))
    return recorded


# --- protocol texts -------------------------------------------------------------------------------


class _ProtocolTexts:
    """Each pilot's protocol texts against their SHA-256, and its registered versions against their events."""

    def __init__(self, session: Session, events: Sequence[Event]):
        self.pilots = {pilot.id: pilot for pilot in session.scalars(select(Pilot).order_by(Pilot.id))}
        self.versions: dict[int, list[ProtocolVersion]] = defaultdict(list)
        query = select(ProtocolVersion).order_by(ProtocolVersion.pilot_id, ProtocolVersion.number)
        for version in session.scalars(query):
            self.versions[version.pilot_id].append(version)
        self.events: dict[str, list[tuple[Event, dict[str, Any]]]] = defaultdict(list)
        for event in events:
            if event.action in ("pilot.register", "pilot.amend") and event.after:
                self.events[event.entity_id].append((event, json.loads(event.after)))
        self._trusted: dict[int, Protocol | None] = {}

    @property
    def compared(self) -> int:
        return sum(map(len, self.versions.values()))

    def protocol(self, pilot_id: int) -> Protocol | None:
        """The pilot's protocol read from a text that still hashes to its SHA-256, or None if none does.

        An edited text is never parsed: it could fail to parse, or name other stages and arms.
        The pilot's own text comes first, then its registered versions, the current one first.
        """
        if pilot_id not in self._trusted:
            self._trusted[pilot_id] = self._read(pilot_id)
        return self._trusted[pilot_id]

    def _read(self, pilot_id: int) -> Protocol | None:
        pilot = self.pilots.get(pilot_id)
        if pilot is not None and _sha256(pilot.protocol_text) == pilot.protocol_sha256:
            try:
                return protocol_of(pilot)
            except RiskregError:
                pass
        current = pilot.protocol_sha256 if pilot is not None else None
        versions = sorted(self.versions.get(pilot_id, []), key=lambda v: (v.sha256 != current, -v.number))
        for version in versions:
            found = self._parsed(version)
            if found is not None:
                return found
        return None

    @staticmethod
    def _parsed(version: ProtocolVersion) -> Protocol | None:
        if _sha256(version.text) != version.sha256:
            return None
        try:
            return parse_protocol(version.text.encode("utf-8"), f"P-{version.pilot_id}")
        except RiskregError:
            return None

    def risks_of(self, ref: str, sha256: Any) -> tuple[str, ...]:
        """The risks named by the registered text with this SHA-256 (what an older event's links were)."""
        for version in self.versions.get(_number(ref), []):
            if version.sha256 == sha256:
                protocol = self._parsed(version)
                return protocol.risks if protocol is not None else ()
        return ()

    def mismatches(self) -> list[Mismatch]:
        found: list[Mismatch] = []
        for pilot_id in sorted(self.pilots.keys() | self.versions.keys()):
            ref, pilot, versions = f"P-{pilot_id}", self.pilots.get(pilot_id), self.versions.get(pilot_id, [])
            if pilot is not None and _sha256(pilot.protocol_text) != pilot.protocol_sha256:
                found.append(Mismatch(ref, _edited("protocol text", pilot.protocol_sha256)))
            for version in versions:
                if _sha256(version.text) != version.sha256:
                    found.append(
                        Mismatch(ref, _edited(f"protocol version {version.number}: text", version.sha256))
                    )
            for number, (version, recorded) in enumerate(zip_longest(versions, self.events[ref]), start=1):
                if recorded is None:
                    found.append(
                        Mismatch(
                            ref,
                            f"protocol version {version.number} is in the register, but no event records it",
                        )
                    )
                    continue
                event, after = recorded
                if version is None:
                    found.append(
                        Mismatch(
                            ref,
                            f"event {event.seq} records protocol version {number}, "
                            "but the register has no such version",
                        )
                    )
                else:
                    fields = {"sha256": (version.sha256, after.get("protocol_sha256", _ABSENT))}
                    found += _field_differences(ref, f"protocol version {version.number}", event, fields)
        return found


def _edited(what: str, sha256: str) -> str:
    return f"{what} does not hash to its SHA-256 {sha256[:12]}…: it was edited after it was registered"


# --- pilot–risk links -----------------------------------------------------------------------------


def _links(session: Session, events: Iterable[Event], texts: _ProtocolTexts) -> tuple[list[Mismatch], int]:
    """Compare the pilot–risk links with the events that made them (register, amend and link)."""
    recorded: dict[str, dict[str, int]] = defaultdict(dict)  # pilot -> risk -> the event that linked it
    for event in events:
        if event.entity != "pilot" or not event.after:
            continue
        after = json.loads(event.after)
        if event.action == "pilot.link":
            risks = after.get("risks", [])
        elif event.action in ("pilot.register", "pilot.amend"):
            # older events did not list the links they made: their protocol text names them
            risks = (
                after["risks"]
                if "risks" in after
                else texts.risks_of(event.entity_id, after.get("protocol_sha256"))
            )
        else:
            continue
        for risk in risks:
            recorded[event.entity_id].setdefault(_risk_ref(risk), event.seq)
    stored: dict[str, set[str]] = defaultdict(set)
    count = 0
    for pilot_id, risk_id in session.execute(select(PilotRisk.pilot_id, PilotRisk.risk_id)):
        stored[f"P-{pilot_id}"].add(f"R-{risk_id}")
        count += 1
    found = []
    for ref in sorted(stored.keys() | recorded.keys(), key=_number):
        linked, made = stored[ref], recorded[ref]
        for risk in sorted(linked - made.keys(), key=_number):
            found.append(Mismatch(ref, f"linked to {risk} in the register, but no event links them"))
        for risk in sorted(made.keys() - linked, key=_number):
            found.append(Mismatch(ref, f"event {made[risk]} links {risk}, but the register has no such link"))
    return found, count


def _risk_ref(text: Any) -> str:
    try:
        return f"R-{parse_ref(str(text), 'R')}"
    except RiskregError:
        return str(text)


# --- gate decisions -------------------------------------------------------------------------------


def _decisions(
    session: Session, events: Iterable[Event], texts: _ProtocolTexts
) -> tuple[list[Mismatch], int]:
    """Compare each gate decision with its ``pilot.gate`` event."""
    recorded = _by_subject(events, "pilot.gate")
    rows: dict[str, list[Decision]] = defaultdict(list)
    for row in session.scalars(select(Decision).order_by(Decision.id)):
        rows[f"P-{row.pilot_id}"].append(row)
    found: list[Mismatch] = []
    for ref in sorted(rows.keys() | recorded.keys(), key=_number):
        protocol = texts.protocol(_number(ref))
        pairs, unrecorded, missing = _pair(rows[ref], recorded[ref], lambda after: after.get("decision_id"))
        for row, event, after in pairs:
            what = f"gate decision {row.id}" + (
                f" at {_stage_name(protocol, row.stage_index)}" if protocol else ""
            )
            found += _field_differences(ref, what, event, _decision_fields(row, event, after, protocol))
        for row in unrecorded:
            found.append(
                Mismatch(
                    ref,
                    f"gate decision {row.id} ({row.decision!r}) is in the register, but no event records it",
                )
            )
        for event, after in missing:
            found.append(
                Mismatch(
                    ref,
                    f"event {event.seq} records gate decision {after.get('decision')!r} at "
                    f"{after.get('decided_stage')}, but the register has no such decision",
                )
            )
    return found, sum(map(len, rows.values()))


def _decision_fields(
    row: Decision, event: Event, after: dict[str, Any], protocol: Protocol | None
) -> dict[str, tuple[Any, Any]]:
    fields = {
        "decision": (row.decision, after.get("decision", _ABSENT)),
        "reason": (row.reason, event.reason),
        "recommendation": (row.recommendation, after.get("recommendation", _ABSENT)),
        "override": (row.override, after.get("override", _ABSENT)),
        "actor": (row.actor, event.actor),
        "time": (iso_utc(row.at), iso_utc(event.at)),
    }
    if protocol is not None:
        fields["stage"] = (_stage_name(protocol, row.stage_index), after.get("decided_stage", _ABSENT))
    if "snapshot_sha256" in after:
        fields["snapshot SHA-256"] = (_sha256(row.snapshot), after["snapshot_sha256"])
    else:  # an older event: it kept the snapshot's stage and counts, not its digest
        try:
            snapshot = json.loads(row.snapshot)
        except ValueError:
            snapshot = None
        snapshot = snapshot if isinstance(snapshot, dict) else {}
        fields["snapshot stage"] = (snapshot.get("stage"), after.get("decided_stage", _ABSENT))
        fields["snapshot counts"] = (snapshot.get("counts"), after.get("counts", _ABSENT))
    return fields


# --- reviews --------------------------------------------------------------------------------------


def _reviews(session: Session, events: Iterable[Event]) -> tuple[list[Mismatch], int]:
    """Compare each review with its ``risk.review`` event (outcome, reviewer, note as reason, time)."""
    recorded = _by_subject(events, "risk.review")
    rows: dict[str, list[Review]] = defaultdict(list)
    for row in session.scalars(select(Review).order_by(Review.id)):
        rows[f"R-{row.risk_id}"].append(row)
    found: list[Mismatch] = []
    for ref in sorted(rows.keys() | recorded.keys(), key=_number):
        pairs, unrecorded, missing = _pair(rows[ref], recorded[ref], lambda after: _review(after).get("id"))
        for row, event, after in pairs:
            review = _review(after)
            fields = {
                "outcome": (row.outcome, review.get("outcome", _ABSENT)),
                "reviewer": (row.reviewer, review.get("reviewer", _ABSENT)),
                "note": (row.note, event.reason),
                "time": (iso_utc(row.reviewed_at), iso_utc(event.at)),
            }
            found += _field_differences(ref, f"review {row.id}", event, fields)
        for row in unrecorded:
            found.append(
                Mismatch(
                    ref, f"review {row.id} ({row.outcome!r}) is in the register, but no event records it"
                )
            )
        for event, after in missing:
            found.append(
                Mismatch(
                    ref,
                    f"event {event.seq} records a review ({_review(after).get('outcome')!r}), "
                    "but the register has no such review",
                )
            )
    return found, sum(map(len, rows.values()))


def _review(after: dict[str, Any]) -> dict[str, Any]:
    review = after.get("review")
    return review if isinstance(review, dict) else {}


# --- evidence -------------------------------------------------------------------------------------


def _evidence(session: Session, events: Iterable[Event], texts: _ProtocolTexts) -> tuple[list[Mismatch], int]:
    """Compare each piece of re-scoring evidence with the ``risk.rescore`` event it names (``event_seq``)."""
    recorded: dict[int, tuple[Event, dict[str, Any]]] = {}
    for event in events:
        if event.action == "risk.rescore" and event.after:
            evidence = json.loads(event.after).get("evidence")
            if isinstance(evidence, dict):
                recorded[event.seq] = (event, evidence)
    found: list[Mismatch] = []
    claimed: set[int] = set()
    count = 0
    for row in session.scalars(select(Evidence).order_by(Evidence.id)):
        count += 1
        ref = f"R-{row.risk_id}"
        if row.event_seq not in recorded or row.event_seq in claimed:
            found.append(
                Mismatch(
                    ref,
                    f"evidence {row.id} (P-{row.pilot_id} {row.metric}) is in the register, "
                    "but no event records it",
                )
            )
            continue
        claimed.add(row.event_seq)
        event, evidence = recorded[row.event_seq]
        found += _field_differences(
            ref,
            f"evidence {row.id}",
            event,
            _evidence_fields(row, event, evidence, texts.protocol(row.pilot_id)),
        )
    for seq in sorted(recorded.keys() - claimed):
        event, evidence = recorded[seq]
        found.append(
            Mismatch(
                event.entity_id,
                f"event {seq} records evidence from {evidence.get('pilot')} ({evidence.get('metric')}), "
                "but the register has no such evidence",
            )
        )
    return found, count


def _evidence_fields(
    row: Evidence, event: Event, evidence: dict[str, Any], protocol: Protocol | None
) -> dict[str, tuple[Any, Any]]:
    fields = {
        "risk": (f"R-{row.risk_id}", event.entity_id),
        "pilot": (f"P-{row.pilot_id}", evidence.get("pilot", _ABSENT)),
        "metric": (row.metric, evidence.get("metric", _ABSENT)),
        "verdict": (row.verdict, evidence.get("verdict", _ABSENT)),
        "recommendation": (row.recommendation, evidence.get("recommendation", _ABSENT)),
        "estimate": (row.estimate, evidence.get("estimate", _ABSENT)),
        "CI": ([row.ci_low, row.ci_high], evidence.get("ci", _ABSENT)),
        "time": (iso_utc(row.at), iso_utc(event.at)),
    }
    if protocol is not None:  # n is recorded by arm name; the row keeps the comparison arm first
        arms = protocol.design.arms
        fields["stage"] = (_stage_name(protocol, row.stage_index), evidence.get("stage", _ABSENT))
        fields["n"] = ({arms[0]: row.n_comparison, arms[1]: row.n_pilot}, evidence.get("n", _ABSENT))
    return fields
