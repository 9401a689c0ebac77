"""SQLAlchemy 2.0 typed models of the register: risks, controls, reviews and the audit chain.

The tables that quick commands use without the ORM (risks, controls, reviews, events, ...)
are defined in ``riskreg.tables``; their classes here map onto them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.base import DialectKWArgs
from sqlalchemy.util import PopulateDict

from riskreg import tables
from riskreg.tables import UTCDateTime
from riskreg.tables import choice as _choice
from riskreg.vocab import ACTION_STATUSES as ACTION_STATUSES  # words riskreg.tables checks, importable here
from riskreg.vocab import ASSURANCE_LINES as ASSURANCE_LINES
from riskreg.vocab import CONTROL_EFFECTIVENESS as CONTROL_EFFECTIVENESS
from riskreg.vocab import CONTROL_STATUSES as CONTROL_STATUSES
from riskreg.vocab import DECISIONS, PILOT_STATUSES, RESOURCE_SIDES
from riskreg.vocab import MODES as MODES  # the words riskreg.tables.risks checks, still importable from here
from riskreg.vocab import REVIEW_OUTCOMES as REVIEW_OUTCOMES
from riskreg.vocab import RISK_STATUSES as RISK_STATUSES
from riskreg.vocab import SIDES as SIDES
from riskreg.vocab import TREATMENTS as TREATMENTS

_Options = TypeVar("_Options", bound=DialectKWArgs)


class _LaterOptions(PopulateDict):  # type: ignore[type-arg]
    """An object's dialect options (``dialect_options``) with some held back until they are read.

    A keyword such as ``postgresql_using`` is checked against its dialect as the object is
    built, which imports that dialect with every driver it knows: 30 ms of each command's
    start-up on SQLite too. Held here, the keywords are checked and stored (as
    ``DialectKWArgs`` would have) when anything first looks at the dialect's options, or
    at all of them: PostgreSQL's DDL compiler, Alembic, a copy of the table.
    """

    def __init__(self, target: DialectKWArgs, later: dict[str, Any]) -> None:
        super().__init__(target.dialect_options.creator)
        self.target = target
        self.later = later

    def _settle(self, dialect: str | None = None) -> None:
        names = [dialect] if dialect is not None else sorted({k.split("_", 1)[0] for k in self.later})
        for name in names:
            held = {k: v for k, v in self.later.items() if k.startswith(name + "_")}
            for key in held:
                del self.later[key]
            if held:
                self.target._validate_dialect_kwargs(held)

    def __missing__(self, key: Any) -> Any:
        value = super().__missing__(key)
        self._settle(key)
        return value

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._settle(key)
        return super().__contains__(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._settle()
        return super().__iter__()

    def __len__(self) -> int:
        self._settle()
        return super().__len__()

    def keys(self):  # type: ignore[no-untyped-def]
        self._settle()
        return super().keys()

    def values(self):  # type: ignore[no-untyped-def]
        self._settle()
        return super().values()

    def items(self):  # type: ignore[no-untyped-def]
        self._settle()
        return super().items()


def _later(target: _Options, **later: Any) -> _Options:
    """Return ``target`` given dialect keywords (``postgresql_using=...``) checked when first read."""
    target.__dict__["dialect_options"] = _LaterOptions(target, later)
    return target


class Base(DeclarativeBase):
    """Declarative base of every riskreg table."""

    metadata = tables.metadata  # riskreg.tables defines some tables in Core, for the ORM-free commands


class Counter(Base):
    """The next number of each identifier series (R-, C-, P-), so numbers are never reused."""

    __table__ = tables.counters

    name: Mapped[str]
    value: Mapped[int]


class Risk(Base):
    """A risk on one side of co-production, scored on three tiers (its table: ``riskreg.tables.risks``)."""

    __table__ = tables.risks

    id: Mapped[int]
    title: Mapped[str]
    description: Mapped[str | None]
    side: Mapped[str]
    mode: Mapped[str]
    category: Mapped[str]
    owner: Mapped[str | None]
    status: Mapped[str]
    treatment: Mapped[str | None]
    inherent_likelihood: Mapped[int]
    inherent_impact: Mapped[int]
    likelihood: Mapped[int]
    impact: Mapped[int]
    target_likelihood: Mapped[int | None]
    target_impact: Mapped[int | None]
    review_days: Mapped[int | None]
    last_reviewed: Mapped[dt.date]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str]
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str]
    closed_at: Mapped[dt.datetime | None]
    version: Mapped[int]
    gaps_in_control: Mapped[str | None]
    gaps_in_assurance: Mapped[str | None]

    controls: Mapped[list[Control]] = relationship(back_populates="risk", order_by="Control.id")

    # SQLAlchemy adds "AND version = :old" to every UPDATE: a concurrent change fails loudly.
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": tables.risks.c.version}

    @property
    def ref(self) -> str:
        return f"R-{self.id}"

    @property
    def score(self) -> int:
        return self.likelihood * self.impact

    @property
    def inherent_score(self) -> int:
        return self.inherent_likelihood * self.inherent_impact

    @property
    def target_score(self) -> int | None:
        if self.target_likelihood is None or self.target_impact is None:
            return None
        return self.target_likelihood * self.target_impact


class Control(Base):
    """A measure on a risk; it may rest on citizens' own resources (peer support, volunteer checks)."""

    __table__ = tables.controls

    id: Mapped[int]
    risk_id: Mapped[int]
    description: Mapped[str]
    owner: Mapped[str | None]
    status: Mapped[str]
    due: Mapped[dt.date | None]
    citizen: Mapped[bool]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str]
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str]
    version: Mapped[int]
    effectiveness: Mapped[str]
    assurance: Mapped[str | None]
    assurance_line: Mapped[str | None]

    risk: Mapped[Risk] = relationship(back_populates="controls")

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": tables.controls.c.version}

    @property
    def ref(self) -> str:
        return f"C-{self.id}"


class Review(Base):
    """A QA review of a risk, by someone other than its owner."""

    __table__ = tables.reviews

    id: Mapped[int]
    risk_id: Mapped[int]
    reviewer: Mapped[str]
    outcome: Mapped[str]
    note: Mapped[str]
    reviewed_at: Mapped[dt.datetime]


class Event(Base):
    """One append-only audit record, chained by hash to the one before it."""

    __table__ = tables.events

    seq: Mapped[int]
    at: Mapped[dt.datetime]
    actor: Mapped[str]
    action: Mapped[str]
    entity: Mapped[str]
    entity_id: Mapped[str]
    scope: Mapped[str]
    reason: Mapped[str | None]
    before: Mapped[str | None]
    after: Mapped[str | None]
    prev_hash: Mapped[str]
    hash: Mapped[str]
    entered_by: Mapped[str | None]


class AuditHead(Base):
    """The single row naming the last event; locking it serialises writers and the chain."""

    __table__ = tables.audit_head

    id: Mapped[int]
    seq: Mapped[int]
    hash: Mapped[str]


class Pilot(Base):
    """A staged experiment registered from a protocol file; its current stage moves only by gates."""

    __tablename__ = "pilots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(_choice("pilot_status", PILOT_STATUSES), default="active")
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    protocol_text: Mapped[str] = mapped_column(Text)
    protocol_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    @property
    def ref(self) -> str:
        return f"P-{self.id}"


class ProtocolVersion(Base):
    """One registered text of a pilot's protocol: number 1 is the original, later ones amendments."""

    __tablename__ = "protocol_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    stage_index: Mapped[int] = mapped_column(Integer)
    after_data: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))


class PilotMetric(Base):
    """The stable integer code of a pilot's metric (observations store codes, not names)."""

    __tablename__ = "pilot_metrics"

    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"), primary_key=True)
    code: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))


class PilotRisk(Base):
    """A risk that a pilot is meant to test."""

    __tablename__ = "pilot_risks"

    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"), primary_key=True)
    risk_id: Mapped[int] = mapped_column(ForeignKey("risks.id"), primary_key=True)


class DataImport(Base):
    """One accepted data file: outcome observations or resources, for one pilot stage."""

    __tablename__ = "data_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"), index=True)
    stage_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # "outcomes" | "resources"
    source: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    replaced: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    # the file's SHA-256, kept for resources: the same file twice would count its costs twice
    sha256: Mapped[str | None] = mapped_column(String(64))
    # True for outcome imports checked against earlier stages (a unit is counted once per
    # metric); imports made before that check read False, and QA looks at them
    units_checked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ImportCount(Base):
    """One outcome import's observations of one metric in one arm: counts and sufficient statistics.

    Written with the import (and trimmed by a --replace), so counts, clash checks, gate
    snapshots and analyses read a few rows per import instead of scanning the observations.
    ``total`` is the sum of the present values (events for binary and count metrics) and
    ``exposure`` the exposure beside them; for continuous metrics ``sum_d`` and ``sum_d2``
    are the sums of d = value − ``shift`` and d², where ``shift`` is one of the group's own
    values, so the variance never comes from a raw sum of squares. For count metrics
    ``sum_y2_t`` is the sum of value²/exposure (with ``total`` and ``exposure``, what a
    quasi-Poisson dispersion needs); it is None for other kinds.
    """

    __tablename__ = "import_counts"

    import_id: Mapped[int] = mapped_column(ForeignKey("data_imports.id"), primary_key=True)
    metric: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    arm: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float, server_default="0")
    exposure: Mapped[float] = mapped_column(Float, server_default="0")
    shift: Mapped[float | None] = mapped_column(Float)
    sum_d: Mapped[float | None] = mapped_column(Float)
    sum_d2: Mapped[float | None] = mapped_column(Float)
    sum_y2_t: Mapped[float | None] = mapped_column(Float)


class ImportUnits(Base):
    """How many distinct units one outcome import holds in one arm, when the import could count them exactly.

    An import whose rows keep each unit's observations together (every wide file, most
    long ones) counts its units as it streams; one that does not has no rows here, and
    its units are counted from the observations instead. A --replace drops the rows of the
    imports it trims. An arm without a row, in an import that has rows, has no units.
    """

    __tablename__ = "import_units"

    import_id: Mapped[int] = mapped_column(ForeignKey("data_imports.id"), primary_key=True)
    arm: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    units: Mapped[int] = mapped_column(Integer)


# Observations are written by the bulk loader (multi-row INSERT on SQLite, COPY on
# PostgreSQL), so they are a plain table: no ORM identity, no per-row foreign-key checks.
# Every row is written in the same transaction as its data_imports row, which says whose
# pilot and which stage they belong to (pilots.outcome_imports); the only index is on
# import_id, which an import extends at its right edge only.
observations = Table(
    "observations",
    Base.metadata,
    Column("import_id", Integer, nullable=False),
    Column("metric", Integer, nullable=False),
    Column("arm", Integer, nullable=False),
    Column("unit_id", String(200), nullable=False),
    Column("value", Float, nullable=True),
    Column("exposure", Float, nullable=True),
    Column("site", String(200), nullable=True),
    # BRIN on PostgreSQL (schema 0012): an import's rows are adjacent, and a b-tree slows a large load
    _later(Index("ix_observations_import_id", "import_id"), postgresql_using="brin"),
)


class Resource(Base):
    """An input to a pilot: public or citizen side, hours and/or money, by stage and optionally arm."""

    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("data_imports.id"), index=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"), index=True)
    stage_index: Mapped[int] = mapped_column(Integer)
    side: Mapped[str] = mapped_column(_choice("resource_side", RESOURCE_SIDES))
    kind: Mapped[str] = mapped_column(String(100))
    hours: Mapped[float | None] = mapped_column(Float)
    amount: Mapped[float | None] = mapped_column(Float)
    arm: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class Decision(Base):
    """A gate decision at the end of a stage, recorded by a named person with the data it rested on."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"), index=True)
    stage_index: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(_choice("decision", DECISIONS))
    reason: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str | None] = mapped_column(String(16))
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot: Mapped[str] = mapped_column(Text)  # JSON: data counts (and analysis) at decision time
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))


class Evidence(Base):
    """The pilot result a re-score relied on: pilot, stage, metric and its estimate, CI and n."""

    __table__ = tables.evidence

    id: Mapped[int]
    risk_id: Mapped[int]
    pilot_id: Mapped[int]
    event_seq: Mapped[int]
    stage_index: Mapped[int]
    metric: Mapped[str]
    verdict: Mapped[str | None]
    recommendation: Mapped[str | None]
    estimate: Mapped[float | None]
    ci_low: Mapped[float | None]
    ci_high: Mapped[float | None]
    n_comparison: Mapped[int]
    n_pilot: Mapped[int]
    at: Mapped[dt.datetime]


class Action(Base):
    """A step planned to treat a risk: who does what by when, versioned like a risk."""

    __table__ = tables.actions

    id: Mapped[int]
    risk_id: Mapped[int]
    title: Mapped[str]
    owner: Mapped[str]
    due: Mapped[dt.date]
    status: Mapped[str]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str]
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str]
    version: Mapped[int]

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": tables.actions.c.version}

    @property
    def ref(self) -> str:
        return f"A-{self.id}"


class Setting(Base):
    """One governed setting (schema 0011): a key such as ``appetite.safeguarding`` and its JSON value.

    Changed only by ``riskreg config set`` or ``config import``, each with an audit event.
    """

    __table__ = tables.settings

    key: Mapped[str]
    value: Mapped[str]
    version: Mapped[int]
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str]
