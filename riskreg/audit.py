"""The append-only audit trail: every change is an event chained by SHA-256 to the one before."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg.models import AuditHead, Event

GENESIS_HASH = "0" * 64


def canonical_json(value: Mapping[str, Any] | None) -> str | None:
    """Serialise a payload the one way that is hashed: sorted keys, no spaces, real Unicode."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: Event) -> str:
    """Return the SHA-256 that seals an event's stored fields and the previous event's hash."""
    fields = [
        event.seq,
        event.at.isoformat(),
        event.actor,
        event.action,
        event.entity,
        event.entity_id,
        event.scope,
        event.reason,
        event.before,
        event.after,
        event.prev_hash,
    ]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    scope: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> Event:
    """Append one event to the chain inside the caller's transaction (which holds the writer lock)."""
    head = session.get(AuditHead, 1, with_for_update=True)
    assert head is not None, "audit_head is seeded when the schema is created"
    event = Event(
        seq=head.seq + 1,
        at=at or dt.datetime.now(dt.UTC),
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        scope=scope,
        reason=reason,
        before=canonical_json(before),
        after=canonical_json(after),
        prev_hash=head.hash,
    )
    event.hash = event_hash(event)
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    return event


class Acting(Protocol):
    """Who acts and when: anything with ``actor`` and ``now`` (riskreg.register.Context)."""

    actor: str
    now: dt.datetime


def log(
    session: Session,
    ctx: Acting,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None = None,
    scope: str | None = None,
) -> Event:
    """Record a change to ``subject`` (``R-3``, ``C-2``, ``P-1``) by the acting person, now.

    The entity kind comes from the identifier's prefix; ``scope`` (default: the subject)
    is the risk or pilot whose history the event belongs to.
    """
    entity = {"R": "risk", "C": "control", "P": "pilot"}[subject.split("-", 1)[0]]
    return record(
        session,
        actor=ctx.actor,
        action=action,
        entity=entity,
        entity_id=subject,
        scope=scope or subject,
        before=before,
        after=after,
        reason=reason,
        at=ctx.now,
    )


def history(session: Session, scope: str) -> list[Event]:
    """Return the events of one risk or pilot (its controls and reviews included), oldest first."""
    return list(session.scalars(select(Event).where(Event.scope == scope).order_by(Event.seq)))


@dataclass(frozen=True)
class ChainCheck:
    """The result of checking the audit chain: how many events, and the first broken link if any."""

    events: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "ok": self.ok, "broken_at": self.broken_at, "problem": self.problem}


def verify(session: Session) -> ChainCheck:
    """Recompute every link of the chain and report the first that does not hold."""
    events = session.scalars(select(Event).order_by(Event.seq)).yield_per(2000)
    count, last_hash, problem = _walk(events)
    if problem is not None:
        return ChainCheck(count, False, problem[0], problem[1])
    head = session.get(AuditHead, 1)
    if head is None or head.seq != count or head.hash != last_hash:
        missing = (
            "the newest events were deleted" if head and head.seq > count else "the chain head was altered"
        )
        return ChainCheck(count, False, count + 1, f"chain ends at event {count}: {missing}")
    return ChainCheck(count, True)


def _walk(events: Iterable[Event]) -> tuple[int, str, tuple[int, str] | None]:
    expected_seq, prev = 1, GENESIS_HASH
    for event in events:
        if event.seq != expected_seq:
            return expected_seq - 1, prev, (expected_seq, f"event {expected_seq} is missing (deleted)")
        if event.prev_hash != prev:
            return (
                expected_seq - 1,
                prev,
                (event.seq, f"event {event.seq} does not link to event {event.seq - 1}"),
            )
        if event_hash(event) != event.hash:
            return expected_seq - 1, prev, (event.seq, f"event {event.seq} was altered after it was written")
        expected_seq, prev = expected_seq + 1, event.hash
    return expected_seq - 1, prev, None
