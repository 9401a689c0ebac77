"""Streaming, atomic import of pilot outcome data and resources (DESIGN §4).

A file is imported whole or not at all: rows are validated and written in one transaction
as they stream by, and any rejected row rolls everything back, with every problem reported
by line number (the first 20 shown, all counted). Memory stays nearly flat as files grow:
rows are written in batches, and duplicate detection keeps only a 64-bit hash and a line
number per observation, sorted once at the end, instead of the keys themselves.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.csvfile import RowErrors, check_header, open_text, read_csv
from riskreg.errors import InvalidInput
from riskreg.models import DataImport, Pilot, Resource, observations
from riskreg.pilots import get_pilot, metric_codes, protocol_of
from riskreg.protocol import Protocol
from riskreg.register import Context

BATCH_ROWS = 400  # rows per multi-row INSERT: 9 columns x 400 stays under SQLite's variable limit
MISSING = frozenset(("", "na", "n/a"))
BINARY = {"0": 0.0, "1": 1.0, "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "0.0": 0.0, "1.0": 1.0}
LONG_COLUMNS = ("unit_id", "arm", "metric", "value", "exposure", "site")
COLUMNS = ("import_id", "pilot_id", "stage_index", "metric", "arm", "unit_id", "value", "exposure", "site")

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    """What an outcome import did (or, for a dry run, would do)."""

    pilot: str
    stage: str
    source: str
    form: str
    rows: int = 0
    observations: int = 0
    missing: int = 0
    replaced: int = 0
    dry_run: bool = False
    by_metric: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pilot": self.pilot,
            "stage": self.stage,
            "file": self.source,
            "form": self.form,
            "rows": self.rows,
            "observations": self.observations,
            "missing": self.missing,
            "replaced": self.replaced,
            "dry_run": self.dry_run,
            "metrics": self.by_metric,
        }


# --- checks on the pilot and stage ---------------------------------------------------------


def open_stage(pilot: Pilot, protocol: Protocol, stage: str) -> int:
    """Return the index of ``stage`` if it is the pilot's open stage; explain otherwise."""
    names = [s.name for s in protocol.stages]
    if stage not in names:
        raise InvalidInput(f"{pilot.ref} has no stage '{stage}' (stages: {', '.join(names)})")
    index = names.index(stage)
    if pilot.status == "stopped":
        raise InvalidInput(f"{pilot.ref} was stopped at a gate; it accepts no more data")
    if pilot.status == "completed":
        raise InvalidInput(f"{pilot.ref} is completed; it accepts no more data")
    if index > pilot.stage_index:
        raise InvalidInput(
            f"stage '{stage}' of {pilot.ref} is not open yet: the pilot is at '{names[pilot.stage_index]}' (a gate 'proceed' opens the next stage)"
        )
    if index < pilot.stage_index:
        raise InvalidInput(
            f"stage '{stage}' of {pilot.ref} is closed: its gate was passed; the pilot is at '{names[pilot.stage_index]}'"
        )
    return index


# --- value parsing -------------------------------------------------------------------------


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    return value


def parse_value(kind: str, text: str) -> float:
    """Return an observation's value for a metric kind; raise ValueError with the reason."""
    if kind == "binary":
        value = BINARY.get(text.lower())
        if value is None:
            raise ValueError(f"binary value must be 0/1, true/false or yes/no, got {text!r}")
        return value
    try:
        value = _number(text)
    except ValueError:
        raise ValueError(f"value must be a number, got {text!r}") from None
    if kind == "count" and (value < 0 or value != int(value)):
        raise ValueError(f"count must be a whole number of events, 0 or more, got {text!r}")
    return value


def parse_exposure(kind: str, text: str, value: float | None) -> float | None:
    """Return the exposure of a count observation (required, > 0); other kinds take none."""
    if kind != "count":
        if text:
            raise ValueError("exposure is only for count metrics")
        return None
    if not text:
        if value is None:
            return None
        raise ValueError("count metrics need an exposure (e.g. person-weeks) greater than 0")
    try:
        exposure = _number(text)
    except ValueError:
        raise ValueError(f"exposure must be a number, got {text!r}") from None
    if exposure <= 0:
        raise ValueError(f"exposure must be greater than 0, got {text!r}")
    return exposure


# --- reading rows ----------------------------------------------------------------------------


@dataclass
class _Layout:
    """How a file's columns map to observations: long (one per row) or wide (one per metric column)."""

    form: str
    unit: int
    arm: int
    metric: int = -1
    value: int = -1
    exposure: int = -1
    site: int = -1
    wide_metrics: tuple[tuple[int, str], ...] = ()


def _layout(header: list[str], source: str, metric_names: list[str]) -> _Layout:
    position = {name: i for i, name in enumerate(header)}
    if "metric" in position or "value" in position:
        check_header(header, source, ("unit_id", "arm", "metric", "value"), LONG_COLUMNS)
        return _Layout(
            "long",
            position["unit_id"],
            position["arm"],
            position["metric"],
            position["value"],
            position.get("exposure", -1),
            position.get("site", -1),
        )
    allowed = ("unit_id", "arm", "exposure", "site", *metric_names)
    check_header(header, source, ("unit_id", "arm"), allowed)
    wide = tuple((i, name) for i, name in enumerate(header) if name in metric_names)
    if not wide:
        raise InvalidInput(
            f"{source}: line 1: no metric columns (expected some of: {', '.join(metric_names)}), or long form: unit_id,arm,metric,value"
        )
    return _Layout(
        "wide",
        position["unit_id"],
        position["arm"],
        exposure=position.get("exposure", -1),
        site=position.get("site", -1),
        wide_metrics=wide,
    )


def _cell(values: list[str], index: int) -> str:
    return values[index].strip() if 0 <= index < len(values) else ""


# --- the import --------------------------------------------------------------------------------


class _Loader:
    """Validates rows, buffers observations and writes them in batches to the open transaction."""

    def __init__(
        self,
        session: Session,
        pilot: Pilot,
        stage: int,
        codes: dict[str, tuple[int, str]],
        arms: tuple[str, ...],
        errors: RowErrors,
    ):
        self.session, self.pilot, self.stage, self.codes, self.errors = session, pilot, stage, codes, errors
        self.arms = {name: i for i, name in enumerate(arms)}
        self.arm_names = arms
        self.import_id = 0
        self.batch: list[tuple[Any, ...]] = []
        self.writer = _writer(session)
        self.keys = array("q")
        self.lines = array("l")
        self.counts: dict[tuple[int, int], list[int]] = {}
        self.rows = 0

    def observation(
        self,
        line: int,
        unit: str,
        arm_text: str,
        metric_name: str,
        value_text: str,
        exposure_text: str,
        site: str,
    ) -> None:
        """Check one observation and buffer it; record a row error instead if it is invalid."""
        try:
            code, kind = self.codes[metric_name]
        except KeyError:
            self.errors.add(line, f"unknown metric {metric_name!r} (metrics: {', '.join(self.codes)})")
            return
        arm = self.arms.get(arm_text)
        if arm is None:
            self.errors.add(line, f"unknown arm {arm_text!r} (arms: {', '.join(self.arm_names)})")
            return
        if not unit:
            self.errors.add(line, "unit_id is empty")
            return
        if len(unit) > 200 or len(site) > 200 or "\x00" in unit or "\x00" in site:
            self.errors.add(line, "unit_id or site is longer than 200 characters or contains a NUL character")
            return
        try:
            value = None if value_text.lower() in MISSING else parse_value(kind, value_text)
            exposure = parse_exposure(kind, exposure_text, value)
        except ValueError as exc:
            self.errors.add(line, f"{metric_name}: {exc}")
            return
        self.keys.append(hash((unit, code)))
        self.lines.append(line)
        tally = self.counts.setdefault((code, arm), [0, 0])
        tally[value is None] += 1
        if self.errors.total == 0:
            self.batch.append(
                (self.import_id, self.pilot.id, self.stage, code, arm, unit, value, exposure, site or None)
            )
            if len(self.batch) >= BATCH_ROWS:
                self.flush()

    def flush(self) -> None:
        if self.batch:
            self.writer.write(self.batch)
            self.batch = []

    def check_duplicates(self) -> None:
        """Report every later row that repeats an earlier row's unit and metric."""
        if len(self.keys) < 2:
            return
        import numpy as np

        keys = np.frombuffer(self.keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        repeats = np.nonzero(ordered[1:] == ordered[:-1])[0]
        lines = np.frombuffer(self.lines, dtype=np.int64 if self.lines.itemsize == 8 else np.int32)
        # a 64-bit hash of (unit, metric) collides by chance with odds ~n²/2^65: 3e-8 for 1M rows
        found = sorted((int(lines[order[i + 1]]), int(lines[order[i]])) for i in repeats)
        for line, first in found:
            self.errors.add(
                line, f"duplicate: the same unit and metric as line {first} (use one row per unit and metric)"
            )


def _writer(session: Session) -> Any:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _CopyWriter(connection)
    return _InsertWriter(connection)


class _InsertWriter:
    """Multi-row INSERT statements on the raw DBAPI connection (SQLite's fastest bulk path)."""

    def __init__(self, connection: Any):
        self.cursor = connection.connection.dbapi_connection.cursor()
        self.statements: dict[int, str] = {}

    def _statement(self, rows: int) -> str:
        if rows not in self.statements:
            values = ",".join(["(" + ",".join("?" * len(COLUMNS)) + ")"] * rows)
            self.statements[rows] = f"INSERT INTO observations ({', '.join(COLUMNS)}) VALUES {values}"
        return self.statements[rows]

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.cursor.execute(self._statement(len(rows)), [v for row in rows for v in row])

    def close(self) -> None:
        self.cursor.close()


class _CopyWriter:
    """PostgreSQL COPY FROM STDIN, one COPY per batch, inside the import's transaction."""

    def __init__(self, connection: Any):
        self.cursor = connection.connection.dbapi_connection.cursor()

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        with self.cursor.copy(f"COPY observations ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self.cursor.close()


def import_outcomes(
    session: Session,
    ctx: Context,
    ref: str,
    path: str | Path,
    stage: str,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import an outcome CSV (long or wide form) into a pilot's open stage, all rows or none."""
    pilot = get_pilot(session, ref)
    protocol = protocol_of(pilot)
    stage_index = open_stage(pilot, protocol, stage)
    codes = metric_codes(session, pilot)
    source = str(path)
    errors = RowErrors.for_file(source)
    record = DataImport(
        pilot_id=pilot.id,
        stage_index=stage_index,
        kind="outcomes",
        source=Path(source).name,
        rows=0,
        missing=0,
        replaced=0,
        at=ctx.now,
        actor=ctx.actor,
    )
    session.add(record)
    session.flush()
    loader = _Loader(session, pilot, stage_index, codes, protocol.design.arms, errors)
    loader.import_id = record.id
    try:
        with open_text(path) as handle:
            parsed = read_csv(handle, source)
            layout = _layout(parsed.header, source, list(codes))
            _stream(loader, layout, parsed.rows, handle, progress)
        loader.flush()
    finally:
        loader.writer.close()
    loader.check_duplicates()
    if loader.rows == 0 and errors.total == 0:
        raise InvalidInput(f"{source}: no data rows (only a header)")
    errors.raise_if_any()
    summary = ImportSummary(pilot.ref, stage, source, layout.form, rows=loader.rows, dry_run=dry_run)
    _finish(session, ctx, pilot, record, loader, summary, protocol, replace)
    return summary


def _stream(
    loader: _Loader,
    layout: _Layout,
    rows: Iterator[tuple[int, list[str]]],
    handle: Any,
    progress: Progress | None,
) -> None:
    every = 0
    for line, values in rows:
        loader.rows += 1
        unit, arm = _cell(values, layout.unit), _cell(values, layout.arm)
        exposure, site = _cell(values, layout.exposure), _cell(values, layout.site)
        if layout.form == "long":
            loader.observation(
                line, unit, arm, _cell(values, layout.metric), _cell(values, layout.value), exposure, site
            )
        else:
            for index, name in layout.wide_metrics:
                # in wide form the exposure column belongs to the count metrics only
                kind = loader.codes[name][1]
                loader.observation(
                    line, unit, arm, name, _cell(values, index), exposure if kind == "count" else "", site
                )
        every += 1
        if progress is not None and every >= 20_000:
            every = 0
            progress(handle.buffer.tell())


def _finish(
    session: Session,
    ctx: Context,
    pilot: Pilot,
    record: DataImport,
    loader: _Loader,
    summary: ImportSummary,
    protocol: Protocol,
    replace: bool,
) -> None:
    names = {code: name for name, (code, _kind) in loader.codes.items()}
    in_file = sorted({code for code, _arm in loader.counts})
    summary.replaced = _clear_or_refuse(session, pilot, record, in_file, names, replace, summary.stage)
    for (code, arm), (present, missing) in sorted(loader.counts.items()):
        metric = summary.by_metric.setdefault(names[code], {})
        metric[protocol.design.arms[arm]] = {"n": present, "missing": missing}
        summary.observations += present + missing
        summary.missing += missing
    record.rows, record.missing, record.replaced = summary.observations, summary.missing, summary.replaced
    audit.record(
        session,
        actor=ctx.actor,
        action="pilot.data",
        entity="pilot",
        entity_id=pilot.ref,
        scope=pilot.ref,
        before=None,
        after={
            "stage": summary.stage,
            "file": record.source,
            "form": summary.form,
            "observations": summary.observations,
            "missing": summary.missing,
            "replaced": summary.replaced,
            "metrics": summary.by_metric,
        },
        reason=None,
        at=ctx.now,
    )


def _clear_or_refuse(
    session: Session,
    pilot: Pilot,
    record: DataImport,
    codes: list[int],
    names: dict[int, str],
    replace: bool,
    stage: str,
) -> int:
    """Refuse data for metrics the stage already has, or (with replace) delete the old rows."""
    t = observations.c
    mine = (
        t.pilot_id == pilot.id,
        t.stage_index == record.stage_index,
        t.metric.in_(codes),
        t.import_id != record.id,
    )
    if not replace:
        clash = sorted(set(session.scalars(select(t.metric).where(*mine).distinct())))
        if clash:
            listed = ", ".join(names[c] for c in clash)
            raise InvalidInput(
                f"stage '{stage}' of {pilot.ref} already has data for {listed}; nothing was imported (use --replace to swap them)"
            )
        return 0
    return session.execute(delete(observations).where(*mine)).rowcount or 0


# --- resources -------------------------------------------------------------------------------

RESOURCE_REQUIRED = ("stage", "side", "kind")
RESOURCE_COLUMNS = ("stage", "side", "kind", "hours", "amount", "arm", "note")


@dataclass(frozen=True)
class ResourceSummary:
    """What a resources import did."""

    pilot: str
    source: str
    rows: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"pilot": self.pilot, "file": self.source, "rows": self.rows, "dry_run": self.dry_run}


def import_resources(
    session: Session, ctx: Context, ref: str, path: str | Path, dry_run: bool = False
) -> ResourceSummary:
    """Import a resources CSV (stage, side, kind, hours, amount[, arm][, note]), all rows or none."""
    pilot = get_pilot(session, ref)
    protocol = protocol_of(pilot)
    source = str(path)
    errors = RowErrors.for_file(source)
    record = DataImport(
        pilot_id=pilot.id,
        stage_index=pilot.stage_index,
        kind="resources",
        source=Path(source).name,
        rows=0,
        missing=0,
        replaced=0,
        at=ctx.now,
        actor=ctx.actor,
    )
    session.add(record)
    session.flush()
    rows = []
    with open_text(path) as handle:
        parsed = read_csv(handle, source)
        check_header(parsed.header, source, (*RESOURCE_REQUIRED, "hours", "amount"), RESOURCE_COLUMNS)
        position = {name: i for i, name in enumerate(parsed.header)}
        for line, values in parsed.rows:
            cells = {name: _cell(values, position.get(name, -1)) for name in RESOURCE_COLUMNS}
            try:
                rows.append(_resource(cells, pilot, protocol, record.id))
            except ValueError as exc:
                errors.add(line, str(exc))
    errors.raise_if_any()
    if not rows:
        raise InvalidInput(f"{source}: no resource rows (only a header)")
    session.add_all(rows)
    record.rows = len(rows)
    session.flush()
    totals = resource_totals(session, pilot, ctx.config.citizen_hour_value, import_id=record.id)
    audit.record(
        session,
        actor=ctx.actor,
        action="pilot.resources",
        entity="pilot",
        entity_id=pilot.ref,
        scope=pilot.ref,
        before=None,
        after={"file": record.source, "rows": len(rows), "totals": totals["total"]},
        at=ctx.now,
    )
    return ResourceSummary(pilot.ref, source, len(rows), dry_run)


def _optional_amount(name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        value = _number(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {text!r}")
    return value


def _resource(cells: dict[str, str], pilot: Pilot, protocol: Protocol, import_id: int) -> Resource:
    # any stage of the protocol: costs are often committed before a stage opens (training, recruitment)
    names = [s.name for s in protocol.stages]
    if cells["stage"] not in names:
        raise ValueError(f"unknown stage {cells['stage']!r} (stages: {', '.join(names)})")
    stage_index = names.index(cells["stage"])
    side = cells["side"].lower()
    if side not in ("public", "citizen"):
        raise ValueError(f"side must be public or citizen, got {cells['side']!r}")
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
