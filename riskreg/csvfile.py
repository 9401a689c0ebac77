"""Reading user CSV files: UTF-8 with or without BOM, comma or semicolon, with line numbers."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from riskreg.errors import DataFileError, InvalidInput

MAX_SHOWN = 20


@dataclass
class RowErrors:
    """Collects rejected rows of one file; the first ``MAX_SHOWN`` are kept, all are counted."""

    source: str
    shown: list[tuple[int, str]]
    total: int = 0
    last: int = 0  # the line of the latest problem: more problems on it join its message

    @classmethod
    def for_file(cls, source: str) -> RowErrors:
        return cls(source, [])

    def add(self, line: int, message: str) -> None:
        """Record a problem; a line's further problems (read in a row) join its first, counted once."""
        if line == self.last and self.total:
            if self.shown and self.shown[-1][0] == line and message not in self.shown[-1][1]:
                self.shown[-1] = (line, f"{self.shown[-1][1]}; {message}")
            return
        self.last = line
        self.total += 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append((line, message))

    def raise_if_any(self) -> None:
        """Raise one DataFileError describing every rejected row, if there were any (shown in line order)."""
        if self.total == 0:
            return
        # some rows are judged after the others (repeats, once the whole file is read)
        shown = [f"line {line}: {message}" for line, message in sorted(self.shown, key=lambda e: e[0])]
        if self.total == 1:
            raise DataFileError(f"{self.source}: {shown[0]}; nothing was imported")
        lines = [f"{self.source}: {self.total} rows rejected, nothing was imported"]
        lines += [f"  {entry}" for entry in shown]
        if self.total > len(shown):
            lines.append(f"  ... and {self.total - len(shown)} more")
        raise DataFileError("\n".join(lines))


def open_text(path: str | Path) -> IO[str]:
    """Open a CSV file as UTF-8 text (dropping a BOM), with a one-line error if it cannot be read."""
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise _unreadable(path, exc) from None


def text_sha256(path: str | Path) -> str:
    """Return the SHA-256 (hex) of a text file's content: without a BOM, every line break as LF.

    The same rows saved on another system (CRLF line ends, a BOM from a spreadsheet) give
    the same digest. Errors are open_text's one-line ones.
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    content = content.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(content).hexdigest()


def _unreadable(path: str | Path, exc: OSError) -> InvalidInput:
    return InvalidInput(f"{path}: cannot read file: {exc.strerror}")


def sniff_delimiter(header_line: str) -> str:
    """Return ';' when the header is semicolon-separated, else ','."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


@dataclass
class CsvRows:
    """An opened CSV file: its normalised header and an iterator of (line number, values)."""

    source: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    delimiter: str = ","
    names: list[str] | None = None  # the header as the file spells it (only trimmed)


def read_csv(handle: IO[str], source: str) -> CsvRows:
    """Read the header and return the remaining rows lazily, so large files stream."""
    try:
        first = handle.readline()
    except UnicodeDecodeError as exc:
        raise InvalidInput(_encoding_message(source, exc)) from None
    if not first.strip():
        raise InvalidInput(f"{source}: the file is empty (expected a header line)")
    delimiter = sniff_delimiter(first)
    try:
        names = [name.strip() for name in next(csv.reader(io.StringIO(first), delimiter=delimiter))]
    except csv.Error as exc:  # a header field over csv's field limit (128 KiB), say
        raise InvalidInput(f"{source}: line 1: {exc}") from None
    reader = csv.reader(handle, delimiter=delimiter)
    return CsvRows(source, [name.lower() for name in names], _numbered(reader, source), delimiter, names)


def _numbered(reader: csv._reader, source: str, before: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Number the reader's non-blank rows; ``before`` lines precede the reader's first line."""
    try:
        for values in reader:
            # skip blank lines; values[0] answers for almost every row without scanning the rest
            if values and (values[0] or any(v.strip() for v in values)):
                yield reader.line_num + before, values
    except UnicodeDecodeError as exc:
        raise InvalidInput(_encoding_message(source, exc)) from None
    except csv.Error as exc:
        raise InvalidInput(f"{source}: line {reader.line_num + before}: {exc}") from None


@dataclass
class Chunk:
    """Whole lines of a CSV file, read as one piece of text.

    ``lines`` holds plain lines (no quote, no carriage return other than in a CRLF line
    end, which is dropped), which ``str.split`` splits at the delimiter exactly as the csv
    module would. ``rows`` replaces ``lines`` for the rest of the file from the
    first chunk that is not plain: those go through the csv module, numbered.
    """

    first_line: int
    lines: list[str]
    rows: Iterator[tuple[int, list[str]]] | None = None

    def numbered_rows(self, source: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
        """Return this chunk's plain lines as the csv module's numbered rows (blank lines skipped)."""
        return _numbered(csv.reader(self.lines, delimiter=delimiter), source, self.first_line - 1)


CHUNK_CHARS = 1 << 16  # ~1,400 lines: measured quicker than 1 MiB chunks (cache), and less memory
LONGEST_PLAIN_LINE = 1 << 20  # a line still unfinished after this many characters goes to the csv module


def read_chunks(handle: IO[str], source: str, delimiter: str, line: int = 2) -> Iterator[Chunk]:
    """Read the rest of a file in chunks of whole lines, starting at line number ``line``.

    Splitting plain text with ``str.split`` costs a fraction of the csv module's per-row
    work, and most data files are plain; quoting or lone carriage returns hand the rest of
    the file to the csv module, which alone knows where such a line ends.
    """
    pending = ""
    while True:
        try:
            read = handle.read(CHUNK_CHARS)
        except UnicodeDecodeError as exc:
            raise InvalidInput(_encoding_message(source, exc)) from None
        text, pending = _whole_lines(pending + read, final=not read)
        if not text and not read:
            return
        plain = text.replace("\r\n", "\n") if "\r" in text else text
        # lines ended by CR alone (old Mac files) or too long to be plain: the csv module reads on
        odd_rest = "\r" in pending[:-1] or len(pending) > LONGEST_PLAIN_LINE
        if '"' in plain or "\r" in plain or odd_rest:
            # the original text: a quoted field keeps its own line breaks as they were
            rest = _rest_of_file(text, pending, handle)
            yield Chunk(line, [], _numbered(csv.reader(rest, delimiter=delimiter), source, line - 1))
            return
        if not text:
            continue  # a line longer than a chunk: read on
        lines = plain.split("\n")
        if not lines[-1]:
            lines.pop()  # the empty text after the last line break (the last line may have none)
        yield Chunk(line, lines)
        line += len(lines)


def _rest_of_file(text: str, pending: str, handle: IO[str]) -> Iterator[str]:
    """Yield the lines of text, then of the file from where it was read, as iterating the file would.

    ``pending`` is the start of the line the file goes on with; it is joined to that line's
    rest and split again the way the file splits lines (any of CR, LF, CRLF).
    """
    yield from io.StringIO(text, newline="")
    yield from io.StringIO(pending + next(handle, ""), newline="")
    yield from handle


def _whole_lines(text: str, final: bool) -> tuple[str, str]:
    """Split text into its whole lines and the unfinished rest (none at the end of the file)."""
    if final:
        return text, ""
    cut = text.rfind("\n") + 1
    return text[:cut], text[cut:]


def _encoding_message(source: str, exc: UnicodeDecodeError) -> str:
    return (
        f"{source}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} cannot be decoded); "
        "save the file as 'CSV UTF-8' and try again"
    )


def refuse_missing_columns(source: str, required: Iterable[str], present: Container[str]) -> None:
    """Refuse a file whose header lacks some of the required columns, naming them."""
    missing = [name for name in required if name not in present]
    if missing:
        raise InvalidInput(
            f"{source}: line 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        )


def check_header(header: list[str], source: str, required: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    """Refuse a header with missing, unknown or repeated columns, naming them."""
    refuse_missing_columns(source, required, header)
    unknown = [name for name in header if name not in allowed]
    if unknown:
        raise InvalidInput(
            f"{source}: line 1: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}"
            f" (expected some of: {', '.join(allowed)})"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidInput(f"{source}: line 1: repeated column {', '.join(repeated)}")


@dataclass(frozen=True)
class Columns:
    """A data file's header resolved: each wanted column's position, and the columns left out.

    ``width`` is the header's number of cells; ``needed`` leaves out the empty header cells
    at its end (a spreadsheet's trailing ``;;``), which rows may leave out too.
    """

    position: dict[str, int]
    ignored: tuple[str, ...]
    width: int
    needed: int


def resolve_columns(
    parsed: CsvRows,
    wanted: tuple[str, ...],
    mapping: dict[str, str],
    strict: bool,
    hint: str = "map them with --map or leave out --strict",
) -> Columns:
    """Resolve a header: ``mapping`` renames file columns (lower-cased) to wanted names.

    Columns neither wanted nor mapped are ignored (and named), or with ``strict`` refused;
    empty header cells at the end are ignored silently. A wanted name given twice is refused.
    """
    names = parsed.names if parsed.names is not None else parsed.header
    needed = len(parsed.header)
    while needed and not parsed.header[needed - 1]:
        needed -= 1
    position: dict[str, int] = {}
    ignored: list[str] = []
    repeated: list[str] = []
    for index, name in enumerate(parsed.header[:needed]):
        target = mapping.get(name, name)
        if target not in wanted:
            ignored.append(names[index] or f"(column {index + 1}, no name)")
        elif target in position:
            repeated.append(target)
        else:
            position[target] = index
    if repeated:
        raise InvalidInput(f"{parsed.source}: line 1: repeated column {', '.join(sorted(set(repeated)))}")
    if ignored and strict:
        raise InvalidInput(
            f"{parsed.source}: unexpected column(s) {', '.join(map(repr, ignored))} (--strict); {hint}"
        )
    return Columns(position, tuple(ignored), len(parsed.header), needed)


def width_problem(values: list[str], columns: Columns) -> str | None:
    """Why a row's number of cells does not fit the header (trailing empty cells are fine), or None."""
    count = len(values)
    if count == columns.width:
        return None
    if count < columns.needed:
        return f"{count} cell{'s' if count != 1 else ''} where the header has {columns.needed}"
    if count > columns.width and any(v.strip() for v in values[columns.width :]):
        return f"{count} cells where the header has {columns.width}"
    return None
