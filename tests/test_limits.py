"""One set of limits on both backends: what SQLite would keep and PostgreSQL refuse is refused on both."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskreg.cli import cli
from tests.pilot_fixtures import PROTOCOL, registered, write
from tests.risk_fixtures import risk_add


def events(rr) -> int:
    return rr.json("audit", "verify")["events"]


def test_an_actor_of_200_characters_is_kept_and_one_of_201_refused(rr):
    longest = "a" * 200
    assert rr.json(*risk_add("Kept"), actor=longest)["created_by"] == longest
    before = events(rr)
    result = rr(*risk_add("Refused"), actor="a" * 201)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: the actor name is 201 characters long; at most 200 (from --actor, RISKREG_ACTOR or the login)\n",
    )
    assert events(rr) == before


@pytest.mark.parametrize("name", ["ana\x00", "ana\nbob", "ana\tbob"])
def test_an_actor_with_a_control_character_is_refused(rr, name, monkeypatch):
    before = events(rr)
    result = rr(*risk_add("Refused"), actor=name)
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: the actor name contains a control character (a NUL, tab or line break, say)\n",
    )
    if "\x00" not in name:  # an environment variable cannot hold a NUL
        monkeypatch.setenv("RISKREG_ACTOR", name)
        plain = rr.runner.invoke(cli, ["--db", rr.url, *risk_add("X")])
        assert (plain.exit_code, plain.stderr) == (1, result.stderr)
    assert events(rr) == before


def test_a_csv_field_over_csv_s_limit_is_one_error_line_in_every_import(rr, tmp_path):
    registered(rr, tmp_path)
    huge = "x" * 200_000
    files = {
        ("risk", "import"): f"title,side,mode,likelihood,impact,{huge}\nA,citizen,design,1,1,\n",
        ("pilot", "data", "P-1"): f"unit_id,arm,metric,value\nu1,pilot,wellbeing,{huge}\n",
        (
            "pilot",
            "resources",
            "P-1",
        ): f"stage,side,kind,hours,amount,note\nfeasibility,public,x,1,1,{huge}\n",
    }
    before = events(rr)
    for command, text in files.items():
        path = write(tmp_path, "big.csv", text)
        extra = ("--stage", "feasibility") if command[1] == "data" else ()
        result = rr(*command, path, *extra)
        line = 1 if command[0] == "risk" else 2
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {path}: line {line}: field larger than field limit (131072)\n",
        ), command
    assert events(rr) == before


def _metrics(count: int) -> str:
    return "".join(
        f'\n[[metrics]]\nname = "m{i}"\nkind = "binary"\nrole = "secondary"\nbetter = "lower"\n'
        for i in range(count)
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            PROTOCOL.replace('title = "Volunteer befriending"', f'title = "{"t" * 10_001}"'),
            "pilot.title: 10,001 characters; at most 10,000",
        ),
        (PROTOCOL + _metrics(100), "metrics: 103 metrics; a protocol may have at most 100"),
        (
            PROTOCOL.replace('arms = ["comparison", "pilot"]', f'arms = ["comparison", "{"p" * 101}"]'),
            "design.arms[1]: expected an arm name of letters, digits, '_' or '-' (at most 100 characters), "
            "got 'ppp",
        ),
    ],
)
def test_protocols_beyond_their_size_limits_are_refused(rr, tmp_path, text, problem):
    path = write(tmp_path, "big.toml", text)
    before = events(rr)
    result = rr("pilot", "register", path)
    assert result.exit_code == 1
    assert f"{path}: {problem}" in result.stderr
    assert events(rr) == before


def test_a_protocol_file_over_1_mib_is_refused_before_it_is_read(rr, tmp_path):
    path = write(tmp_path, "huge.toml", PROTOCOL + "# " + "x" * (1 << 20) + "\n")
    result = rr("pilot", "register", path)
    size = len(Path(path).read_bytes())
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}: (file): {size:,} bytes; a protocol may be at most 1,048,576 bytes (1 MiB)\n",
    )


def test_a_protocol_at_its_limits_registers(rr, tmp_path):
    text = PROTOCOL.replace('title = "Volunteer befriending"', f'title = "{"t" * 10_000}"') + _metrics(97)
    path = write(tmp_path, "full.toml", text)
    result = rr("pilot", "register", path)
    assert result.exit_code == 0, result.output


def _full_disk_error(backend: str) -> Exception:
    """The error each backend's driver raises when its disk fills during a write."""
    if backend == "postgresql":
        import psycopg

        return psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device')
    import sqlite3

    return sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_during_an_import_is_one_error_line_and_nothing_is_written(
    rr, backend, tmp_path, monkeypatch
):
    """Seen for real on a 3 MB tmpfs (SQLite): the driver's error became a traceback before."""
    import riskreg.ingest as ingest

    registered(rr, tmp_path)
    before = (rr.json("pilot", "show", "P-1")["imports"], events(rr))
    real = ingest._writer
    failure = _full_disk_error(backend)

    class FullDisk:
        def __init__(self, session, import_id):  # type: ignore[no-untyped-def]
            self.inner = real(session, import_id)

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            method = getattr(self.inner, name)
            if name.startswith("write"):

                def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
                    raise failure

                return fail
            return method

    monkeypatch.setattr(ingest, "_writer", FullDisk)
    path = write(
        tmp_path, "d.csv", "unit_id,arm,metric,value\nu1,pilot,wellbeing,40\nu2,comparison,wellbeing,41\n"
    )
    result = rr("pilot", "data", "P-1", path, "--stage", "feasibility")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: the disk is full: nothing was saved (free some space, then run the command again)\n",
    )
    monkeypatch.undo()
    assert (rr.json("pilot", "show", "P-1")["imports"], events(rr)) == before
    assert rr.json("audit", "verify")["ok"] is True


def test_a_full_disk_while_writing_an_export_is_one_error_line(rr, tmp_path, monkeypatch):
    import errno
    import os

    rr.json(*risk_add("Kept"))

    def no_space(_fd: int) -> None:  # the last write before the rename finds the disk full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    target = tmp_path / "dump.json"
    result = rr("export", str(target))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot write {target}: No space left on device\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir() if "dump" in p.name) == []
