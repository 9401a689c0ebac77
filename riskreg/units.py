"""A unit is counted once per metric (DESIGN §5): the units that data imported before that rule counted twice.

Outcome imports are checked as they are made (``riskreg.ingest``: a row for a unit that
already has a value for its metric from an earlier stage is refused, or left out with
``--new-units-only``) and say so (``DataImport.units_checked``). Only imports made
before that check, after a pilot's first stage, can hold a unit twice: the observations
are searched only when there are such imports, so a pilot without them costs one small query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from riskreg.models import DataImport, Pilot, observations
from riskreg.pilots import metric_codes


@dataclass(frozen=True)
class CountedTwice:
    """Units with a value for one metric in more than one of a pilot's imports, and the imports that hold them."""

    metric: str
    units: int
    imports: tuple[DataImport, ...]  # oldest first

    @property
    def latest(self) -> DataImport:
        """The last of the imports that hold these units (the one to import again without them)."""
        return self.imports[-1]


def double_counted(session: Session, pilot: Pilot, imports: Sequence[int] | None = None) -> dict[str, int]:
    """Return {metric name: units that hold a value for it in more than one import}, for metrics that have such units.

    ``imports`` limits the search to those outcome imports of the pilot (the ones an
    analysis of a stage reads, say); by default every outcome import of the pilot.
    """
    scope = _unchecked_scope(session, pilot, imports)
    if not scope:
        return {}
    names = _names(session, pilot)
    twice = _twice(scope)
    rows = session.execute(select(twice.c.metric, func.count()).group_by(twice.c.metric))
    return {names.get(code, str(code)): int(units) for code, units in sorted(rows)}


def counted_twice(session: Session, pilot: Pilot, imports: Sequence[int] | None = None) -> list[CountedTwice]:
    """Return, per metric, the units counted more than once and the imports that hold them (as ``double_counted``)."""
    counts = double_counted(session, pilot, imports)
    if not counts:
        return []
    scope = _unchecked_scope(session, pilot, imports)
    twice = _twice(scope)
    o = observations.c
    holding = session.execute(
        select(o.metric, o.import_id)
        .select_from(observations.join(twice, and_(twice.c.metric == o.metric, twice.c.unit_id == o.unit_id)))
        .where(o.import_id.in_(scope), o.value.is_not(None))
        .group_by(o.metric, o.import_id)
    ).all()
    records = {r.id: r for r in session.scalars(select(DataImport).where(DataImport.id.in_(scope)))}
    names = _names(session, pilot)
    found = []
    for name, units in counts.items():
        ids = sorted(i for code, i in holding if names.get(code, str(code)) == name)
        found.append(CountedTwice(name, units, tuple(records[i] for i in ids)))
    return found


def _unchecked_scope(session: Session, pilot: Pilot, imports: Sequence[int] | None) -> list[int]:
    """The imports to search, or none if they cannot hold a unit twice.

    Each checked import was checked against every earlier stage, so a unit can be held
    twice only if some import after the first stage among them was not checked.
    """
    query = select(DataImport.id, DataImport.stage_index, DataImport.units_checked).where(
        DataImport.pilot_id == pilot.id, DataImport.kind == "outcomes"
    )
    if imports is not None:
        query = query.where(DataImport.id.in_(list(imports)))
    rows = session.execute(query).all()
    if not rows:
        return []
    first = min(stage for _id, stage, _checked in rows)
    if all(checked or stage == first for _id, stage, checked in rows):
        return []
    return sorted(import_id for import_id, _stage, _checked in rows)


def _twice(scope: list[int]):  # type: ignore[no-untyped-def]
    """The (metric, unit) pairs with a present value in more than one observation of these imports."""
    o = observations.c
    return (
        select(o.metric, o.unit_id)
        .where(o.import_id.in_(scope), o.value.is_not(None))
        .group_by(o.metric, o.unit_id)
        .having(func.count() > 1)
        .subquery()
    )


def _names(session: Session, pilot: Pilot) -> dict[int, str]:
    return {code: name for name, (code, _kind) in metric_codes(session, pilot).items()}
