"""The console script ends its process at once when a command is done (``riskreg.cli.run``).

It skips the interpreter's teardown, so these check what that teardown would otherwise see
to: the exit status and messages of the command, every byte of a long output through a
pipe, a register closed with no write-ahead log left beside it, and a reader that stops
early getting no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.risk_fixtures import risk_add

RISKS = 600  # their JSON is about 300 KB, several times a pipe's buffer (64 KiB)


def _riskreg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riskreg", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def many_risks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite register of RISKS risks (one import), made once for this module's tests."""
    folder = tmp_path_factory.mktemp("many")
    rows = "".join(f"Risk {i},citizen,design,2,3\n" for i in range(RISKS))
    (folder / "risks.csv").write_text("title,side,mode,likelihood,impact\n" + rows, encoding="utf-8")
    db = ["--db", f"sqlite:///{folder / 'r.db'}", "--actor", "a"]
    assert _riskreg(*db, "init").returncode == 0
    imported = _riskreg(*db, "risk", "import", str(folder / "risks.csv"))
    assert imported.returncode == 0, imported.stderr
    return folder / "r.db"


def _copy(register: Path, folder: Path) -> list[str]:
    """Copy the register into folder; return the --db and --actor arguments for the copy."""
    shutil.copy(register, folder / "r.db")
    return ["--db", f"sqlite:///{folder / 'r.db'}", "--actor", "a"]


def test_a_command_ends_with_its_own_exit_status_and_messages(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}", "--actor", "a"]
    created = _riskreg(*db, "init")
    assert (created.returncode, created.stderr) == (0, "")
    assert created.stdout.startswith("created a register at ")
    missing = _riskreg(*db, "risk", "show", "R-9")
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", "Error: no risk R-9\n")
    mistyped = _riskreg("risk", "lst")
    assert mistyped.returncode == 2
    assert mistyped.stderr.endswith("Error: No such command 'lst'. Did you mean 'list'?\n")


def test_a_long_output_reaches_the_pipe_whole_and_the_register_is_closed(many_risks, tmp_path):
    db = _copy(many_risks, tmp_path)
    listed = _riskreg(*db, "risk", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout) > 4 * 65_536
    assert [risk["id"] for risk in json.loads(listed.stdout)][-1] == f"R-{RISKS}"
    added = _riskreg(*db, *risk_add("After"))
    assert added.returncode == 0, added.stderr
    # the last connection to close checkpoints the write-ahead log and removes it (and its index)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]


def test_output_to_a_full_disk_is_an_error(many_risks, tmp_path):
    db = _copy(many_risks, tmp_path)
    with open("/dev/full", "w") as full:
        listed = subprocess.run(
            [sys.executable, "-m", "riskreg", *db, "risk", "list", "--json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert (listed.returncode, listed.stderr) == (
        1,
        "Error: the disk is full: nothing was saved (free some space, then run the command again)\n",
    )


def _run(body: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """Run riskreg.cli.run in a fresh interpreter with ``main`` replaced by body (one line).

    Its output is buffered, as a user's is (this environment may set PYTHONUNBUFFERED).
    """
    script = f"import sys\nimport riskreg.cli as cli\ndef main():\n    {body}\ncli.main = main\ncli.run()\n"
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", script], stdout=stdout, stderr=subprocess.PIPE, text=True, check=False, env=env
    )


def test_output_still_buffered_at_the_end_is_written_and_the_status_kept():
    ended = _run("sys.stdout.write('x' * 1000); sys.exit(3)")  # less than the buffer: not yet written
    assert (ended.returncode, ended.stdout, ended.stderr) == (3, "x" * 1000, "")
    said = _run("sys.exit('a message')")
    assert (said.returncode, said.stderr) == (1, "a message\n")


def test_output_that_cannot_be_written_at_the_end_is_status_120_as_the_interpreter_gives():
    with open("/dev/full", "w") as full:
        ended = _run("sys.stdout.write('x' * 10)", stdout=full)
    assert (ended.returncode, ended.stderr) == (120, "")


def test_a_reader_that_stops_early_gets_no_traceback(many_risks, tmp_path):
    db = _copy(many_risks, tmp_path)
    command = [sys.executable, "-m", "riskreg", *db, "risk", "list", "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(10) == b'[{"id":"R-'  # compact: the output is piped
        process.stdout.close()  # as `riskreg risk list --json | head -c 10` does
        errors = process.stderr.read()
    assert (process.returncode, errors) == (0, b"")


def test_a_profiled_command_still_gets_its_profile():
    """python -m cProfile reports once the command ends: the usual exit, not os._exit."""
    profiled = subprocess.run(
        [sys.executable, "-m", "cProfile", "-m", "riskreg", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert profiled.returncode == 0, profiled.stderr
    assert profiled.stdout.startswith("riskreg, version ")
    assert " function calls " in profiled.stdout
