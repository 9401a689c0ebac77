"""A full JSON export imported into an empty database reproduces it: SQLite -> PostgreSQL -> SQLite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import Riskreg, _create_pg_database
from tests.risk_fixtures import risk_add

ROOT = Path(__file__).resolve().parent.parent
LISTINGS = [
    ("risk", "list"),
    ("risk", "show", "R-2"),
    ("risk", "history", "R-1"),
    ("pilot", "list"),
    ("pilot", "show", "P-1"),
    ("pilot", "show", "P-2"),
    ("review", "due", "--within", "400"),
    ("audit", "verify"),
]


def populate(rr: Riskreg) -> None:
    cwd = Path.cwd()
    os.chdir(ROOT / "pilots")
    try:
        for args in (
            ("risk", "import", "risks.csv"),
            ("control", "add", "R-1", "Peer supervision", "--citizen", "--status", "in-place"),
            ("pilot", "register", "hospital-befriending.toml"),
            ("pilot", "register", "housing-repairs.toml"),
            ("pilot", "link", "P-1", "R-1", "R-2", "R-7"),
            ("pilot", "data", "P-1", "data/hospital-befriending-feasibility.csv", "--stage", "feasibility"),
            ("pilot", "resources", "P-1", "data/hospital-befriending-resources.csv"),
            ("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "criteria green"),
            ("pilot", "data", "P-2", "data/housing-repairs-feasibility.csv", "--stage", "feasibility"),
            (
                "risk",
                "rescore",
                "R-2",
                "--likelihood",
                "2",
                "--impact",
                "5",
                "--evidence",
                "P-1",
                "--reason",
                "evidence",
            ),
            ("review", "record", "R-3", "--outcome", "escalated", "--note", "worse"),
        ):
            result = rr(*args, actor="qa")
            assert result.exit_code == 0, (args, result.output)
    finally:
        os.chdir(cwd)


def listings(rr: Riskreg) -> list:
    return [rr.json(*args) for args in LISTINGS]


@pytest.mark.postgres
def test_sqlite_to_postgresql_and_back(tmp_path, pg_admin_url):
    runner = CliRunner()
    source = Riskreg(runner, f"sqlite:///{tmp_path / 'source.db'}")
    source("init")
    populate(source)
    exported = tmp_path / "export.json"
    assert source("export", str(exported)).exit_code == 0
    postgres = Riskreg(runner, _create_pg_database(pg_admin_url, f"riskreg_backup_{os.getpid()}"))
    postgres("init")
    result = postgres("import", str(exported))
    assert result.exit_code == 0, result.output
    assert listings(postgres) == listings(source)
    again = tmp_path / "again.json"
    postgres("export", str(again))
    back = Riskreg(runner, f"sqlite:///{tmp_path / 'back.db'}")
    back("init")
    assert back("import", str(again)).exit_code == 0
    assert listings(back) == listings(source)
    assert json.loads(exported.read_text())["tables"] == json.loads(again.read_text())["tables"]
    # the copies keep working: new identifiers continue after the imported ones
    assert (
        postgres.json(
            "risk", "add", "New", "--side", "shared", "--mode", "design", "--likelihood", "1", "--impact", "1"
        )["id"]
        == "R-16"
    )
    assert (
        postgres("review", "record", "R-4", "--outcome", "confirmed", "--note", "ok", actor="qa").exit_code
        == 0
    )
    assert postgres.json("audit", "verify")["ok"] is True


def test_import_refuses_a_database_that_is_not_empty(rr, tmp_path):
    rr("risk", "add", "A", "--side", "citizen", "--mode", "design", "--likelihood", "1", "--impact", "1")
    path = tmp_path / "e.json"
    rr("export", str(path))
    result = rr("import", str(path))
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: the database is not empty (table counters has rows); import into a new database\n",
    )


def test_import_refuses_a_file_that_is_not_an_export(rr, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    result = rr("import", str(path))
    assert (result.exit_code, result.stderr) == (1, f"Error: {path}: not a riskreg JSON export\n")


def _damaged_export(rr, tmp_path, damage) -> str:  # type: ignore[no-untyped-def]
    """Export a one-risk register, let `damage` edit the document, and return the file's path."""
    rr(*risk_add("A"))
    path = tmp_path / "e.json"
    rr("export", str(path))
    document = json.loads(path.read_text())
    damage(document)
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.pop("columns"), "a riskreg JSON export without its columns or tables (damaged?)"),
        (lambda d: d["columns"]["risks"].append("bogus"), "table risks has no column 'bogus' in this schema"),
        (lambda d: d["tables"]["risks"][0].pop(), None),
        (lambda d: d["tables"]["events"][0].__setitem__(d["columns"]["events"].index("at"), "soon"), None),
    ],
    ids=["no-columns", "unknown-column", "short-row", "bad-date"],
)
def test_a_damaged_export_is_refused_in_one_line_and_nothing_is_written(
    rr, tmp_path, empty_db_url, damage, message
):
    path = _damaged_export(rr, tmp_path, damage)
    target = Riskreg(rr.runner, empty_db_url)
    target("init")
    result = target("import", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: ") and result.stderr.count("\n") == 1
    if message is not None:
        assert result.stderr == f"Error: {path}: {message}\n"
    assert target.json("risk", "list") == []


def test_export_to_a_directory_is_a_one_line_error_and_keeps_an_earlier_file_whole(rr, tmp_path):
    rr(*risk_add("A"))
    result = rr("export", str(tmp_path))
    assert (result.exit_code, result.stderr) == (1, f"Error: cannot write {tmp_path}: Is a directory\n")
    earlier = tmp_path / "backup.json"
    earlier.write_text("the earlier backup")
    blocked = tmp_path / "backup.json" / "x.json"  # its folder is a file: the write fails
    assert rr("export", str(blocked)).exit_code == 1
    assert earlier.read_text() == "the earlier backup"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_export_and_import_print_what_they_wrote_as_json_and_take_the_older_spelling(
    rr, tmp_path, empty_db_url
):
    rr(*risk_add("A"))
    path = tmp_path / "e.json"
    exported = rr.json("export", str(path))
    assert (exported["file"], exported["tables"]["risks"]) == (str(path), 1)
    assert exported["rows"] == sum(exported["tables"].values())
    target = Riskreg(rr.runner, empty_db_url)
    target("init")
    # `import --json FILE`, as earlier versions spelled it, still reads FILE (and prints JSON)
    result = target("import", "--json", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == exported
    assert target.json("risk", "list")[0]["title"] == "A"
