"""The tables that quick reading commands query, in SQLAlchemy Core, apart from the ORM.

``riskreg.models`` maps its classes onto these ``Table`` objects (``Risk.__table__`` is
``risks``) and shares their ``MetaData``, so there is one definition of each. Importing
this module does not import ``sqlalchemy.orm``: ``risk list`` and ``review due`` query
``risks`` with ``select()`` and skip the ORM's import and mapping (about 0.1 s of CPU).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from riskreg.vocab import MODES, RISK_STATUSES, SIDES, TREATMENTS

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


def score_range(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} BETWEEN 1 AND 5", name=f"{column}_1_to_5")


def _required(name: str, type_: object, **kw: object) -> Column:  # type: ignore[type-arg]
    return Column(name, type_, nullable=False, **kw)


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
