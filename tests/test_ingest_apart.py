"""A large outcome file is checked in a second process while the importer writes it.

Whatever the file, the result must be the one the single-process import gives: the same
rows, statistics, unit counts and messages, and nothing written when a row is rejected.
``PARALLEL_BYTES`` set to 0 sends every file, however small, through the two processes.
"""

from __future__ import annotations

import os
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

import riskreg.csvfile
import riskreg.ingest
from riskreg.cli import cli
from riskreg.models import DataImport, ImportCount, ImportUnits, observations
from tests import test_ingest_paths as paths
from tests.pilot_fixtures import LONG, PROTOCOL, registered, write
from tests.test_ingest_paths import _import, _kept, line, wide_line

registered_db = paths.registered_db  # the registered SQLite file those tests share, as a fixture here

LONG_HEADER = "unit_id,arm,metric,value,exposure,site\n"
WIDE_HEADER = "unit_id,arm,wellbeing,readmitted,incidents,exposure,site\n"


@pytest.fixture
def apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check every file in a second process, whatever its size."""
    monkeypatch.setattr(riskreg.ingest, "PARALLEL_BYTES", 0)


def _both_ways(template, folder, text: str) -> None:
    """Import text once in one process and once checked apart; assert every outcome is the same."""
    with mock.patch.object(riskreg.ingest, "PARALLEL_BYTES", 1 << 60):
        alone = _import(template, folder, "alone", text)
    with mock.patch.object(riskreg.ingest, "PARALLEL_BYTES", 0):
        apart = _import(template, folder, "apart", text)
    assert apart[1].replace("apart", "NAME") == alone[1].replace("alone", "NAME")
    assert apart[0] == alone[0] and apart[2] == alone[2]
    assert _kept(folder, "apart") == _kept(folder, "alone")


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line(), min_size=1, max_size=10), st.integers(20, 200))
def test_a_long_file_imports_the_same_checked_apart_as_in_one_process(registered_db, tmp_path, lines, chunk):
    """Small chunks mix plain and irregular ones: the writer converts the first, the row path the rest."""
    text = LONG_HEADER + "".join(",".join(cells) + "\n" for cells in lines)
    with mock.patch.object(riskreg.csvfile, "CHUNK_CHARS", chunk):
        _both_ways(registered_db, tmp_path, text)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(wide_line(), min_size=1, max_size=6))
def test_a_wide_file_imports_the_same_checked_apart_as_in_one_process(registered_db, tmp_path, lines):
    _both_ways(registered_db, tmp_path, WIDE_HEADER + "".join(",".join(cells) + "\n" for cells in lines))


def test_an_excel_export_with_long_unit_ids_imports_the_same_checked_apart(registered_db, tmp_path):
    """Excel's 'CSV UTF-8' in a decimal-comma locale: a BOM, semicolons, CRLF; unit ids at the 200-character limit."""
    header = "\ufeffunit_id;arm;metric;value;exposure;site\r\n"
    rows = "".join(
        f"{'u' * 194}{i:06d};{'pilot' if i % 2 else 'comparison'};wellbeing;{i % 50},5;;north\r\n"
        for i in range(3_000)
    )
    _both_ways(registered_db, tmp_path, header + rows)
    code, _output, stored = _import(registered_db, tmp_path, "excel", header + rows)
    assert code == 0
    assert len(stored) == 3_000
    assert {len(row[2]) for row in stored} == {200}  # unit_id, as the file spells it
    assert sorted({row[3] for row in stored})[:2] == [0.5, 1.5]  # decimal commas read as points


def test_a_quoted_file_imports_the_same_checked_apart(registered_db, tmp_path):
    quoted = "".join(f'"u{i}",pilot,wellbeing,"{i % 40}",,north\n' for i in range(50))
    _both_ways(registered_db, tmp_path, LONG_HEADER + quoted)


def _counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counted = tuple(
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (observations, DataImport.__table__, ImportCount.__table__)
        )
    engine.dispose()
    return counted  # type: ignore[return-value]


def test_an_import_checked_apart_writes_its_rows_and_counts_on_both_backends(rr, tmp_path, apart):
    registered(rr, tmp_path)
    summary = rr.json("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility")
    assert (summary["observations"], summary["missing"]) == (9, 2)
    assert summary["metrics"]["wellbeing"] == {
        "comparison": {"n": 1, "missing": 0},
        "pilot": {"n": 1, "missing": 1},
    }
    assert _counts(rr.url) == (9, 1, 6)
    engine = create_engine(rr.url)
    with engine.connect() as connection:
        units = connection.execute(select(ImportUnits.arm, ImportUnits.units).order_by(ImportUnits.arm)).all()
    engine.dispose()
    assert [tuple(row) for row in units] == [(0, 1), (1, 2)]  # u1 in comparison; u2 and u3 in the pilot arm


def _refused(rr, tmp_path, rows: list[str]) -> tuple[str, list[str]]:
    """Import long rows (unit_id, arm, metric, value) that must be refused; return the file and the error's lines.

    Asserts the command failed and that nothing was written.
    """
    path = write(tmp_path, "refused.csv", "unit_id,arm,metric,value\n" + "\n".join(rows) + "\n")
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert _counts(rr.url) == (0, 0, 0)
    return path, result.stderr.splitlines()


def test_rows_rejected_by_the_checking_process_are_reported_and_nothing_is_written(rr, tmp_path, apart):
    registered(rr, tmp_path)
    # the first rejection is early; the writer stops there, the checker reads on and counts all
    rows = ["u0,pilot,wellbeing,many"] + [f"u{i},pilot,wellbeing,{i % 50}" for i in range(1, 30_000)]
    rows += ["u7,pilot,wellbeing,3", "u8,pilot,readmitted,2"]
    path, refusal = _refused(rr, tmp_path, rows)
    assert refusal == [
        f"Error: {path}: 3 rows rejected, nothing was imported",
        "  line 2: wellbeing: value must be a number, got 'many'",
        "  line 30002: duplicate: the same unit and metric as line 9 (use one row per unit and metric)",
        "  line 30003: readmitted: binary value must be 0/1, true/false or yes/no, got '2'",
    ]


@pytest.mark.parametrize("checked", ["apart", "in-process"])
def test_an_empty_or_overlong_unit_is_refused_the_same_however_the_file_is_checked(
    rr, tmp_path, monkeypatch, checked
):
    """The writer leaves these to the checks (it only trims): the same lines, and nothing written."""
    monkeypatch.setattr(riskreg.ingest, "PARALLEL_BYTES", 0 if checked == "apart" else 1 << 60)
    registered(rr, tmp_path)
    rows = [f"u{i},pilot,wellbeing,{i % 50}" for i in range(3000)]
    rows[3] = f"{'u' * 201},pilot,wellbeing,4"  # over the unit's 200 characters (VARCHAR(200) on PostgreSQL)
    rows[2000] = ",pilot,wellbeing,4"
    path, refusal = _refused(rr, tmp_path, rows)
    assert refusal == [
        f"Error: {path}: 2 rows rejected, nothing was imported",
        "  line 5: unit_id or site is longer than 200 characters or contains a NUL character",
        "  line 2002: unit_id is empty",
    ]


def test_a_file_error_found_part_way_is_the_same_checked_apart(rr, tmp_path, apart):
    registered(rr, tmp_path)
    text = (
        "unit_id,arm,metric,value\n" + "".join(f"u{i},pilot,wellbeing,{i % 50}\n" for i in range(9000))
    ).encode()
    path = tmp_path / "latin.csv"
    path.write_bytes(text + "u9999,pilot,wellbeing,4\xe9\n".encode("latin-1"))
    result = rr("pilot", "data", "P-1", str(path), "--stage", "feasibility")
    assert result.stderr == (
        f"Error: {path}: not UTF-8 text (byte 0xe9 cannot be decoded); save the file as 'CSV UTF-8' and try again\n"
    )
    assert _counts(rr.url) == (0, 0, 0)


def _die(*_args: object) -> None:
    os._exit(3)


def test_a_checking_process_that_dies_fails_the_import_with_nothing_written(rr, tmp_path, apart, monkeypatch):
    registered(rr, tmp_path)
    monkeypatch.setattr(riskreg.ingest, "_check_and_send", _die)
    path = write(tmp_path, "long.csv", LONG)
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path}: the process checking the file ended without an answer (exit code 3); nothing was imported\n"
    )
    assert _counts(rr.url) == (0, 0, 0)


def test_a_dry_run_checked_apart_writes_nothing(rr, tmp_path, apart):
    registered(rr, tmp_path)
    path = write(tmp_path, "long.csv", LONG)
    assert rr.json("pilot", "data", "P-1", path, "--stage", "feasibility", "--dry-run")["observations"] == 9
    assert _counts(rr.url) == (0, 0, 0)


def test_only_files_of_parallel_bytes_or_more_are_checked_apart(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_bytes(b"x" * (riskreg.ingest.PARALLEL_BYTES - 1))
    large.write_bytes(b"x" * riskreg.ingest.PARALLEL_BYTES)
    assert not riskreg.ingest._check_apart(small)
    assert riskreg.ingest._check_apart(large)
    assert not riskreg.ingest._check_apart(tmp_path / "missing.csv")


def test_a_replacement_checked_apart_swaps_the_stage_data_on_both_backends(rr, tmp_path, apart):
    registered(rr, tmp_path)
    rr.json("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility")
    smaller = write(tmp_path, "s.csv", "unit_id,arm,metric,value\nu1,comparison,wellbeing,39\n")
    summary = rr.json("pilot", "data", "P-1", smaller, "--stage", "feasibility", "--replace")
    assert (summary["replaced"], summary["observations"]) == (3, 1)
    assert _counts(rr.url) == (7, 2, 5)  # readmitted and incidents kept; wellbeing swapped for one row


def test_repeats_spilled_to_disk_by_the_checking_process_are_named(rr, tmp_path, apart, monkeypatch):
    registered(rr, tmp_path)
    monkeypatch.setattr(riskreg.ingest, "SPILL_KEYS", 64)  # the forked checker inherits it
    rows = [f"u{i},pilot,wellbeing,{i % 50}" for i in range(2_000)] + ["u1500,pilot,wellbeing,7"]
    path = write(tmp_path, "repeat.csv", "unit_id,arm,metric,value\n" + "\n".join(rows) + "\n")
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert result.stderr == (
        f"Error: {path}: line 2002: duplicate: the same unit and metric as line 1502 "
        "(use one row per unit and metric); nothing was imported\n"
    )
    assert _counts(rr.url) == (0, 0, 0)


class _Unpicklable(Exception):
    def __reduce__(self):  # type: ignore[no-untyped-def]
        raise TypeError("cannot pickle")


def _fail_unpicklably(*_args: object) -> None:
    raise _Unpicklable("a bug in the checks")


def test_an_error_that_will_not_pickle_still_reaches_the_importer(rr, tmp_path, apart, monkeypatch):
    registered(rr, tmp_path)
    monkeypatch.setattr(riskreg.ingest._Loader, "checked", _fail_unpicklably)
    with pytest.raises(
        RuntimeError, match=r"^checking the file failed: _Unpicklable\('a bug in the checks'\)$"
    ):
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility")
    assert _counts(rr.url) == (0, 0, 0)


def test_a_process_with_other_threads_checks_in_process(tmp_path):
    """Forking a process with several threads could copy a lock some thread holds into the child."""
    import threading

    large = tmp_path / "large.csv"
    large.write_bytes(b"x" * riskreg.ingest.PARALLEL_BYTES)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not riskreg.ingest._check_apart(large)
    finally:
        release.set()
        other.join()
    assert riskreg.ingest._check_apart(large)


@pytest.fixture(scope="module")
def pg_registered(pg_admin_url: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Name of a PostgreSQL database with the test protocol registered, copied for each example."""
    from tests.conftest import _create_pg_database

    name = f"riskreg_apart_{os.getpid()}"
    url = _create_pg_database(pg_admin_url, name, pg_template)
    protocol = tmp_path_factory.mktemp("apart") / "befriending.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", url, "pilot", "register", str(protocol)])
    assert result.exit_code == 0, result.output
    return name


def _postgres_import(admin_url: str, template: str, name: str, csv: str) -> tuple[int, str, list, list, list]:
    """Import csv into a fresh copy of template; return the exit code, output, rows, counts and unit counts."""
    from tests.conftest import _create_pg_database

    url = _create_pg_database(admin_url, name, template)
    result = CliRunner().invoke(cli, ["--db", url, "pilot", "data", "P-1", csv, "--stage", "feasibility"])
    engine = create_engine(url)
    t = observations.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.metric, t.arm, t.unit_id, t.value, t.exposure, t.site).order_by(t.unit_id, t.metric)
        ).all()
        c = ImportCount
        counts = connection.execute(
            select(c.metric, c.arm, c.n, c.missing, c.total, c.exposure, c.shift, c.sum_d, c.sum_d2).order_by(
                c.metric, c.arm
            )
        ).all()
        units = connection.execute(select(ImportUnits.arm, ImportUnits.units).order_by(ImportUnits.arm)).all()
    engine.dispose()
    return result.exit_code, result.output, *([tuple(r) for r in found] for found in (rows, counts, units))


@pytest.mark.slow
@pytest.mark.postgres
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line(), min_size=1, max_size=10), st.integers(20, 200))
def test_a_long_file_imports_the_same_checked_apart_on_postgresql(
    pg_admin_url, pg_registered, tmp_path, lines, chunk
):
    """Checked apart, the writer COPYs plain decimals as spelled, the rest as ``float`` reads them."""
    csv = tmp_path / "data.csv"
    csv.write_bytes((LONG_HEADER + "".join(",".join(cells) + "\n" for cells in lines)).encode("utf-8"))
    outcomes = []
    for parallel_bytes in (1 << 60, 0):
        with (
            mock.patch.object(riskreg.csvfile, "CHUNK_CHARS", chunk),
            mock.patch.object(riskreg.ingest, "PARALLEL_BYTES", parallel_bytes),
        ):
            name = f"riskreg_apart_{os.getpid()}_{'alone' if parallel_bytes else 'apart'}"
            outcomes.append(_postgres_import(pg_admin_url, pg_registered, name, str(csv)))
    assert outcomes[1] == outcomes[0]
