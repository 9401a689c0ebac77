"""Hypothesis drives the CLI with random arguments and random CSV/TOML bytes.

Whatever comes in: never a traceback, exit 0, 1 or 2, an `Error:` line on failure, and a
failed command leaves the database exactly as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskreg.cli import cli

ROOT = Path(__file__).resolve().parent.parent
NASTY = ["", " ", "R-1", "R-0", "R-999999999999", "P-1", "C-1", "=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "<script>alert(1)</script>",
         "\x00", "a\x00b", "é", "🔥", "x" * 5000, "1e309", "nan", "-0", "yes", "NA", "2026-02-30", "--json", "--help"]  # fmt: skip
COMMANDS = [
    ["risk", "add"], ["risk", "list"], ["risk", "show"], ["risk", "update"], ["risk", "rescore"], ["risk", "close"],
    ["risk", "history"], ["risk", "import"], ["risk", "export"], ["control", "add"], ["control", "update"],
    ["pilot", "register"], ["pilot", "show"], ["pilot", "link"], ["pilot", "data"], ["pilot", "resources"],
    ["pilot", "analyse"], ["pilot", "gate"], ["plan", "size"], ["review", "record"], ["review", "due"], ["audit", "verify"],
    ["config", "set"], ["config", "unset"], ["config", "show"], ["action", "add"], ["action", "update"],
]  # fmt: skip
OPTIONS = ["--side", "--mode", "--likelihood", "--impact", "--category", "--owner", "--treatment", "--reason", "--stage",
           "--decision", "--outcome", "--note", "--kind", "--mde", "--sd", "--baseline", "--n", "--expect-version", "--evidence",
           "--status", "--due", "--target-likelihood", "--target-impact", "--dry-run", "--replace", "--override", "--json"]  # fmt: skip
WORDS = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(OPTIONS),
    st.text(max_size=30),
    st.sampled_from(["citizen", "delivery", "3", "5", "6", "0"]),
)


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a risk, a control and a registered pilot with data, copied for each example."""
    folder = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'seed.db'}"
    runner = CliRunner()
    for args in (
        ["init"],
        [
            "risk",
            "add",
            "Seed",
            "--side",
            "citizen",
            "--mode",
            "design",
            "--likelihood",
            "3",
            "--impact",
            "3",
            "--owner",
            "Ana",
        ],
        ["control", "add", "R-1", "Seed control"],
        ["pilot", "register", str(ROOT / "pilots" / "hospital-befriending.toml")],
        [
            "pilot",
            "data",
            "P-1",
            str(ROOT / "pilots" / "data" / "hospital-befriending-feasibility.csv"),
            "--stage",
            "feasibility",
        ],
    ):
        assert runner.invoke(cli, ["--db", url, "--actor", "seed", *args]).exit_code == 0
    return folder / "seed.db"


def check(result, before: list[str], after: list[str]) -> None:
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert result.stderr.startswith("Error: "), result.stderr
        assert all(line.startswith("  ") for line in result.stderr.splitlines()[1:]), result.stderr
    if result.exit_code != 0:
        assert after == before


def run(seeded: Path, tmp_path: Path, args: list[str]):
    db = tmp_path / "fuzz.db"
    db.write_bytes(seeded.read_bytes())
    before = dump(db)
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", "--actor", "fuzzer", *args])
    return result, before, dump(db)


SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(command=st.sampled_from(COMMANDS), words=st.lists(WORDS, max_size=8))
def test_random_arguments_never_crash(seeded, tmp_path, command, words):
    result, before, after = run(seeded, tmp_path, [*command, *words])
    check(result, before, after)


def import_args(target: str, path: Path) -> list[str]:
    """The command that imports ``path`` as outcome data, resources or risks."""
    return {
        "data": ["pilot", "data", "P-1", str(path), "--stage", "feasibility", "--replace"],
        "resources": ["pilot", "resources", "P-1", str(path)],
        "risks": ["risk", "import", str(path)],
    }[target]


CSV_TEXT = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(st.sampled_from(["unit_id", "arm", "metric", "value", "exposure", "u1", "pilot", "comparison", "wellbeing",
                                       "incidents", "3", "-1", "NA", "", "=1+1", "\x00", "1e999", "yes", "2", ";"]), max_size=6),
             max_size=6).map(lambda rows: "\n".join(",".join(r) for r in rows).encode()),
)  # fmt: skip


@SETTINGS
@given(content=CSV_TEXT, target=st.sampled_from(["data", "resources", "risks"]))
def test_random_csv_files_never_crash(seeded, tmp_path, content, target):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    args = import_args(target, path)
    result, before, after = run(seeded, tmp_path, args)
    check(result, before, after)


CELL = st.one_of(
    st.none(),
    st.sampled_from(["unit_id", "arm", "metric", "value", "exposure", "title", "side", "mode", "likelihood",
                     "impact", "stage", "kind", "hours", "amount", "u1", "pilot", "comparison", "wellbeing",
                     "feasibility", "public", "citizen", "design", "NA", "#N/A", "=1+1", "1e999", ""]),
    st.integers(-3, 10**16),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.text(max_size=30),
)  # fmt: skip
SHEET = st.lists(st.lists(CELL, max_size=7), max_size=6)


@SETTINGS
@given(rows=SHEET, target=st.sampled_from(["data", "resources", "risks"]), merged=st.booleans())
def test_random_workbooks_never_crash(seeded, tmp_path, rows, target, merged):
    """Hypothesis-built .xlsx sheets (typed cells, dates, errors, merged cells) never give a traceback."""
    from openpyxl import Workbook
    from openpyxl.utils.exceptions import IllegalCharacterError

    book = Workbook()
    sheet = book.active
    try:
        for row in rows:
            sheet.append(row)
    except (IllegalCharacterError, ValueError, TypeError):
        return  # openpyxl will not write such a cell: no workbook to read
    if merged and rows:
        sheet.merge_cells("A1:B1")
    path = tmp_path / "input.xlsx"
    book.save(path)
    args = import_args(target, path)
    result, before, after = run(seeded, tmp_path, args)
    check(result, before, after)


TOML = (ROOT / "pilots" / "housing-repairs.toml").read_bytes()


@SETTINGS
@given(cut=st.integers(0, len(TOML)), insert=st.binary(max_size=20))
def test_random_protocol_bytes_never_crash(seeded, tmp_path, cut, insert):
    path = tmp_path / "protocol.toml"
    path.write_bytes(TOML[:cut] + insert + TOML[cut:])
    result, before, after = run(seeded, tmp_path, ["pilot", "register", str(path)])
    check(result, before, after)


GOVERNED = ["organisation", "currency", "citizen_hour_value", "appetite_statement", "categories", "ratings.low",
            "ratings.medium", "ratings.high", "ratings.very high", "ratings.very_high", "appetite.default",
            "appetite.safeguarding", "review_days.low", "review_days.very high", "srm_threshold", "check.severity"]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(-30, 4000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.lists(st.sampled_from(["safeguarding", "finance", "", " ", "É", ",", "general"]), max_size=5).map(
        ",".join
    ),
)


@SETTINGS
@given(
    key=st.one_of(st.sampled_from(GOVERNED), st.text(max_size=20)),
    value=VALUES,
    reason=st.one_of(st.sampled_from(["", " ", "Board", "\x00"]), st.text(max_size=20)),
    unset=st.booleans(),
)
def test_random_config_set_and_unset_never_crash(seeded, tmp_path, key, value, reason, unset):
    args = (
        ["config", "unset", key, "--reason", reason]
        if unset
        else ["config", "set", key, value, "--reason", reason]
    )
    result, before, after = run(seeded, tmp_path, args)
    check(result, before, after)


UPDATE_WORDS = ["--status", "done", "cancelled", "open", "--due", "--owner", "--title", "--reason",
                "--expect-version", "1", "2", "0", "x", ""]  # fmt: skip
DATES = st.one_of(
    st.sampled_from(
        ["2026-02-30", "2027-01-31", "1900-01-01", "9999-12-31", "31/01/2027", "", "today", "2027-1-5"]
    ),
    st.dates().map(str),
    st.text(max_size=12),
)


@SETTINGS
@given(
    risk=st.one_of(
        st.sampled_from(["R-1", "r1", "R-2", "R-0", "P-1", "R-99999999999", ""]), st.text(max_size=8)
    ),
    title=st.one_of(st.sampled_from(NASTY), st.text(max_size=40)),
    owner=st.one_of(st.sampled_from(NASTY), st.text(max_size=20)),
    due=DATES,
    then=st.lists(st.sampled_from(UPDATE_WORDS), max_size=6),
)
def test_random_action_arguments_never_crash(seeded, tmp_path, risk, title, owner, due, then):
    result, before, after = run(
        seeded, tmp_path, ["action", "add", risk, title, "--owner", owner, "--due", due]
    )
    check(result, before, after)
    if result.exit_code == 0:  # go on to change the action just added, on the database it left
        db = tmp_path / "fuzz.db"
        updated = CliRunner().invoke(
            cli, ["--db", f"sqlite:///{db}", "--actor", "fuzzer", "action", "update", "A-1", *then]
        )
        check(updated, after, dump(db))
