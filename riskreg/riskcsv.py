"""Risk CSV and workbook import and export (DESIGN §4): one risk a row, atomic, with line numbers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.csvfile import RowErrors, check_header, text_sha256
from riskreg.errors import InvalidInput, RiskregError
from riskreg.models import Event, Risk
from riskreg.register import Context, add_risk, next_review, parse_ref
from riskreg.workbook import is_workbook, open_table, table_sha256, with_sheet

REQUIRED = ("title", "side", "mode", "likelihood", "impact")
OPTIONAL = (
    "category",
    "owner",
    "description",
    "treatment",
    "target_likelihood",
    "target_impact",
    "review_days",
)
# Export adds these; import reads id, status and the inherent tier so a round trip keeps them,
# and ignores the rest because they are computed.
ROUND_TRIP = ("id", "status", "inherent_likelihood", "inherent_impact")
COMPUTED = ("score", "rating", "version", "next_review", "above_appetite")
EXPORT_COLUMNS = (
    "id",
    *REQUIRED,
    *OPTIONAL,
    "inherent_likelihood",
    "inherent_impact",
    *COMPUTED[:2],
    "status",
    "version",
    "next_review",
)


@dataclass(frozen=True)
class LikelyDuplicate:
    """A row whose title, side and mode match an open risk or an earlier row of the file."""

    line: int
    title: str
    of: str  # "R-3" or "line 4"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "title": self.title, "duplicate_of": self.of}

    def reason(self) -> str:
        """Say why the row looks like a duplicate (the row's line is said by whoever reports it)."""
        return f"{self.title!r} is likely a duplicate of {self.of} (same title, side and mode)"


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, with dry_run, would do)."""

    source: str
    rows: int
    ids: tuple[str, ...]
    dry_run: bool
    duplicates: tuple[LikelyDuplicate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "rows": self.rows,
            "ids": list(self.ids),
            "dry_run": self.dry_run,
            "likely_duplicates": [d.to_dict() for d in self.duplicates],
        }


IMPORT_ACTION = "risk.import"  # one event a risk file imported, with its SHA-256 (risk.add events follow)


def import_risks(
    session: Session,
    ctx: Context,
    path: str | Path,
    dry_run: bool = False,
    sheet: str | None = None,
    allow_repeat: bool = False,
    allow_duplicates: bool = False,
    new_category: bool = False,
) -> ImportResult:
    """Add every risk of a CSV file or workbook sheet, or none: a bad row rejects the whole file with its line number.

    A file whose content was imported before is refused unless ``allow_repeat``; rows that
    look like an open risk or an earlier row (same title, side and mode) are refused with
    their lines unless ``allow_duplicates`` (a dry run lists them instead). The caller's
    transaction decides: it commits, or (for a dry run) rolls back.
    """
    path = with_sheet(path, sheet)
    source = str(path)
    errors = RowErrors.for_file(source)
    rows: list[tuple[int, dict[str, str]]] = []
    with open_table(path, source) as parsed:
        check_header(parsed.header, source, REQUIRED, (*REQUIRED, *OPTIONAL, *ROUND_TRIP, *COMPUTED))
        width = len(parsed.header)
        for line, values in parsed.rows:
            if len(values) > width:
                errors.add(line, f"the row has {len(values)} fields but the header has {width}")
                continue
            padded = values + [""] * (width - len(values))
            rows.append((line, dict(zip(parsed.header, map(restore, padded), strict=True))))
    if not rows and not errors.total:
        raise InvalidInput(f"{source}: no risks in the file (only a header)")
    digest = table_sha256(path, source) if is_workbook(path) else text_sha256(path)
    if not allow_repeat:
        _refuse_repeated_file(session, digest, source)
    numbers = _explicit_ids(session, rows, errors)
    duplicates = likely_duplicates(session, rows)
    if not (dry_run or allow_duplicates):
        for duplicate in duplicates:
            errors.add(duplicate.line, f"{duplicate.reason()}; --allow-duplicates imports it anyway")
    created: list[str] = []
    for line, row in rows:
        if row.get("id", "").strip() and line not in numbers:
            continue  # its id was refused above
        try:
            # a savepoint keeps one bad row from leaving half a risk behind before we raise
            with session.begin_nested():
                values = {k: v for k, v in row.items() if k not in (*COMPUTED, "id")}
                created.append(
                    add_risk(session, ctx, values, number=numbers.get(line), new_category=new_category).ref
                )
        except RiskregError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    after = {"file": source, "sha256": digest, "rows": len(rows), "ids": created}
    audit.record(
        session,
        actor=ctx.actor,
        action=IMPORT_ACTION,
        entity="import",
        entity_id="risks",
        scope="risks",
        before=None,
        after=after,
        at=ctx.now,
    )
    return ImportResult(source, len(rows), tuple(created), dry_run, tuple(duplicates))


def _refuse_repeated_file(session: Session, digest: str, source: str) -> None:
    """Refuse a risk file whose content an earlier import brought in, naming who and when."""
    for event in session.scalars(select(Event).where(Event.action == IMPORT_ACTION).order_by(Event.seq)):
        earlier = json.loads(event.after or "{}")
        if earlier.get("sha256") == digest:
            raise InvalidInput(
                f"{source}: these risks were imported before: the same file was imported on "
                f"{event.at:%Y-%m-%d %H:%M} UTC by {event.actor} ({earlier.get('file')}); nothing was "
                "imported (risks are never deleted, so a repeat would stay twice; --allow-repeat imports it again)"
            )


def _title_key(title: str) -> str:
    return " ".join(title.casefold().split())


def likely_duplicates(session: Session, rows: list[tuple[int, dict[str, str]]]) -> list[LikelyDuplicate]:
    """Return the rows whose title, side and mode match an open risk, or an earlier row of the file."""
    seen: dict[tuple[str, str, str], str] = {}
    open_risks = session.execute(
        select(Risk.id, Risk.title, Risk.side, Risk.mode).where(Risk.status == "open").order_by(Risk.id)
    )
    for number, title, side, mode in open_risks:
        seen.setdefault((_title_key(title), side, mode), f"R-{number}")
    found = []
    for line, row in rows:
        key = (
            _title_key(row.get("title") or ""),
            (row.get("side") or "").strip().lower(),
            (row.get("mode") or "").strip().lower(),
        )
        if not key[0]:
            continue  # a row without a title is refused on its own
        if key in seen:
            found.append(LikelyDuplicate(line, " ".join((row.get("title") or "").split()), seen[key]))
        else:
            seen[key] = f"line {line}"
    return found


def _explicit_ids(
    session: Session, rows: list[tuple[int, dict[str, str]]], errors: RowErrors
) -> dict[int, int]:
    """Return {line: risk number} for rows that name an id; refuse ids that exist or repeat."""
    numbers: dict[int, int] = {}
    seen: dict[int, int] = {}
    for line, row in rows:
        text = (row.get("id") or "").strip()
        if not text:
            continue
        try:
            number = parse_ref(text, "R")
        except InvalidInput as exc:
            errors.add(line, f"id: {exc}")
            continue
        if number in seen:
            errors.add(line, f"id: R-{number} appears twice (also line {seen[number]})")
            continue
        seen[number] = line
        numbers[line] = number
    existing = set(session.scalars(select(Risk.id).where(Risk.id.in_(list(seen))))) if seen else set()
    for number in sorted(existing):
        errors.add(seen[number], f"id: R-{number} already exists; import never overwrites risks")
        numbers.pop(seen[number])
    return numbers


def export_rows(session: Session, ctx: Context) -> list[dict[str, Any]]:
    """Return every risk as a flat row in export column order."""
    config = ctx.config
    risks = session.scalars(select(Risk).order_by(Risk.id))
    return [_row(r, config) for r in risks]


def _row(risk: Risk, config: Any) -> dict[str, Any]:
    values = {name: getattr(risk, name, None) for name in EXPORT_COLUMNS}
    values.update(
        id=risk.ref,
        score=risk.score,
        rating=config.rating(risk.score),
        # a closed risk has no next review (as in risk show and risk list)
        next_review=None if risk.status == "closed" else next_review(risk, config).isoformat(),
    )
    return values


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); the
# full-width forms too, which some spreadsheets (East Asian input) take for the ASCII ones.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: Any) -> Any:
    """Return text that a spreadsheet would run as a formula with a leading ``'``, which shows it as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def restore(value: str) -> str:
    """Undo ``neutralise`` on import, so an export read back is the original text."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Return export rows as CSV text with a header; formula-like text is neutralised."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else neutralise(v) for k, v in row.items()})
    return buffer.getvalue()


# Columns the workbook export writes as numbers (the rest as text, next_review as a date).
NUMBER_COLUMNS = frozenset(
    (
        "likelihood", "impact", "target_likelihood", "target_impact", "review_days",
        "inherent_likelihood", "inherent_impact", "score", "version",
    )
)  # fmt: skip


def write_xlsx(rows: list[dict[str, Any]], target: str | os.PathLike[str]) -> None:
    """Write export rows as a one-sheet workbook that `risk import` reads back, whole or not at all.

    Numbers are numbers, the review date a date, the header row frozen; text that a
    spreadsheet would run as a formula is neutralised as in the CSV export.
    """
    from openpyxl import Workbook

    from riskreg.outfile import replaced_whole

    book = Workbook()  # a register is small: the ordinary workbook, which can freeze panes
    sheet = book.active
    sheet.title = "Risks"
    sheet.append(list(EXPORT_COLUMNS))
    sheet.freeze_panes = "A2"
    for row in rows:
        sheet.append([_xlsx_value(name, row.get(name)) for name in EXPORT_COLUMNS])
    for index, name in enumerate(EXPORT_COLUMNS, start=1):
        if name == "next_review":
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "yyyy-mm-dd"
    with replaced_whole(target, binary=True) as out:
        book.save(out)


def _xlsx_value(name: str, value: Any) -> Any:
    """A cell's value: a number, a date, or text (neutralised); None for an empty cell."""
    if value is None or value == "":
        return None
    if name == "next_review":
        return dt.date.fromisoformat(str(value))
    if name in NUMBER_COLUMNS and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return neutralise(str(value))
