"""Whether the register holds what its audit trail says it became.

The hash chain (``audit.verify``) proves that no event was edited or deleted. It says
nothing of the register's own tables: an UPDATE run on the risks table behind riskreg's
back leaves every event intact. Each change to a risk, control or pilot records the
subject's stored fields as they became (its snapshot) in the same transaction, so the
last recorded snapshot must equal the row: a field that differs, a row that no event
created, or a recorded subject whose row is gone was changed outside riskreg.

Data files are held to their events too: each outcome import's file, stage and counts
(observations and missing values per metric and arm, less what a later --replace
removed) and each resource import's file, lines and cash and hours by side. The sums
that analyses read are not in the events, so they cannot be checked against them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg.audit import canonical_json
from riskreg.ingest import resource_totals
from riskreg.models import Control, DataImport, Event, ImportCount, Pilot, Risk
from riskreg.pilots import metric_codes, pilot_snapshot, protocol_of
from riskreg.register import control_snapshot, snapshot

ENTITIES = ("risk", "control", "pilot")


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
    """How many risks, controls, pilots and data files were compared with the trail, and where they differ."""

    risks: int
    controls: int
    pilots: int
    data_files: int
    mismatches: tuple[Mismatch, ...]

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
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


@dataclass
class _Recorded:
    """A subject's fields as its events left them, and the event that last set each."""

    fields: dict[str, Any]
    set_by: dict[str, int]
    events: list[int]  # the events that recorded a state, oldest first


def check_state(session: Session) -> StateCheck:
    """Compare every risk, control, pilot and data file with the last state its events recorded."""
    events = list(session.scalars(select(Event).where(Event.entity.in_(ENTITIES)).order_by(Event.seq)))
    recorded = _recorded_states(events)
    current = dict(_current_states(session))
    mismatches = [
        mismatch
        for subject in sorted(current.keys() | recorded.keys(), key=_subject_order)
        for mismatch in _compare(subject, current.get(subject), recorded.get(subject))
    ]
    files = _DataFiles(session, events)
    mismatches += files.mismatches()
    kinds = [subject.split("-", 1)[0] for subject in current]
    return StateCheck(kinds.count("R"), kinds.count("C"), kinds.count("P"), files.compared, tuple(mismatches))


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


def _current_states(session: Session) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield each risk, control and pilot with its snapshot, as events spell values (JSON)."""
    for risk in session.scalars(select(Risk)):
        yield risk.ref, _as_recorded(snapshot(risk))
    for control in session.scalars(select(Control)):
        yield control.ref, _as_recorded(control_snapshot(control))
    for pilot in session.scalars(select(Pilot)):
        yield pilot.ref, _as_recorded(pilot_snapshot(pilot, protocol_of(pilot)))


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
    return "RCP".index(kind), int(number)


# --- data files ----------------------------------------------------------------------------------

FILE_EVENTS = {"pilot.data": "outcomes", "pilot.resources": "resources"}


class _DataFiles:
    """Each pilot's data imports, paired in order with the events that recorded them."""

    def __init__(self, session: Session, events: Sequence[Event]):
        self.session = session
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
        protocol = protocol_of(pilot)
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
        for _index, record, event, after in pairs:
            # hours are valued at the rate of the day, which may have changed since: compare cash and hours
            stored = resource_totals(self.session, pilot, 0.0, import_id=record.id)["total"]
            recorded = after.get("totals", {})
            fields = {"file": (record.source, after.get("file")), "lines": (record.rows, after.get("rows"))}
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
