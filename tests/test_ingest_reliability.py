"""An import killed midway leaves nothing; two concurrent imports equal the same two run in turn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from riskreg.ingest import PARALLEL_BYTES
from riskreg.models import DataImport, observations
from tests.conftest import intact
from tests.pilot_fixtures import registered, write

pytestmark = pytest.mark.slow


def big_file(folder: Path, units: int) -> str:
    """A long-form file of `units` units x 2 metrics."""
    lines = ["unit_id,arm,metric,value,exposure,site"]
    for i in range(units):
        arm = "pilot" if i % 2 else "comparison"
        lines.append(f"u{i},{arm},wellbeing,{40 + i % 17},,s{i % 5}")
        lines.append(f"u{i},{arm},readmitted,{i % 2},,s{i % 5}")
    return write(folder, "big.csv", "\n".join(lines) + "\n")


def riskreg(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "riskreg", "--db", url, "--actor", "importer", *args]


def rows_in(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = (
            connection.execute(select(func.count()).select_from(observations)).scalar(),
            connection.execute(select(func.count()).select_from(DataImport)).scalar(),
        )
    engine.dispose()
    return counts


def test_sigkill_during_import_leaves_no_row(rr, db_url, tmp_path):
    registered(rr, tmp_path)
    path = big_file(tmp_path, 150_000)
    process = subprocess.Popen(
        riskreg(db_url, "pilot", "data", "P-1", path, "--stage", "feasibility"), stderr=subprocess.DEVNULL
    )
    writing = _SqliteWriting(db_url) if db_url.startswith("sqlite") else _PostgresCopying(db_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and not writing():
        time.sleep(0.01)
    assert process.poll() is None, "the import finished before it could be killed; use a bigger file"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    writing.close()
    assert rows_in(db_url) == (0, 0)
    # the file is large enough to be checked in a second process, which must end with the importer
    assert _gone_within(10, lambda: not _processes_reading(path)), _processes_reading(path)
    assert rr.json("audit", "verify") == intact(1, pilots=1)
    assert rr.json("pilot", "data", "P-1", path, "--stage", "feasibility")["observations"] == 300_000


def _processes_reading(path: str) -> list[int]:
    """The processes whose command line names path (the importer and its checking process share it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and path.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return found


def _gone_within(seconds: float, done) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class _SqliteWriting:
    """True once the importer has written over a megabyte of rows (its WAL has grown)."""

    def __init__(self, url: str):
        self.wal = Path(url.removeprefix("sqlite:///") + "-wal")

    def __call__(self) -> bool:
        return self.wal.exists() and self.wal.stat().st_size > 1_000_000

    def close(self) -> None:
        pass


class _PostgresCopying:
    """True once the server reports the importer's COPY has taken 50,000 rows."""

    def __init__(self, url: str):
        self.engine = create_engine(url)

    def __call__(self) -> bool:
        with self.engine.connect() as connection:
            done = connection.exec_driver_sql(
                "SELECT max(tuples_processed) FROM pg_stat_progress_copy"
            ).scalar()
        return (done or 0) > 50_000

    def close(self) -> None:
        self.engine.dispose()


# 20,000 rows are checked in the importing process; 64,000 (over PARALLEL_BYTES, with unit ids
# long enough that few rows reach it) in a second one
@pytest.mark.parametrize("rows", [20_000, 64_000], ids=["checked-in-process", "checked-apart"])
def test_concurrent_imports_equal_sequential_ones(runner, backend, request, tmp_path, rows):
    from tests.conftest import Riskreg

    household = "-household-of-a-long-running-service-user"
    first = write(
        tmp_path,
        "a.csv",
        "unit_id,arm,metric,value\n"
        + "".join(f"a{i:06d}{household},pilot,wellbeing,{i % 50}\n" for i in range(rows)),
    )
    second = write(
        tmp_path,
        "b.csv",
        "unit_id,arm,metric,value,exposure\n"
        + "".join(f"b{i:06d}{household},comparison,incidents,{i % 3},2\n" for i in range(rows)),
    )
    assert (Path(first).stat().st_size >= PARALLEL_BYTES) == (rows == 64_000)
    results = {}
    for mode in ("concurrent", "sequential"):
        url = (
            request.getfixturevalue("empty_db_url")
            if mode == "concurrent"
            else _another_empty(request, backend, tmp_path)
        )
        rr = Riskreg(runner, url)
        rr("init")
        folder = tmp_path / mode
        folder.mkdir()
        registered(rr, folder)
        commands = [
            riskreg(url, "pilot", "data", "P-1", f, "--stage", "feasibility") for f in (first, second)
        ]
        if mode == "concurrent":
            processes = [
                subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands
            ]
            outcomes = [(p.communicate()[1], p.returncode) for p in processes]
            assert [code for _, code in outcomes] == [0, 0], outcomes
        else:
            for c in commands:
                subprocess.run(c, check=True, capture_output=True)
        results[mode] = _observations(url)
        assert rr.json("audit", "verify")["ok"] is True
    assert results["concurrent"] == results["sequential"]
    assert len(results["concurrent"]) == 2 * rows


def _another_empty(request, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'sequential.db'}"
    from tests.conftest import _create_pg_database

    return _create_pg_database(request.getfixturevalue("pg_admin_url"), f"riskreg_seq_{os.getpid()}")


def _observations(url: str) -> list[tuple]:
    t = observations.c
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.metric, t.arm, t.unit_id, t.value, t.exposure).order_by(t.metric, t.unit_id)
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]
