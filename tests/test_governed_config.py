"""Governed configuration (issues 15 and 16): settings in the database, set with a reason and audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine

from tests.conftest import Riskreg
from tests.risk_fixtures import risk_add


def _shown(rr: Riskreg) -> dict[str, dict]:
    return {row["key"]: row for row in rr.json("config", "show")}


def _events(rr: Riskreg) -> int:
    return rr.json("audit", "verify")["events"]


def test_show_lists_the_defaults_and_says_so(rr):
    shown = _shown(rr)
    assert shown["appetite.default"] == {
        "key": "appetite.default",
        "value": 12,
        "governed": True,
        "source": "default",
    }
    assert shown["ratings.very high"]["value"] == 25
    assert shown["review_days.high"]["value"] == 90
    assert shown["categories"]["value"] == []
    assert shown["currency"]["value"] == "GBP"
    assert shown["srm_threshold"] == {
        "key": "srm_threshold",
        "value": 0.01,
        "governed": False,
        "source": "default",
    }
    assert rr.json("config", "history") == []


def test_set_writes_the_value_and_an_event_with_before_and_after(rr):
    after = rr.json("config", "set", "appetite.safeguarding", "8", "--reason", "Board, 3 Dec")
    assert after == {"key": "appetite.safeguarding", "value": 8, "version": 1}
    rr.json("config", "set", "appetite.safeguarding", "6", "--reason", "Tighter")
    rr.json("config", "set", "ratings.very_high", "25", "--reason", "same")  # "very_high" means "very high"
    shown = _shown(rr)
    assert (shown["appetite.safeguarding"]["value"], shown["appetite.safeguarding"]["source"]) == (
        6,
        "database",
    )
    assert shown["appetite.safeguarding"]["version"] == 2
    history = rr.json("config", "history")
    assert [(h["key"], h["before"], h["after"], h["reason"], h["actor"]) for h in history] == [
        ("appetite.safeguarding", None, 8, "Board, 3 Dec", "alice"),
        ("appetite.safeguarding", 8, 6, "Tighter", "alice"),
        ("ratings.very high", None, 25, "same", "alice"),
    ]
    assert rr.json("audit", "verify")["ok"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ratings.low", "30"), "ratings.low: expected a whole number from 1 to 25, got 30"),
        (
            ("ratings.medium", "2"),
            "ratings: upper bounds must increase from low to very high and end at 25, got [3, 2, 12, 25]",
        ),
        (
            ("ratings.very high", "20"),
            "ratings: upper bounds must increase from low to very high and end at 25, got [3, 6, 12, 20]",
        ),
        (
            ("appetite.safeguarding", "0"),
            "appetite.safeguarding: expected a whole number from 1 to 25, got 0",
        ),
        (
            ("appetite.safeguarding", "high"),
            "appetite.safeguarding: expected a whole number from 1 to 25, got 'high'",
        ),
        (("review_days.high", "4000"), "review_days.high: expected a whole number from 1 to 3660, got 4000"),
        (("citizen_hour_value", "-1"), "citizen_hour_value: expected a number of at least 0, got -1"),
        (("organisation", " "), "organisation: expected a non-empty string, got ' '"),
        (
            ("apetite.safeguarding", "8"),
            "apetite.safeguarding: not a governed key; did you mean 'appetite.safeguarding'?",
        ),
        (("ratings.very_hgh", "25"), "ratings.very_hgh: unknown key; did you mean 'ratings.very high'?"),
        (("organisaton", "x"), "organisaton: not a governed key; did you mean 'organisation'?"),
        (
            ("srm_threshold", "0.1"),
            "srm_threshold: not a governed key (a local setting: it stays in riskreg.toml)",
        ),
    ],
)
def test_every_refusal_is_one_error_line_and_writes_nothing(rr, args, message):
    before = (_shown(rr), _events(rr))
    result = rr("config", "set", "--reason", "try", "--", *args)
    assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n")
    assert (_shown(rr), _events(rr)) == before


def test_set_needs_a_reason_and_a_change(rr):
    result = rr("config", "set", "appetite.default", "10", "--reason", " ")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: reason: must not be empty (say why, for the audit trail)\n",
    )
    rr.json("config", "set", "appetite.default", "10", "--reason", "x")
    result = rr("config", "set", "appetite.default", "10", "--reason", "again")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: appetite.default: already 10; nothing to change\n",
    )
    assert len(rr.json("config", "history")) == 1


def test_appetite_set_in_the_database_changes_above_appetite_for_every_client(rr):
    rr.json(*risk_add("Signs missed", "--category", "safeguarding", likelihood="3", impact="3"))
    assert rr.json("risk", "list", "--above-appetite") == []
    assert rr.json("risk", "show", "R-1")["above_appetite"] is False
    rr.json("config", "set", "appetite.safeguarding", "8", "--reason", "Board")
    assert [r["id"] for r in rr.json("risk", "list", "--above-appetite")] == ["R-1"]
    assert rr.json("risk", "show", "R-1")["above_appetite"] is True
    findings = json.loads(rr("check", "--json").stdout)
    rules = [f["rule"] for f in findings if f["subject"] == "R-1"]
    assert "above-appetite-untreated" in rules


def test_the_database_wins_over_a_governed_key_still_in_riskreg_toml(rr, runner, tmp_path):
    (tmp_path / "riskreg.toml").write_text("[appetite]\nsafeguarding = 4\n")
    rr.json(*risk_add("Signs missed", "--category", "safeguarding", likelihood="2", impact="3"))
    assert [r["id"] for r in rr.json("risk", "list", "--above-appetite")] == ["R-1"]  # the file still works
    assert _shown(rr)["appetite.safeguarding"]["source"].endswith("riskreg.toml")
    rr.json("config", "set", "appetite.safeguarding", "8", "--reason", "Board")
    assert rr.json("risk", "list", "--above-appetite") == []
    row = _shown(rr)["appetite.safeguarding"]
    assert (row["value"], row["source"], row["ignored_file_value"]) == (8, "database", 4)
    assert row["note"].endswith(
        "riskreg.toml sets appetite.safeguarding = 4, which is ignored: the database's 8 is in force; "
        "remove the key from the file"
    )


def test_import_moves_a_files_governed_keys_once(rr, tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(
        'organisation = "Anytown"\nsrm_threshold = 0.02\n[appetite]\nsafeguarding = 6\n[ratings]\nlow = 4\n'
    )
    rows = rr.json("config", "import", str(path), "--reason", "Now governed")
    assert sorted(r["key"] for r in rows) == ["appetite.safeguarding", "organisation", "ratings.low"]
    shown = _shown(rr)
    assert (shown["organisation"]["value"], shown["organisation"]["source"]) == ("Anytown", "database")
    assert shown["srm_threshold"]["value"] == 0.01  # local keys stay in the file in use
    events = _events(rr)
    result = rr("config", "import", str(path), "--reason", "again")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the database already holds governed settings (appetite.safeguarding, organisation, "
        "ratings.low); nothing was written (use --replace to overwrite them with the file's)\n"
    )
    path.write_text("[ratings]\nlow = 5\n")
    assert [r["key"] for r in rr.json("config", "import", str(path), "--reason", "r", "--replace")] == [
        "ratings.low"
    ]
    assert _events(rr) == events + 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[ratings]\nlow = 9\n")
    result = rr("config", "import", str(bad), "--reason", "r", "--replace")
    assert (result.exit_code, result.stderr.count("\n")) == (1, 1)
    assert "ratings: upper bounds must increase" in result.stderr
    local = tmp_path / "local.toml"
    local.write_text("srm_threshold = 0.02\n")
    result = rr("config", "import", str(local), "--reason", "r")
    assert (
        result.stderr
        == f"Error: {local}: no governed settings to import (only local ones); nothing was written\n"
    )
    assert _events(rr) == events + 1


def test_categories_once_set_are_enforced_with_a_suggestion(rr, tmp_path):
    rr.json(*risk_add("Before the list", "--category", "anything"))  # no list: any category
    rr.json("config", "set", "categories", "safeguarding, Finance", "--reason", "Agreed list")
    assert _shown(rr)["categories"]["value"] == ["safeguarding", "finance"]
    events = _events(rr)
    result = rr(*risk_add("Typo", "--category", "safegaurding"))
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: category 'safegaurding' is not in the register's list (safeguarding, finance); did you mean "
        "'safeguarding'? Add one with riskreg config set categories ... or --new-category\n",
    )
    result = rr("risk", "update", "R-1", "--category", "data", "--reason", "r")
    assert result.exit_code == 1 and "category 'data' is not in the register's list" in result.stderr
    assert _events(rr) == events
    assert rr.json(*risk_add("Data", "--category", "data", "--new-category"))["category"] == "data"
    assert _shown(rr)["categories"]["value"] == ["safeguarding", "finance", "data"]
    assert rr.json("config", "history")[-1]["after"] == ["safeguarding", "finance", "data"]
    csv = tmp_path / "risks.csv"
    csv.write_text(
        "title,side,mode,likelihood,impact,category\n"
        "A,citizen,design,2,2,finance\n"
        "B,citizen,design,2,2,finanse\n"
    )
    result = rr("risk", "import", str(csv))
    assert result.exit_code == 1
    assert "line 3" in result.stderr and "did you mean 'finance'?" in result.stderr
    assert len(rr.json("risk", "list")) == 2  # nothing of the file was added
    assert rr.json("audit", "verify")["ok"] is True


def test_migration_from_0010_adds_an_empty_settings_table(rr, db_url):
    from tests.test_schema import _migrate

    rr.json(*risk_add("Kept"))
    _migrate(db_url, "0010", down=True)
    assert rr("config", "show").exit_code == 1
    assert rr.json("db", "upgrade")["from"] == "0010"
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM settings").scalar() == 0
    engine.dispose()
    assert _shown(rr)["appetite.default"]["source"] == "default"
    rr.json("config", "set", "appetite.default", "9", "--reason", "after upgrade")
    assert rr.json("risk", "show", "R-1")["title"] == "Kept"


def test_export_and_import_carry_the_settings(rr, tmp_path, empty_db_url):
    rr.json("config", "set", "categories", "safeguarding", "--reason", "list")
    rr.json("config", "set", "appetite.safeguarding", "5", "--reason", "Board")
    path = tmp_path / "e.json"
    assert rr.json("export", str(path))["tables"]["settings"] == 2
    target = Riskreg(rr.runner, empty_db_url)
    assert target("init").exit_code == 0
    assert target("import", str(path)).exit_code == 0
    shown = {row["key"]: row for row in target.json("config", "show")}
    assert (shown["appetite.safeguarding"]["value"], shown["categories"]["value"]) == (5, ["safeguarding"])
    assert target.json("config", "history") == rr.json("config", "history")
    assert target.json("audit", "verify")["ok"] is True
