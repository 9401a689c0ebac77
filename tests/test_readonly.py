"""A board member's read-only copy of a SQLite register: every reading command works, every
change is refused in one line, and the file is left exactly as it was.

The copy is made read-only as a board member would meet it. As root, file permissions do not
bind (root may write a 0o444 file), so the folder is bind-mounted read-only in a private mount
namespace (``unshare -m``), which binds root too; as another user, the file is made 0o444 in
a 0o555 folder. Either way the commands run in a child process that sees only the read-only
register. SQLite only: on PostgreSQL a reader is a login with the board role (tests/test_roles.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Riskreg
from tests.test_backup import populate

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions and mounts")

# Runs riskreg commands in-process (one interpreter start for all) and prints their results.
_RUN = """
import json, sys
from click.testing import CliRunner
from riskreg.cli import cli
runner = CliRunner()
results = []
for args in json.loads(sys.argv[1]):
    result = runner.invoke(cli, args)
    results.append([result.exit_code, result.stdout, result.stderr, repr(result.exception)])
print(json.dumps(results))
"""

READING = [
    ("risk", "list"),
    ("risk", "list", "--above-appetite"),
    ("risk", "show", "R-2"),
    ("risk", "history", "R-1"),
    ("risk", "export", "--csv"),
    ("risk", "export", "--xlsx", "risks.xlsx"),
    ("pilot", "list"),
    ("pilot", "show", "P-1"),
    ("pilot", "analyse", "P-1"),
    ("review", "due", "--within", "400"),
    ("action", "list"),
    ("check",),
    ("audit", "verify"),
    ("config", "show"),
    ("config", "history"),
    ("db", "status"),
    ("report", "board", "-o", "board.html", "--as-of", "2026-11-30"),
    ("report", "pilot", "P-1", "-o", "pilot.html", "--as-of", "2026-11-30"),
    ("report", "qa", "-o", "qa.html", "--as-of", "2026-11-30"),
    ("export", "dump.json"),
]
WRITING = [
    ("risk", "add", "New", "--side", "citizen", "--mode", "design", "--likelihood", "2", "--impact", "2"),
    ("risk", "update", "R-1", "--owner", "bob", "--reason", "handover"),
    ("review", "record", "R-1", "--outcome", "confirmed", "--note", "seen"),
    ("config", "set", "appetite.default", "10", "--reason", "board"),
    ("audit", "seal"),
    ("db", "upgrade"),
]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _run_read_only(register: Path, work: Path, commands: list[tuple[str, ...]]) -> list[list]:
    """Run the commands against the register's folder made read-only, from the writable ``work``."""
    url = f"sqlite:///{register / 'riskreg.db'}"
    payload = json.dumps([["--db", url, "--actor", "board", *args] for args in commands])
    python = [sys.executable, "-c", _RUN, payload]
    env = {k: v for k, v in os.environ.items() if k not in ("RISKREG_DATABASE_URL", "RISKREG_CONFIG")}
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: a read-only register cannot be simulated")
        folder = str(register)
        mount = f'mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec "$@"'
        argv = ["unshare", "-m", "sh", "-c", mount, "sh", *python]
    else:
        (register / "riskreg.db").chmod(0o444)
        register.chmod(0o555)
        argv = python
    try:
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    finally:
        register.chmod(0o755)
        (register / "riskreg.db").chmod(0o644)
    if os.geteuid() == 0 and done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a populated register (risks, pilots with data, a review, a gate) and its toml."""
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("board-copy")
    rr = Riskreg(CliRunner(), f"sqlite:///{folder / 'riskreg.db'}")
    assert rr("init").exit_code == 0
    populate(rr)
    assert sorted(p.name for p in folder.iterdir()) == ["riskreg.db", "riskreg.toml"]
    return folder


def test_every_reading_command_works_on_a_read_only_copy(register, tmp_path):
    before = _digest(register)
    results = _run_read_only(register, tmp_path, READING)
    for args, (code, stdout, stderr, exception) in zip(READING, results, strict=True):
        assert (code, stderr) == (0, ""), (args, stdout, stderr, exception)
    assert _digest(register) == before  # no byte changed, no -wal or -shm left beside it
    assert {"board.html", "pilot.html", "qa.html", "dump.json", "risks.xlsx"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert json.loads((tmp_path / "dump.json").read_text())["tables"]["risks"]


def test_a_read_only_copy_reads_the_same_as_the_register(register, tmp_path):
    shown = [("risk", "list", "--json"), ("risk", "show", "R-2", "--json"), ("check", "--json")]
    read_only = _run_read_only(register, tmp_path, shown)
    from click.testing import CliRunner

    from riskreg.cli import cli

    url = f"sqlite:///{register / 'riskreg.db'}"
    for args, (code, stdout, _stderr, _exc) in zip(shown, read_only, strict=True):
        writable = CliRunner().invoke(cli, ["--db", url, *args])
        assert (code, json.loads(stdout)) == (writable.exit_code, json.loads(writable.stdout))


def test_every_change_to_a_read_only_copy_is_one_error_and_writes_nothing(register, tmp_path):
    before = _digest(register)
    results = _run_read_only(register, tmp_path, WRITING)
    refusal = (
        f"Error: register at {register / 'riskreg.db'} is read-only ({{}}); nothing was saved. "
        "Reading commands work; a change needs write access to the file and its folder\n"
    )
    reasons = {"it is on a read-only file system", "its file cannot be written"}
    for args, (code, _stdout, stderr, _exc) in zip(WRITING, results, strict=True):
        assert code == 1, (args, stderr)
        assert stderr in {refusal.format(reason) for reason in reasons}, (args, stderr)
    assert _digest(register) == before


def test_a_file_that_is_not_a_database_is_one_error_writable_or_not(runner, tmp_path):
    from riskreg.cli import cli

    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "riskreg.db").write_bytes(b"not a register " * 300)
    message = f"Error: cannot use database sqlite:///{folder / 'riskreg.db'}: file is not a database\n"
    result = runner.invoke(cli, ["--db", f"sqlite:///{folder / 'riskreg.db'}", "risk", "list"])
    assert (result.exit_code, result.stderr) == (1, message)
    (code, _stdout, stderr, _exc) = _run_read_only(folder, tmp_path, [("risk", "list")])[0]
    assert (code, stderr) == (1, message)
