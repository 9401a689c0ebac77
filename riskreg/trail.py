"""Whether the register holds what its audit trail says it became.

The hash chain (``audit.verify``) proves that no event was edited or deleted. It says
nothing of the register's own tables: an UPDATE run on the risks table behind riskreg's
back leaves every event intact. Each change to a risk, control or pilot records the
subject's stored fields as they became (its snapshot) in the same transaction, so the
last recorded snapshot must equal the row: a field that differs, a row that no event
created, or a recorded subject whose row is gone was changed outside riskreg.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg.audit import canonical_json
from riskreg.models import Control, Event, Pilot, Risk
from riskreg.pilots import pilot_snapshot, protocol_of
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
    """How many risks, controls and pilots were compared with the trail, and where they differ."""

    risks: int
    controls: int
    pilots: int
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
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


@dataclass
class _Recorded:
    """A subject's fields as its events left them, and the event that last set each."""

    fields: dict[str, Any]
    set_by: dict[str, int]
    events: list[int]  # the events that recorded a state, oldest first


def check_state(session: Session) -> StateCheck:
    """Compare every risk, control and pilot with the last state its events recorded."""
    recorded = _recorded_states(
        session.scalars(select(Event).where(Event.entity.in_(ENTITIES)).order_by(Event.seq))
    )
    current = dict(_current_states(session))
    mismatches = [
        mismatch
        for subject in sorted(current.keys() | recorded.keys(), key=_subject_order)
        for mismatch in _compare(subject, current.get(subject), recorded.get(subject))
    ]
    kinds = [subject.split("-", 1)[0] for subject in current]
    return StateCheck(kinds.count("R"), kinds.count("C"), kinds.count("P"), tuple(mismatches))


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
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _subject_order(subject: str) -> tuple[int, int]:
    kind, number = subject.split("-", 1)
    return "RCP".index(kind), int(number)
