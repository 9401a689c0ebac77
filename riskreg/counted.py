"""An outcome import held to its pilot's earlier data: one file per metric and stage, each unit counted once.

Run once an import's rows are written and checked (``riskreg.ingest``), in its
transaction:

- ``clear_or_refuse``: a stage takes one file per metric, unless ``--replace`` swaps its
  data or ``--append`` adds new units to it;
- ``count_once``: a unit counted for a metric in an earlier import (an earlier stage, or
  the same stage with ``--append``) is refused with its lines, or with
  ``--new-units-only`` left out and the import's counts taken again (``recount``);
- ``check_clusters``: in a cluster design every row names its cluster (the site), and a
  cluster keeps to one arm across the pilot's imports.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, func, literal, select, text, tuple_, union_all
from sqlalchemy.orm import Session

from riskreg.csvfile import MAX_SHOWN, RowErrors
from riskreg.errors import InvalidInput
from riskreg.layout import Intake, Layout, layout_of, trimmed_cell
from riskreg.models import DataImport, ImportCount, ImportUnits, Pilot, observations
from riskreg.protocol import Protocol
from riskreg.workbook import open_table

if TYPE_CHECKING:  # what an import hands over; riskreg.ingest imports this module
    from riskreg.ingest import Adding, Checked, ImportSummary


def clear_or_refuse(
    session: Session,
    pilot: Pilot,
    record: DataImport,
    codes: list[int],
    names: dict[int, str],
    how: Adding,
    stage: str,
) -> int:
    """Refuse data for metrics the stage already has, or (with replace) delete the old rows, their counts and unit counts.

    With append the stage keeps its data: the new units join it (``count_once`` refuses repeats).
    """
    if how.append:
        return 0
    same_stage = select(DataImport.id).where(
        DataImport.pilot_id == pilot.id,
        DataImport.kind == "outcomes",
        DataImport.stage_index == record.stage_index,
        DataImport.id != record.id,
    )
    earlier = list(session.scalars(same_stage))
    counted = (ImportCount.import_id.in_(earlier), ImportCount.metric.in_(codes))
    if not how.replace:
        clash = sorted(set(session.scalars(select(ImportCount.metric).where(*counted))))
        if clash:
            listed = ", ".join(names[c] for c in clash)
            raise InvalidInput(
                f"stage '{stage}' of {pilot.ref} already has data for {listed}; nothing was imported "
                "(use --append to add new units to them, or --replace to swap them)"
            )
        return 0
    session.execute(delete(ImportCount).where(*counted))
    # what is left of a trimmed import may hold fewer units: the analysis counts them afresh
    session.execute(delete(ImportUnits).where(ImportUnits.import_id.in_(earlier)))
    t = observations.c
    return (
        session.execute(delete(observations).where(t.import_id.in_(earlier), t.metric.in_(codes))).rowcount
        or 0
    )


# --- a unit is counted once per metric -------------------------------------------------------


def count_once(
    session: Session,
    record: DataImport,
    checked: Checked,
    codes: dict[str, tuple[int, str]],
    summary: ImportSummary,
    protocol: Protocol,
    how: Adding,
    path: str | Path,
) -> None:
    """Refuse the rows of units already counted for their metric in an earlier stage, or leave them out.

    With ``how.append`` the stage's own earlier imports count as already counted too.

    A unit is already counted when it has a value for the metric from an earlier stage,
    or, for a missing value, any row for it (a unit whose value was missing may get it
    later, but is not counted missing twice). The file is written and checked by now:
    one query matches its observations with those of the pilot's earlier stages (only if
    there are any: a first stage costs nothing), and only if it finds repeats is the file
    read again, to name their lines. With ``new_units_only`` the repeats are deleted
    instead, the counts of their metrics recomputed from what is left (``checked`` is
    updated) and the unit counts dropped.
    """
    earlier = {
        row.id: row
        for row in session.scalars(
            select(DataImport).where(
                DataImport.pilot_id == record.pilot_id,
                DataImport.kind == "outcomes",
                (DataImport.stage_index <= record.stage_index)
                if how.append
                else (DataImport.stage_index < record.stage_index),
                DataImport.id != record.id,
            )
        )
    }
    if not earlier:
        return
    with _without_nested_loops(session):
        _check_or_leave_out(
            session, record, earlier, checked, codes, summary, protocol, how.new_units_only, path
        )


@contextlib.contextmanager
def _without_nested_loops(session: Session) -> Iterator[None]:
    """On PostgreSQL, plan the statements inside without nested loops (then as before, unless they fail).

    The new import's rows were written in this transaction, so the planner's statistics
    do not know them and take them for a row or so: a nested loop over them, which it
    then prefers, rescans the earlier observations once per row (measured: over 15 min
    for 1,000,000 rows against 1,000,000, against 1.4 s by a hash join).
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(text("SET LOCAL enable_nestloop = off"))
    yield
    if postgresql:
        session.execute(text("RESET enable_nestloop"))


def _check_or_leave_out(
    session: Session,
    record: DataImport,
    earlier: dict[int, DataImport],
    checked: Checked,
    codes: dict[str, tuple[int, str]],
    summary: ImportSummary,
    protocol: Protocol,
    new_units_only: bool,
    path: str | Path,
) -> None:
    repeats = _already_counted(session, record.id, list(earlier))
    if not repeats:
        return
    if not new_units_only:
        _refuse_repeats(repeats, earlier, codes, protocol, path, summary.source, checked.layout)
    left: dict[int, Counter[int]] = {}
    for hit in repeats:
        left.setdefault(hit.metric, Counter())[earlier[hit.earlier].stage_index] += 1
    t = observations.c
    # two statements, each a plain IN that PostgreSQL turns into a hash semi-join (an OR of
    # two would keep each IN a subplan, hashed only while it fits in work_mem)
    for missing_only, present in ((False, True), (True, False)):
        where = [
            t.import_id == record.id,
            tuple_(t.metric, t.unit_id).in_(_counted_in(list(earlier), present)),
        ]
        session.execute(delete(observations).where(*where, *([t.value.is_(None)] if missing_only else [])))
    kinds = {code: kind for code, kind in codes.values()}
    kept = [group for group in checked.tallied if group[0] not in left]
    checked.tallied = sorted(kept + recount(session, record.id, {c: kinds[c] for c in left}))
    if not checked.tallied:
        raise InvalidInput(
            f"{summary.source}: every unit in the file is already counted for its metrics in an earlier stage; nothing was imported"
        )
    checked.units = None  # the analysis counts this import's units from its observations
    names = {code: name for name, (code, _kind) in codes.items()}
    summary.left_out = {
        names[code]: {
            "observations": sum(stages.values()),
            "stages": [protocol.stages[index].name for index in sorted(stages)],
            "reason": "the unit is already counted for the metric in an earlier stage",
        }
        for code, stages in sorted(left.items())
    }


@dataclass(frozen=True)
class _Repeat:
    """An observation of a unit already counted for its metric: the first earlier import that counts it."""

    metric: int
    unit: str
    earlier: int
    had_value: bool  # False: the earlier rows' values are missing, like this one


def _counted_in(imports: list[int], present: bool = False) -> Any:
    """The (metric, unit) pairs of some imports' observations (with a value only, if ``present``)."""
    o = observations.c
    query = select(o.metric, o.unit_id).where(o.import_id.in_(imports))
    return query.where(o.value.is_not(None)) if present else query


def _already_counted(session: Session, import_id: int, earlier: list[int]) -> list[_Repeat]:
    """Return the observations of an import whose unit is already counted for their metric by the earlier imports.

    ``observations`` is indexed by import only: the earlier imports' rows are matched
    against the set of the new import's (metric, unit) pairs (and, apart, of those with a
    missing value), which SQLite builds as an ephemeral index and PostgreSQL as the hash
    of a semi-join, once per query. Each match is named by the first earlier import with
    a value, else the first with the row.
    """
    query = _already_counted_query(import_id, earlier)
    return [_Repeat(code, unit, first, bool(had)) for code, unit, first, had in session.execute(query)]


def _already_counted_query(import_id: int, earlier: list[int]) -> Any:
    """The query of ``_already_counted``: (metric, unit, first earlier import, 1 if with a value else 0)."""
    o = observations.c
    new = observations.alias("new")
    pairs = select(new.c.metric, new.c.unit_id).where(new.c.import_id == import_id)
    earlier_rows = (o.metric, o.unit_id, o.import_id)
    matches = union_all(
        # an earlier value counts the unit, whatever this import holds
        select(*earlier_rows, literal(1).label("had")).where(
            o.import_id.in_(earlier), o.value.is_not(None), tuple_(o.metric, o.unit_id).in_(pairs)
        ),
        # for a missing value, any earlier row does
        select(*earlier_rows, case((o.value.is_not(None), 1), else_=0).label("had")).where(
            o.import_id.in_(earlier), tuple_(o.metric, o.unit_id).in_(pairs.where(new.c.value.is_(None)))
        ),
    ).subquery()
    m = matches.c
    return select(
        m.metric,
        m.unit_id,
        func.coalesce(func.min(case((m.had == 1, m.import_id))), func.min(m.import_id)),
        func.max(m.had),
    ).group_by(m.metric, m.unit_id)


def _refuse_repeats(
    repeats: list[_Repeat],
    earlier: dict[int, DataImport],
    codes: dict[str, tuple[int, str]],
    protocol: Protocol,
    path: str | Path,
    source: str,
    known: Layout | None = None,
) -> None:
    """Read the file again to name the lines of the repeats (the first ``MAX_SHOWN``) and refuse it."""
    found = {(hit.unit, hit.metric): hit for hit in repeats}
    errors = RowErrors.for_file(source)
    with open_table(path, source) as parsed:
        layout = known or layout_of(parsed.header, source, list(codes))
        for line, values in parsed.rows:
            unit = trimmed_cell(values, layout.unit)
            names = (
                [trimmed_cell(values, layout.metric)]
                if layout.form == "long"
                else [n for _, n in layout.wide_metrics]
            )
            for name in names:
                entry = codes.get(name)
                hit = None if entry is None else found.get((unit, entry[0]))
                if hit is not None:
                    errors.add(line, _repeat_message(unit, name, hit, earlier[hit.earlier], protocol))
            if len(errors.shown) >= MAX_SHOWN:
                break  # the rest are counted, not read
    if not errors.shown:  # the file changed since it was read
        raise InvalidInput(f"{source}: the file changed while it was imported; nothing was imported")
    errors.total = len(found)
    errors.raise_if_any()


# --- cluster designs: every row names its cluster, and a cluster keeps to its arm ------------


def check_clusters(
    session: Session,
    pilot: Pilot,
    record: DataImport,
    protocol: Protocol,
    path: str | Path,
    source: str,
    layout: Layout | None,
    intake: Intake,
    replace: bool = False,
) -> None:
    """Refuse a cluster design's file whose rows lack a cluster, or put a cluster in the wrong arm.

    Clusters are allocated whole: in a parallel layout a cluster belongs to one arm over all
    the pilot's data (but the stage's data a ``replace`` swaps out); in a stepped wedge its
    arm at each stage follows the schedule (the comparison arm before its switching stage,
    the pilot from it on).
    """
    design = protocol.design
    column = design.cluster or "site"
    if layout is None or layout.site < 0:
        raise InvalidInput(
            f'{source}: line 1: no {column!r} column: the design allocates clusters ([design] unit = "cluster"), '
            "so each row must name its cluster; nothing was imported"
        )
    o = observations.c
    here = select(o.site, o.arm).where(o.import_id == record.id).distinct()
    found = [(site, arm) for site, arm in session.execute(here)]
    expected: dict[str, int] = {}  # cluster → the arm it must be in
    if design.stepped:
        for site, _arm in found:
            switch = design.switch_stage(site) if site is not None else None
            if switch is not None:
                expected[site] = 1 if record.stage_index >= protocol.stage_index(switch) else 0
    else:
        sites = sorted({site for site, _arm in found if site is not None})
        earlier = (
            select(o.site, func.min(o.arm))
            .join(DataImport, DataImport.id == o.import_id)
            .where(
                DataImport.pilot_id == pilot.id,
                DataImport.kind == "outcomes",
                o.import_id != record.id,
                o.site.in_(sites),
                *([DataImport.stage_index != record.stage_index] if replace else []),
            )
            .group_by(o.site)
        )
        expected = {site: arm for site, arm in session.execute(earlier)} if sites else {}
    wrong = any(
        site is None or (design.stepped and site not in expected) or expected.get(site, arm) != arm
        for site, arm in found
    ) or (not design.stepped and len({site for site, _arm in found}) < len(found))
    if wrong:
        _name_cluster_lines(protocol, path, source, layout, intake, record.stage_index, expected)


def _name_cluster_lines(
    protocol: Protocol,
    path: str | Path,
    source: str,
    layout: Layout,
    intake: Intake,
    stage_index: int,
    expected: dict[str, int],
) -> None:
    """Read the file again to name the lines whose cluster is missing or in the wrong arm, and refuse it."""
    design = protocol.design
    arms = {name: i for i, name in enumerate(design.arms)}
    arms.update({label: design.arms.index(arm) for label, arm in intake.arm_labels.items()})
    column = design.cluster or "site"
    stage = protocol.stages[stage_index].name
    origin = dict.fromkeys(expected, "in earlier data of this pilot")  # where a cluster's arm was set
    errors = RowErrors.for_file(source)
    with open_table(path, source) as parsed:
        for line, values in parsed.rows:
            site, arm = trimmed_cell(values, layout.site), arms.get(trimmed_cell(values, layout.arm))
            if arm is None:
                continue
            if not site:
                errors.add(
                    line, f"no cluster: the {column!r} column is empty (each row must name its cluster)"
                )
            elif design.stepped and site not in expected:
                listed = ", ".join(name for name, _stage in design.schedule)
                errors.add(line, f"cluster {site!r} is not in the stepped-wedge schedule ({listed})")
            elif design.stepped and expected[site] != arm:
                switch = design.switch_stage(site)
                errors.add(
                    line,
                    f"cluster {site!r} is in the {design.arms[arm]} arm at stage '{stage}', but the schedule "
                    f"switches it to the pilot at stage '{switch}', so it belongs in the {design.arms[expected[site]]} arm",
                )
            elif not design.stepped and site not in expected:
                expected[site], origin[site] = arm, f"on line {line}"
            elif not design.stepped and expected[site] != arm:
                errors.add(
                    line,
                    f"cluster {site!r} is in the {design.arms[arm]} arm here but in the "
                    f"{design.arms[expected[site]]} arm {origin[site]}: clusters are allocated whole, to one arm",
                )
    if not errors.total:  # the file changed since it was read
        raise InvalidInput(f"{source}: the file changed while it was imported; nothing was imported")
    errors.raise_if_any()


def _repeat_message(unit: str, metric: str, hit: _Repeat, record: DataImport, protocol: Protocol) -> str:
    article = "an" if metric[:1].lower() in "aeiou" else "a"
    held = f"{article} {metric} value" if hit.had_value else f"{article} {metric} row, its value missing,"
    return (
        f"unit {unit} already has {held} from stage '{protocol.stages[record.stage_index].name}' "
        f"({record.source}, imported {record.at:%Y-%m-%d} by {record.actor}); a unit is counted once per metric: "
        "leave the row out, or import with --new-units-only"
    )


def recount(session: Session, import_id: int, kinds: dict[int, str]) -> list[tuple[int, int, dict[str, Any]]]:
    """Return (metric, arm, import_counts columns) of an import's metrics in ``kinds``, computed from its observations.

    As ``GroupTally.columns``: each continuous group shifted by one of its own values (its
    smallest, picked in the database), the sums of d and d² taken around it.
    """
    o = observations.c
    mine = (o.import_id == import_id, o.metric.in_(list(kinds)))
    shifts = (
        select(o.metric, o.arm, func.min(o.value).label("shift"))
        .where(*mine)
        .group_by(o.metric, o.arm)
        .subquery()
    )
    d = o.value - shifts.c.shift
    query = (
        select(
            o.metric,
            o.arm,
            func.count(o.value),
            func.count(),
            func.sum(o.value),
            func.sum(case((o.value.is_not(None), o.exposure))),
            shifts.c.shift,
            func.sum(d),
            func.sum(d * d),
            func.sum(o.value * o.value / o.exposure),
        )
        .select_from(observations.join(shifts, and_(shifts.c.metric == o.metric, shifts.c.arm == o.arm)))
        .where(*mine)
        .group_by(o.metric, o.arm, shifts.c.shift)
    )
    groups = []
    for code, arm, n, rows, total, exposure, shift, sum_d, sum_d2, sum_y2_t in session.execute(query):
        continuous = kinds[code] == "continuous" and n > 0
        columns = {
            "n": n,
            "missing": rows - n,
            "total": float(total or 0.0),
            "exposure": float(exposure or 0.0),
            "shift": shift if continuous else None,
            "sum_d": float(sum_d) if continuous else None,
            "sum_d2": float(sum_d2) if continuous else None,
            "sum_y2_t": float(sum_y2_t or 0.0) if kinds[code] == "count" else None,
        }
        groups.append((code, arm, columns))
    return groups
