"""Import of a pilot's resources file, all rows or none, and the totals of its resources (DESIGN §4).

A resources file records what the pilot costs on both sides: staff time and money on the
public side, citizens' hours (valued at ``citizen_hour_value`` when no amount is given) and
their expenses on the other. Its rows are few, so each is checked and added as it is read;
the whole file is refused if any row is, and a file the pilot already holds is refused, so
that no cost is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.csvfile import (
    CsvRows,
    RowErrors,
    refuse_missing_columns,
    resolve_columns,
    text_sha256,
    width_problem,
)
from riskreg.errors import InvalidInput
from riskreg.ingest import LARGEST, OUT_OF_RANGE, new_import, parse_named_number
from riskreg.layout import trimmed_cell, unknown_map_target
from riskreg.models import DataImport, Pilot, Resource
from riskreg.pilots import get_pilot, protocol_of
from riskreg.protocol import Protocol
from riskreg.register import Context
from riskreg.vocab import RESOURCE_SIDES
from riskreg.workbook import is_workbook, open_table, table_sha256, with_sheet

RESOURCE_REQUIRED = ("stage", "side", "kind")
RESOURCE_COLUMNS = ("stage", "side", "kind", "hours", "amount", "arm", "note")


@dataclass(frozen=True)
class ResourceSummary:
    """What a resources import did."""

    pilot: str
    source: str
    rows: int
    dry_run: bool
    ignored: tuple[str, ...] = ()  # the file's columns left out (not riskreg's, not mapped)
    replaced: str | None = None  # the earlier file this one replaced
    replaced_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pilot": self.pilot,
            "file": self.source,
            "rows": self.rows,
            "dry_run": self.dry_run,
            "ignored": list(self.ignored),
            "replaced": self.replaced,
            "replaced_rows": self.replaced_rows,
        }


def import_resources(
    session: Session,
    ctx: Context,
    ref: str,
    path: str | Path,
    dry_run: bool = False,
    sheet: str | None = None,
    mapping: dict[str, str] | None = None,
    strict: bool = False,
    replace: str | None = None,
) -> ResourceSummary:
    """Import a resources CSV or workbook sheet (stage, side, kind, hours, amount[, arm][, note]), all rows or none.

    ``replace`` names an earlier resources file of the pilot (as recorded, or its import
    number): its lines are removed in the same transaction, and the event says which
    file the new one replaced, so the trail keeps both.
    """
    path = with_sheet(path, sheet)
    pilot = get_pilot(session, ref)
    protocol = protocol_of(pilot)
    source = str(path)
    errors = RowErrors.for_file(source)
    earlier = _resources_to_replace(session, pilot, replace) if replace is not None else None
    digest = _refuse_repeated_resources(session, pilot, path, source)
    record = new_import(session, ctx, pilot, pilot.stage_index, "resources", source)
    record.sha256 = digest
    rows = []
    renamed, labels = _resource_mapping(protocol, mapping or {})
    with open_table(path, source) as parsed:
        header = CsvRows(source, parsed.header, iter(()), names=getattr(parsed, "names", None))
        columns = resolve_columns(header, RESOURCE_COLUMNS, renamed, strict)
        refuse_missing_columns(source, (*RESOURCE_REQUIRED, "hours", "amount"), columns.position)
        position = columns.position
        for line, values in parsed.rows:
            problem = width_problem(values, columns)
            if problem is not None:
                errors.add(line, problem)
                continue
            cells = {name: trimmed_cell(values, position.get(name, -1)) for name in RESOURCE_COLUMNS}
            cells["arm"] = labels.get(cells["arm"], cells["arm"])
            try:
                rows.append(_resource(cells, pilot, protocol, record.id))
            except ValueError as exc:
                errors.add(line, str(exc))
    errors.raise_if_any()
    if not rows:
        raise InvalidInput(f"{source}: no resource rows (only a header)")
    session.add_all(rows)
    record.rows = len(rows)
    after: dict[str, Any] = {"file": record.source, "rows": len(rows)}
    removed = 0
    if earlier is not None:
        removed = session.execute(delete(Resource).where(Resource.import_id == earlier.id)).rowcount or 0
        record.replaced = removed
        after["replaces"] = {"import": earlier.id, "file": earlier.source, "rows": removed}
    session.flush()
    totals = resource_totals(session, pilot, ctx.config.citizen_hour_value, import_id=record.id)
    audit.log(session, ctx, "pilot.resources", pilot.ref, None, {**after, "totals": totals["total"]})
    return ResourceSummary(
        pilot.ref,
        source,
        len(rows),
        dry_run,
        columns.ignored,
        earlier.source if earlier is not None else None,
        removed,
    )


def _resources_to_replace(session: Session, pilot: Pilot, named: str) -> DataImport:
    """Return the pilot's resources file that ``named`` (its recorded name or import number) identifies."""
    files = list(
        session.scalars(
            select(DataImport)
            .where(DataImport.pilot_id == pilot.id, DataImport.kind == "resources")
            .order_by(DataImport.id)
        )
    )
    live = [
        f for f in files if session.scalar(select(Resource.id).where(Resource.import_id == f.id).limit(1))
    ]
    matches = [f for f in live if named in (f.source, str(f.id), Path(f.source).name)]
    if len(matches) == 1:
        return matches[0]
    held = ", ".join(f"{f.source} (import {f.id})" for f in live) or "none"
    if not matches:
        raise InvalidInput(
            f"{pilot.ref} has no resources file {named!r} to replace; nothing was imported (its files: {held})"
        )
    raise InvalidInput(
        f"{named!r} names {len(matches)} resources files of {pilot.ref}; give the import number instead "
        f"({held}); nothing was imported"
    )


def _resource_mapping(protocol: Protocol, mapping: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Return (file column -> resource column, arm label -> arm) from ``--map`` and the protocol's arm labels."""
    columns: dict[str, str] = {}
    labels = dict(protocol.data.arm_labels)
    for given, target in mapping.items():
        if target in RESOURCE_COLUMNS:
            columns[given.strip().lower()] = target
        elif target in protocol.design.arms:
            labels[given.strip()] = target
        else:
            raise unknown_map_target(given, target, RESOURCE_COLUMNS, protocol.design.arms)
    return columns, labels


def _refuse_repeated_resources(session: Session, pilot: Pilot, path: str | Path, source: str) -> str:
    """Return the file's text SHA-256, refusing a file whose content the pilot's resources already hold."""
    digest = table_sha256(path, source) if is_workbook(path) else text_sha256(path)
    still_held = select(Resource.id).where(Resource.import_id == DataImport.id).exists()
    earlier = session.scalars(  # a file whose lines a --replace removed is no longer held
        select(DataImport)
        .where(
            DataImport.pilot_id == pilot.id,
            DataImport.kind == "resources",
            DataImport.sha256 == digest,
            still_held,
        )
        .order_by(DataImport.id)
        .limit(1)
    ).first()
    if earlier is not None:
        raise InvalidInput(
            f"{source}: {pilot.ref} already has these resources: the same file was imported on "
            f"{earlier.at:%Y-%m-%d %H:%M} UTC by {earlier.actor} ({earlier.source}); nothing was imported "
            "(a second import would count its costs twice; for new costs that repeat, tell them apart in a note column)"
        )
    return digest


RESOURCE_TEXT_LIMITS = {"kind": 100, "note": 2000}  # kind: the column's size; note: a generous bound


def _optional_amount(name: str, text: str, decimal_comma: bool = False) -> float | None:
    if not text:
        return None
    value = parse_named_number(text, name, decimal_comma)
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {text!r}")
    if value > LARGEST:
        raise ValueError(f"{name} {OUT_OF_RANGE}, got {text!r}")
    return value


def _resource(cells: dict[str, str], pilot: Pilot, protocol: Protocol, import_id: int) -> Resource:
    for key, cell in cells.items():
        if "\x00" in cell:
            raise ValueError(f"{key} contains a NUL character")
        if len(cell) > RESOURCE_TEXT_LIMITS.get(key, 200):
            raise ValueError(
                f"{key} is longer than {RESOURCE_TEXT_LIMITS.get(key, 200)} characters ({len(cell)})"
            )
    # any stage of the protocol: costs are often committed before a stage opens (training, recruitment)
    names = [s.name for s in protocol.stages]
    if cells["stage"] not in names:
        raise ValueError(f"unknown stage {cells['stage']!r} (stages: {', '.join(names)})")
    stage_index = names.index(cells["stage"])
    side = cells["side"].lower()
    if side not in RESOURCE_SIDES:
        raise ValueError(f"side must be {' or '.join(RESOURCE_SIDES)}, got {cells['side']!r}")
    if not cells["kind"]:
        raise ValueError("kind is empty (e.g. staff_time, volunteer_time, training, expenses)")
    hours, amount = _optional_amount("hours", cells["hours"]), _optional_amount("amount", cells["amount"])
    if hours is None and amount is None:
        raise ValueError("give hours, amount or both")
    arm = cells["arm"] or None
    if arm is not None and arm not in protocol.design.arms:
        raise ValueError(
            f"unknown arm {arm!r} (arms: {', '.join(protocol.design.arms)}; leave empty for the whole pilot)"
        )
    return Resource(
        import_id=import_id,
        pilot_id=pilot.id,
        stage_index=stage_index,
        side=side,
        kind=cells["kind"],
        hours=hours,
        amount=amount,
        arm=arm,
        note=cells["note"] or None,
    )


def resource_totals(
    session: Session, pilot: Pilot, hour_value: float, import_id: int | None = None
) -> dict[str, Any]:
    """Return resource totals by side, stage and arm; citizen hours without an amount are valued at ``hour_value``.

    Each total has ``hours``, ``cash`` (amounts recorded) and ``valued`` (unpaid citizen hours
    at the hourly value), kept apart so cash and citizens' time are never mixed up.
    """
    query = select(Resource).where(Resource.pilot_id == pilot.id)
    if import_id is not None:
        query = query.where(Resource.import_id == import_id)
    protocol = protocol_of(pilot)
    totals: dict[str, Any] = {"total": {}, "by_stage": {}, "by_arm": {}, "hour_value": hour_value}
    for row in session.scalars(query):
        valued = (row.hours or 0.0) * hour_value if row.side == "citizen" and row.amount is None else 0.0
        stage = protocol.stages[row.stage_index].name
        for bucket in (
            totals["total"],
            totals["by_stage"].setdefault(stage, {}),
            totals["by_arm"].setdefault(row.arm or "whole pilot", {}),
        ):
            side = bucket.setdefault(row.side, {"hours": 0.0, "cash": 0.0, "valued": 0.0})
            side["hours"] += row.hours or 0.0
            side["cash"] += row.amount or 0.0
            side["valued"] += valued
    return _rounded(totals)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
