"""The audit chain detects edits and deletions made behind the tool's back."""

from __future__ import annotations

import json
import re

from tests.conftest import intact, tamper
from tests.pilot_fixtures import LONG, registered, write
from tests.risk_fixtures import risk_add

HEAD = re.compile(r"head: RR-(\d+)-([0-9a-f]{12}) \(event \1, hash \2[0-9a-f]{52}\)")


def verified(rr) -> dict[str, object]:
    """`audit verify --json`, with its head checked against itself and set aside (its hash varies)."""
    document = rr.json("audit", "verify")
    head = document.pop("head")
    assert head["seal"] == f"RR-{head['events']}-{head['hash'][:12]}"
    return document


def matching(events: int, protocols: int = 0, **counts: int) -> dict[str, object]:
    """`intact(...)` with the counts of the rows verify holds beyond risks, controls, pilots and data files."""
    document = intact(events, **counts)
    document.pop("head", None)  # verified() sets the head aside
    extra = {"protocols": protocols, "links": 0, "decisions": 0, "reviews": 0, "evidence": 0}
    document["state"] = {**document["state"], **extra}  # type: ignore[dict-item]
    return document


def without_head(stdout: str) -> str:
    """The output of `audit verify` with its head line (its second) checked and left out."""
    lines = stdout.splitlines(keepends=True)
    assert HEAD.fullmatch(lines[1].rstrip("\n")), lines[1]
    return "".join(lines[:1] + lines[2:])


def make_three_events(rr) -> None:
    rr("risk", "add", "A", "--side", "citizen", "--mode", "design", "--likelihood", "2", "--impact", "2")
    rr("risk", "rescore", "R-1", "--likelihood", "3", "--impact", "2", "--reason", "worse")
    rr("risk", "close", "R-1", "--reason", "done")


def test_every_change_writes_an_event_with_actor_and_reason(rr):
    make_three_events(rr)
    events = rr.json("risk", "history", "R-1")
    assert [(e["action"], e["actor"], e["reason"]) for e in events] == [
        ("risk.add", "alice", None),
        ("risk.rescore", "alice", "worse"),
        ("risk.close", "alice", "done"),
    ]
    assert events[1]["before"]["likelihood"] == 2 and events[1]["after"]["likelihood"] == 3


def test_edited_event_is_found(rr, db_url):
    make_three_events(rr)
    tamper(db_url, "UPDATE events SET reason = 'better' WHERE seq = 2")
    result = rr("audit", "verify")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: audit chain broken at event 2: event 2 was altered after it was written\n",
    )


def test_deleted_event_in_the_middle_is_found(rr, db_url):
    make_three_events(rr)
    tamper(db_url, "DELETE FROM events WHERE seq = 2")
    result = rr("audit", "verify")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: audit chain broken at event 2: event 2 is missing (deleted)\n",
    )


def test_deleted_newest_event_is_found(rr, db_url):
    make_three_events(rr)
    tamper(db_url, "DELETE FROM events WHERE seq = 3")
    result = rr("audit", "verify")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: audit chain broken at event 3: chain ends at event 2: the newest events were deleted\n",
    )


def test_rehashed_edit_still_breaks_the_next_link(rr, db_url):
    make_three_events(rr)
    # a forger who recomputes the edited event's own hash still breaks the link from the next one
    from riskreg.audit import event_hash
    from riskreg.db import open_database
    from riskreg.models import Event

    database = open_database(db_url)
    with database.read() as session:
        event = session.get(Event, 2)
        event.reason = "better"
        forged = event_hash(event)
    database.dispose()
    tamper(db_url, f"UPDATE events SET reason = 'better', hash = '{forged}' WHERE seq = 2")
    result = rr("audit", "verify")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: audit chain broken at event 3: event 3 does not link to event 2\n",
    )


def test_verify_json_reports_the_break(rr, db_url):
    make_three_events(rr)
    tamper(db_url, "UPDATE events SET actor = 'mallory' WHERE seq = 1")
    result = rr("audit", "verify", "--json")
    assert result.exit_code == 1
    assert '"broken_at": 1' in result.stdout


# --- the register against its trail --------------------------------------------------------------


def make_register(rr, tmp_path) -> None:
    """Three events on R-1 (add, rescore, close), a control on a second risk, and a pilot."""
    make_three_events(rr)
    rr(*risk_add("B", side="professional", mode="delivery", likelihood="3", impact="3"))
    rr("control", "add", "R-2", "Weekly supervision", "--owner", "Team lead")
    registered(rr, tmp_path)


def test_a_register_changed_only_by_riskreg_matches_its_trail(rr, tmp_path):
    make_register(rr, tmp_path)
    result = rr("audit", "verify")
    assert (result.exit_code, without_head(result.stdout)) == (
        0,
        "audit chain intact: 6 events\n"
        "register matches the trail: 2 risks, 1 control, 1 pilot, 0 data files\n"
        "and so do 1 protocol text, 0 risk links, 0 gate decisions, 0 reviews, 0 evidence records\n",
    )


def test_fields_edited_behind_riskregs_back_are_each_named(rr, db_url, tmp_path):
    make_register(rr, tmp_path)
    tamper(db_url, "UPDATE risks SET likelihood = 5, owner = 'Mallory' WHERE id = 1")
    tamper(db_url, "UPDATE controls SET status = 'in-place' WHERE id = 1")
    tamper(db_url, "UPDATE pilots SET status = 'completed' WHERE id = 1")
    result = rr("audit", "verify")
    assert (result.exit_code, without_head(result.stdout), result.stderr) == (
        1,
        "audit chain intact: 6 events\n"
        "R-1: likelihood is 5 in the register, but 3 in its last recorded state (event 3)\n"
        'R-1: owner is "Mallory" in the register, but null in its last recorded state (event 3)\n'
        'C-1: status is "in-place" in the register, but "planned" in its last recorded state (event 5)\n'
        'P-1: status is "completed" in the register, but "active" in its last recorded state (event 6)\n',
        "Error: the register was edited outside riskreg: 4 differences from the audit trail\n",
    )


def test_rows_no_event_created_and_recorded_rows_deleted_are_found(rr, db_url, tmp_path):
    make_register(rr, tmp_path)
    tamper(
        db_url,
        "INSERT INTO controls (id, risk_id, description, owner, status, citizen, version, created_at, created_by, "
        "updated_at, updated_by) SELECT 2, risk_id, 'Forged', owner, status, citizen, 1, created_at, created_by, "
        "updated_at, updated_by FROM controls WHERE id = 1",
    )
    tamper(db_url, "DELETE FROM risks WHERE id = 1")
    result = rr("audit", "verify", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["ok"], document["broken_at"]) == (False, None)  # the chain itself is intact
    assert document["state"] == {
        "ok": False,
        "risks": 1,
        "controls": 2,
        "pilots": 1,
        "data_files": 0,
        "protocols": 1,
        "links": 0,
        "decisions": 0,
        "reviews": 0,
        "evidence": 0,
        "actions": 0,
        "mismatches": [
            {"subject": "R-1", "problem": "recorded by events 1 to 3, but missing from the register"},
            {"subject": "C-2", "problem": "in the register, but no event records it"},
        ],
    }


def test_a_restored_edit_matches_again(rr, db_url, tmp_path):
    make_register(rr, tmp_path)
    tamper(db_url, "UPDATE risks SET impact = 5 WHERE id = 2")
    assert rr("audit", "verify").exit_code == 1
    tamper(db_url, "UPDATE risks SET impact = 3 WHERE id = 2")
    assert rr("audit", "verify").exit_code == 0


# --- data files against their events --------------------------------------------------------------

COSTS = "stage,side,kind,hours,amount\nfeasibility,public,staff_time,10,300\nfeasibility,citizen,volunteer_time,20,\n"
WELLBEING_AGAIN = "unit_id,arm,metric,value\nu1,comparison,wellbeing,41\nu2,pilot,wellbeing,45\n"


def make_data(rr, tmp_path) -> None:
    """P-1 with an outcome file, a --replace of its wellbeing rows, and a resources file (4 events)."""
    registered(rr, tmp_path)
    rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility")
    rr(
        "pilot",
        "data",
        "P-1",
        write(tmp_path, "w.csv", WELLBEING_AGAIN),
        "--stage",
        "feasibility",
        "--replace",
    )
    rr("pilot", "resources", "P-1", write(tmp_path, "costs.csv", COSTS))


def test_data_files_replaced_as_riskreg_replaces_them_match_their_events(rr, tmp_path):
    make_data(rr, tmp_path)
    assert verified(rr) == matching(4, protocols=1, pilots=1, data_files=3)


def test_edited_counts_and_import_records_are_named(rr, db_url, tmp_path):
    make_data(rr, tmp_path)
    tamper(db_url, "UPDATE import_counts SET n = n + 5 WHERE import_id = 1 AND metric = 1 AND arm = 1")
    tamper(db_url, "UPDATE data_imports SET source = 'other.csv' WHERE id = 2")
    tamper(db_url, "UPDATE resources SET amount = 3000 WHERE amount = 300")
    result = rr("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[2:] == [
        'P-1: outcomes file \'d.csv\': readmitted in arm pilot counts {"missing": 0, "n": 7} in the register,'
        ' but {"missing": 0, "n": 2} in event 2',
        'P-1: outcomes file \'other.csv\': file "other.csv" in the register, but "w.csv" in event 3',
        # the stored rows no longer match the edited count either
        "P-1: outcomes file 'd.csv': readmitted in arm pilot: 2 observation rows are stored, but the import counted 7",
        "P-1: resources file 'costs.csv': public cash 3000.0 in the register, but 300.0 in event 4",
    ]
    assert (
        result.stderr
        == "Error: the register was edited outside riskreg: 4 differences from the audit trail\n"
    )


def test_a_deleted_import_and_an_unrecorded_one_are_found(rr, db_url, tmp_path):
    make_data(rr, tmp_path)
    tamper(db_url, "DELETE FROM resources WHERE import_id = 3")
    tamper(db_url, "DELETE FROM data_imports WHERE id = 3")
    tamper(
        db_url,
        "INSERT INTO data_imports (id, pilot_id, stage_index, kind, source, rows, missing, replaced, at, actor) "
        "SELECT 9, pilot_id, stage_index, kind, 'forged.csv', rows, missing, replaced, at, actor "
        "FROM data_imports WHERE id = 1",
    )
    result = rr("audit", "verify", "--json")
    assert result.exit_code == 1
    mismatches = json.loads(result.stdout)["state"]["mismatches"]
    assert mismatches == [
        {
            "subject": "P-1",
            "problem": "outcomes file 'forged.csv' (import 9) is in the register, but no event records it",
        },
        {
            "subject": "P-1",
            "problem": "event 4 records resources file 'costs.csv', but the register has no such import",
        },
    ]
