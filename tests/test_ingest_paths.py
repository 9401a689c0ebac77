"""The two ways a long-form file is read give the same result.

Plain chunks are checked column by column (``_plain_columns``); anything else goes row by
row through the csv module, ``_plain_cells`` and the general checks, which word the
errors. Whatever the column path accepts must equal what the row path stores, and a file
must import identically whichever path its lines take.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskreg.cli import cli
from riskreg.ingest import _plain_cells, _plain_columns, _split_lines
from tests.pilot_fixtures import PROTOCOL

KINDS = ("continuous", "binary", "count")
# the cells that decide between the paths: numbers in every spelling, words, markers, junk
VALUE_TEXTS = ["0", "1", "2", "3.5", "-1", "1e3", "1_000", " 4", "4 ", "0.0", "1.0", "+2", ".5", "5.", "1e309",
               "nan", "NaN", "inf", "-inf", "", "NA", "na", "N/A", "n/a", "Na", "yes", "no", "Yes", "TRUE", "false",
               "x", "٣", "1e-320", "9" * 30, "4\x00"]  # fmt: skip
EXPOSURE_TEXTS = ["", "1", "7.5", "0", "-2", "nan", "inf", "1e309", "x", " 3", "NA"]

cells = st.tuples(st.sampled_from(KINDS), st.sampled_from(VALUE_TEXTS), st.sampled_from(EXPOSURE_TEXTS))


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and (a == b or (a != a and b != b)))


@settings(max_examples=400, deadline=None)
@given(st.lists(cells, min_size=1, max_size=12))
def test_the_column_check_accepts_exactly_what_the_cell_check_accepts_with_equal_values(rows):
    kinds, texts, exposures = (list(column) for column in zip(*rows, strict=True))
    by_cell = [_plain_cells(*row) for row in rows]
    by_column = _plain_columns(kinds, texts, exposures)
    if any(result is None for result in by_cell):
        assert by_column is None
        refused: set[tuple[str, str, str]] = set()
        assert _plain_columns(kinds, texts, exposures, accepted=refused) is None
        assert refused == set()  # nothing of a refused chunk is remembered
        return
    assert by_column is not None
    # a loader remembers the cell pairs it accepted: a chunk of them again gives the same columns
    accepted: set[tuple[str, str, str]] = set()
    assert _plain_columns(kinds, texts, exposures, accepted=accepted) is not None
    assert accepted == set(zip(kinds, texts, exposures, strict=True))
    remembered = _plain_columns(kinds, texts, exposures, accepted=accepted)
    assert remembered is not None
    assert [list(map(repr, column)) for column in remembered] == [
        list(map(repr, column)) for column in by_column
    ]
    values, spans = by_column
    for (value, span), column_value, column_span in zip(by_cell, values, spans, strict=True):
        # the column path marks a missing value or exposure with NaN (stored as NULL)
        assert _same(value, None if math.isnan(column_value) else column_value)
        assert _same(span, None if math.isnan(column_span) else column_span)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["", "a", "7", " ", "\n", "x\x00"]), min_size=1, max_size=6),
        min_size=1,  # a chunk has a line at least
        max_size=6,
    ),
    st.integers(1, 6),
    st.sampled_from([",", ";", "\t"]),
)
def test_a_chunk_splits_into_cells_only_when_every_line_is_the_header_s_width(rows, width, delimiter):
    """One split of the chunk finds exactly the lines of another width, or with NUL, as a count of each line would."""
    lines = [delimiter.join(cells).replace("\n", "") for cells in rows]  # no line holds a line break
    cells = _split_lines(lines, width, delimiter)
    regular = all(line.count(delimiter) == width - 1 for line in lines) and not any(
        "\x00" in line for line in lines
    )
    if not regular:
        assert cells is None
        return
    assert cells is not None
    assert [cells[start : start + width] for start in range(0, len(cells), width + 1)] == [
        line.split(delimiter) for line in lines
    ]


# --- whole files -----------------------------------------------------------------------------

METRICS = {"wellbeing": "continuous", "readmitted": "binary", "incidents": "count"}


@pytest.fixture(scope="module")
def registered_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paths")
    protocol = folder / "befriending.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    database = folder / "registered.db"
    CliRunner().invoke(cli, ["--db", f"sqlite:///{database}", "init"])
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{database}", "pilot", "register", str(protocol)])
    assert result.exit_code == 0, result.output
    return database


def _import(template: Path, folder: Path, name: str, text: str) -> tuple[int, str, list[tuple]]:
    database = folder / f"{name}.db"
    shutil.copy(template, database)
    csv = folder / f"{name}.csv"
    csv.write_bytes(text.encode("utf-8"))
    result = CliRunner().invoke(
        cli, ["--db", f"sqlite:///{database}", "pilot", "data", "P-1", str(csv), "--stage", "feasibility"]
    )
    connection = sqlite3.connect(database)
    rows = connection.execute(
        "SELECT metric, arm, unit_id, value, exposure, site FROM observations ORDER BY unit_id, metric"
    ).fetchall()
    connection.close()
    # the two files have different names: compare the messages without them
    return result.exit_code, result.output.replace(str(csv), "FILE"), rows


def _kept(folder: Path, name: str) -> tuple[list[tuple], list[tuple]]:
    """The statistics and unit counts an import into ``name``.db kept (what analyses read)."""
    connection = sqlite3.connect(folder / f"{name}.db")
    counts = connection.execute("SELECT * FROM import_counts ORDER BY metric, arm").fetchall()
    units = connection.execute("SELECT * FROM import_units ORDER BY arm").fetchall()
    connection.close()
    return counts, units


PLAIN = {
    "continuous": ["40", "3.5", "-1", "NA", ""],
    "binary": ["0", "1", "yes", "NA"],
    "count": ["0", "2", "NA"],
}
ODD_LONG = (
    [" u5", "", "u\x00", "u" * 201],
    ["Pilot", "pilot "],
    ["unknown", *METRICS],
    VALUE_TEXTS,
    EXPOSURE_TEXTS,
    [" south", "so\x00uth"],
)


@st.composite
def line(draw: st.DrawFn) -> tuple[str, ...]:
    """A long-form line, valid by construction in three cases of four, else with one odd cell."""
    metric = draw(st.sampled_from(list(METRICS)))
    kind = METRICS[metric]
    cells = [
        draw(st.sampled_from(["u1", "u2", "u3"])),
        draw(st.sampled_from(["comparison", "pilot"])),
        metric,
        draw(st.sampled_from(PLAIN[kind])),
        draw(st.sampled_from(["2", "7.5"] if kind == "count" else [""])),
        draw(st.sampled_from(["", "north"])),
    ]
    if draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, len(cells) - 1))
        cells[index] = draw(st.sampled_from(ODD_LONG[index]))
    return tuple(cells)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line(), min_size=1, max_size=8), st.integers(20, 200), st.integers(1, 4))
def test_a_file_imports_the_same_through_the_column_path_and_the_csv_module(
    registered_db, tmp_path, lines, chunk, batch
):
    """Small chunks and batches mix plain and irregular chunks and carry rows between batches."""
    from unittest import mock

    import riskreg.csvfile
    import riskreg.ingest

    header = "unit_id,arm,metric,value,exposure,site\n"
    plain = header + "".join(",".join(cells) + "\n" for cells in lines)
    # quoting every cell sends every line through the csv module, row by row
    quoted = header + "".join(",".join(f'"{c}"' for c in cells) + "\n" for cells in lines)
    with (
        mock.patch.object(riskreg.csvfile, "CHUNK_CHARS", chunk),
        mock.patch.object(riskreg.ingest, "BATCH_ROWS", batch),
    ):
        through_columns = _import(registered_db, tmp_path, "plain", plain)
        kept = _kept(tmp_path, "plain")
    assert through_columns == _import(registered_db, tmp_path, "quoted", quoted)
    assert kept == _kept(tmp_path, "quoted")


ODD_WIDE = ([" u4", ""], ["pilot "], VALUE_TEXTS, VALUE_TEXTS, VALUE_TEXTS, EXPOSURE_TEXTS, [" south"])


@st.composite
def wide_line(draw: st.DrawFn) -> tuple[str, ...]:
    """A wide line (wellbeing, readmitted, incidents), valid by construction in three cases of four."""
    cells = [
        draw(st.sampled_from(["u1", "u2", "u3"])),
        draw(st.sampled_from(["comparison", "pilot"])),
        *(draw(st.sampled_from(PLAIN[kind])) for kind in METRICS.values()),
        draw(st.sampled_from(["2", "7.5"])),
        draw(st.sampled_from(["", "north"])),
    ]
    if draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, len(cells) - 1))
        cells[index] = draw(st.sampled_from(ODD_WIDE[index]))
    return tuple(cells)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(wide_line(), min_size=1, max_size=6))
def test_a_wide_file_imports_the_same_through_the_column_path_and_the_csv_module(
    registered_db, tmp_path, lines
):
    header = "unit_id,arm,wellbeing,readmitted,incidents,exposure,site\n"
    plain = header + "".join(",".join(cells) + "\n" for cells in lines)
    quoted = header + "".join(",".join(f'"{c}"' for c in cells) + "\n" for cells in lines)
    through_columns = _import(registered_db, tmp_path, "plain", plain)
    assert through_columns == _import(registered_db, tmp_path, "quoted", quoted)
    assert _kept(tmp_path, "plain") == _kept(tmp_path, "quoted")


def test_quoting_part_way_through_hands_the_rest_of_the_file_to_the_csv_module(registered_db, tmp_path):
    header = "unit_id,arm,metric,value,exposure,site\n"
    rows = [f"u{i},pilot,wellbeing,{i},,north\n" for i in range(1, 5)]
    text = header + "".join(rows[:2]) + '"u3",pilot,wellbeing,"3",,"north, east"\n' + rows[3]
    code, output, stored = _import(registered_db, tmp_path, "mixed", text)
    assert code == 0, output
    assert [(unit, value, site) for _m, _a, unit, value, _e, site in stored] == [
        ("u1", 1.0, "north"),
        ("u2", 2.0, "north"),
        ("u3", 3.0, "north, east"),
        ("u4", 4.0, "north"),
    ]


def test_crlf_line_ends_and_a_last_line_without_one_are_read_like_the_csv_module(registered_db, tmp_path):
    text = "unit_id,arm,metric,value\r\nu1,pilot,wellbeing,40\r\nu2,comparison,wellbeing,NA"
    code, output, stored = _import(registered_db, tmp_path, "crlf", text)
    assert code == 0, output
    assert [(unit, value) for _m, _a, unit, value, _e, _s in stored] == [("u1", 40.0), ("u2", None)]


@pytest.mark.parametrize("apart", [False, True], ids=["checked-in-process", "checked-apart"])
def test_values_and_texts_are_stored_exactly_on_both_backends(rr, db_url, tmp_path, monkeypatch, apart):
    """PostgreSQL gets plain chunks as COPY text, and chunks that would need escapes row by row.

    Checked apart, the writer sends plain decimals to COPY as the file spells them, and the
    rest (exponents, 1_000, long texts) as ``float`` read them: all must be stored alike.
    """
    from sqlalchemy import create_engine, select

    import riskreg.csvfile
    import riskreg.ingest
    from riskreg.models import observations
    from tests.pilot_fixtures import registered, write

    spelled: list[str] = []
    if apart:
        monkeypatch.setattr(riskreg.ingest, "PARALLEL_BYTES", 0)
        monkeypatch.setattr(riskreg.csvfile, "CHUNK_CHARS", 16)  # a line a chunk: each judged alone
        copy_numbers = riskreg.ingest._copy_numbers

        def spying(texts: list[str]) -> list[str] | None:
            cells = copy_numbers(texts)
            spelled.extend(cells or ())
            return cells

        monkeypatch.setattr(riskreg.ingest, "_copy_numbers", spying)
    registered(rr, tmp_path)
    header = "unit_id,arm,metric,value,exposure,site\n"
    values = ["0.1", "1e-300", "123456789.123456789", "-0.0", "NA", "2.2250738585072014e-308", "44"]
    values += [
        "+.5",
        "5.",
        "-0",
        "0.0000000000000000000001",
        "007",
        "0.30000000000000004",
    ]  # 1_000, 1e-400: refused
    sites = ["north", "", "south", "", "east", "NA", "ü", "", "", "", "", "", ""]
    plain = [f"u{i},pilot,wellbeing,{v},,{s}\n" for i, (v, s) in enumerate(zip(values, sites, strict=True))]
    plain += ["u0,pilot,incidents,3,2.5,\n", "u1,pilot,incidents,NA,,\n"]
    escaped = ["back\\slash,pilot,readmitted,1,,sou\\th\n", "tab\there,comparison,readmitted,0,,\\N\n"]
    for name, lines in (("plain.csv", plain), ("escaped.csv", escaped)):
        path = write(tmp_path, name, header + "".join(lines))
        assert rr("pilot", "data", "P-1", path, "--stage", "feasibility").exit_code == 0

    engine = create_engine(db_url)
    t = observations.c
    with engine.connect() as connection:
        stored = connection.execute(select(t.metric, t.unit_id, t.value, t.exposure, t.site))
        rows = {(metric, unit): (value, exposure, site) for metric, unit, value, exposure, site in stored}
    engine.dispose()
    for i, (value, site) in enumerate(zip(values, sites, strict=True)):
        assert rows[(0, f"u{i}")] == (None if value == "NA" else float(value), None, site or None)
    assert (rows[(2, "u0")], rows[(2, "u1")]) == ((3.0, 2.5, None), (None, None, None))
    assert rows[(1, "back\\slash")] == (1.0, None, "sou\\th")
    assert rows[(1, "tab\there")] == (0.0, None, "\\N")
    if apart and db_url.startswith("postgresql"):
        assert {"0.1", "123456789.123456789", "+.5", "5.", "007", "\\N"} <= set(spelled)
        assert not {"1_000", "1e-400", "1e-300", "0.0000000000000000000001"} & set(spelled)


def test_repeats_are_found_when_the_hashes_spill_to_disk(registered_db, tmp_path, monkeypatch):
    """With room for 8 hashes in memory, 40 observations spill to a file and are split into parts."""
    import riskreg.ingest

    monkeypatch.setattr(riskreg.ingest, "SPILL_KEYS", 8)
    header = "unit_id,arm,metric,value\n"
    lines = [f"u{i},pilot,wellbeing,{i}\n" for i in range(40)]
    code, output, stored = _import(registered_db, tmp_path, "distinct", header + "".join(lines))
    assert (code, len(stored)) == (0, 40), output

    repeated = header + "".join(lines) + "u3,pilot,wellbeing,99\n" + "u39,pilot,wellbeing,98\n"
    code, output, stored = _import(registered_db, tmp_path, "repeated", repeated)
    assert (code, stored) == (1, [])
    assert output == (
        "Error: FILE: 2 rows rejected, nothing was imported\n"
        "  line 42: duplicate: the same unit and metric as line 5 (use one row per unit and metric)\n"
        "  line 43: duplicate: the same unit and metric as line 41 (use one row per unit and metric)\n"
    )


def test_a_line_longer_than_a_chunk_is_read_whole_and_numbered(registered_db, tmp_path):
    header = "unit_id,arm,metric,value,exposure,site\n"
    long_site = "x" * 100_000  # more than one 64 KiB chunk
    text = header + "u1,pilot,wellbeing,40,,north\n" + f"u2,pilot,wellbeing,41,,{long_site}\n"
    code, output, stored = _import(registered_db, tmp_path, "long", text)
    assert (code, stored) == (1, [])
    assert output == (
        "Error: FILE: line 3: unit_id or site is longer than 200 characters or contains a NUL character; "
        "nothing was imported\n"
    )


def test_blank_lines_keep_the_numbering_of_the_lines_after_them(registered_db, tmp_path):
    header = "unit_id,arm,metric,value\n"
    text = header + "u1,pilot,wellbeing,40\n\n,,,\nu2,pilot,wellbeing,many\n"
    code, output, stored = _import(registered_db, tmp_path, "blank", text)
    assert (code, stored) == (1, [])
    assert (
        output == "Error: FILE: line 5: wellbeing: value must be a number, got 'many'; nothing was imported\n"
    )


def test_a_quoted_field_keeps_its_crlf_line_break(registered_db, tmp_path):
    text = 'unit_id,arm,metric,value,exposure,site\r\nu1,pilot,wellbeing,40,,"ward 3\r\nnorth"\r\n'
    code, output, stored = _import(registered_db, tmp_path, "quoted-crlf", text)
    assert code == 0, output
    assert [site for *_, site in stored] == ["ward 3\r\nnorth"]


def _rows_or_error(read):  # type: ignore[no-untyped-def]
    from riskreg.errors import InvalidInput

    try:
        return list(read())
    except InvalidInput as exc:
        return str(exc)


@settings(max_examples=400, deadline=None)
@given(
    text=st.text(alphabet=',"\r\n ab1\x00é;', max_size=120), chunk=st.integers(1, 24), on_disk=st.booleans()
)
def test_chunked_reading_yields_exactly_the_csv_modules_numbered_rows(text, chunk, on_disk):
    """Any text, cut into chunks of any size: the same rows and line numbers as the csv module alone."""
    import csv
    import io
    import tempfile
    from unittest import mock

    from riskreg import csvfile

    def by_csv_module():  # type: ignore[no-untyped-def]
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=",")
        return csvfile._numbered(reader, "f.csv", before=1)  # the text starts at line 2

    def by_chunks(handle):  # type: ignore[no-untyped-def]
        for piece in csvfile.read_chunks(handle, "f.csv", ","):
            yield from piece.rows if piece.rows is not None else piece.numbered_rows("f.csv", ",")

    with (
        mock.patch.object(csvfile, "CHUNK_CHARS", chunk),
        mock.patch.object(csvfile, "LONGEST_PLAIN_LINE", 2 * chunk),
        tempfile.TemporaryDirectory() as folder,
    ):
        if on_disk:  # a real file: the csv module then reads on from the file object itself
            path = Path(folder) / "f.csv"
            path.write_bytes(text.encode("utf-8"))
            with csvfile.open_text(path) as handle:
                chunked = _rows_or_error(lambda: by_chunks(handle))
        else:
            chunked = _rows_or_error(lambda: by_chunks(io.StringIO(text, newline="")))
        assert chunked == _rows_or_error(by_csv_module)


def test_a_file_with_lines_ended_by_cr_alone_imports_like_one_ended_by_lf(registered_db, tmp_path):
    """Old Mac "CSV" files end lines with CR alone: read by the csv module, not held as one long line."""
    rows = ["unit_id,arm,metric,value", *(f"u{i},pilot,wellbeing,{i}" for i in range(3000))]
    by_cr = _import(registered_db, tmp_path, "cr", "\r".join(rows) + "\r")
    by_lf = _import(registered_db, tmp_path, "lf", "\n".join(rows) + "\n")
    assert by_cr == by_lf
    assert (by_cr[0], len(by_cr[2])) == (0, 3000)


@pytest.mark.parametrize("counted", [1 << 16, 4], ids=["counted-in-python", "sorted-by-numpy"])
def test_repeats_are_found_whether_counted_or_sorted(registered_db, tmp_path, monkeypatch, counted):
    import riskreg.ingest

    monkeypatch.setattr(riskreg.ingest, "COUNT_KEYS", counted)
    text = "unit_id,arm,metric,value\n" + "".join(f"u{i},pilot,wellbeing,{i}\n" for i in range(10))
    code, output, stored = _import(registered_db, tmp_path, "repeats", text + "u7,pilot,wellbeing,70\n")
    assert (code, stored) == (1, [])
    assert output == (
        "Error: FILE: line 12: duplicate: the same unit and metric as line 9 (use one row per unit and metric); "
        "nothing was imported\n"
    )
