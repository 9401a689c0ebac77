"""Full JSON export and import: everything in the database, so a register can move between backends.

The file holds every table's rows in dependency order, with dates and times as ISO text.
Importing into an empty database reproduces it exactly, audit chain included (events keep
their stored fields, so their hashes still verify).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Boolean, Date, Table, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from riskreg import __version__
from riskreg.db import SCHEMA_HEAD
from riskreg.errors import InvalidInput
from riskreg.models import AuditHead, Base, UTCDateTime

FORMAT = "riskreg-export"
# integer keys that PostgreSQL numbers from a sequence, which must move past imported rows
SERIAL_TABLES = ("reviews", "protocol_versions", "data_imports", "resources", "decisions", "evidence")


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def export_all(session: Session, out: IO[str]) -> dict[str, int]:
    """Write every table to ``out`` as one JSON document, a row at a time; return rows per table."""
    counts: dict[str, int] = {}
    out.write(json.dumps({"format": FORMAT, "schema": SCHEMA_HEAD, "riskreg": __version__})[:-1])
    out.write(', "tables": {')
    for index, table in enumerate(_tables()):
        out.write(("" if index == 0 else ", ") + json.dumps(table.name) + ": [")
        columns = [c.name for c in table.columns]
        order = list(table.primary_key.columns) or [table.c[name] for name in columns]
        count = 0
        for row in session.execute(select(table).order_by(*order)).yield_per(5000):
            out.write(("" if count == 0 else ", ") + json.dumps([_plain(v) for v in row], ensure_ascii=False))
            count += 1
        out.write("]")
        counts[table.name] = count
    out.write('}, "columns": ' + json.dumps({t.name: [c.name for c in t.columns] for t in _tables()}) + "}\n")
    return counts


def _converter(column: Any) -> Any:
    if isinstance(column.type, UTCDateTime):
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if isinstance(column.type, Date):
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if isinstance(column.type, Boolean):
        return lambda v: None if v is None else bool(v)
    return lambda v: v


def import_all(session: Session, path: str | Path) -> dict[str, int]:
    """Load an export into an empty database; refuse a non-empty one or a file of another schema."""
    document = _read(path)
    _check_empty(session)
    counts: dict[str, int] = {}
    for table in _tables():
        names = document["columns"].get(table.name)
        rows = document["tables"].get(table.name, [])
        if names is None:
            raise InvalidInput(f"{path}: table {table.name} is missing from the export")
        values = _rows_of(path, table, names, rows)
        if table.name == AuditHead.__table__.name:
            session.execute(table.delete())  # the schema seeds the head; the export's replaces it
        try:
            for start in range(0, len(values), 5000):
                session.execute(insert(table), values[start : start + 5000])
        except DBAPIError as exc:
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else "refused"
            raise InvalidInput(
                f"{path}: table {table.name}: its rows do not fit this schema ({first})"
            ) from None
        counts[table.name] = len(values)
    _advance_sequences(session)
    return counts


def _rows_of(path: str | Path, table: Table, names: Any, rows: Any) -> list[dict[str, Any]]:
    """Return an exported table's rows as column values; a damaged table is an InvalidInput naming it."""
    if not isinstance(names, list) or not isinstance(rows, list):
        raise InvalidInput(f"{path}: table {table.name} is damaged (expected lists of columns and rows)")
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise InvalidInput(f"{path}: table {table.name} has no column {unknown[0]!r} in this schema")
    convert = [_converter(table.c[name]) for name in names]
    values = []
    for number, row in enumerate(rows, 1):
        try:
            values.append({name: c(v) for name, c, v in zip(names, convert, row, strict=True)})
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{path}: table {table.name}, row {number}: {exc}") from None
    return values


def _read(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read file: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: not a riskreg JSON export ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not a riskreg JSON export")
    if not isinstance(document.get("columns"), dict) or not isinstance(document.get("tables"), dict):
        raise InvalidInput(f"{path}: a riskreg JSON export without its columns or tables (damaged?)")
    if document.get("schema") != SCHEMA_HEAD:
        raise InvalidInput(
            f"{path}: exported at schema {document.get('schema')}, this riskreg has {SCHEMA_HEAD}; use a matching riskreg"
        )
    return document


def _check_empty(session: Session) -> None:
    for table in _tables():
        if table.name in ("audit_head",):
            continue
        if session.scalar(select(func.count()).select_from(table)):
            raise InvalidInput(
                f"the database is not empty (table {table.name} has rows); import into a new database"
            )


def _advance_sequences(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite numbers INTEGER PRIMARY KEY rows from the largest one present
    for name in SERIAL_TABLES:
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE((SELECT max(id) FROM {name}), 0) + 1, false)"
            )
        )
