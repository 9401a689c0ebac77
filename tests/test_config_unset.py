"""`config unset` returns a governed key to riskreg.toml's value or the default, audited; and a
riskreg.toml whose governed values the database overrides is named, so no one is misled by it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Riskreg
from tests.risk_fixtures import risk_add


def _shown(rr: Riskreg) -> dict[str, dict]:
    return {row["key"]: row for row in rr.json("config", "show")}


def _events(rr: Riskreg) -> int:
    return rr.json("audit", "verify")["events"]


def test_unset_returns_to_the_default_and_is_an_event_with_before_and_after(rr):
    rr.json(*risk_add("Signs missed", "--category", "safeguarding", likelihood="3", impact="3"))
    rr.json("config", "set", "appetite.safeguarding", "8", "--reason", "Board, 3 Dec")
    assert [r["id"] for r in rr.json("risk", "list", "--above-appetite")] == ["R-1"]
    events = _events(rr)
    done = rr.json("config", "unset", "appetite.safeguarding", "--reason", "Board, 4 Jan")
    assert done == {"key": "appetite.safeguarding", "before": 8, "in_force": 12}
    assert _events(rr) == events + 1
    assert rr.json("risk", "list", "--above-appetite") == []
    assert "appetite.safeguarding" not in _shown(rr)  # a category's appetite no one set is not listed
    assert _shown(rr)["appetite.default"]["source"] == "default"
    history = rr.json("config", "history")
    assert [(h["action"], h["key"], h["before"], h["after"], h["reason"]) for h in history] == [
        ("config.set", "appetite.safeguarding", None, 8, "Board, 3 Dec"),
        ("config.unset", "appetite.safeguarding", 8, None, "Board, 4 Jan"),
    ]
    assert history[-1]["in_force"] == 12
    text = rr("config", "history").stdout
    assert "(unset: 12)" in text
    assert rr.json("audit", "verify")["ok"] is True


def test_unset_prints_what_applies_now_and_a_set_after_it_starts_again(rr):
    rr.json("config", "set", "ratings.low", "4", "--reason", "wider")
    result = rr("config", "unset", "ratings.LOW", "--reason", "as before")
    assert (result.exit_code, result.stdout) == (0, "unset ratings.low (was 4); in force now: 3\n")
    assert rr.json("config", "set", "ratings.low", "2", "--reason", "again")["value"] == 2
    assert _shown(rr)["ratings.low"]["value"] == 2


def test_unset_falls_back_to_riskreg_toml(rr, tmp_path):
    (tmp_path / "riskreg.toml").write_text('organisation = "Anytown"\n')
    rr.json("config", "set", "organisation", "Anytown Council", "--reason", "full name")
    assert rr.json("config", "unset", "organisation", "--reason", "file")["in_force"] == "Anytown"
    assert _shown(rr)["organisation"]["source"].endswith("riskreg.toml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("appetite.finance", "--reason", "r"),
            "appetite.finance: not set in the database (its value comes from riskreg.toml or the "
            "default); nothing to unset",
        ),
        (
            ("apetite.finance", "--reason", "r"),
            "apetite.finance: not a governed key; did you mean 'appetite.finance'?",
        ),
        (
            ("srm_threshold", "--reason", "r"),
            "srm_threshold: not a governed key (a local setting: it stays in riskreg.toml)",
        ),
        (
            ("ratings.huge", "--reason", "r"),
            "ratings.huge: unknown key; expected one of low, medium, high, very high",
        ),
        (("appetite.default", "--reason", "  "), "reason: must not be empty (say why, for the audit trail)"),
        (
            ("ratings.high", "--reason", "r"),
            "ratings: upper bounds must increase from low to very high and end at 25, got [3, 15, 12, 25]",
        ),
    ],
)
def test_every_unset_refusal_is_one_error_line_and_writes_nothing(rr, args, message):
    rr.json("config", "set", "ratings.high", "20", "--reason", "wider")
    rr.json("config", "set", "ratings.medium", "15", "--reason", "wider")  # unsetting high would invert them
    rr.json("config", "set", "appetite.default", "10", "--reason", "board")
    before, history = _events(rr), rr.json("config", "history")
    result = rr("config", "unset", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {message}\n")
    assert (_events(rr), rr.json("config", "history")) == (before, history)


def test_check_and_config_show_name_the_riskreg_toml_values_the_database_overrides(rr, tmp_path):
    toml = tmp_path / "riskreg.toml"
    toml.write_text(
        'organisation = "Anytown"\n[appetite]\nsafeguarding = 4\nfinance = 9\n[review_days]\n"very high" = 20\n'
    )
    quiet = rr("check")
    assert (quiet.exit_code, quiet.stderr) == (0, "")  # nothing in the database yet: the file is in force
    rr.json("config", "set", "appetite.safeguarding", "8", "--reason", "Board")
    rr.json("config", "set", "review_days.very high", "30", "--reason", "Board")
    rr.json("config", "set", "appetite.finance", "9", "--reason", "same as the file")
    note = (
        f"Note: {toml} sets appetite.safeguarding = 4 (in force: 8), review_days.very high = 20 "
        "(in force: 30); the database's governed settings override these and the file's values "
        "are ignored. Remove them from the file (riskreg config show)\n"
    )
    for args in (("check",), ("check", "--json")):
        result = rr(*args)
        assert (result.exit_code, result.stderr) == (0, note), args
    assert json.loads(rr("check", "--json").stdout) == []
    shown = _shown(rr)
    assert shown["review_days.very high"]["ignored_file_value"] == 20
    assert "ignored_file_value" not in shown["appetite.finance"]  # the same value: nothing is ignored
    text = rr("config", "show").stdout
    assert (
        f"note: {toml} sets appetite.safeguarding = 4, which is ignored: the database's 8 is in force; "
        "remove the key from the file"
    ) in text
    assert f"note: {toml} also sets appetite.finance to the same value; remove it from the file" in text
    assert "organisation" not in rr("check").stderr  # set only in the file: it is in force
