"""Streaming, atomic import of pilot outcome data (DESIGN §4).

A file is imported whole or not at all, in one transaction. An outcome import
(``import_outcomes``) is a short pipeline:

1. **Open.** Find the pilot's open stage and metric codes, and add the ``data_imports``
   row that its observations will point to.
2. **Fork a checker** for a file of ``PARALLEL_BYTES`` or more (Linux, not a workbook, no
   other threads): ``_CheckingProcess`` reads the file itself with the same checks while
   this process only converts and writes; it sends back its verdict, tallies and unit
   counts, never rows. Smaller files are checked here, in step 4.
3. **Read** 64 KiB chunks of whole lines (``csvfile.read_chunks``). A plain chunk (no
   quotes, every line the header's width) is split with ``str.split`` and handled column
   by column; any other chunk, and a workbook's sheet, goes row by row through the csv
   module, which also words every error.
4. **Check** every cell (``_Loader``); find repeated unit/metric pairs from 64-bit hashes
   (``KeyStore``: in memory up to 8 MiB, then in a temporary file; the file is read again
   only to name a repeat's lines); tally the sufficient statistics and the units per arm
   (``riskreg.tally``, ``UnitRuns``).
5. **Write** the converted rows as they stream by: 400-row INSERTs on SQLite
   (``_InsertWriter``), one COPY on PostgreSQL (``_CopyWriter``).
6. **Decide.** Any rejected row raises, with every problem by line number (the first 20
   shown, all counted), and the transaction rolls back, so nothing is kept. Otherwise the
   import is held to the stage's earlier data (``riskreg.counted``: ``--replace``,
   ``--append``, each unit counted once, clusters), its counts and audit event are added
   (``_finish``), and the command commits.

Memory stays flat however long the file: chunks, batches and spilled hashes. How a file's
columns are found is ``riskreg.layout``; resources files are ``riskreg.resources``.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import logging
import math
import operator
import os
import pickle
import signal
import sys
import tempfile
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from riskreg import audit
from riskreg.counted import check_clusters, clear_or_refuse, count_once
from riskreg.csvfile import (
    CsvRows,
    RowErrors,
    open_text,
    read_chunks,
    read_csv,
    width_problem,
)
from riskreg.errors import InvalidInput, RiskregError
from riskreg.layout import MISSING, Intake, Layout, intake_for, layout_of, trimmed_cell
from riskreg.models import DataImport, ImportCount, ImportUnits, Pilot
from riskreg.pilots import get_pilot, metric_codes, protocol_of
from riskreg.protocol import Protocol
from riskreg.register import Context
from riskreg.tally import GroupTally, tally_chunk
from riskreg.workbook import is_workbook, open_table, with_sheet

BATCH_ROWS = 400  # rows per multi-row INSERT: 6 values x 400 stays far under SQLite's variable limit
# Outcomes and exposures beyond this size are refused: no real measure comes near it, and it
# keeps every sum and squared deviation an import keeps far from overflow.
LARGEST = 1e15
BINARY = {"0": 0.0, "1": 1.0, "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "0.0": 0.0, "1.0": 1.0}
# import_counts' sufficient statistics, recorded in each pilot.data event (as event_number spells them)
SUM_COLUMNS = ("total", "exposure", "shift", "sum_d", "sum_d2", "sum_y2_t")
COLUMNS = ("metric", "arm", "unit_id", "value", "exposure", "site")  # after import_id, written by the writer

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
    # metric -> {"observations", "stages", "reason"}: what --new-units-only left out
    left_out: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the file's columns left out (not riskreg's, not mapped)
    ignored: list[str] = field(default_factory=list)

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
            "left_out": self.left_out,
            "ignored": self.ignored,
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


# The documented number syntax (README, Outcome data): ASCII digits, an optional sign, point
# and exponent; in a semicolon-separated file a decimal comma may stand for the point.
NUMBER_SYNTAX = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
OUT_OF_RANGE = "is out of range (larger than 1e15 in size)"
_MANTISSA_ZEROS = str.maketrans("", "", "+-0.")


def parse_number(text: str, decimal_comma: bool = False) -> float:
    """Read a number in the documented syntax (``NUMBER_SYNTAX``), finite and not rounded to 0.

    Raise ValueError: with an empty message for what is no number at all, else with what
    completes ``{name} ..., got {text!r}``. ``float`` alone would take more (``1_000``,
    other digits than ASCII ones, ``inf``); those are refused by a check of the text, run
    only on what ``float`` accepts.
    """
    if "," in text and text.strip().lstrip("+-").replace(",", "").replace(".", "").isdigit():
        if "." in text or text.count(",") > 1:
            raise ValueError(
                "has a thousands separator or two decimal marks, which are never guessed "
                "(write the number without thousands separators)"
            )
        if not decimal_comma:
            raise ValueError(
                "has a decimal comma in a comma-separated file, which is ambiguous "
                "(use a decimal point, or save the file with semicolons)"
            )
        text = text.replace(",", ".")
    value = float(text)  # ValueError: no number
    if "_" in text or not text.isascii():
        raise ValueError("")
    if not math.isfinite(value):
        if any(map(str.isdigit, text)):
            raise ValueError(OUT_OF_RANGE)
        raise ValueError("")  # inf, nan
    if not value and _underflows(text):
        raise ValueError("is out of range (so small in size that it reads as 0)")
    return value


def _underflows(text: str) -> bool:
    """True if a number text that reads as 0 has a digit other than 0 before its exponent."""
    mantissa = text.lower().partition("e")[0]
    return bool(mantissa.strip().translate(_MANTISSA_ZEROS))


def parse_named_number(text: str, name: str, decimal_comma: bool = False) -> float:
    """``parse_number``, its errors worded for a column or value called ``name``."""
    try:
        return parse_number(text, decimal_comma)
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith("could not convert") or not reason:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
        raise ValueError(f"{name} {reason}, got {text!r}") from None


def parse_value(kind: str, text: str, decimal_comma: bool = False) -> float:
    """Return an observation's value for a metric kind; raise ValueError with the reason."""
    if kind == "binary":
        value = BINARY.get(text.lower())
        if value is None:
            raise ValueError(f"binary value must be 0/1, true/false or yes/no, got {text!r}")
        return value
    value = parse_named_number(text, "value", decimal_comma)
    if abs(value) > LARGEST:
        raise ValueError(f"value is out of range (larger than 1e15 in size), got {text!r}")
    if kind == "count" and (value < 0 or value != int(value)):
        raise ValueError(f"count must be a whole number of events, 0 or more, got {text!r}")
    return value


def parse_exposure(kind: str, text: str, value: float | None, decimal_comma: bool = False) -> float | None:
    """Return the exposure of a count observation (required, > 0); other kinds take none."""
    if kind != "count":
        if text:
            raise ValueError("exposure is only for count metrics")
        return None
    if not text:
        if value is None:
            return None
        raise ValueError("count metrics need an exposure (e.g. person-weeks) greater than 0")
    exposure = parse_named_number(text, "exposure", decimal_comma)
    if exposure <= 0:
        raise ValueError(f"exposure must be greater than 0, got {text!r}")
    if exposure > LARGEST:
        raise ValueError(f"exposure is out of range (larger than 1e15), got {text!r}")
    return exposure


# --- reading rows ----------------------------------------------------------------------------


# --- the import --------------------------------------------------------------------------------


MetricColumns = tuple[list[int], list[str], list[str], list[str]]  # codes, kinds, value and exposure texts


@dataclass
class _SplitChunk:
    """A plain chunk's columns: unit ids, arm codes, sites, and the columns of each metric in it."""

    units: list[str]
    arms: list[int]
    sites: list[str]
    metrics: list[MetricColumns]


class _Loader:
    """Validates rows, buffers observations and writes them in batches to the open transaction."""

    def __init__(
        self,
        codes: dict[str, tuple[int, str]],
        arms: tuple[str, ...],
        errors: RowErrors,
        writer: Any,
        checking: bool = True,
        intake: Intake | None = None,
        decimal_comma: bool = False,
    ):
        """Check and write (the default), only check (``writer`` a ``_NoWriter``) or only write (``checking`` False).

        A loader that only writes leaves the checks, the duplicate search, the tallies and
        the unit counts to a checking loader reading the same file (``_CheckingProcess``);
        it converts what it can the quick way and writes, and is right whenever that loader
        accepts the file: it converts every cell as the checks would.
        """
        self.codes, self.errors, self.arm_names, self.checking = codes, errors, arms, checking
        self.code_of = {name: code for name, (code, _kind) in codes.items()}
        self.kind_of = {name: kind for name, (_code, kind) in codes.items()}
        self.intake = intake = intake or Intake()
        self.decimal_comma = decimal_comma  # set once the file's delimiter is known
        self.arms = {name: i for i, name in enumerate(arms)}
        # a file's arm labels, matched exactly (after trimming, on the row-by-row path)
        self.arms.update({label: arms.index(arm) for label, arm in intake.arm_labels.items()})
        self.suggestions: dict[tuple[str, str], str] = {}
        # the quick paths know the missing words as spelled in any of three cases
        if intake.missing == MISSING:
            self.missing_exact, self.as_float, self.spelled = _MISSING_EXACT, _as_float, True
        else:
            self.missing_exact = frozenset(
                spelling for word in intake.missing for spelling in (word, word.upper(), word.title())
            )
            words = {
                **{word: _AS_NUMBER[word] for word in _WORDS},
                **dict.fromkeys(self.missing_exact, "nan"),
            }
            self.as_float, self.spelled = _Floats(words).__getitem__, False
        self.batch: list[tuple[Any, ...]] = []
        # (kind, value, exposure) texts the column check has accepted: data repeat them chunk after chunk
        self.accepted: set[tuple[str, str, str]] = set()
        self.writer = writer
        self.keys = KeyStore()
        self.units = UnitRuns(len(arms))
        # one tally per (metric, arm), keyed code * arms + arm: one int hashes quicker than a tuple
        self.tallies = {
            code * len(arms) + arm: GroupTally(kind == "continuous", kind == "count")
            for code, kind in codes.values()
            for arm in range(len(arms))
        }
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
        checked = self.check(
            line,
            unit.strip(),
            arm_text.strip(),
            metric_name.strip(),
            value_text.strip(),
            exposure_text.strip(),
            site.strip(),
        )
        if checked is not None:
            self.accept(*checked)

    def check(
        self,
        line: int,
        unit: str,
        arm_text: str,
        metric_name: str,
        value_text: str,
        exposure_text: str,
        site: str,
    ) -> tuple[Any, ...] | None:
        """Return (code, arm, unit, value, exposure, site) for a valid observation, else record why not."""
        try:
            code, kind = self.codes[metric_name]
        except KeyError:
            self.errors.add(line, self._unknown("metric", metric_name))
            return None
        arm = self.arms.get(arm_text)
        if arm is None:
            self.errors.add(line, self._unknown("arm", arm_text))
            return None
        if not unit:
            self.errors.add(line, "unit_id is empty")
            return None
        if len(unit) > 200 or len(site) > 200 or "\x00" in unit or "\x00" in site:
            self.errors.add(line, "unit_id or site is longer than 200 characters or contains a NUL character")
            return None
        try:
            missing = self.intake.missing
            value = (
                None if value_text.lower() in missing else parse_value(kind, value_text, self.decimal_comma)
            )
            exposure = parse_exposure(
                kind, "" if exposure_text.lower() in missing else exposure_text, value, self.decimal_comma
            )
        except ValueError as exc:
            self.errors.add(line, f"{metric_name}: {exc}")
            return None
        return code, arm, unit, value, exposure, site or None

    def _unknown(self, what: str, text: str) -> str:
        """Say that an arm or metric is unknown, with a suggestion (remembered: rows repeat their mistakes)."""
        key = (what, text)
        if key not in self.suggestions:
            names = self.arm_names if what == "arm" else tuple(self.codes)
            message = f"unknown {what} {text!r} ({what}s: {', '.join(names)})"
            lower = {name.lower(): name for name in names}
            close = difflib.get_close_matches(text.lower(), list(lower), n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {lower[close[0]]!r}?"
            elif what == "arm" and text:
                first, second = names[0], names[1]
                message += (
                    f'; to read it as an arm, add arm_labels = {{"{text}" = "{first}"}} (or "{second}") '
                    f'to the protocol\'s [data], or use --map "{text}={first}"'
                )
            if len(self.suggestions) < 1000:
                self.suggestions[key] = message
            return message
        return self.suggestions[key]

    def accept(
        self, code: int, arm: int, unit: str, value: float | None, exposure: float | None, site: str | None
    ) -> None:
        """Buffer one valid observation (nothing is written once any row was rejected)."""
        if self.checking:
            self.keys.add(hash((unit, code)))
            self.units.add(unit, arm)
            self.tallies[code * len(self.arm_names) + arm].add(value, exposure)
        if self.errors.total == 0:
            self.batch.append((code, arm, unit, value, exposure, site))
            if len(self.batch) >= BATCH_ROWS:
                self.flush()

    def accept_plain_lines(self, lines: list[str], layout: Layout, width: int, delimiter: str) -> bool:
        """Accept a chunk of plain lines column by column; False (nothing taken) sends it row by row.

        The work per chunk is a few C-level passes over each column instead of Python calls
        per row; a chunk with any irregular line (wrong number of cells, blank, unknown
        names, spaces, malformed values) is refused whole, and the row-by-row path, which
        defines the rules and words the errors, takes it instead.
        """
        chunk = self._split_plain(lines, layout, width, delimiter)
        if chunk is None:
            return False
        if not self.checking:
            return self._write_converted(chunk)
        units, arms, sites = chunk.units, chunk.arms, chunk.sites
        checked = []
        for codes, kinds, texts, exposure_texts in chunk.metrics:
            columns = _plain_columns(
                kinds, texts, exposure_texts, self.missing_exact, self.as_float, self.accepted
            )
            if columns is None:
                return False
            checked.append((codes, *columns))
        self.units.add_column(units, arms)
        for codes, values, exposures in checked:
            self.keys.extend(map(hash, zip(units, codes, strict=True)))
            self._tally(codes, arms, values, exposures)
            if self.errors.total == 0:
                self.writer.write_columns([codes, arms, units, values, exposures, sites])
        return True

    def _split_plain(
        self, lines: list[str], layout: Layout, width: int, delimiter: str
    ) -> _SplitChunk | None:
        """Return a chunk's columns, or None if a line is irregular or a name unknown."""
        cells = _split_lines(lines, width, delimiter)
        if cells is None:
            return None
        stride = width + 1
        blank = [""] * len(lines)

        def column(index: int) -> list[str]:
            return cells[index::stride] if index >= 0 else blank

        units, sites = column(layout.unit), column(layout.site)
        arms = list(map(self.arms.get, column(layout.arm)))
        if self.checking:
            plain = _plain_texts(units, nul_free=True) and _plain_texts(sites, empty=True, nul_free=True)
        else:  # the checking loader refuses an empty or overlong unit; only trimming changes what is written
            plain = list(map(str.strip, units)) == units and list(map(str.strip, sites)) == sites
        if None in arms or not plain:
            return None
        metrics = self._metric_columns(layout, column, blank)
        if metrics is None:
            return None
        return _SplitChunk(units, arms, sites, metrics)  # type: ignore[arg-type]  # no None left in arms

    def _write_converted(self, chunk: _SplitChunk) -> bool:
        """Write a split chunk, only converted (the checking loader judges it); False if a cell will not convert.

        A value or exposure converts here exactly as ``_plain_columns`` converts it, and a
        missing one is NaN, written as NULL; what the checks would refuse may be written
        too, for the checking loader's rejection rolls the whole import back.
        """
        if self.errors.total:
            return True  # nothing more is written: no need to convert
        if self.spelled and self.writer.write_spelled(chunk):
            return True
        as_float = self.as_float
        try:
            converted = [
                (codes, list(map(as_float, texts)), list(map(as_float, exposure_texts)))
                for codes, _kinds, texts, exposure_texts in chunk.metrics
            ]
        except ValueError:
            return False
        for codes, values, exposures in converted:
            self.writer.write_columns([codes, chunk.arms, chunk.units, values, exposures, chunk.sites])
        return True

    def _metric_columns(
        self, layout: Layout, column: Callable[[int], list[str]], blank: list[str]
    ) -> list[MetricColumns] | None:
        """Return (codes, kinds, values, exposures) per metric in a chunk: one set in long form, one per metric column in wide form."""
        numbers = column
        if self.decimal_comma:  # a semicolon-separated file: a decimal comma reads as a point

            def numbers(index: int) -> list[str]:
                return list(map(str.replace, column(index), repeat(","), repeat(".")))

        if layout.form == "long":
            names = column(layout.metric)
            codes = list(map(self.code_of.get, names))
            if None in codes:
                return None
            # only the checks read the kinds: a loader that only writes converts every kind alike
            kinds = list(map(self.kind_of.__getitem__, names)) if self.checking else []
            return [(codes, kinds, numbers(layout.value), numbers(layout.exposure))]
        exposures = numbers(layout.exposure)
        metrics = []
        for index, name in layout.wide_metrics:
            kind = self.kind_of[name]
            # in wide form the exposure column belongs to the count metrics only
            metrics.append(
                (
                    [self.code_of[name]] * len(blank),
                    [kind] * len(blank),
                    numbers(index),
                    exposures if kind == "count" else blank,
                )
            )
        return metrics

    def _tally(self, codes: list[int], arms: list[int], values: list[float], exposures: list[Any]) -> None:
        """Hand a chunk's observations (NaN when missing) to the tallies of their (metric, arm)."""
        width = len(self.arm_names)
        groups = list(map(operator.add, map(width.__rmul__, codes), arms))
        tally_chunk(self.tallies, groups, values, exposures)

    def tallied(self) -> list[tuple[int, int, dict[str, Any]]]:
        """Return (code, arm, import_counts columns) for every (metric, arm) with observations."""
        width = len(self.arm_names)
        rows = []
        for group, tally in sorted(self.tallies.items()):
            columns = tally.columns()
            if columns["n"] + columns["missing"]:
                rows.append((*divmod(group, width), columns))
        return rows

    def flush(self) -> None:
        if self.batch:
            self.writer.write(self.batch)
            self.batch = []

    def finish(self) -> None:
        """Write every observation still buffered (none once a row was rejected)."""
        if self.errors.total == 0:
            self.flush()
            self.writer.finish()

    def checked(self, layout: Layout, path: str | Path) -> Checked:
        """Return what checking the whole file found, once it is read: repeats are looked for here."""
        try:
            duplicates = self.keys.repeated()
            if duplicates:
                _report_duplicates(self, layout, path, self.errors.source, duplicates)
            return Checked(layout.form, self.rows, self.errors, self.tallied(), self.units.distinct(), layout)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the hashes kept for repeats, if any spilled to disk."""
        self.keys.close()
        self.units.keys.close()


SPILL_KEYS = 1 << 20  # keys held in memory (8 MiB); beyond that they go to a temporary file
COUNT_KEYS = 1 << 16  # up to this many, repeats are counted without numpy (a few MiB of Python ints)


class KeyStore:
    """The 64-bit hashes of an import's (unit, metric) pairs, to find repeats in bounded memory.

    Up to ``SPILL_KEYS`` hashes stay in memory and are sorted in place at the end. A larger
    import spills them to a temporary file, and the search splits them by their leading
    bits into parts of about ``SPILL_KEYS`` each, sorted one at a time: memory stays flat
    however long the file is, for the price of writing 8 bytes per observation twice.
    """

    def __init__(self) -> None:
        self.keys = array("q")
        self.file: IO[bytes] | None = None
        self.spilled = 0

    def add(self, key: int) -> None:
        self.keys.append(key)
        if len(self.keys) >= SPILL_KEYS:
            self._spill()

    def extend(self, keys: Iterable[int]) -> None:
        self.keys.extend(keys)
        if len(self.keys) >= SPILL_KEYS:
            self._spill()

    def _spill(self) -> None:
        if self.file is None:
            # open until read (repeated, any_repeated) or closed
            self.file = tempfile.TemporaryFile()  # noqa: SIM115
        self.keys.tofile(self.file)
        self.spilled += len(self.keys)
        self.keys = array("q")

    def repeated(self) -> set[int]:
        """Return the hashes seen more than once."""
        if self.file is None and len(self.keys) <= COUNT_KEYS:
            # a few: counted in Python, quicker than importing numpy (~0.1 s) for an everyday file
            return {key for key, seen in Counter(self.keys).items() if seen > 1}
        return set().union(*map(_repeats, self._sorted_parts()))

    def any_repeated(self) -> bool:
        """True if some hash was seen more than once (without collecting the repeats)."""
        if self.file is None and len(self.keys) <= COUNT_KEYS:
            return len(set(self.keys)) < len(self.keys)
        with contextlib.closing(self._sorted_parts()) as parts:  # the first repeat ends the search
            return any(keys.size > 1 and bool((keys[1:] == keys[:-1]).any()) for keys in parts)

    def close(self) -> None:
        """Drop the spilled hashes, if any (an import that failed never reads them)."""
        if self.file is not None:
            self.file.close()

    def _sorted_parts(self) -> Iterator[Any]:
        """Yield the hashes as sorted int64 arrays whose repeats all lie within one array."""
        import numpy as np

        if self.file is None:
            # sorted in place: no second copy of the keys
            keys = np.frombuffer(self.keys, dtype=np.int64)
            keys.sort()
            yield keys
            return
        self._spill()
        with self.file:
            for part in self._parts(np):
                keys = np.fromfile(part, dtype=np.int64)
                keys.sort()
                yield keys

    def _parts(self, np: Any) -> Iterator[IO[bytes]]:
        """Split the spilled hashes into files by their leading bits, each about SPILL_KEYS long."""
        bits = max(1, (-(-self.spilled // SPILL_KEYS) - 1).bit_length())
        assert self.file is not None
        self.file.seek(0)
        with contextlib.ExitStack() as stack:
            parts = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(1 << bits)]
            # small blocks: the split itself should need little beside the part being sorted
            while (block := np.fromfile(self.file, dtype=np.int64, count=SPILL_KEYS // 8)).size:
                leading = block.view(np.uint64) >> np.uint64(64 - bits)
                for index, part in enumerate(parts):
                    block[leading == index].tofile(part)
            del block
            for part in parts:
                part.seek(0)
                yield part


def _repeats(keys: Any) -> set[int]:
    """Return the values that occur more than once in a sorted int64 array."""
    if keys.size < 2:
        return set()
    return {int(k) for k in keys[1:][keys[1:] == keys[:-1]]}


class UnitRuns:
    """Counts an import's distinct units per arm, exactly, when each unit's rows come together.

    A run is a stretch of consecutive observations with the same unit and arm. Each run's
    (unit, arm) hash is kept (in a ``KeyStore``); if no hash repeats, every run is a
    different unit and arm, so the runs per arm are the distinct units per arm. A unit that
    comes back always repeats its hash; a hash collision can only make two different runs
    look alike, which gives no count: a count, when given, is exact. Without one (a file
    that returns to a unit later), the analysis counts that import's units from its
    observations instead.
    """

    def __init__(self, arms: int) -> None:
        self.runs = [0] * arms
        self.keys = KeyStore()
        self.last: tuple[str, int] | None = None

    def add(self, unit: str, arm: int) -> None:
        if (unit, arm) != self.last:
            self.last = (unit, arm)
            self.runs[arm] += 1
            self.keys.add(hash(self.last))

    def add_column(self, units: list[str], arms: list[int]) -> None:
        """Take a chunk's rows, given as their unit and arm columns."""
        if not units:
            return
        last_unit, last_arm = self.last or (None, None)
        starts = list(
            map(
                operator.or_,
                map(operator.ne, units, chain((last_unit,), units)),
                map(operator.ne, arms, chain((last_arm,), arms)),
            )
        )
        start_arms = list(compress(arms, starts))
        self.keys.extend(map(hash, zip(compress(units, starts), start_arms, strict=True)))
        for arm, runs in Counter(start_arms).items():
            self.runs[arm] += runs
        self.last = (units[-1], arms[-1])

    def distinct(self) -> list[int] | None:
        """Return the distinct units per arm, or None if some unit came back after other units."""
        return None if self.keys.any_repeated() else list(self.runs)


def _split_lines(lines: list[str], width: int, delimiter: str) -> list[str] | None:
    """Return the cells of lines (no line break in any), each line's followed by a "\\n" cell; None if a line is not ``width`` cells wide or holds NUL.

    With each line break a cell of its own, every line is ``width`` cells wide exactly when
    the breaks fall every ``width + 1`` cells and the count adds up: one split of the whole
    chunk, no count of each line. A NUL is left to the row path, which words the refusal.
    """
    joined = (delimiter + "\n" + delimiter).join(lines)
    if "\x00" in joined:
        return None
    cells = joined.split(delimiter)
    stride = width + 1
    if len(cells) != len(lines) * stride - 1 or not set(cells[width::stride]) <= {"\n"}:
        return None
    return cells


def _fast_long(loader: _Loader, layout: Layout, values: list[str]) -> bool:
    """Accept a plainly valid long-form row without the general checks; False sends it to them.

    The rows of chunks that are not plain (quoted files among them) pass through here, so
    it avoids per-cell calls; anything unusual (spaces, unknown names, malformed values)
    falls back to ``_Loader.observation``, which defines the rules and words the errors.
    """
    if len(values) != layout.width:
        return False
    try:
        entry = loader.codes.get(values[layout.metric])
        arm = loader.arms.get(values[layout.arm])
        unit, text = values[layout.unit], values[layout.value]
        exposure_text = values[layout.exposure] if layout.exposure >= 0 else ""
        site = values[layout.site] if layout.site >= 0 else ""
    except IndexError:
        return False
    if entry is None or arm is None or not (_plain_texts([unit]) and _plain_texts([site], empty=True)):
        return False
    code, kind = entry
    parsed = _plain_cells(kind, text, exposure_text, loader.missing_exact)
    if parsed is None:
        return False
    loader.accept(code, arm, unit, parsed[0], parsed[1], site or None)
    return True


def _plain_columns(
    kinds: list[str],
    texts: list[str],
    exposure_texts: list[str],
    missing: frozenset[str] | None = None,
    as_float: Callable[[str], float] | None = None,
    accepted: set[tuple[str, str, str]] | None = None,
) -> tuple[list[float], list[float]] | None:
    """Return a chunk's values and exposures (NaN when missing) if every cell pair is plain, else None.

    Pair by pair the results are those of ``_plain_cells``, with NaN for a missing value
    or exposure. Data repeat their cells, so each distinct (kind, value, exposure) is judged
    once, by ``_plain_cells`` itself, and not again if it is in ``accepted`` (the triples
    of the loader's earlier accepted chunks, which this adds to, up to ``ACCEPTED_CELLS``);
    the columns are then read by ``_as_float``, which reads every accepted cell as
    ``_plain_cells`` does.
    """
    missing = _MISSING_EXACT if missing is None else missing
    as_float = as_float or _as_float
    pairs = set(zip(kinds, texts, exposure_texts, strict=True))
    if accepted is not None:
        pairs -= accepted
    for kind, value_text, exposure_text in pairs:
        if _plain_cells(kind, value_text, exposure_text, missing) is None:
            return None
    if accepted is not None and len(accepted) < ACCEPTED_CELLS:
        accepted |= pairs
    return list(map(as_float, texts)), list(map(as_float, exposure_texts))


def _plain_texts(texts: list[str], empty: bool = False, nul_free: bool = False) -> bool:
    """True if unit ids (or sites, which may be ``empty``) need no stripping and pass the general checks.

    ``nul_free``: the caller has looked for NUL already, in the text these came from.
    """
    return (
        (empty or all(texts))
        and max(map(len, texts), default=0) <= 200
        and list(map(str.strip, texts)) == texts
        and (nul_free or "\x00" not in "".join(texts))
    )


def _plain_cells(
    kind: str, text: str, exposure_text: str, missing: frozenset[str] | None = None
) -> tuple[float | None, float | None] | None:
    """Return (value, exposure) for an unremarkable cell pair, a missing value included, or None to use the full checks.

    Whatever this accepts, ``_Loader.check`` accepts with the same result.
    """
    if text in (_MISSING_EXACT if missing is None else missing):
        if not exposure_text:
            return None, None
        if kind != "count":
            return None
        value = None
    elif kind == "binary":
        value = _BINARY_EXACT.get(text)
        return None if value is None or exposure_text else (value, None)
    else:
        try:
            value = float(text)
        except ValueError:
            return None
        # what float() reads beyond the documented syntax, and underflow to 0: the full checks word it
        if not -LARGEST <= value <= LARGEST or "_" in text or not text.isascii():
            return None
        if not value and _underflows(text):
            return None
    if kind != "count":
        return None if exposure_text else (value, None)
    try:
        exposure = float(exposure_text)
    except ValueError:
        return None
    if "_" in exposure_text or not exposure_text.isascii():
        return None
    if not 0 < exposure <= LARGEST or (value is not None and not (value >= 0 and value == int(value))):
        return None
    return value, exposure


_BINARY_EXACT = {**BINARY, "TRUE": 1.0, "FALSE": 0.0, "True": 1.0, "False": 0.0, "Yes": 1.0, "No": 0.0}
# the default missing words (riskreg.config) as spelled in three cases
_MISSING_EXACT = frozenset(spelling for word in MISSING for spelling in (word, word.upper(), word.title()))
_COPY_NULLS: dict[Any, str] = {"nan": "\\N", "None": "\\N", None: "\\N", "": "\\N"}  # COPY text's NULL
# for the column checks: words stand for their numbers, missing markers for NaN
_WORDS = frozenset(word for word in _BINARY_EXACT if not word[0].isdigit())
_AS_NUMBER = {**{word: str(_BINARY_EXACT[word]) for word in _WORDS}, **dict.fromkeys(_MISSING_EXACT, "nan")}
CACHED_FLOATS = 1 << 16  # distinct texts remembered: a few MiB at most
# accepted (kind, value, exposure) triples remembered: well under 1 MiB, and repeated data need far fewer
ACCEPTED_CELLS = 1 << 12


class _Floats(dict[str, float]):
    """Cell texts read as numbers (words and missing markers as ``_AS_NUMBER`` says), remembered.

    Data repeat their values (scores, counts, 0 and 1), and a remembered text is a C-level
    lookup, about a third of a call to ``float``; a text that is no number raises ValueError.
    """

    def __init__(self, words: dict[str, str] | None = None) -> None:
        super().__init__()
        self.words = _AS_NUMBER if words is None else words

    def __missing__(self, text: str) -> float:
        value = float(self.words.get(text, text))
        if len(self) < CACHED_FLOATS:
            self[text] = value
        return value


_as_float = _Floats().__getitem__


class _CodeTexts(dict[int, str]):
    """Metric and arm codes as COPY text, remembered (a lookup is quicker than ``str``)."""

    def __missing__(self, code: int) -> str:
        self[code] = str(code)
        return self[code]


_CODE_TEXT = _CodeTexts()
# In COPY text, NULL for a missing value, and the binary words as 1 and 0.
_COPY_NUMBER = {
    **{word: "1" if _BINARY_EXACT[word] else "0" for word in _WORDS},
    **dict.fromkeys(_MISSING_EXACT, "\\N"),
}
_DECIMAL_CHARS = str.maketrans("", "", "0123456789.+-")
LONGEST_SPELLED = 20  # characters: no plain decimal this long under- or overflows a double


def _copy_numbers(texts: list[str]) -> list[str] | None:
    """Return number cells as COPY text, as spelled, if each is a short plain decimal or missing; else None.

    Such a text, if ``float`` reads it (the checks see to that), is read by PostgreSQL as
    the same double. Exponents, spaces, underscores (``float`` reads 1_000) and other
    digits than ASCII ones are left out, as is length: 1e-400 is 0.0 to ``float``, an error to PostgreSQL.
    """
    cells = list(map(_COPY_NUMBER.get, texts, texts))
    if max(map(len, cells), default=0) > LONGEST_SPELLED:
        return None
    return None if "".join(cells).replace("\\N", "").translate(_DECIMAL_CHARS) else cells


def _copy_plain(units: list[str], sites: list[str]) -> bool:
    """True if unit ids and sites go into COPY text as they are (no backslash or tab to escape)."""
    texts = "".join(units) + "".join(filter(None, sites))
    return "\\" not in texts and "\t" not in texts


def _writer(session: Session, import_id: int) -> Any:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _CopyWriter(connection, import_id)
    return _InsertWriter(connection, import_id)


class _InsertWriter:
    """Multi-row INSERT statements on the raw DBAPI connection (SQLite's fastest bulk path)."""

    def __init__(self, connection: Any, import_id: int):
        self.cursor = connection.connection.dbapi_connection.cursor()
        self.statements: dict[int, str] = {}
        self.import_id = int(import_id)  # a literal in the statement: one value fewer to bind per row
        self.pending: list[list[Any]] = []

    def _statement(self, rows: int) -> str:
        if rows not in self.statements:
            row = f"({self.import_id}," + ",".join("?" * len(COLUMNS)) + ")"
            self.statements[rows] = (
                f"INSERT INTO observations (import_id, {', '.join(COLUMNS)}) VALUES {','.join([row] * rows)}"
            )
        return self.statements[rows]

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.cursor.execute(self._statement(len(rows)), [v for row in rows for v in row])

    def write_columns(self, columns: list[list[Any]]) -> None:
        """Write rows given column by column (NaN value or empty site: none), in whole batches; the rest waits.

        Statements of one size only (but the last) keep SQLite's statement cache small: a
        compiled 400-row INSERT is large, and one per odd size would fill the cache.
        """
        if self.pending:
            columns = [held + new for held, new in zip(self.pending, columns, strict=True)]
        total = len(columns[0])
        whole = total - total % BATCH_ROWS
        for start in range(0, whole, BATCH_ROWS):
            self._insert_columns(columns, start, start + BATCH_ROWS)
        self.pending = [column[whole:] for column in columns] if whole < total else []

    def finish(self) -> None:
        """Write the rows still held back."""
        if self.pending:
            self._insert_columns(self.pending, 0, len(self.pending[0]))
            self.pending = []

    def _insert_columns(self, columns: list[list[Any]], start: int, end: int) -> None:
        parameters: list[Any] = []
        for column in columns:
            parameters += column[start:end]
        # a NaN value is bound as a double, which SQLite stores as NULL: the missing value
        self.cursor.execute(self._column_statement(end - start), parameters)

    def _column_statement(self, rows: int) -> str:
        key = -rows
        if key not in self.statements:
            # the last column, site, comes as text: empty means none
            numbered = (
                f"({self.import_id},"
                + ",".join(f"?{c * rows + r + 1}" for c in range(len(COLUMNS) - 1))
                + f",NULLIF(?{(len(COLUMNS) - 1) * rows + r + 1},''))"
                for r in range(rows)
            )
            self.statements[key] = (
                f"INSERT INTO observations (import_id, {', '.join(COLUMNS)}) VALUES {','.join(numbered)}"
            )
        return self.statements[key]

    def write_spelled(self, chunk: _SplitChunk) -> bool:
        """Write nothing: SQLite binds numbers, so a chunk's texts are converted first."""
        return False

    def close(self, failed: bool = False) -> None:
        self.cursor.close()


class _NoWriter:
    """The checking process's writer: it writes nothing (the importer writes)."""

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        pass

    def write_columns(self, columns: list[list[Any]]) -> None:
        pass

    def write_spelled(self, chunk: _SplitChunk) -> bool:
        return True

    def finish(self) -> None:
        pass

    def close(self, failed: bool = False) -> None:
        pass


class _CopyWriter:
    """One PostgreSQL COPY FROM STDIN for the whole import, inside the import's transaction.

    While the COPY is open the connection runs nothing else; it ends before the import's
    remaining statements (duplicate check, replacement, audit event).
    """

    def __init__(self, connection: Any, import_id: int):
        self.cursor = connection.connection.dbapi_connection.cursor()
        self.context = self.cursor.copy(f"COPY observations (import_id, {', '.join(COLUMNS)}) FROM STDIN")
        self.copy = self.context.__enter__()
        self.import_id = import_id

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        write_row, import_id = self.copy.write_row, self.import_id
        for row in rows:
            write_row((import_id, *row))

    def write_columns(self, columns: list[list[Any]]) -> None:
        """Write rows given column by column, as COPY text; a NaN value (missing) becomes NULL, as on SQLite."""
        codes, arms, units, values, exposures, sites = columns
        if not _copy_plain(units, sites):
            # COPY text would need escapes for these: let psycopg write the rows
            values = [None if v != v else v for v in values]
            exposures = [None if e != e else e for e in exposures]
            sites = [site or None for site in sites]
            self.write(list(zip(codes, arms, units, values, exposures, sites, strict=True)))
            return
        # repr() is the shortest text that reads back as the same double; nan and None are NULL
        value_texts, exposure_texts = list(map(repr, values)), list(map(repr, exposures))
        self.write_texts(
            codes,
            arms,
            units,
            list(map(_COPY_NULLS.get, value_texts, value_texts)),
            list(map(_COPY_NULLS.get, exposure_texts, exposure_texts)),
            sites,
        )

    def write_spelled(self, chunk: _SplitChunk) -> bool:
        """COPY a chunk with its numbers as the file spells them, if the server reads each as ``float`` does; else write nothing.

        Converting a number to text again costs more than the server's own reading of it;
        plain decimals (see ``_copy_numbers``) are read alike, correctly rounded, by both.
        """
        spelled = [
            (codes, _copy_numbers(texts), _copy_numbers(exposure_texts))
            for codes, _kinds, texts, exposure_texts in chunk.metrics
        ]
        if not _copy_plain(chunk.units, chunk.sites) or any(v is None or e is None for _, v, e in spelled):
            return False
        for codes, values, exposures in spelled:
            self.write_texts(codes, chunk.arms, chunk.units, values, exposures, chunk.sites)  # type: ignore[arg-type]
        return True

    def write_texts(
        self,
        codes: list[int],
        arms: list[int],
        units: list[str],
        values: list[str],
        exposures: list[str],
        sites: list[str],
    ) -> None:
        """Write rows given as COPY text cells (NULL as \\N; an empty site is none); units and sites need no escapes."""
        rows = zip(
            map(_CODE_TEXT.__getitem__, codes),
            map(_CODE_TEXT.__getitem__, arms),
            units,
            values,
            exposures,
            map(_COPY_NULLS.get, sites, sites),
            strict=True,
        )
        prefix = f"{self.import_id}\t"
        self.copy.write(prefix + f"\n{prefix}".join(map("\t".join, rows)) + "\n")

    def finish(self) -> None:
        """Nothing is held back: COPY takes rows in any number."""

    def close(self, failed: bool = False) -> None:
        error = RuntimeError("import rejected") if failed else None
        # With the connection gone the server has rolled back already; ending the COPY still
        # stops psycopg's writer thread, but its "error ignored" warning would reach the user.
        logger = logging.getLogger("psycopg")
        level = logger.level
        if self.cursor.connection.broken:
            logger.setLevel(logging.ERROR)
        try:
            self.context.__exit__(type(error) if error else None, error, None)
        finally:
            logger.setLevel(level)
            self.cursor.close()


def new_import(
    session: Session, ctx: Context, pilot: Pilot, stage_index: int, kind: str, source: str
) -> DataImport:
    """Start the record of one data file's import (its counts are filled in at the end)."""
    record = DataImport(
        pilot_id=pilot.id,
        stage_index=stage_index,
        kind=kind,
        source=Path(source).name,
        rows=0,
        missing=0,
        replaced=0,
        at=ctx.now,
        actor=ctx.actor,
        units_checked=kind == "outcomes",  # checked against the earlier stages' units (count_once)
    )
    session.add(record)
    session.flush()
    return record


@dataclass
class Checked:
    """What checking a whole outcome file found: its form, rows, rejections, tallies and units per arm."""

    form: str
    rows: int
    errors: RowErrors
    tallied: list[tuple[int, int, dict[str, Any]]]
    units: list[int] | None  # distinct units per arm, when known exactly (UnitRuns)
    layout: Layout | None = None


def import_outcomes(
    session: Session,
    ctx: Context,
    ref: str,
    path: str | Path,
    stage: str,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    new_units_only: bool = False,
    sheet: str | None = None,
    intake: Intake | None = None,
    mapping: dict[str, str] | None = None,
    strict: bool = False,
    append: bool = False,
) -> ImportSummary:
    """Import an outcome CSV or workbook sheet (long or wide form) into a pilot's open stage, all rows or none.

    Data for metrics the stage already has is refused, unless ``replace`` swaps it or
    ``append`` adds new units to it (a monthly extract): a unit the stage already holds
    for a metric is then refused like one counted in an earlier stage.

    A large file is checked in a second process while this one writes it (see
    ``_CheckingProcess``); the checks, and so the result, are the same either way. A unit
    is counted once per metric: a row for a unit already counted for its metric in an
    earlier stage is refused, or with ``new_units_only`` left out (``count_once``).
    """
    if replace and append:
        raise InvalidInput("--append adds to the stage's data and --replace swaps it: choose one")
    path = with_sheet(path, sheet)  # a workbook's sheet (the first by default) is read as CSV rows
    pilot = get_pilot(session, ref)
    protocol = protocol_of(pilot)
    stage_index = open_stage(pilot, protocol, stage)
    codes = metric_codes(session, pilot)
    source = str(path)
    arms = protocol.design.arms
    record = new_import(session, ctx, pilot, stage_index, "outcomes", source)
    if intake is None:
        intake = intake_for(protocol, codes, mapping, strict, ctx.config.missing_values)
    checked = _read_and_write(session, record.id, path, source, codes, arms, progress, intake)
    if checked.rows == 0 and checked.errors.total == 0:
        raise InvalidInput(f"{source}: no data rows (only a header)")
    checked.errors.raise_if_any()
    if protocol.design.clustered:
        check_clusters(session, pilot, record, protocol, path, source, checked.layout, intake, replace)
    summary = ImportSummary(pilot.ref, stage, source, checked.form, rows=checked.rows, dry_run=dry_run)
    summary.ignored = list(checked.layout.ignored) if checked.layout is not None else []
    how = Adding(replace=replace, append=append, new_units_only=new_units_only)
    _finish(session, ctx, pilot, record, checked, codes, summary, protocol, how, path)
    return summary


@dataclass(frozen=True)
class Adding:
    """How an outcome file joins the stage's data: alone, swapping (replace) or adding (append) units."""

    replace: bool = False
    append: bool = False
    new_units_only: bool = False


def _read_and_write(
    session: Session,
    import_id: int,
    path: str | Path,
    source: str,
    codes: dict[str, tuple[int, str]],
    arms: tuple[str, ...],
    progress: Progress | None,
    intake: Intake,
) -> Checked:
    """Read, check and write a whole outcome file; a large one is checked in a second process meanwhile."""
    with contextlib.ExitStack() as cleanup:
        # forked before the writer opens (a COPY runs a thread of psycopg's)
        checker = _CheckingProcess.start(path, source, codes, arms, intake) if _check_apart(path) else None
        if checker is not None:
            cleanup.callback(checker.stop)
        # the writing loader's own rejections are not reported: the checking process finds them all
        loader = _Loader(
            codes, arms, RowErrors.for_file(source), _writer(session, import_id), checker is None, intake
        )
        cleanup.callback(loader.close)
        if checker is None:
            return loader.checked(_load(loader, path, source, progress), path)
        try:
            _load(loader, path, source, progress, checker.failed.is_set)
        except Exception as exc:
            if not isinstance(exc, RiskregError):
                # the database refused what it was sent (a COPY of a value the checks reject, say):
                # the rows the checks reject explain it better than the database's error
                checker.result().errors.raise_if_any()
            raise
        return checker.result()


PARALLEL_BYTES = 4 << 20  # files this large (~90,000 long rows) are checked in a second process


def _check_apart(path: str | Path) -> bool:
    """True if a file is large enough to be checked in a second process while this one writes it."""
    if sys.platform != "linux":  # fork is the quick and safe start only on Linux
        return False
    if is_workbook(path):
        return False  # parsing the sheet is most of the work: a second reader would only repeat it
    if threading.active_count() > 1:
        return False  # a lock another thread holds at the fork would stay locked in the child
    try:
        return os.path.getsize(path) >= PARALLEL_BYTES
    except OSError:
        return False  # the sequential path words the error


class _CheckingProcess:
    """Checks an outcome file in a forked process while the importing process writes it.

    The checks, the duplicate search, the tallies and the unit counts take about as long
    as the writing, and two cores do both at once. The forked process reads the file
    itself (no rows cross between the processes), touches no database connection, and
    sends back one ``Checked`` or the error that stopped it; it sets ``failed`` at its
    first rejected row, so that the writer can stop early. It ends if the importer dies.
    """

    def __init__(self, source: str, process: Any, answers: Any, failed: Any):
        self.source, self.process, self.answers, self.failed = source, process, answers, failed

    @classmethod
    def start(
        cls,
        path: str | Path,
        source: str,
        codes: dict[str, tuple[int, str]],
        arms: tuple[str, ...],
        intake: Intake,
    ) -> _CheckingProcess:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        failed = context.Event()
        answers, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_check_and_send,
            args=(sender, failed, os.getpid(), path, source, codes, arms, intake),
            name="riskreg-check",
            daemon=True,
        )
        # Frozen objects are left alone by the child's garbage collector: it never finalises
        # what the importer holds (a database connection that was dropped but not yet
        # collected, say), and touches fewer pages it would then have to copy.
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()
        sender.close()  # the child's end: a child that dies without answering gives EOFError here
        return cls(source, process, answers, failed)

    def result(self) -> Checked:
        """Wait for the checking process; return what it found or raise the error that stopped it."""
        try:
            answer = self.answers.recv()
        except EOFError:
            self.process.join()
            raise RiskregError(
                f"{self.source}: the process checking the file ended without an answer "
                f"(exit code {self.process.exitcode}); nothing was imported"
            ) from None
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    def stop(self) -> None:
        """End the checking process (at once, if it is still running) and release the pipe."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.answers.close()


def _check_and_send(
    sender: Any,
    failed: Any,
    importer: int,
    path: str | Path,
    source: str,
    codes: dict[str, tuple[int, str]],
    arms: tuple[str, ...],
    intake: Intake,
) -> None:
    """Check a whole outcome file without writing and send the ``Checked`` (in the checking process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle: it ends this process
    errors = RowErrors.for_file(source)
    loader = _Loader(codes, arms, errors, _NoWriter(), intake=intake)

    def progress(_position: int) -> None:
        if os.getppid() != importer:
            os._exit(0)  # the importer is gone (killed, say): nobody waits for the answer
        if errors.total and not failed.is_set():
            failed.set()

    try:
        answer: Any = loader.checked(_load(loader, path, source, progress), path)
    except Exception as exc:  # every failure goes back to the importer, which raises it
        answer = exc
    try:
        sender.send(answer)
    except BrokenPipeError:
        return  # the importer is gone
    except (pickle.PicklingError, TypeError, AttributeError):  # an error that does not pickle
        sender.send(RuntimeError(f"checking the file failed: {answer!r}"))


def _load(
    loader: _Loader,
    path: str | Path,
    source: str,
    progress: Progress | None = None,
    stopped: Callable[[], bool] | None = None,
) -> Layout:
    """Read, check and write a whole outcome file through the loader; return its layout.

    ``stopped`` is asked between chunks: once it says True the rest of the file is not read
    (the checking process has rejected a row, so nothing written will be kept).
    """
    failed = True
    try:
        if is_workbook(path):  # a sheet's rows, row by row through the same checks
            with open_table(path, source) as sheet:
                layout = layout_of(sheet.header, source, list(loader.codes), loader.intake)
                loader.rows += _stream(loader, layout, sheet.rows)
        else:
            with open_text(path) as handle:
                parsed = read_csv(handle, source)
                layout = layout_of(parsed.header, source, list(loader.codes), loader.intake, parsed.names)
                loader.decimal_comma = parsed.delimiter == ";"
                _stream_chunks(loader, layout, parsed, handle, progress, stopped)
        loader.finish()
        failed = loader.errors.total > 0
    finally:
        loader.writer.close(failed)
    return layout


def _stream_chunks(
    loader: _Loader,
    layout: Layout,
    parsed: CsvRows,
    handle: Any,
    progress: Progress | None,
    stopped: Callable[[], bool] | None = None,
) -> None:
    """Stream a file: plain chunks column by column, anything else row by row."""
    width = len(parsed.header)
    for chunk in read_chunks(handle, parsed.source, parsed.delimiter):
        if stopped is not None and stopped():
            return
        if chunk.rows is not None:  # quoting from here on: the csv module reads the rest
            loader.rows += _stream(loader, layout, chunk.rows, handle, progress)
            return
        if loader.accept_plain_lines(chunk.lines, layout, width, parsed.delimiter):
            loader.rows += len(chunk.lines)
        else:
            loader.rows += _stream(loader, layout, chunk.numbered_rows(parsed.source, parsed.delimiter))
        if progress is not None:
            progress(handle.buffer.tell())


def _stream(
    loader: _Loader,
    layout: Layout,
    rows: Iterator[tuple[int, list[str]]],
    handle: Any = None,
    progress: Progress | None = None,
) -> int:
    """Check and buffer rows one by one; return how many there were."""
    count = 0
    columns = layout.columns
    for line, values in rows:
        count += 1
        if columns is not None and len(values) != columns.width:
            problem = width_problem(values, columns)
            if problem is not None:
                loader.errors.add(line, problem)
                continue
        if layout.form == "long":
            if not _fast_long(loader, layout, values):
                loader.observation(line, *_long_cells(layout, values))
        else:
            unit, arm = trimmed_cell(values, layout.unit), trimmed_cell(values, layout.arm)
            exposure, site = trimmed_cell(values, layout.exposure), trimmed_cell(values, layout.site)
            for index, name in layout.wide_metrics:
                # in wide form the exposure column belongs to the count metrics only
                kind = loader.codes[name][1]
                loader.observation(
                    line,
                    unit,
                    arm,
                    name,
                    trimmed_cell(values, index),
                    exposure if kind == "count" else "",
                    site,
                )
        if progress is not None and count % 20_000 == 0:
            progress(handle.buffer.tell())
    return count


def _long_cells(layout: Layout, values: list[str]) -> tuple[str, ...]:
    return tuple(
        trimmed_cell(values, i)
        for i in (layout.unit, layout.arm, layout.metric, layout.value, layout.exposure, layout.site)
    )


def _report_duplicates(
    loader: _Loader, layout: Layout, path: str | Path, source: str, duplicates: set[int]
) -> None:
    """Read the file again (only when duplicates exist) to name the lines that repeat a unit and metric."""
    first: dict[tuple[str, int], int] = {}
    with open_table(path, source) as parsed:
        for line, values in parsed.rows:
            cells = (
                [_long_cells(layout, values)]
                if layout.form == "long"
                else [
                    (trimmed_cell(values, layout.unit), "", name, "", "", "")
                    for _, name in layout.wide_metrics
                ]
            )
            for unit, _arm, name, *_ in cells:
                entry = loader.codes.get(name)
                if entry is None or hash((unit, entry[0])) not in duplicates:
                    continue
                key = (unit, entry[0])
                if key in first:
                    loader.errors.add(
                        line,
                        f"duplicate: the same unit and metric as line {first[key]} (use one row per unit and metric)",
                    )
                else:
                    first[key] = line


def _finish(
    session: Session,
    ctx: Context,
    pilot: Pilot,
    record: DataImport,
    checked: Checked,
    codes: dict[str, tuple[int, str]],
    summary: ImportSummary,
    protocol: Protocol,
    how: Adding,
    path: str | Path,
) -> None:
    names = {code: name for name, (code, _kind) in codes.items()}
    in_file = sorted({code for code, _arm, _columns in checked.tallied})
    summary.replaced = clear_or_refuse(session, pilot, record, in_file, names, how, summary.stage)
    count_once(session, record, checked, codes, summary, protocol, how, path)
    sums: dict[str, dict[str, dict[str, Any]]] = {}
    for code, arm, columns in checked.tallied:
        metric = summary.by_metric.setdefault(names[code], {})
        metric[protocol.design.arms[arm]] = {"n": columns["n"], "missing": columns["missing"]}
        # the sufficient statistics analyses read, so that audit verify can hold them to the event
        sums.setdefault(names[code], {})[protocol.design.arms[arm]] = {
            key: event_number(columns.get(key)) for key in SUM_COLUMNS
        }
        summary.observations += columns["n"] + columns["missing"]
        summary.missing += columns["missing"]
        session.add(ImportCount(import_id=record.id, metric=code, arm=arm, **columns))
    if checked.units is not None:
        session.add_all(
            ImportUnits(import_id=record.id, arm=arm, units=n) for arm, n in enumerate(checked.units) if n
        )
    record.rows, record.missing, record.replaced = summary.observations, summary.missing, summary.replaced
    after = {k: v for k, v in summary.to_dict().items() if k not in ("pilot", "dry_run")}
    if not summary.ignored:
        del after["ignored"]  # events of imports without ignored columns read as before
    if how.append:
        after["append"] = True  # joined the stage's data for its metrics
    audit.log(session, ctx, "pilot.data", pilot.ref, None, {**after, "file": record.source, "sums": sums})


def event_number(value: float | None) -> float | str | None:
    """Return a sum as an event records it: the float itself, or its name when not finite (JSON has no inf)."""
    if value is None or math.isfinite(value):
        return value
    return repr(float(value))
