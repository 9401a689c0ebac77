"""`risk import` refuses a file imported before and rows that look like risks already held.

Risks are never deleted, so a repeat would stay in the register twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Riskreg
from tests.risk_fixtures import risk_add
from tests.test_workbook import book

HEADER = "title,side,mode,likelihood,impact,category\n"
TWO = (
    HEADER
    + "Volunteer burnout,citizen,delivery,3,3,wellbeing\nSurveyor backlog,professional,assessment,4,3,\n"
)


def write(tmp_path: Path, text: str, name: str = "risks.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def count(rr: Riskreg) -> tuple[int, int]:
    """How many risks and events the register holds."""
    risks = json.loads(rr("risk", "export").stdout)
    return len(risks), rr.json("audit", "verify")["events"]


def import_events(url: str) -> list[tuple[str, dict]]:
    """The (time, after) of every risk.import event, oldest first."""
    from sqlalchemy import select

    from riskreg.db import open_database
    from riskreg.models import Event

    database = open_database(url)
    try:
        with database.read() as session:
            found = session.scalars(select(Event).where(Event.action == "risk.import").order_by(Event.seq))
            return [(f"{e.at:%Y-%m-%d %H:%M}", json.loads(e.after)) for e in found]
    finally:
        database.dispose()


def test_a_file_imported_before_is_refused_naming_who_and_when(rr, db_url, tmp_path):
    path = write(tmp_path, TWO)
    assert rr.json("risk", "import", path)["ids"] == ["R-1", "R-2"]
    # the same rows saved again elsewhere, with Windows line ends: the same content
    again = tmp_path / "copy.csv"
    again.write_bytes(TWO.replace("\n", "\r\n").encode("utf-8"))
    held = count(rr)
    result = rr("risk", "import", str(again), actor="bob")
    assert result.exit_code == 1
    (when, _after), *_ = import_events(db_url)
    assert result.stderr == (
        f"Error: {again}: these risks were imported before: the same file was imported on "
        f"{when} UTC by alice ({path}); nothing was imported (risks are never deleted, "
        "so a repeat would stay twice; --allow-repeat imports it again)\n"
    )
    assert count(rr) == held
    # deliberately: the rows are then likely duplicates too, so both overrides are needed
    assert rr("risk", "import", str(again), "--allow-repeat").exit_code == 1
    imported = rr.json("risk", "import", str(again), "--allow-repeat", "--allow-duplicates")
    assert imported["ids"] == ["R-3", "R-4"]


def test_the_import_event_records_the_file_and_its_hash(rr, db_url, tmp_path):
    from riskreg.csvfile import text_sha256

    path = write(tmp_path, TWO)
    rr.json("risk", "import", path)
    assert rr.json("risk", "import", path, "--dry-run", "--allow-repeat", "--allow-duplicates")["dry_run"]
    assert [after for _when, after in import_events(db_url)] == [
        {"file": path, "sha256": text_sha256(path), "rows": 2, "ids": ["R-1", "R-2"]}
    ]


def test_a_dry_run_lists_likely_duplicates_and_a_real_import_refuses_them(rr, tmp_path):
    rr.json(*risk_add("Volunteer  Burnout", side="citizen", mode="delivery"))  # R-1, open
    rr.json(*risk_add("Closed one", side="citizen", mode="delivery"))
    rr("risk", "close", "R-2", "--reason", "done")
    text = (
        HEADER
        + "volunteer burnout,citizen,delivery,3,3,\n"  # R-1 by title, side and mode
        + "Closed one,citizen,delivery,2,2,\n"  # a closed risk is not a duplicate
        + "Volunteer burnout,professional,delivery,3,3,\n"  # another side: not a duplicate
        + "New risk,shared,design,2,2,\n"
        + "new  RISK,shared,design,1,1,\n"  # the row above
    )
    path = write(tmp_path, text)
    dry = rr.json("risk", "import", path, "--dry-run")
    assert dry["likely_duplicates"] == [
        {"line": 2, "title": "volunteer burnout", "duplicate_of": "R-1"},
        {"line": 6, "title": "new RISK", "duplicate_of": "line 5"},
    ]
    shown = rr("risk", "import", path, "--dry-run")
    assert shown.stdout.splitlines()[1:] == [
        "  line 2: 'volunteer burnout' is likely a duplicate of R-1 (same title, side and mode)",
        "  line 6: 'new RISK' is likely a duplicate of line 5 (same title, side and mode)",
    ]
    held = count(rr)
    result = rr("risk", "import", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        "  line 2: 'volunteer burnout' is likely a duplicate of R-1 (same title, side and mode); "
        "--allow-duplicates imports it anyway",
        "  line 6: 'new RISK' is likely a duplicate of line 5 (same title, side and mode); "
        "--allow-duplicates imports it anyway",
    ]
    assert count(rr) == held
    assert len(rr.json("risk", "import", path, "--allow-duplicates")["ids"]) == 5


def test_a_workbook_is_held_to_its_rows_not_its_bytes(rr, tmp_path):
    rows = [
        ["title", "side", "mode", "likelihood", "impact"],
        ["Volunteer burnout", "citizen", "delivery", 3, 3],
    ]
    first = book(tmp_path / "a.xlsx", ("Risks", rows))
    second = book(tmp_path / "b.xlsx", ("Sheet1", rows))  # saved again: other bytes, same rows
    assert rr.json("risk", "import", first)["ids"] == ["R-1"]
    result = rr("risk", "import", second)
    assert result.exit_code == 1 and "these risks were imported before" in result.stderr
    assert f"by alice ({first}); nothing was imported" in result.stderr


def test_new_categories_of_an_import_are_refused_or_added_deliberately(rr, tmp_path):
    rr.json("config", "set", "categories", "safeguarding", "--reason", "Agreed list")
    text = (
        HEADER
        + "Volunteer burnout,citizen,delivery,3,3,wellbeing\n"
        + "Lost records,professional,delivery,3,3,data\n"
        + "Second wellbeing,shared,design,2,2,wellbeing\n"
    )
    path = write(tmp_path, text)
    held = count(rr)
    result = rr("risk", "import", path)
    assert result.exit_code == 1
    assert "line 2: category 'wellbeing' is not in the register's list (safeguarding)" in result.stderr
    assert count(rr) == held
    imported = rr.json("risk", "import", path, "--new-category")
    assert imported["ids"] == ["R-1", "R-2", "R-3"]
    shown = {row["key"]: row["value"] for row in rr.json("config", "show")}
    assert shown["categories"] == ["safeguarding", "wellbeing", "data"]
    history = [e["after"] for e in rr.json("config", "history")]
    assert history[-2:] == [["safeguarding", "wellbeing"], ["safeguarding", "wellbeing", "data"]]
    assert rr.json("audit", "verify")["ok"] is True
