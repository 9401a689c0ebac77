"""The assurance framework: controls' effectiveness and assurance, gaps, actions, their QA rules and migration 0009."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import IntegrityError

from riskreg.db import SCHEMA_HEAD, open_database
from riskreg.register import Context, apply_change, get_risk
from tests.conftest import Riskreg, intact, tamper
from tests.pilot_fixtures import LONG, registered, write
from tests.risk_fixtures import risk_add

TODAY = dt.datetime.now(dt.UTC).date()
PAST = (TODAY - dt.timedelta(days=10)).isoformat()
FUTURE = (TODAY + dt.timedelta(days=30)).isoformat()
ACTION_KEYS = {
    "id", "risk", "title", "owner", "due", "status", "overdue", "days_overdue", "version",
    "created_at", "created_by", "updated_at", "updated_by",
}  # fmt: skip


def add(
    rr, title: str = "Volunteers miss safeguarding signs", *extra: str, likelihood="3", impact="4"
) -> str:
    return rr.json(
        *risk_add(
            title,
            "--owner",
            "Ana",
            *extra,
            side="citizen",
            mode="delivery",
            likelihood=likelihood,
            impact=impact,
        )
    )["id"]


def events(rr) -> int:
    return rr.json("audit", "verify")["events"]


def error(result) -> tuple[int, str]:
    return result.exit_code, result.stderr


def findings(rr, rule: str) -> list[str]:
    return [f["subject"] for f in json.loads(rr("check", "--json").stdout) if f["rule"] == rule]


def messages(rr, rule: str) -> list[str]:
    return [f["message"] for f in json.loads(rr("check", "--json").stdout) if f["rule"] == rule]


# --- controls: effectiveness and assurance ---------------------------------------------------------


def test_a_control_is_not_assessed_until_rated(rr):
    add(rr)
    control = rr.json("control", "add", "R-1", "Peer supervision")
    assert (control["effectiveness"], control["assurance"], control["assurance_line"]) == (
        "not assessed",
        None,
        None,
    )


def test_control_add_with_effectiveness_and_assurance_shows_in_risk_show(rr):
    add(rr)
    control = rr.json(
        "control", "add", "R-1", "Safeguarding training", "--status", "in-place",
        "--effectiveness", "partially-effective", "--assurance", "Training records", "--line", "first",
    )  # fmt: skip
    assert (control["id"], control["effectiveness"], control["assurance"], control["assurance_line"]) == (
        "C-1",
        "partially effective",
        "Training records",
        "first",
    )
    shown = rr.json("risk", "show", "R-1")["controls"][0]
    assert {k: shown[k] for k in ("effectiveness", "assurance", "assurance_line")} == {
        "effectiveness": "partially effective",
        "assurance": "Training records",
        "assurance_line": "first",
    }
    text = rr("risk", "show", "R-1").stdout
    assert "EFFECTIVENESS" in text and "partially effective  first line: Training records" in text


def test_control_update_rates_it_and_the_change_is_in_the_history(rr):
    add(rr)
    rr("control", "add", "R-1", "Peer supervision", "--status", "in-place")
    control = rr.json(
        "control", "update", "C-1", "--effectiveness", "ineffective", "--assurance", "Spot check, January",
        "--line", "second", "--reason", "Spot check found gaps",
    )  # fmt: skip
    assert (control["effectiveness"], control["assurance_line"], control["version"]) == (
        "ineffective",
        "second",
        2,
    )
    last = rr.json("risk", "history", "R-1")[-1]
    assert (last["action"], last["entity_id"], last["reason"]) == (
        "control.update",
        "C-1",
        "Spot check found gaps",
    )
    assert last["changes"]["effectiveness"] == ["not assessed", "ineffective"]
    assert rr("control", "update", "C-1", "--status", "planned").exit_code == 0  # a reason stays optional
    assert rr.json("control", "update", "C-1", "--assurance", "", "--line", "")["assurance"] is None
    assert rr.json("audit", "verify")["ok"] is True


def test_control_refusals_are_one_line_and_write_nothing(rr):
    add(rr)
    rr("control", "add", "R-1", "Peer supervision", "--assurance", "Minutes")
    before = events(rr)
    cases = [
        (
            ("control", "add", "R-1", "X", "--effectiveness", "great"),
            "Error: effectiveness: expected one of effective, partially effective, ineffective, "
            "not assessed, got 'great'\n",
        ),
        (
            ("control", "add", "R-1", "X", "--line", "second"),
            "Error: line: an assurance line needs its source; give --assurance TEXT too\n",
        ),
        (
            ("control", "add", "R-1", "X", "--assurance", "Audit", "--line", "fourth"),
            "Error: line: expected one of first, second, third, got 'fourth'\n",
        ),
        (
            ("control", "update", "C-1", "--effectiveness", "not-assessed"),
            "Error: C-1: nothing to change (the values given are the current ones)\n",
        ),
    ]
    for args, message in cases:
        assert error(rr(*args)) == (1, message), args
    rr("control", "update", "C-1", "--line", "third")
    assert error(rr("control", "update", "C-1", "--assurance", "")) == (
        1,
        "Error: line: an assurance line needs its source; give --assurance TEXT too\n",
    )
    assert events(rr) == before + 1
    assert [c["id"] for c in rr.json("risk", "show", "R-1")["controls"]] == ["C-1"]


# --- gaps and closed risks -------------------------------------------------------------------------


def test_gaps_are_set_by_risk_update_and_shown(rr):
    add(rr)
    risk = rr.json(
        "risk", "update", "R-1", "--gaps-in-control", "No out-of-hours cover",
        "--gaps-in-assurance", "No audit of visit logs", "--reason", "Board assurance review",
    )  # fmt: skip
    assert (risk["gaps_in_control"], risk["gaps_in_assurance"], risk["version"]) == (
        "No out-of-hours cover",
        "No audit of visit logs",
        2,
    )
    assert rr.json("risk", "show", "R-1")["gaps_in_control"] == "No out-of-hours cover"
    assert rr.json("risk", "list")[0]["gaps_in_assurance"] == "No audit of visit logs"
    text = rr("risk", "show", "R-1").stdout
    assert "gaps in control:   No out-of-hours cover\ngaps in assurance: No audit of visit logs\n" in text
    cleared = rr.json("risk", "update", "R-1", "--gaps-in-control", "", "--reason", "Rota agreed")
    assert (cleared["gaps_in_control"], cleared["gaps_in_assurance"]) == (None, "No audit of visit logs")
    assert rr.json("audit", "verify")["ok"] is True


def test_gaps_need_a_reason_like_every_risk_update(rr):
    add(rr)
    result = rr("risk", "update", "R-1", "--gaps-in-control", "x", "--reason", " ")
    assert error(result) == (1, "Error: reason: must not be empty (say why, for the audit trail)\n")


def test_a_closed_risk_has_no_next_review(rr):
    add(rr)
    add(rr, "Another")
    rr("risk", "close", "R-1", "--reason", "Service ended")
    assert rr.json("risk", "show", "R-1")["next_review"] is None
    assert rr.json("risk", "list")[0]["next_review"] is None
    assert rr.json("risk", "list")[1]["next_review"] is not None
    assert "next review: -\n" in rr("risk", "show", "R-1").stdout
    assert [r["id"] for r in rr.json("review", "due", "--within", "4000")] == ["R-2"]
    listed = rr("risk", "list").stdout.splitlines()[2]
    assert listed.split()[:2] == ["R-1", "citizen"] and " closed  -  " in listed


# --- actions -----------------------------------------------------------------------------------------


def test_action_add_prints_the_action_and_risk_show_lists_it(rr):
    add(rr)
    action = rr.json(
        "action", "add", "R-1", "Train befrienders", "--owner", "Volunteer lead", "--due", FUTURE
    )
    assert set(action) == ACTION_KEYS
    assert (action["id"], action["risk"], action["status"], action["due"], action["version"]) == (
        "A-1",
        "R-1",
        "open",
        FUTURE,
        1,
    )
    assert (action["overdue"], action["created_by"]) == (False, "alice")
    assert rr.json("risk", "show", "R-1")["actions"] == [action]
    assert rr.json("action", "show", "A-1") == action
    assert "A-1  R-1   open    " in rr("risk", "show", "R-1").stdout
    assert rr("action", "add", "R-1", "Second", "--owner", "Sam", "--due", FUTURE).stdout == (
        f"added A-2 to R-1: Second (due {FUTURE}, Sam)\n"
    )
    history = rr.json("risk", "history", "R-1")
    assert [(e["action"], e["entity"], e["entity_id"]) for e in history[-2:]] == [
        ("action.add", "action", "A-1"),
        ("action.add", "action", "A-2"),
    ]


def test_action_refusals_are_one_line_and_write_nothing(rr):
    add(rr)
    add(rr, "Closed one")
    rr("risk", "close", "R-2", "--reason", "gone")
    before = events(rr)
    cases = [
        (("R-1", "T", "--owner", "Sam", "--due", "2026-02-30"), "due: expected a date as YYYY-MM-DD, got '2026-02-30'"),
        (("R-9", "T", "--owner", "Sam", "--due", FUTURE), "no risk R-9"),
        (("X-1", "T", "--owner", "Sam", "--due", FUTURE), "not a risk id: 'X-1' (expected R-<number>, e.g. R-1)"),
        (("R-2", "T", "--owner", "Sam", "--due", FUTURE), "R-2 is closed; actions cannot be added to a closed risk"),
        (("R-1", " ", "--owner", "Sam", "--due", FUTURE), "title: must not be empty"),
        (("R-1", "T", "--owner", "", "--due", FUTURE), "owner: must not be empty"),
    ]  # fmt: skip
    for args, message in cases:
        assert error(rr("action", "add", *args)) == (1, f"Error: {message}\n"), args
    assert rr("action", "add", "R-1", "T", "--owner", "Sam").exit_code == 2  # --due is required
    assert (events(rr), rr.json("action", "list")) == (before, [])
    rr("action", "add", "R-1", "T", "--owner", "Sam", "--due", FUTURE)
    before = events(rr)
    cases = [
        (("--status", "finished"), "status: expected one of open, done, cancelled, got 'finished'"),
        (("--due", "2026-13-01", "--reason", "x"), "due: expected a date as YYYY-MM-DD, got '2026-13-01'"),
        (("--status", "open"), "A-1: nothing to change (the values given are the current ones)"),
        (
            ("--status", "cancelled"),
            "reason: required to cancel, reopen or re-plan an action (say why, for the audit trail); "
            "marking it done needs none",
        ),
        (
            ("--due", PAST),
            "reason: required to cancel, reopen or re-plan an action (say why, for the audit trail); "
            "marking it done needs none",
        ),
    ]
    for args, message in cases:
        assert error(rr("action", "update", "A-1", *args)) == (1, f"Error: {message}\n"), args
    assert error(rr("action", "update", "A-9", "--status", "done")) == (1, "Error: no action A-9\n")
    assert error(rr("action", "show", "A-9")) == (1, "Error: no action A-9\n")
    assert rr("action", "update", "A-1").exit_code == 2  # nothing to change given
    assert events(rr) == before
    assert rr.json("action", "show", "A-1")["version"] == 1


def test_action_update_marks_done_without_a_reason_and_replans_with_one(rr):
    add(rr)
    rr("action", "add", "R-1", "Train befrienders", "--owner", "Sam", "--due", FUTURE)
    moved = rr.json("action", "update", "A-1", "--due", PAST, "--owner", "Kim", "--reason", "Trainer ill")
    assert (moved["due"], moved["owner"], moved["version"], moved["overdue"]) == (PAST, "Kim", 2, True)
    assert moved["days_overdue"] == 10
    done = rr.json("action", "update", "A-1", "--status", "done")
    assert (done["status"], done["overdue"], done["version"]) == ("done", False, 3)
    history = [e for e in rr.json("risk", "history", "R-1") if e["entity_id"] == "A-1"]
    assert [(e["action"], e["reason"]) for e in history] == [
        ("action.add", None),
        ("action.update", "Trainer ill"),
        ("action.update", None),
    ]
    assert history[1]["changes"] == {"due": [FUTURE, PAST], "owner": ["Sam", "Kim"]}
    reopened = rr.json("action", "update", "A-1", "--status", "open", "--reason", "Not everyone trained")
    assert reopened["status"] == "open"


def test_a_stale_action_version_is_refused_naming_who_and_when(rr):
    add(rr)
    rr("action", "add", "R-1", "Train befrienders", "--owner", "Sam", "--due", FUTURE)
    rr("action", "update", "A-1", "--title", "Train all befrienders", "--reason", "wider", actor="bob")
    result = rr("action", "update", "A-1", "--status", "done", "--expect-version", "1")
    assert result.exit_code == 1
    assert re.fullmatch(
        r"Error: A-1 was changed by bob at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(now version 2, you expected 1\); "
        r"nothing was saved: run `riskreg action show A-1` and try again\n",
        result.stderr,
    ), result.stderr
    assert rr.json("action", "show", "A-1")["status"] == "open"
    assert rr.json("action", "update", "A-1", "--status", "done", "--expect-version", "2")["version"] == 3


def test_the_actions_of_a_closed_risk_can_only_be_closed_out(rr):
    add(rr)
    rr("action", "add", "R-1", "A", "--owner", "Sam", "--due", FUTURE)
    rr("action", "add", "R-1", "B", "--owner", "Sam", "--due", FUTURE)
    rr("risk", "close", "R-1", "--reason", "Service ended")
    result = rr("action", "update", "A-1", "--due", PAST, "--reason", "x")
    assert error(result) == (1, "Error: R-1 is closed; its actions can only be marked done or cancelled\n")
    assert rr.json("action", "update", "A-1", "--status", "cancelled", "--reason", "Service ended")[
        "status"
    ] == ("cancelled")
    assert rr.json("action", "update", "A-2", "--status", "done")["status"] == "done"


def test_action_list_filters(rr):
    add(rr)
    add(rr, "Second risk")
    rr("action", "add", "R-1", "Late", "--owner", "Sam", "--due", PAST)
    rr("action", "add", "R-2", "Soon", "--owner", "Kim", "--due", FUTURE)
    rr("action", "add", "R-1", "Done late", "--owner", "Sam", "--due", PAST)
    rr("action", "update", "A-3", "--status", "done")
    assert [a["id"] for a in rr.json("action", "list")] == ["A-1", "A-3", "A-2"]  # soonest due first
    assert [a["id"] for a in rr.json("action", "list", "--overdue")] == ["A-1"]
    assert [a["id"] for a in rr.json("action", "list", "--risk", "R-2")] == ["A-2"]
    assert [a["id"] for a in rr.json("action", "list", "--status", "done")] == ["A-3"]
    assert error(rr("action", "list", "--risk", "R-7")) == (1, "Error: no risk R-7\n")
    text = rr("action", "list", "--overdue").stdout
    assert "A-1  R-1   open !" in text and text.endswith("1 action; ! = overdue\n")
    assert rr("action", "list", "--risk", "R-2", "--overdue").stdout == "no actions match\n"


def test_audit_verify_holds_actions_to_their_events(rr, db_url):
    add(rr)
    rr("control", "add", "R-1", "Peer supervision", "--effectiveness", "effective")
    rr("action", "add", "R-1", "Train befrienders", "--owner", "Sam", "--due", FUTURE)
    rr("action", "update", "A-1", "--status", "done")
    assert rr.json("audit", "verify") == intact(4, risks=1, controls=1, actions=1)
    tamper(db_url, "UPDATE actions SET status = 'open'")
    tamper(db_url, "UPDATE controls SET effectiveness = 'ineffective'")
    result = rr("audit", "verify", "--json")
    assert result.exit_code == 1
    mismatches = json.loads(result.stdout)["state"]["mismatches"]
    assert [(m["subject"], m["problem"].split(" in the register")[0]) for m in mismatches] == [
        ("C-1", 'effectiveness is "ineffective"'),
        ("A-1", 'status is "open"'),
    ]
    assert "register-edited" in {f["rule"] for f in json.loads(rr("check", "--json").stdout)}


# --- QA rules ---------------------------------------------------------------------------------------


def test_action_overdue(rr):
    add(rr)
    rr("action", "add", "R-1", "Train befrienders", "--owner", "Sam", "--due", PAST)
    rr("action", "add", "R-1", "Done late", "--owner", "Sam", "--due", PAST)
    rr("action", "update", "A-2", "--status", "done")
    rr("action", "add", "R-1", "In time", "--owner", "Sam", "--due", FUTURE)
    rr("action", "add", "R-1", "Due today", "--owner", "Sam", "--due", TODAY.isoformat())
    assert findings(rr, "action-overdue") == ["A-1"]
    assert messages(rr, "action-overdue") == [
        f"'Train befrienders' on R-1, owned by Sam, was due {PAST} (10 days overdue)"
    ]
    rr("action", "update", "A-1", "--status", "cancelled", "--reason", "Superseded")
    assert findings(rr, "action-overdue") == []


def test_control_ineffective_but_relied_on(rr):
    for title in ("Relies on a broken control", "Not lowered", "Planned only", "Effective"):
        add(rr, title)
    rr("control", "add", "R-1", "Broken", "--status", "in-place", "--effectiveness", "ineffective")
    rr("control", "add", "R-2", "Broken", "--status", "in-place", "--effectiveness", "ineffective")
    rr("control", "add", "R-3", "Broken", "--status", "planned", "--effectiveness", "ineffective")
    rr("control", "add", "R-4", "Works", "--status", "in-place", "--effectiveness", "effective")
    for risk in ("R-1", "R-3", "R-4"):
        rr("risk", "rescore", risk, "--likelihood", "2", "--impact", "4", "--reason", "controls")
    assert findings(rr, "control-ineffective-but-relied-on") == ["R-1"]
    assert messages(rr, "control-ineffective-but-relied-on") == [
        "current score 8 is below the inherent 12 while resting on C-1, rated ineffective"
    ]
    rr("control", "update", "C-1", "--effectiveness", "partially effective", "--reason", "fixed")
    assert findings(rr, "control-ineffective-but-relied-on") == []


def test_rescore_on_inconclusive_evidence(rr, tmp_path):
    add(rr, "Lowered on an inconclusive result")
    add(rr, "Raised on it")
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-1", "R-2")
    assert rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility").exit_code == 0
    down = rr.json(
        "risk",
        "rescore",
        "R-1",
        "--likelihood",
        "2",
        "--impact",
        "4",
        "--evidence",
        "P-1",
        "--reason",
        "pilot",
    )
    assert down["evidence"]["verdict"] == "inconclusive"
    rr(
        "risk",
        "rescore",
        "R-2",
        "--likelihood",
        "4",
        "--impact",
        "4",
        "--evidence",
        "P-1",
        "--reason",
        "pilot",
    )
    assert findings(rr, "rescore-on-inconclusive-evidence") == ["R-1"]
    assert re.fullmatch(
        r"re-scored down from 12 to 8 on \d{4}-\d\d-\d\d by alice on P-1's wellbeing result, which was inconclusive",
        messages(rr, "rescore-on-inconclusive-evidence")[0],
    )
    rr("risk", "rescore", "R-1", "--likelihood", "3", "--impact", "4", "--reason", "back until shown")
    assert findings(rr, "rescore-on-inconclusive-evidence") == []


def test_review_rescored_is_refused_without_a_rescore_since_the_last_review(rr):
    add(rr)
    before = events(rr)
    result = rr("review", "record", "R-1", "--outcome", "rescored", "--note", "lower now", actor="qa")
    assert error(result) == (
        1,
        "Error: R-1 has not been re-scored since it was added; re-score it first "
        "(riskreg risk rescore R-1 --likelihood L --impact I --reason ...) or record another outcome\n",
    )
    assert events(rr) == before
    rr("risk", "rescore", "R-1", "--likelihood", "2", "--impact", "4", "--reason", "controls work")
    assert (
        rr("review", "record", "R-1", "--outcome", "rescored", "--note", "agreed", actor="qa").exit_code == 0
    )
    again = rr("review", "record", "R-1", "--outcome", "rescored", "--note", "again", actor="qa")
    assert again.exit_code == 1
    assert re.fullmatch(
        r"Error: R-1 has not been re-scored since its last review on \d{4}-\d\d-\d\d; .*\n", again.stderr
    )
    assert (
        rr("review", "record", "R-1", "--outcome", "confirmed", "--note", "fine", actor="qa").exit_code == 0
    )
    assert findings(rr, "review-rescored-without-rescore") == []


def test_review_rescored_without_rescore_finds_reviews_recorded_before_the_refusal(rr, db_url):
    from riskreg.models import Review

    add(rr)
    add(rr, "Properly rescored")
    rr("risk", "rescore", "R-2", "--likelihood", "2", "--impact", "4", "--reason", "controls work")
    rr("review", "record", "R-2", "--outcome", "rescored", "--note", "agreed", actor="qa")
    # what an older riskreg recorded: the review and its event, with no re-score before it
    database = open_database(db_url)
    with database.write() as session:
        ctx = Context("qa", database.config)
        risk = get_risk(session, "R-1")
        review = Review(risk_id=risk.id, reviewer="qa", outcome="rescored", note="lower", reviewed_at=ctx.now)
        session.add(review)
        session.flush()
        extra = {"review": {"id": review.id, "outcome": "rescored", "reviewer": "qa"}}
        apply_change(session, ctx, risk, {"last_reviewed": ctx.today}, "risk.review", "lower", extra)
    database.dispose()
    assert rr.json("audit", "verify")["ok"] is True
    assert findings(rr, "review-rescored-without-rescore") == ["R-1"]


def test_target_above_appetite(rr):
    add(rr, "Target too high", "--target-likelihood", "4", "--target-impact", "4")
    add(rr, "Target within", "--target-likelihood", "3", "--target-impact", "4")
    add(rr, "No target")
    add(rr, "Closed", "--target-likelihood", "5", "--target-impact", "5")
    rr("risk", "close", "R-4", "--reason", "gone")
    assert findings(rr, "target-above-appetite") == ["R-1"]
    assert messages(rr, "target-above-appetite") == ["target score 16 is above the general appetite of 12"]


def test_target_above_appetite_reads_the_category_appetite(runner, tmp_path):
    (tmp_path / "riskreg.toml").write_text("[appetite]\ndefault = 12\nsafeguarding = 6\n")
    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    add(rr, "Safeguarding", "--category", "safeguarding", "--target-likelihood", "2", "--target-impact", "4")
    add(rr, "General", "--target-likelihood", "2", "--target-impact", "4")
    assert findings(rr, "target-above-appetite") == ["R-1"]


# --- export, import and migration 0009 -------------------------------------------------------------


def populate(rr) -> None:
    add(rr)
    rr("control", "add", "R-1", "Peer supervision", "--status", "in-place", "--effectiveness", "effective",
       "--assurance", "Internal audit 2027/03", "--line", "third")  # fmt: skip
    rr("risk", "update", "R-1", "--gaps-in-assurance", "No audit yet", "--reason", "BAF")
    rr("action", "add", "R-1", "Train befrienders", "--owner", "Sam", "--due", PAST)
    rr("action", "add", "R-1", "Audit visit logs", "--owner", "Kim", "--due", FUTURE)
    rr("action", "update", "A-2", "--status", "done")


def test_export_and_import_carry_actions_and_assurance(rr, tmp_path, empty_db_url):
    populate(rr)
    path = tmp_path / "e.json"
    exported = rr.json("export", str(path))
    assert exported["tables"]["actions"] == 2
    target = Riskreg(rr.runner, empty_db_url)
    target("init")
    assert target("import", str(path)).exit_code == 0
    for args in (("risk", "show", "R-1"), ("action", "list"), ("risk", "history", "R-1"), ("check",)):
        assert target.json(*args) == rr.json(*args), args
    assert target.json("audit", "verify")["state"] == rr.json("audit", "verify")["state"]
    assert target.json("audit", "verify")["state"]["actions"] == 2
    assert target.json("action", "add", "R-1", "Next", "--owner", "Sam", "--due", FUTURE)["id"] == "A-3"
    assert target.json("audit", "verify")["ok"] is True


def test_migration_0009_upgrades_a_0008_register_with_a_control(rr, db_url):
    from tests.test_schema import _migrate

    add(rr)
    rr("control", "add", "R-1", "Peer supervision", "--status", "in-place")
    _migrate(db_url, "0008", down=True)
    engine = create_engine(db_url)
    columns = {c["name"] for c in inspect(engine).get_columns("controls")}
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert "effectiveness" not in columns and "actions" not in tables
    result = rr("risk", "list")
    assert result.exit_code == 1 and "run `riskreg db upgrade`" in result.stderr

    assert rr.json("db", "upgrade") == {"from": "0008", "to": SCHEMA_HEAD, "changed": True}
    control = rr.json("risk", "show", "R-1")["controls"][0]
    assert (control["effectiveness"], control["assurance"], control["assurance_line"]) == (
        "not assessed",
        None,
        None,
    )
    assert rr.json("risk", "show", "R-1")["gaps_in_control"] is None
    assert rr.json("audit", "verify")["ok"] is True
    # the upgraded register takes the new values, and the database still checks them
    rr("control", "update", "C-1", "--effectiveness", "effective", "--assurance", "Audit", "--line", "third")
    rr("action", "add", "R-1", "Train befrienders", "--owner", "Sam", "--due", FUTURE)
    assert rr.json("audit", "verify") == intact(4, risks=1, controls=1, actions=1)
    engine = create_engine(db_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql("UPDATE controls SET effectiveness = 'great'")
    finally:
        engine.dispose()
