"""Faults: a writer holding SQLite's lock, a PostgreSQL connection killed mid-import, SIGKILL mid-gate."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from riskreg.models import observations
from tests.conftest import Riskreg, _create_pg_database, intact
from tests.pilot_fixtures import registered
from tests.risk_fixtures import risk_add

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def riskreg(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "riskreg", "--db", url, "--actor", "faulty", *args]


def env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RISKREG_")}, **extra}


def start_big_import(url: str, folder: Path) -> subprocess.Popen[str]:
    """Start importing 400,000 observations in another process (long enough to interrupt)."""
    rows = ["unit_id,arm,metric,value"] + [
        f"u{i},{'pilot' if i % 2 else 'comparison'},wellbeing,{40 + i % 9}" for i in range(400_000)
    ]
    data = folder / "big.csv"
    data.write_text("\n".join(rows) + "\n")
    command = riskreg(url, "pilot", "data", "P-1", str(data), "--stage", "feasibility")
    return subprocess.Popen(command, env=env(), stderr=subprocess.PIPE, text=True)


def test_sqlite_lock_held_beyond_the_busy_timeout_is_a_clear_error(tmp_path):
    path = tmp_path / "locked.db"
    rr = Riskreg(CliRunner(), f"sqlite:///{path}")
    rr("init")
    rr(*risk_add("Before", likelihood="2", impact="2"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        args = risk_add("Blocked")
        result = subprocess.run(
            riskreg(f"sqlite:///{path}", *args),
            env=env(RISKREG_BUSY_TIMEOUT="0.5"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert (
        result.stderr
        == f"Error: database sqlite:///{path} is locked by another writer beyond the 0.5 s timeout; nothing was saved, try again\n"
    )
    assert [r["title"] for r in rr.json("risk", "list")] == ["Before"]
    assert rr.json("audit", "verify")["ok"] is True


def test_sigkill_while_a_gate_decision_waits_leaves_the_database_consistent(tmp_path):
    path = tmp_path / "gate.db"
    rr = Riskreg(CliRunner(), f"sqlite:///{path}")
    rr("init")
    registered(rr, tmp_path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    process = subprocess.Popen(
        riskreg(f"sqlite:///{path}", "pilot", "gate", "P-1", "--decision", "continue", "--reason", "x"),
        env=env(),
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)  # the gate is inside its command, waiting for the write lock
    assert process.poll() is None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    holder.execute("ROLLBACK")
    holder.close()
    assert rr.json("pilot", "show", "P-1")["status"] == "active"
    assert rr.json("audit", "verify") == intact(1, pilots=1)
    stopped = rr.json("pilot", "gate", "P-1", "--decision", "stop", "--reason", "now", "--override")
    assert stopped["status"] == "stopped"


@pytest.mark.postgres
def test_postgresql_connection_killed_mid_import_is_a_clear_error_with_no_partial_write(
    tmp_path, pg_admin_url
):
    url = _create_pg_database(pg_admin_url, f"riskreg_fault_{os.getpid()}")
    rr = Riskreg(CliRunner(), url)
    rr("init")
    registered(rr, tmp_path)
    process = start_big_import(url, tmp_path)
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    killed = 0
    deadline = time.monotonic() + 60
    with admin.connect() as connection:
        while not killed and process.poll() is None and time.monotonic() < deadline:
            progress = (
                connection.execute(
                    # this test's import only: other workers' imports share the server
                    text(
                        "SELECT pid FROM pg_stat_progress_copy "
                        "WHERE tuples_processed > 20000 AND datname = :name"
                    ),
                    {"name": url.rsplit("/", 1)[1]},
                )
                .scalars()
                .all()
            )
            for pid in progress:
                killed += (
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
                    is True
                )
            time.sleep(0.01)
    admin.dispose()
    _, stderr = process.communicate(timeout=60)
    assert killed, "the import finished before its connection could be killed"
    assert process.returncode == 1
    # the server's words vary with timing: "terminating connection ..." or "the connection is lost"
    assert stderr.startswith(
        (f"Error: cannot use database {url}: ", f"Error: lost the connection to {url}")
    ), stderr
    assert len(stderr.strip().splitlines()) == 1
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(observations)).scalar() == 0
    engine.dispose()
    assert rr.json("audit", "verify")["ok"] is True


@pytest.mark.postgres
def test_postgresql_server_stopped_mid_import(tmp_path, pg_admin_url):
    from tests.pgserver import start_cluster

    cluster = start_cluster()  # its own server, so stopping it disturbs no other test
    try:
        url = _create_pg_database(cluster.admin_url, "stopped")
        rr = Riskreg(CliRunner(), url)
        rr("init")
        registered(rr, tmp_path)
        process = start_big_import(url, tmp_path)
        watcher = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + 60
        with watcher.connect() as connection:
            while process.poll() is None and time.monotonic() < deadline:
                if connection.execute(
                    text("SELECT count(*) FROM pg_stat_progress_copy WHERE tuples_processed > 20000")
                ).scalar():
                    break
                time.sleep(0.01)
        watcher.dispose()
        assert process.poll() is None, "the import finished before the server could be stopped"
        cluster.stop_server()
        _, stderr = process.communicate(timeout=60)
        cluster.start_server()
        assert process.returncode == 1
        assert stderr.startswith(
            (f"Error: cannot use database {url}: ", f"Error: lost the connection to {url}")
        ), stderr
        assert len(stderr.strip().splitlines()) == 1
        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(observations)).scalar() == 0
        engine.dispose()
        assert rr.json("audit", "verify")["ok"] is True
    finally:
        cluster.stop()
