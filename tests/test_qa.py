"""`riskreg check`: every rule has a case that triggers it and one that does not, on both backends."""

from __future__ import annotations

import datetime as dt
import json
import re

from riskreg.db import open_database
from riskreg.register import Context, add_risk
from tests.conftest import tamper
from tests.pilot_fixtures import LONG, PROTOCOL, registered, write
from tests.risk_fixtures import risk_add


def add(rr, title="A risk", side="citizen", likelihood="2", impact="2", *extra: str) -> str:
    return rr.json(
        *risk_add(
            title, "--owner", "Ana", *extra, side=side, mode="delivery", likelihood=likelihood, impact=impact
        )
    )["id"]


def findings(rr, rule: str) -> list[str]:
    result = rr("check", "--json")
    import json

    return [f["subject"] for f in json.loads(result.stdout) if f["rule"] == rule]


def balanced(rr) -> None:
    """Two risks on each side, so the one-sided rule stays quiet."""
    for side in ("citizen", "citizen", "professional", "professional"):
        add(rr, f"{side} risk", side)


def test_no_findings_on_an_empty_register(rr):
    result = rr("check")
    assert (result.exit_code, result.stdout) == (0, "no findings\n")


def test_review_overdue_warns_then_errors(rr, db_url):
    database = open_database(db_url)
    with database.write() as session:
        for days, title in ((40, "late"), (200, "very late")):
            ctx = Context("alice", database.config, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
            add_risk(
                session,
                ctx,
                {
                    "title": title,
                    "side": "citizen",
                    "mode": "design",
                    "likelihood": 1,
                    "impact": 1,
                    "owner": "Ana",
                    "review_days": 30,
                },
            )
    database.dispose()
    add(rr, "fresh")
    result = rr("check", "--json")
    import json

    overdue = {
        f["subject"]: f["severity"] for f in json.loads(result.stdout) if f["rule"] == "review-overdue"
    }
    assert overdue == {"R-1": "warning", "R-2": "error"}
    assert result.exit_code == 1


def test_no_owner(rr):
    rr(*risk_add("Unowned"))
    add(rr, "Owned")
    assert findings(rr, "no-owner") == ["R-1"]


def test_above_appetite_untreated_is_an_error(rr):
    add(rr, "Untreated", "citizen", "5", "5")
    add(rr, "Treated", "citizen", "5", "5", "--treatment", "treat")
    result = rr("check")
    assert result.exit_code == 1
    assert findings(rr, "above-appetite-untreated") == ["R-1"]


def test_lowered_without_control(rr):
    add(rr, "Lowered bare", "citizen", "4", "4")
    add(rr, "Lowered with control", "citizen", "4", "4")
    rr("control", "add", "R-2", "Peer checks", "--status", "in-place", "--citizen")
    for ref in ("R-1", "R-2"):
        rr("risk", "rescore", ref, "--likelihood", "2", "--impact", "2", "--reason", "better")
    assert findings(rr, "lowered-without-control") == ["R-1"]


def test_target_worse_than_current(rr):
    add(rr, "Worse target", "citizen", "2", "2", "--target-likelihood", "4", "--target-impact", "4")
    add(rr, "Good target", "citizen", "2", "2", "--target-likelihood", "1", "--target-impact", "1")
    assert findings(rr, "target-worse-than-current") == ["R-1"]


def test_closed_with_open_controls(rr):
    add(rr, "Closed, control planned")
    add(rr, "Closed, control in place")
    rr("control", "add", "R-1", "Planned measure")
    rr("control", "add", "R-2", "Done measure", "--status", "in-place")
    for ref in ("R-1", "R-2"):
        rr("risk", "close", ref, "--reason", "gone")
    assert findings(rr, "closed-with-open-controls") == ["R-1"]


def test_one_sided_register_only_matters_once_there_are_pilots(rr, tmp_path):
    for i in range(3):
        add(rr, f"citizen {i}", "citizen")
    assert findings(rr, "one-sided-register") == []
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-1")
    assert findings(rr, "one-sided-register") == ["P-1", "register"]
    add(rr, "professional 1", "professional")
    add(rr, "professional 2", "professional")
    rr("pilot", "link", "P-1", "R-4")
    assert findings(rr, "one-sided-register") == []


def test_test_treatment_without_pilot(rr, tmp_path):
    balanced(rr)
    add(rr, "Unlinked test", "citizen", "2", "2", "--treatment", "test")
    add(rr, "Linked test", "citizen", "2", "2", "--treatment", "test")
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-6", "R-3")
    assert findings(rr, "test-without-pilot") == ["R-5"]


def test_pilot_ended_without_rescore(rr, tmp_path):
    balanced(rr)
    add(rr, "Tested", "citizen", "2", "2", "--treatment", "test")
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-5", "R-3")
    rr("pilot", "gate", "P-1", "--decision", "stop", "--reason", "ended", "--override")
    assert findings(rr, "test-not-rescored") == ["R-5"]
    rr(
        "risk",
        "rescore",
        "R-5",
        "--likelihood",
        "2",
        "--impact",
        "3",
        "--reason",
        "pilot stopped: risk stands",
    )
    assert findings(rr, "test-not-rescored") == []


def test_rescore_without_evidence_while_the_pilot_has_data(rr, tmp_path):
    balanced(rr)
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-1", "R-3")
    rr("risk", "rescore", "R-1", "--likelihood", "3", "--impact", "2", "--reason", "before any data")
    assert findings(rr, "rescore-without-evidence") == []
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    rr("risk", "rescore", "R-1", "--likelihood", "2", "--impact", "2", "--reason", "gut feeling")
    assert findings(rr, "rescore-without-evidence") == ["R-1"]
    shown = rr.json(
        "risk",
        "rescore",
        "R-3",
        "--likelihood",
        "1",
        "--impact",
        "2",
        "--reason",
        "pilot says so",
        "--evidence",
        "P-1",
    )
    assert shown["evidence"]["pilot"] == "P-1"
    assert findings(rr, "rescore-without-evidence") == ["R-1"]


def test_amended_after_data(rr, tmp_path):
    path = registered(rr, tmp_path)
    write(tmp_path, "befriending.toml", PROTOCOL.replace("planned_n = 8", "planned_n = 9"))
    rr("pilot", "register", path, "--amend", "--reason", "before data")
    assert findings(rr, "amended-after-data") == []
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    write(tmp_path, "befriending.toml", PROTOCOL.replace("planned_n = 8", "planned_n = 10"))
    rr("pilot", "register", path, "--amend", "--reason", "after data")
    assert findings(rr, "amended-after-data") == ["P-1"]


def test_gate_override_and_decided_below_planned_size(rr, tmp_path):
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    rr("pilot", "gate", "P-1", "--decision", "continue", "--reason", "not yet")
    assert findings(rr, "gate-override") == []
    assert findings(rr, "decided-below-planned-size") == []
    rr("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "board insists", "--override")
    assert findings(rr, "gate-override") == ["P-1"]
    assert findings(rr, "decided-below-planned-size") == ["P-1"]


def test_sample_ratio_mismatch_at_a_decided_stage(rr, tmp_path):
    registered(rr, tmp_path)
    rows = "unit_id,arm,metric,value\n" + "".join(
        f"u{i},{'comparison' if i < 300 else 'pilot'},wellbeing,{40 + i % 7}\n" for i in range(400)
    )
    rr("pilot", "data", "P-1", write(tmp_path, "srm.csv", rows), "--stage", "feasibility")
    assert findings(rr, "sample-ratio-mismatch") == []  # not decided yet
    rr("pilot", "gate", "P-1", "--decision", "continue", "--reason", "look into allocation")
    assert findings(rr, "sample-ratio-mismatch") == ["P-1"]
    assert rr("check").exit_code == 1


def test_resource_blindness(rr, tmp_path):
    registered(rr, tmp_path)
    public = "stage,side,kind,hours,amount\nfeasibility,public,staff_time,10,300\n"
    rr("pilot", "resources", "P-1", write(tmp_path, "r.csv", public))
    assert findings(rr, "resource-blindness") == ["P-1"]
    rr(
        "pilot",
        "resources",
        "P-1",
        write(tmp_path, "c.csv", "stage,side,kind,hours,amount\nfeasibility,citizen,volunteer_time,20,\n"),
    )
    assert findings(rr, "resource-blindness") == []


def test_unvalued_citizen_hours(runner, tmp_path):
    from tests.conftest import Riskreg

    (tmp_path / "riskreg.toml").write_text("citizen_hour_value = 0\n")
    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    registered(rr, tmp_path)
    rr(
        "pilot",
        "resources",
        "P-1",
        write(tmp_path, "c.csv", "stage,side,kind,hours,amount\nfeasibility,citizen,volunteer_time,20,\n"),
    )
    messages = [f["message"] for f in rr.json("check") if f["rule"] == "resource-blindness"]
    assert messages == ["20 citizen hours recorded without a valuation (citizen_hour_value is 0)"]


def test_audit_chain_broken(rr, db_url):
    add(rr, "one")
    add(rr, "two")
    assert findings(rr, "audit-chain-broken") == []
    tamper(db_url, "UPDATE events SET actor = 'mallory' WHERE seq = 1")
    assert findings(rr, "audit-chain-broken") == ["event 1"]


def test_register_edited(rr, db_url):
    add(rr, "one")
    assert findings(rr, "register-edited") == []
    tamper(db_url, "UPDATE risks SET impact = 1 WHERE id = 1")
    result = rr("check", "--json")
    assert result.exit_code == 1  # an error finding
    found = [f for f in json.loads(result.stdout) if f["rule"] == "register-edited"]
    assert [(f["severity"], f["subject"], f["message"]) for f in found] == [
        ("error", "R-1", "impact is 1 in the register, but 2 in its last recorded state (event 1)")
    ]


def test_severity_comes_from_the_configuration(runner, tmp_path):
    from tests.conftest import Riskreg

    (tmp_path / "riskreg.toml").write_text('[check.severity]\nno-owner = "error"\n')
    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    rr(*risk_add("Unowned"))
    result = rr("check")
    assert result.exit_code == 1
    assert result.stdout.startswith("ERROR   no-owner")


def test_unknown_rule_in_configuration(runner, tmp_path):
    from tests.conftest import Riskreg

    (tmp_path / "riskreg.toml").write_text('[check.severity]\nno-owners = "error"\n')
    rr = Riskreg(runner, f"sqlite:///{tmp_path / 'r.db'}")
    rr("init")
    result = rr("check")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {tmp_path / 'riskreg.toml'}: check.severity: unknown rule no-owners (rules: review-overdue, "
    )


def test_review_record_moves_the_next_review_and_refuses_the_owner(rr):
    add(rr, "Reviewed")
    result = rr("review", "record", "R-1", "--outcome", "confirmed", "--note", "fine", actor="ana")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: ana owns R-1; a review must be recorded by someone other than the owner\n",
    )
    review = rr.json(
        "review", "record", "R-1", "--outcome", "escalated", "--note", "worse than scored", actor="qa"
    )
    assert (review["reviewer"], review["outcome"]) == ("qa", "escalated")
    assert rr.json("risk", "show", "R-1")["reviews"][0]["note"] == "worse than scored"
    assert [e["action"] for e in rr.json("risk", "history", "R-1")] == ["risk.add", "risk.review"]


def test_review_closed_outcome_closes_the_risk(rr):
    add(rr, "Done")
    rr("review", "record", "R-1", "--outcome", "closed", "--note", "service ended", actor="qa")
    assert rr.json("risk", "show", "R-1")["status"] == "closed"


def test_review_due_lists_overdue_first(rr, db_url):
    database = open_database(db_url)
    with database.write() as session:
        ctx = Context("alice", database.config, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
        add_risk(
            session,
            ctx,
            {
                "title": "late",
                "side": "citizen",
                "mode": "design",
                "likelihood": 1,
                "impact": 1,
                "review_days": 5,
            },
        )
    database.dispose()
    add(rr, "not due")
    due = rr.json("review", "due")
    assert [(d["id"], d["days_overdue"]) for d in due] == [("R-1", 5)]
    assert len(rr.json("review", "due", "--within", "400")) == 2
    shown = rr("review", "due", "--within", "400").stdout.splitlines()
    assert "5 days overdue" in shown[2] and re.search(r" in \d+ days ", shown[3])


def test_check_counts_read_as_words(rr):
    rr(*risk_add("Unowned"))
    assert rr("check").stdout.splitlines()[-1] == "0 errors, 1 warning, 0 notes"
