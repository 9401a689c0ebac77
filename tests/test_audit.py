"""The audit chain detects edits and deletions made behind the tool's back."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def make_three_events(rr) -> None:
    rr("risk", "add", "A", "--side", "citizen", "--mode", "design", "--likelihood", "2", "--impact", "2")
    rr("risk", "rescore", "R-1", "--likelihood", "3", "--impact", "2", "--reason", "worse")
    rr("risk", "close", "R-1", "--reason", "done")


def tamper(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


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
