"""The append-only audit trail: every change is an event chained by SHA-256 to the one before."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riskreg import chain
from riskreg.chain import GENESIS_HASH as GENESIS_HASH  # the chain's definitions, importable from here
from riskreg.chain import Acting as Acting
from riskreg.chain import canonical_json as canonical_json
from riskreg.chain import event_hash as event_hash
from riskreg.errors import InvalidInput, RiskregError
from riskreg.models import AuditHead, Event


def record(session: Session, *, entered_by: str | None = None, **fields: Any) -> Event:
    """Append one event to the chain inside the caller's transaction (which holds the writer lock).

    ``fields`` are ``chain.following``'s: actor, action, entity, entity_id, scope, before,
    after, and optionally reason and at. ``entered_by`` is the login that writes it; by
    default the one the session was opened for (``Database.write`` puts it in
    ``session.info["entered_by"]``).
    """
    head = session.get(AuditHead, 1, with_for_update=True)
    assert head is not None, "audit_head is seeded when the schema is created"
    entered_by = entered_by or session.info.get("entered_by")
    event = Event(**chain.following(head.seq, head.hash, entered_by=entered_by, **fields))
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    return event


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
    """Record a change to ``subject`` (``R-3``, ``C-2``, ``P-1``) by the acting person, now (``chain.change``)."""
    return record(session, **chain.change(ctx, action, subject, before, after, reason, scope))


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


# --- seals ---------------------------------------------------------------------------------------

SEAL_DIGITS = 12  # hex digits of the head hash in a seal code: 48 bits
SEAL_SHAPE = "RR-<events>-<12 hex digits>, e.g. RR-412-3f9a1c0d7e22"
_SEAL = re.compile(r"^RR-(\d{1,10})-([0-9a-f]{12,64})$", re.IGNORECASE)


class AuditError(RiskregError):
    """The audit chain does not hold what was asked of it (a seal, or a chain to seal)."""


@dataclass(frozen=True)
class Head:
    """The chain's newest event: how many events there are, and that event's hash."""

    events: int
    hash: str

    def seal(self, full: bool = False) -> str:
        """Return the seal code of this head: ``RR-<events>-<first 12 hex digits>`` (all 64 with ``full``)."""
        return f"RR-{self.events}-{self.hash if full else self.hash[:SEAL_DIGITS]}"

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "hash": self.hash, "seal": self.seal()}


def head(session: Session) -> Head:
    """Return the head of the chain as audit_head records it (event 0 and the genesis hash when empty)."""
    row = session.get(AuditHead, 1)
    return Head(0, GENESIS_HASH) if row is None else Head(row.seq, row.hash)


@dataclass(frozen=True)
class SealCode:
    """A parsed seal code: the event it names and the start of that event's hash."""

    events: int
    prefix: str  # lower-case hex, 12 to 64 digits

    @property
    def code(self) -> str:
        return f"RR-{self.events}-{self.prefix}"


def parse_seal(code: str) -> SealCode:
    """Read a seal code such as ``RR-412-3f9a1c0d7e22``; raise InvalidInput naming the expected shape."""
    match = _SEAL.match((code or "").strip())
    if match is None:
        raise InvalidInput(f"seal: {code!r} is not a seal code; expected {SEAL_SHAPE}")
    return SealCode(int(match.group(1)), match.group(2).lower())


def seal(session: Session, ctx: Acting, note: str | None = None) -> tuple[Head, Event]:
    """Seal the chain's current head and record the seal as the next event (``audit.seal``).

    The code names the head *before* the seal's own event: an event cannot contain its own
    hash, so the seal event (N + 1) records the code of event N in ``after``. Refuses a chain
    that does not verify, since a seal would then anchor a tampered history.
    """
    row = session.get(AuditHead, 1, with_for_update=True)
    sealed = Head(0, GENESIS_HASH) if row is None else Head(row.seq, row.hash)
    chain = verify(session)
    if not chain.ok:
        raise AuditError(
            f"audit chain broken at event {chain.broken_at}: {chain.problem}; "
            "a seal would anchor a tampered history"
        )
    text = (note or "").strip() or None
    after = {"seal": sealed.seal(), "events": sealed.events, "hash": sealed.hash}
    event = record(
        session,
        actor=ctx.actor,
        action="audit.seal",
        entity="audit",
        entity_id=f"E-{sealed.events}",  # the sealed event; the seal code is in after
        scope="audit",
        before=None,
        after=after,
        reason=text,
        at=ctx.now,
    )
    session.flush()
    return sealed, event


@dataclass(frozen=True)
class SealCheck:
    """Whether the chain still holds a sealed head: event N exists, hashes to the code and verifies."""

    code: str
    events: int
    ok: bool
    problem: str | None = None
    sealed_in: int | None = None  # the audit.seal event that gave this code, if it was given by riskreg

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "events": self.events,
            "ok": self.ok,
            "problem": self.problem,
            "sealed_in": self.sealed_in,
        }


def check_seal(session: Session, code: SealCode, chain: ChainCheck) -> SealCheck:
    """Check that the chain, as verified in ``chain``, still contains the head a seal code names.

    Event N must exist, its stored hash must start with the code's digits, and every link
    from genesis to N must hold: then events 1 to N are the ones sealed, even if a forger
    recomputed every hash after rewriting them (the rewritten event N would hash differently).
    """
    if code.events == 0:
        stored: str | None = GENESIS_HASH
    else:
        stored = session.scalar(select(Event.hash).where(Event.seq == code.events))
    if stored is None:
        last = session.scalar(select(func.max(Event.seq))) or 0
        if code.events > last:
            problem = (
                f"names event {code.events}, but the chain ends at event {last} "
                "(events were deleted, or the seal is of another register)"
            )
        else:
            problem = f"names event {code.events}, which is missing from the chain (deleted)"
        return SealCheck(code.code, code.events, False, problem)
    if not stored.startswith(code.prefix):
        problem = (
            f"does not match: event {code.events} now hashes to {stored[: len(code.prefix)]}, "
            f"so the history up to event {code.events} was rewritten"
        )
        return SealCheck(code.code, code.events, False, problem)
    if not chain.ok and chain.broken_at is not None and chain.broken_at <= code.events:
        problem = f"cannot be confirmed: the chain is broken at event {chain.broken_at}, before it"
        return SealCheck(code.code, code.events, False, problem)
    return SealCheck(code.code, code.events, True, None, _sealed_in(session, code))


def _sealed_in(session: Session, code: SealCode) -> int | None:
    """Return the audit.seal event that recorded this head, if riskreg gave the seal."""
    query = (
        select(Event.seq, Event.after)
        .where(Event.action == "audit.seal", Event.entity_id == f"E-{code.events}")
        .order_by(Event.seq)
    )
    for seq, after in session.execute(query):
        if json.loads(after or "{}").get("hash", "").startswith(code.prefix):
            return int(seq)
    return None
