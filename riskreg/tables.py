"""The tables that quick commands query and write, in SQLAlchemy Core, apart from the ORM.

``riskreg.models`` maps its classes onto these ``Table`` objects (``Risk.__table__`` is
``risks``, ``Event.__table__`` is ``events``, ...) and shares their ``MetaData``, so there is
one definition of each. Importing this module does not import ``sqlalchemy.orm``: ``risk
list``, ``review due``, ``risk show`` and ``risk add`` use these tables with ``select()``
and ``insert()`` and skip the ORM's import and mapping (about 0.1 s of CPU).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from riskreg.vocab import (
    ACTION_STATUSES,
    ASSURANCE_LINES,
    CONTROL_EFFECTIVENESS,
    CONTROL_STATUSES,
    MODES,
    REVIEW_OUTCOMES,
    RISK_STATUSES,
    SIDES,
    TREATMENTS,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Store datetimes as naive UTC and hand them back as aware UTC.

    SQLite has no time zones and PostgreSQL's ``timestamptz`` converts on the way out;
    storing naive UTC on both keeps values (and so audit hashes) identical across backends.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; riskreg stores UTC only")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def choice(name: str, values: tuple[str, ...]) -> Enum:
    """Return a portable enumerated string type checked by a named constraint."""
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def words(name: str, values: tuple[str, ...]) -> Enum:
    """Return a portable enumerated string type for values longer than ``choice`` allows."""
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=20)


def score_range(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} BETWEEN 1 AND 5", name=f"{column}_1_to_5")


def _required(name: str, type_: object, *args: object, **kw: object) -> Column:  # type: ignore[type-arg]
    return Column(name, type_, *args, nullable=False, **kw)


def _of_risk() -> Column:  # type: ignore[type-arg]
    """The ``risk_id`` column of a table whose rows belong to one risk (indexed, for a risk's page)."""
    return _required("risk_id", Integer, ForeignKey("risks.id"), index=True)


def _stamps() -> list[Column]:  # type: ignore[type-arg]
    """Who created and last changed a versioned row, and when (the ORM bumps ``version``)."""
    return [
        _required("created_at", UTCDateTime()),
        _required("created_by", String(200)),
        _required("updated_at", UTCDateTime()),
        _required("updated_by", String(200)),
        _required("version", Integer),
    ]


def _optional(name: str, type_: object) -> Column:  # type: ignore[type-arg]
    return Column(name, type_, nullable=True)


# A risk on one side of co-production, scored on three tiers (riskreg.models.Risk).
risks = Table(
    "risks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _required("title", Text),
    _optional("description", Text),
    _required("side", choice("side", SIDES)),
    _required("mode", choice("mode", MODES)),
    _required("category", String(100), index=True),
    _optional("owner", String(200)),
    _required("status", choice("risk_status", RISK_STATUSES), default="open"),
    _optional("treatment", choice("treatment", TREATMENTS)),
    _required("inherent_likelihood", Integer),
    _required("inherent_impact", Integer),
    _required("likelihood", Integer),
    _required("impact", Integer),
    _optional("target_likelihood", Integer),
    _optional("target_impact", Integer),
    _optional("review_days", Integer),
    _required("last_reviewed", Date),
    _required("created_at", UTCDateTime()),
    _required("created_by", String(200)),
    _required("updated_at", UTCDateTime()),
    _required("updated_by", String(200)),
    _optional("closed_at", UTCDateTime()),
    _required("version", Integer),
    # the assurance framework: what is missing from the controls, and from the assurance on them
    _optional("gaps_in_control", Text),
    _optional("gaps_in_assurance", Text),
    score_range("inherent_likelihood"),
    score_range("inherent_impact"),
    score_range("likelihood"),
    score_range("impact"),
    score_range("target_likelihood"),
    score_range("target_impact"),
    CheckConstraint("review_days IS NULL OR review_days > 0", name="review_days_positive"),
)


# The next number of each identifier series (R-, C-, P-, A-), so numbers are never reused.
counters = Table(
    "counters",
    metadata,
    Column("name", String(16), primary_key=True),
    _required("value", Integer),
)

# A measure on a risk; it may rest on citizens' own resources (riskreg.models.Control).
controls = Table(
    "controls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _of_risk(),
    _required("description", Text),
    _optional("owner", String(200)),
    _required("status", choice("control_status", CONTROL_STATUSES), default="planned"),
    _optional("due", Date),
    _required("citizen", Boolean, default=False),
    *_stamps(),
    # how well the control works, and who says so (the three lines of assurance)
    _required(
        "effectiveness",
        words("control_effectiveness", CONTROL_EFFECTIVENESS),
        default="not assessed",
        server_default="not assessed",
    ),
    _optional("assurance", Text),
    _optional("assurance_line", choice("assurance_line", ASSURANCE_LINES)),
)

# A QA review of a risk, by someone other than its owner (riskreg.models.Review).
reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    _of_risk(),
    _required("reviewer", String(200)),
    _required("outcome", choice("review_outcome", REVIEW_OUTCOMES)),
    _required("note", Text),
    _required("reviewed_at", UTCDateTime()),
)

# One append-only audit record, chained by hash to the one before it (riskreg.chain).
events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    _required("at", UTCDateTime()),
    _required("actor", String(200)),
    _required("action", String(40)),
    _required("entity", String(20)),
    _required("entity_id", String(20)),
    # the risk or pilot the event belongs to, so a history is one indexed query
    _required("scope", String(20)),
    _optional("reason", Text),
    _optional("before", Text),  # canonical JSON, hashed as stored
    _optional("after", Text),
    _required("prev_hash", String(64)),
    _required("hash", String(64), unique=True),
    # who was logged in when the event was written (PostgreSQL: the database login; SQLite: the
    # OS login); hashed only when set, so events written before schema 0010 still verify
    _optional("entered_by", String(200)),
    Index("ix_events_scope", "scope", "seq"),
)

# The single row naming the last event; locking it serialises writers and the chain.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _required("seq", Integer),
    _required("hash", String(64)),
)

# The pilot result a re-score relied on (riskreg.models.Evidence; pilots is the ORM's table).
evidence = Table(
    "evidence",
    metadata,
    Column("id", Integer, primary_key=True),
    _of_risk(),
    _required("pilot_id", Integer, ForeignKey("pilots.id"), index=True),
    _required("event_seq", Integer),  # the risk.rescore event it belongs to
    _required("stage_index", Integer),
    _required("metric", String(100)),
    _optional("verdict", String(20)),
    _optional("recommendation", String(16)),
    _optional("estimate", Float),
    _optional("ci_low", Float),
    _optional("ci_high", Float),
    _required("n_comparison", Integer),
    _required("n_pilot", Integer),
    _required("at", UTCDateTime()),
)

# A step planned to treat a risk: who does what by when, versioned like a risk.
actions = Table(
    "actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _of_risk(),
    _required("title", Text),
    _required("owner", String(200)),
    _required("due", Date),
    _required("status", choice("action_status", ACTION_STATUSES), default="open"),
    *_stamps(),
)

# One governed setting (schema 0011): a key such as ``appetite.safeguarding`` and its JSON value.
settings = Table(
    "settings",
    metadata,
    Column("key", String(120), primary_key=True),
    _required("value", Text),  # JSON
    _required("version", Integer),
    _required("updated_at", UTCDateTime()),
    _required("updated_by", String(200)),
)
