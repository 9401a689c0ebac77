"""Reading Excel workbooks (.xlsx) as the rows of a CSV file, with openpyxl in read-only mode.

A sheet is streamed row by row (memory stays flat however long it is) and each row is
given as the texts its cells would have in a CSV file, numbered by its sheet row, so the
checks that read CSV files apply to a workbook unchanged. Numbers keep their exact value
(an int as ``str``, a float as ``repr``), booleans become 1/0, empty cells are missing;
what a CSV cannot hold is refused naming the cell (``Sheet1!D14``): a date where a
number is expected, an error value (``#DIV/0!``), a formula saved without its value,
a cell longer than Excel allows, merged cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from riskreg.csvfile import CsvRows, open_text, read_csv
from riskreg.errors import InvalidInput

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls, and an encrypted .xlsx's wrapper
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
LONGEST_CELL = 32_767  # the most characters Excel holds in a cell
# Columns where a date is read as its ISO text (an id, a note, a review date); in every
# other column (values, exposures, hours, amounts, scores, wide-form metrics) a number is expected.
DATE_AS_TEXT = frozenset(
    (
        "unit_id", "arm", "metric", "site", "stage", "side", "kind", "note",
        "id", "title", "description", "category", "owner", "treatment", "mode", "status",
        "rating", "next_review",
    )
)  # fmt: skip


class SheetPath(os.PathLike[str]):
    """A workbook's path and the sheet to read; ``str()`` and ``os.fspath()`` give the path."""

    def __init__(self, path: str | os.PathLike[str], sheet: str):
        self.path, self.sheet = os.fspath(path), sheet

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"SheetPath({self.path!r}, {self.sheet!r})"


def with_sheet(path: str | os.PathLike[str], sheet: str | None) -> Any:
    """Return ``path`` to read ``sheet`` of it (the first sheet if None); refuse a sheet of a CSV file."""
    if sheet is None:
        return path
    if not is_workbook(path):
        raise InvalidInput(f"{path}: --sheet is only for Excel workbooks (.xlsx); this is read as CSV")
    return SheetPath(path, sheet)


def _magic(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(8)
    except OSError:
        return b""  # the CSV path words the error


def is_workbook(path: str | os.PathLike[str]) -> bool:
    """True if the file is to be read as a workbook: by its name (.xlsx, .xlsm, .xls) or its first bytes."""
    if isinstance(path, SheetPath):
        return True
    if Path(path).suffix.lower() in (*WORKBOOK_SUFFIXES, ".xls"):
        return True
    magic = _magic(path)
    return magic[:4] == ZIP_MAGIC or magic == OLE2_MAGIC


@contextmanager
def open_table(path: str | os.PathLike[str], source: str) -> Iterator[CsvRows]:
    """Yield the header and numbered rows of a CSV file or of a workbook's sheet."""
    if not is_workbook(path):
        with open_text(path) as handle:
            yield read_csv(handle, source)
        return
    with _open_workbook(path, source) as book:
        yield _sheet_rows(book, path, source)


def table_sha256(path: str | os.PathLike[str], source: str) -> str:
    """Return the SHA-256 of a sheet's rows written as CSV (LF line ends): a re-saved workbook keeps it."""
    digest = hashlib.sha256()
    with open_table(path, source) as parsed:
        for row in _csv_lines([parsed.header]):
            digest.update(row)
        for _line, values in parsed.rows:
            for row in _csv_lines([values]):
                digest.update(row)
    return digest.hexdigest()


def _csv_lines(rows: list[list[str]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    yield buffer.getvalue().encode("utf-8")


# --- opening -----------------------------------------------------------------------------------


@contextmanager
def _open_workbook(path: str | os.PathLike[str], source: str) -> Iterator[Any]:
    import zipfile

    from openpyxl import load_workbook

    magic = _magic(path)
    if magic == OLE2_MAGIC:
        if _encrypted(path):
            raise InvalidInput(
                f"{source}: a password-protected (encrypted) workbook, which riskreg cannot read; "
                "remove the password in Excel (File > Info > Protect Workbook) and save it again, or export CSV"
            )
        raise InvalidInput(_old_xls(source))
    if magic[:4] != ZIP_MAGIC:
        if Path(path).suffix.lower() == ".xls":
            raise InvalidInput(_old_xls(source))
        if not Path(path).exists():
            with open_text(path):  # words the error as for a CSV file
                pass
        raise InvalidInput(
            f"{source}: not an Excel workbook (an .xlsx file is a zip archive); "
            "save it from Excel as .xlsx, or export CSV UTF-8"
        )
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, after the workbook)
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read file: {exc.strerror}") from None
    try:
        _refuse_zip_bomb(handle, source)
        try:
            # a file object: openpyxl then does not insist on an .xlsx name
            book = load_workbook(handle, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError, IndexError) as exc:
            raise InvalidInput(
                f"{source}: not a readable .xlsx workbook (damaged or not from a spreadsheet: "
                f"{_reason(exc)}); save it again from Excel, or export CSV UTF-8"
            ) from None
        except Exception as exc:  # openpyxl's own parse errors (InvalidFileException, XML errors)
            raise InvalidInput(
                f"{source}: not a readable .xlsx workbook ({_reason(exc)}); save it again from Excel, or export CSV UTF-8"
            ) from None
        try:
            yield book
        finally:
            book.close()
    finally:
        handle.close()


# A workbook is a zip of XML parts. Spreadsheet XML compresses about 5-20 to 1 (the demo's sheet
# 9:1); deflate can reach about 1,000 to 1, so a small file could unpack to gigabytes of XML
# that take minutes to read. These limits are checked from the zip's directory, before
# anything is unpacked: a 1M-row, 10-column sheet is about 150 MB of XML.
MAX_UNPACKED_BYTES = 2 << 30
MAX_RATIO = 100
RATIO_FROM_BYTES = 10 << 20  # parts smaller than this may compress as they like


def _refuse_zip_bomb(handle: Any, source: str) -> None:
    """Refuse a workbook whose parts would unpack to more than the limits allow (a zip bomb)."""
    import zipfile

    try:
        parts = zipfile.ZipFile(handle).infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return  # damaged: load_workbook says so in its own words
    finally:
        handle.seek(0)
    total = sum(part.file_size for part in parts)
    if total > MAX_UNPACKED_BYTES:
        raise InvalidInput(
            f"{source}: the workbook would unpack to {total / (1 << 20):,.0f} MiB of XML; at most "
            f"{MAX_UNPACKED_BYTES / (1 << 20):,.0f} MiB is read (split it, or export CSV UTF-8)"
        )
    for part in parts:
        if part.file_size > RATIO_FROM_BYTES and part.file_size > MAX_RATIO * max(part.compress_size, 1):
            raise InvalidInput(
                f"{source}: the workbook's part {part.filename} would unpack {part.file_size // max(part.compress_size, 1):,} "
                f"times larger than it is stored (at most {MAX_RATIO} times for a part over "
                f"{RATIO_FROM_BYTES >> 20} MB): not a spreadsheet's XML; export CSV UTF-8 instead"
            )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _old_xls(source: str) -> str:
    return (
        f"{source}: an old Excel 97-2003 workbook (.xls), which riskreg does not read; "
        "save it as Excel Workbook (.xlsx) or CSV UTF-8 and try again"
    )


def _encrypted(path: str | os.PathLike[str]) -> bool:
    """True if an OLE2 file holds the EncryptionInfo stream of an encrypted Office document."""
    marker = "EncryptionInfo".encode("utf-16-le")
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            if marker in tail + block:
                return True
            tail = block[-len(marker) :]
    return False


# --- reading a sheet ---------------------------------------------------------------------------


def _sheet_rows(book: Any, path: str | os.PathLike[str], source: str) -> CsvRows:
    sheet = getattr(path, "sheet", None)
    names = book.sheetnames
    if sheet is None:
        if not names:
            raise InvalidInput(f"{source}: the workbook has no sheets")
        sheet = names[0]
    elif sheet not in names:
        raise InvalidInput(f"{source}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    reader = _SheetReader(book, book[sheet], source)
    return reader.start()


class _SheetReader:
    """Streams one sheet through openpyxl's own worksheet parser, as CSV rows."""

    def __init__(self, book: Any, sheet: Any, source: str):
        from openpyxl.utils.cell import quote_sheetname

        self.book, self.sheet, self.source = book, sheet, source
        self.title = sheet.title
        self.prefix = quote_sheetname(sheet.title) if not sheet.title.isalnum() else sheet.title
        self.text_columns: set[int] = set()

    def start(self) -> CsvRows:
        self.stream = self.sheet._get_source()
        self.parser = _parser(self.book, self.sheet, self.stream)
        self.parsed = self.parser.parse()
        for line, cells in self.parsed:
            header = self._header(line, cells)
            if header is not None:
                return CsvRows(self.source, header, self._rows(len(header)))
        self._check_merged(None)
        self.stream.close()
        raise InvalidInput(f"{self.source}: sheet {self.title!r} is empty (expected a header row)")

    def _header(self, line: int, cells: list[dict[str, Any]]) -> list[str] | None:
        if not any(c["value"] is not None for c in cells):
            return None
        raw = self._values(line, cells, 0)
        width = len(raw)
        while width and raw[width - 1] == "":
            width -= 1
        header = [name.strip().lower() for name in raw[:width]]
        if "" in header:
            self._check_merged(line)  # a merged header gives an empty name beside the first
        self.text_columns = {i for i, name in enumerate(header) if name in DATE_AS_TEXT}
        return header

    def _rows(self, width: int) -> Iterator[tuple[int, list[str]]]:
        try:
            for line, cells in self.parsed:
                if not cells:
                    continue
                values = self._values(line, cells, width)
                if any(values):
                    yield line, values
            self._check_merged(None)
        finally:
            self.stream.close()

    def _values(self, line: int, cells: list[dict[str, Any]], width: int) -> list[str]:
        """Return a row's cell texts: at least ``width`` of them, more only up to its last non-empty cell."""
        last = max(
            (c["column"] for c in cells if c["value"] is not None or c["data_type"] == "uncached"), default=0
        )
        values = [""] * max(width, last)
        for cell in cells:
            column = cell["column"]
            if column > len(values):
                continue
            values[column - 1] = self._text(line, column - 1, cell)
        return values

    def _text(self, line: int, index: int, cell: dict[str, Any]) -> str:
        value = cell["value"]
        kind = cell["data_type"]
        if kind == "uncached":
            self._refuse(
                line,
                index,
                "a formula without a saved value (the workbook was saved without calculating it); "
                "open it in Excel and save it again, or export CSV",
            )
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if value.is_integer() and abs(value) < 1e15:
                return str(int(value))
            return repr(value)
        if isinstance(value, dt.date | dt.time | dt.timedelta):
            if index not in self.text_columns:
                self._refuse(line, index, "a date where a number is expected")
            if isinstance(value, dt.datetime) and value.time() == dt.time():
                return value.date().isoformat()
            return value.isoformat() if not isinstance(value, dt.timedelta) else str(value)
        if kind == "e":
            self._refuse(
                line, index, f"the cell holds the error {value}; correct it in Excel, or leave it empty"
            )
        text = str(value)
        if len(text) > LONGEST_CELL:
            self._refuse(
                line,
                index,
                f"a cell of {len(text):,} characters (Excel holds at most {LONGEST_CELL:,} in a cell)",
            )
        return text

    def _refuse(self, line: int, index: int, message: str) -> None:
        from openpyxl.utils.cell import get_column_letter

        self.stream.close()
        raise InvalidInput(
            f"{self.source}: line {line}: {self.prefix}!{get_column_letter(index + 1)}{line}: {message}; "
            "nothing was imported"
        )

    def _check_merged(self, header_line: int | None) -> None:
        """Refuse merged cells; at the header (``header_line``) the rest of the sheet is read to find them."""
        if header_line is not None:
            for _ in self.parsed:
                pass
        merged = self.parser.merged_cells
        if merged is None or not merged.mergeCell:
            return
        ranges = [cell.ref for cell in merged.mergeCell]
        in_header = header_line is not None and any(_first_row(ref) == header_line for ref in ranges)
        where = "in the header" if in_header else "in the sheet"
        shown = ", ".join(f"{self.prefix}!{ref}" for ref in ranges[:5]) + (" ..." if len(ranges) > 5 else "")
        self.stream.close()
        raise InvalidInput(
            f"{self.source}: merged cells {where} ({shown}); unmerge them so that every column has its own "
            "name and every row its own values, or export CSV"
        )


def _first_row(ref: str) -> int:
    from openpyxl.utils.cell import range_boundaries

    return int(range_boundaries(ref)[1])


def _parser(book: Any, sheet: Any, stream: Any) -> Any:
    """openpyxl's worksheet parser, as a read-only worksheet makes it, that marks formulas saved without a value."""
    from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

    class Parser(WorkSheetParser):  # type: ignore[misc]
        def parse_cell(self, element: Any) -> dict[str, Any]:
            cell: dict[str, Any] = super().parse_cell(element)
            if cell["value"] is None and element.find(FORMULA_TAG) is not None:
                cell["data_type"] = "uncached"
            return cell

    return Parser(
        stream,
        sheet._shared_strings,
        data_only=True,
        epoch=book.epoch,
        date_formats=book._date_formats,
        timedelta_formats=book._timedelta_formats,
    )
