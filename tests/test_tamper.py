"""`audit verify` finds one-statement edits of every row that can change an outcome."""

from __future__ import annotations

import json
import re

from riskreg.models import Event
from tests.conftest import tamper
from tests.pilot_fixtures import LONG, PROTOCOL, registered, write
from tests.risk_fixtures import risk_add

LINKED = PROTOCOL.replace(
    'hypothesis = "No worse for wellbeing."', 'hypothesis = "No worse."\nrisks = ["R-1"]'
)


def make_outcomes(rr, tmp_path) -> None:
    """Eight events: R-1 and R-2, P-1 registered on R-1, linked to R-2, data, a re-score on it, a review, a gate."""
    rr(*risk_add("Volunteers miss signs", "--owner", "Ana"))  # 1
    rr(*risk_add("Caseloads delay calls", side="professional"))  # 2
    registered(rr, tmp_path, LINKED)  # 3: links R-1
    rr("pilot", "link", "P-1", "R-2")  # 4
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")  # 5
    rescore = ("risk", "rescore", "R-1", "--likelihood", "1", "--impact", "1", "--reason", "pilot")
    assert rr(*rescore, "--evidence", "P-1").exit_code == 0  # 6
    assert (
        rr("review", "record", "R-1", "--outcome", "confirmed", "--note", "seen", actor="qa").exit_code == 0
    )  # 7
    gate = ("pilot", "gate", "P-1", "--decision", "proceed", "--reason", "Board: go", "--override")
    assert rr(*gate).exit_code == 0  # 8


def differences(rr) -> tuple[int, list[str], str]:
    """Exit status, the lines naming differences, and the error line of `audit verify`."""
    result = rr("audit", "verify")
    lines = [line for line in result.stdout.splitlines() if not line.startswith(("audit chain", "head:"))]
    return result.exit_code, lines, result.stderr


def test_the_untouched_register_matches_and_counts_every_kind(rr, tmp_path):
    make_outcomes(rr, tmp_path)
    state = rr.json("audit", "verify")["state"]
    counts = {k: v for k, v in state.items() if k != "mismatches"}
    assert counts == {
        "ok": True,
        "risks": 2,
        "controls": 0,
        "pilots": 1,
        "data_files": 1,
        "protocols": 1,
        "links": 2,
        "decisions": 1,
        "reviews": 1,
        "evidence": 1,
        "actions": 0,
    }


def test_an_edited_protocol_text_is_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE pilots SET protocol_text = replace(protocol_text, 'margin = 3.0', 'margin = 9.0')")
    tamper(db_url, "UPDATE protocol_versions SET text = text || ' '")
    assert differences(rr) == (
        1,
        [
            "P-1: protocol text does not hash to its SHA-256 "
            f"{_protocol_sha(rr)[:12]}…: it was edited after it was registered",
            "P-1: protocol version 1: text does not hash to its SHA-256 "
            f"{_protocol_sha(rr)[:12]}…: it was edited after it was registered",
        ],
        "Error: the register was edited outside riskreg: 2 differences from the audit trail\n",
    )


def _protocol_sha(rr) -> str:
    return rr.json("pilot", "show", "P-1")["protocol_sha256"]


def test_a_protocol_rewritten_with_its_hash_is_found_by_its_event(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE protocol_versions SET text = 'x', sha256 = " + _sha_sql("x"))
    exit_code, lines, _error = differences(rr)
    assert (exit_code, lines) == (
        1,
        [
            f'P-1: protocol version 1: sha256 "{_sha("x")}" in the register, but "{_protocol_sha(rr)}" in event 3'
        ],
    )


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _sha_sql(text: str) -> str:
    return f"'{_sha(text)}'"


def test_a_flipped_or_re_reasoned_decision_is_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE decisions SET decision = 'stop', reason = 'Board: no'")
    assert differences(rr)[:2] == (
        1,
        [
            'P-1: gate decision 1 at feasibility: decision "stop" in the register, but "proceed" in event 8',
            'P-1: gate decision 1 at feasibility: reason "Board: no" in the register, but "Board: go" in event 8',
        ],
    )


def test_an_override_turned_plain_and_a_rewritten_snapshot_are_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE decisions SET override = false, actor = 'bob'")
    tamper(db_url, "UPDATE decisions SET snapshot = replace(snapshot, 'wellbeing', 'wellness')")
    _exit, lines, _error = differences(rr)
    assert lines[:2] == [
        "P-1: gate decision 1 at feasibility: override false in the register, but true in event 8",
        'P-1: gate decision 1 at feasibility: actor "bob" in the register, but "alice" in event 8',
    ]
    assert re.fullmatch(
        'P-1: gate decision 1 at feasibility: snapshot SHA-256 "[0-9a-f]{64}" in the register, '
        'but "[0-9a-f]{64}" in event 8',
        lines[2],
    )
    assert len(lines) == 3


def test_a_deleted_decision_and_a_forged_one_are_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE decisions SET id = 7")
    assert differences(rr)[1] == [
        "P-1: gate decision 7 ('proceed') is in the register, but no event records it",
        "P-1: event 8 records gate decision 'proceed' at feasibility, but the register has no such decision",
    ]


def test_edited_and_deleted_reviews_are_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE reviews SET outcome = 'escalated'")
    assert differences(rr)[1] == [
        'R-1: review 1: outcome "escalated" in the register, but "confirmed" in event 7'
    ]
    tamper(db_url, "DELETE FROM reviews")
    assert differences(rr)[1] == [
        "R-1: event 7 records a review ('confirmed'), but the register has no such review"
    ]


def test_edited_and_deleted_evidence_is_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE evidence SET estimate = estimate + 10, verdict = 'superior', n_pilot = 40")
    assert differences(rr)[1] == [
        'R-1: evidence 1: verdict "superior" in the register, but "inconclusive" in event 6',
        "R-1: evidence 1: estimate 14.5 in the register, but 4.5 in event 6",
        'R-1: evidence 1: n {"comparison": 1, "pilot": 40} in the register, but {"comparison": 1, "pilot": 1} in event 6',
    ]
    tamper(db_url, "DELETE FROM evidence")
    assert differences(rr)[1] == [
        "R-1: event 6 records evidence from P-1 (wellbeing), but the register has no such evidence"
    ]


def test_added_and_removed_links_are_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "DELETE FROM pilot_risks WHERE risk_id = 1")
    rr(*risk_add("Unlinked"))  # R-3, event 9
    tamper(db_url, "INSERT INTO pilot_risks (pilot_id, risk_id) VALUES (1, 3)")
    result = rr("audit", "verify", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["state"]["mismatches"] == [
        {"subject": "P-1", "problem": "linked to R-3 in the register, but no event links them"},
        {"subject": "P-1", "problem": "event 3 links R-1, but the register has no such link"},
    ]


def test_events_written_before_verify_held_these_rows_are_still_compared(rr, db_url, tmp_path):
    """Older events lack the decision's id and digest, the review's id and the links made at registration."""
    from tests.test_seal import edit_after, rewrite_history

    make_outcomes(rr, tmp_path)

    def as_written_before(event: Event) -> None:
        after = json.loads(event.after or "{}")
        for key in ("decision_id", "snapshot_sha256"):
            after.pop(key, None)
        if event.action == "pilot.register":
            after.pop("risks")
        after.get("review", {}).pop("id", None)
        event.after = None
        edit_after(event, **after)

    rewrite_history(db_url, as_written_before)
    assert rr("audit", "verify").exit_code == 0
    tamper(
        db_url,
        'UPDATE decisions SET snapshot = replace(snapshot, \'"stage":"feasibility"\', \'"stage":"x"\')',
    )
    tamper(db_url, "DELETE FROM reviews")
    tamper(db_url, "DELETE FROM pilot_risks WHERE risk_id = 1")
    assert differences(rr)[1] == [
        "P-1: event 3 links R-1, but the register has no such link",
        'P-1: gate decision 1 at feasibility: snapshot stage "x" in the register, but "feasibility" in event 8',
        "R-1: event 7 records a review ('confirmed'), but the register has no such review",
    ]


def test_an_unreadable_protocol_text_is_reported_not_parsed(rr, db_url, tmp_path):
    from tests.test_audit import make_data

    make_data(rr, tmp_path)  # P-1 with outcome and resources files
    sha = _protocol_sha(rr)
    tamper(db_url, "UPDATE pilots SET protocol_text = 'not a protocol ['")
    assert differences(rr) == (
        1,
        [
            "P-1: resources file 'costs.csv': its rows can no longer be totalled by the protocol's stages",
            f"P-1: protocol text does not hash to its SHA-256 {sha[:12]}…: it was edited after it was registered",
        ],
        "Error: the register was edited outside riskreg: 2 differences from the audit trail\n",
    )


def test_check_reports_the_edited_rows_as_register_edited(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE reviews SET note = 'never seen'")
    result = rr("check", "--json")
    found = [
        (f["subject"], f["message"]) for f in json.loads(result.stdout) if f["rule"] == "register-edited"
    ]
    assert (result.exit_code, found) == (
        1,
        [("R-1", 'review 1: note "never seen" in the register, but "seen" in event 7')],
    )


# --- observation rows and the sums analyses read ----------------------------------------------------
# Metric codes follow the protocol (wellbeing 0, readmitted 1, incidents 2); arms comparison 0, pilot 1.


def test_an_edited_observation_value_is_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE observations SET value = 49.5 WHERE unit_id = 'u3' AND metric = 0")
    assert differences(rr)[:2] == (
        1,
        [
            "P-1: outcomes file 'd.csv': wellbeing in arm pilot: the stored values no longer add up to what "
            "the import counted"
        ],
    )


def test_an_edited_exposure_is_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE observations SET exposure = 75 WHERE unit_id = 'u2' AND metric = 2")
    assert differences(rr)[1] == [
        "P-1: outcomes file 'd.csv': incidents in arm pilot: the stored exposures no longer add up to what "
        "the import counted"
    ]


def test_deleted_added_and_duplicated_observation_rows_are_found(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)
    tamper(db_url, "DELETE FROM observations WHERE unit_id = 'u1' AND metric = 1")
    tamper(
        db_url,
        "INSERT INTO observations (import_id, metric, arm, unit_id, value) VALUES (1, 2, 1, 'u9', 4)",
    )
    tamper(db_url, "UPDATE observations SET unit_id = 'u2' WHERE unit_id = 'u3' AND metric = 1")
    assert differences(rr)[:2] == (
        1,
        [
            "P-1: outcomes file 'd.csv': readmitted in arm comparison: 0 observation rows are stored, but the "
            "import counted 1",
            "P-1: outcomes file 'd.csv': readmitted in arm pilot: 1 unit appears twice among its observation rows",
            "P-1: outcomes file 'd.csv': incidents in arm pilot: 3 observation rows are stored, but the import "
            "counted 2",
        ],
    )


def test_sums_edited_in_import_counts_are_found_by_the_event(rr, db_url, tmp_path):
    """An analysis reads import_counts: an edited sum is held to the sums the import's event recorded."""
    make_outcomes(rr, tmp_path)
    tamper(db_url, "UPDATE import_counts SET total = total + 3 WHERE metric = 2 AND arm = 1")
    code, lines, _error = differences(rr)
    assert (code, lines[0]) == (
        1,
        "P-1: outcomes file 'd.csv': incidents in arm pilot: the sums analyses read (total) differ from those "
        "its event recorded",
    )
    assert len(lines) == 2  # and the stored rows no longer add up to the edited total
