"""The import's progress: byte positions for the library caller, a bar on a terminal only."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from riskreg.db import open_database
from riskreg.ingest import import_outcomes
from riskreg.register import Context
from tests.pilot_fixtures import PROTOCOL, registered, write

HEADER = "unit_id,arm,metric,value\n"


def _big_file(folder: Path, units: int) -> Path:
    path = folder / "big.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for start in range(0, units, 10_000):
            handle.write(
                "".join(
                    f"unit-{i:08d},{'pilot' if i % 2 else 'comparison'},wellbeing,{40 + i % 20}\n"
                    for i in range(start, min(start + 10_000, units))
                )
            )
    return path


def test_progress_reports_rising_byte_positions_up_to_the_file_size(rr, db_url, tmp_path):
    registered(rr, tmp_path)
    path = _big_file(tmp_path, 30_000)  # about 1 MB: some 16 chunks
    positions: list[int] = []
    database = open_database(db_url)
    with database.write() as session:
        context = Context(actor="tester", config=database.config)
        import_outcomes(session, context, "P-1", path, "feasibility", progress=positions.append)
    database.dispose()
    assert len(positions) > 10
    assert positions == sorted(positions)
    assert positions[-1] == path.stat().st_size


@pytest.mark.slow
def test_a_progress_bar_on_a_terminal_for_a_large_file_and_none_when_piped(tmp_path):
    database = f"sqlite:///{tmp_path / 'bar.db'}"
    command = [sys.executable, "-m", "riskreg", "--db", database]
    protocol = write(tmp_path, "befriending.toml", PROTOCOL)
    subprocess.run([*command, "init"], check=True, capture_output=True)
    subprocess.run([*command, "pilot", "register", protocol], check=True, capture_output=True)
    path = _big_file(tmp_path, 150_000)  # over the 5 MB threshold
    assert path.stat().st_size > 5_000_000

    # a dry run, so the same file can be checked twice
    data = [*command, "pilot", "data", "P-1", str(path), "--stage", "feasibility", "--dry-run"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(data, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            piece = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not piece:
            break
        shown += piece
    os.close(leader)
    out, _ = process.communicate()
    assert process.returncode == 0
    assert b"importing big.csv" in shown and b"100%" in shown
    assert b"checked (dry run" in out

    piped = subprocess.run(data, capture_output=True, check=True)
    assert piped.stderr == b""
