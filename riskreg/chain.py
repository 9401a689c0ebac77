"""The audit chain's one definition of an event: its fields, its hash and how it is appended.

Apart from ``riskreg.audit`` (which re-exports what it shares) so that commands writing with
SQLAlchemy Core (``risk add``) append events without importing the ORM. ``audit.record``
(the ORM) and :func:`append` (Core) both build the event with :func:`following`, so an
event's columns and hash are the same whichever path writes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import insert, select, update

from riskreg.tables import audit_head, events

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

GENESIS_HASH = "0" * 64
# the execution option of a writing connection that names the login writing its events
ENTERED_BY = "riskreg_entered_by"
_ENTITIES = {"R": "risk", "C": "control", "P": "pilot"}


class Acting(Protocol):
    """Who acts and when: anything with ``actor`` and ``now`` (riskreg.context.Context)."""

    actor: str
    now: dt.datetime


def canonical_json(value: Mapping[str, Any] | None) -> str | None:
    """Serialise a payload the one way that is hashed: sorted keys, no spaces, real Unicode."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: Any) -> str:
    """Return the SHA-256 that seals an event's stored fields and the previous event's hash.

    ``event`` is anything with the events table's columns as attributes: an ``Event``, a row.
    """
    return _hash_of({name: getattr(event, name) for name in _HASHED})


_HASHED = (
    "seq",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "scope",
    "reason",
    "before",
    "after",
    "prev_hash",
    "entered_by",
)


def _hash_of(values: Mapping[str, Any]) -> str:
    """Return the hash of an event's column values (``_HASHED``)."""
    fields = [values[name] for name in _HASHED[:-1]]
    fields[1] = values["at"].isoformat()
    # schema 0010: the login that wrote the event; an event without one (every event written
    # before 0010) hashes exactly as it always did, so older chains still verify
    if values["entered_by"] is not None:
        fields.append({"entered_by": values["entered_by"]})
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def following(
    seq: int,
    prev_hash: str,
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
    entered_by: str | None = None,
) -> dict[str, Any]:
    """Return the column values of the event after head (``seq``, ``prev_hash``), its hash included."""
    values = {
        "seq": seq + 1,
        "at": at or dt.datetime.now(dt.UTC),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "scope": scope,
        "reason": reason,
        "before": canonical_json(before),
        "after": canonical_json(after),
        "prev_hash": prev_hash,
        "entered_by": entered_by,
    }
    return {**values, "hash": _hash_of(values)}


def change(
    ctx: Acting,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """Return the event fields of a change to ``subject`` (``R-3``, ``C-2``, ``P-1``) by the acting person, now.

    The entity kind comes from the identifier's prefix; ``scope`` (default: the subject)
    is the risk or pilot whose history the event belongs to.
    """
    return {
        "actor": ctx.actor,
        "action": action,
        "entity": _ENTITIES[subject.split("-", 1)[0]],
        "entity_id": subject,
        "scope": scope or subject,
        "before": before,
        "after": after,
        "reason": reason,
        "at": ctx.now,
    }


def append(connection: Connection, **fields: Any) -> dict[str, Any]:
    """Append one event (``following``'s fields) with Core, in the caller's writing transaction.

    The login it records comes from the connection (``Database.begin`` sets it); the head
    row is locked, as ``audit.record`` locks it, and moved on to the new event.
    """
    head = connection.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    entered_by = connection.get_execution_options().get(ENTERED_BY)
    values = following(head.seq, head.hash, entered_by=entered_by, **fields)
    connection.execute(insert(events).values(values))
    connection.execute(
        update(audit_head).where(audit_head.c.id == 1).values(seq=values["seq"], hash=values["hash"])
    )
    return values
