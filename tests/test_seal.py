"""`audit seal` anchors the chain's head outside the database; `audit verify --seal` holds the chain to it."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from riskreg.audit import GENESIS_HASH, canonical_json, event_hash
from riskreg.db import events_maintenance
from riskreg.models import AuditHead, Event
from tests.conftest import tamper
from tests.test_audit import make_three_events
from tests.test_tamper import make_outcomes


def head(rr) -> dict[str, object]:
    return rr.json("audit", "verify")["head"]


def rewrite_history(url: str, change: Callable[[Event], None]) -> None:
    """Edit events and recompute every hash with riskreg's own event_hash, audit_head too: a thorough forger."""
    engine = create_engine(url)
    # events are append-only (schema 0010): the forger uses the maintenance switch
    with Session(engine) as session, session.begin(), events_maintenance(session.connection()):
        previous = GENESIS_HASH
        for event in session.scalars(select(Event).order_by(Event.seq)):
            change(event)
            event.prev_hash = previous
            event.hash = previous = event_hash(event)
        last = session.get(AuditHead, 1)
        assert last is not None
        last.hash = previous
        session.flush()
    engine.dispose()


def edit_after(event: Event, **values: object) -> None:
    event.after = canonical_json({**json.loads(event.after or "{}"), **values})


def test_a_seal_names_the_head_before_its_own_event(rr):
    make_three_events(rr)
    before = head(rr)
    sealed = rr.json("audit", "seal", "--note", "Board minutes, 12 May")
    assert sealed["seal"] == f"RR-3-{before['hash'][:12]}" == before["seal"]
    assert (sealed["events"], sealed["hash"], sealed["event"]) == (3, before["hash"], 4)
    event = rr.json("audit", "verify")
    assert (event["events"], event["head"]["events"]) == (4, 4)


def test_the_seal_event_is_in_the_trail_with_its_code(rr, db_url):
    make_three_events(rr)
    code = rr("audit", "seal").stdout.splitlines()[0]
    engine = create_engine(db_url)
    with Session(engine) as session:
        event = session.get(Event, 4)
        assert event is not None
        assert (event.action, event.entity, event.entity_id, event.actor) == (
            "audit.seal",
            "audit",
            "E-3",
            "alice",
        )
        assert json.loads(event.after or "{}")["seal"] == code
    engine.dispose()


def test_verify_holds_the_chain_to_a_seal_short_or_full(rr):
    make_three_events(rr)
    short = rr.json("audit", "seal")["seal"]
    full = rr.json("audit", "seal", "--full")["seal"]
    result = rr("audit", "verify", "--seal", short)
    assert result.exit_code == 0
    assert f"seal {short} holds: events 1 to 3 are as sealed (sealed in event 4)\n" in result.stdout
    assert rr.json("audit", "verify", "--seal", full)["seal"] == {
        "code": full,
        "events": 4,
        "ok": True,
        "problem": None,
        "sealed_in": 5,
    }


def test_verify_prints_the_head_to_write_down(rr):
    make_three_events(rr)
    document = rr.json("audit", "verify")
    result = rr("audit", "verify")
    assert result.stdout.splitlines()[1] == (
        f"head: {document['head']['seal']} (event 3, hash {document['head']['hash']})"
    )


def test_a_malformed_seal_names_the_expected_shape(rr):
    make_three_events(rr)
    result = rr("audit", "verify", "--seal", "RR-3-xyz")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: seal: 'RR-3-xyz' is not a seal code; expected RR-<events>-<12 hex digits>, "
        "e.g. RR-412-3f9a1c0d7e22\n",
    )


def test_a_seal_beyond_the_chain_is_refused(rr, db_url):
    make_three_events(rr)
    code = rr.json("audit", "seal")["seal"].replace("RR-3-", "RR-9-")
    result = rr("audit", "verify", "--seal", code)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: seal {code} names event 9, but the chain ends at event 4 "
        "(events were deleted, or the seal is of another register)\n",
    )


def test_a_seal_of_a_broken_chain_is_refused(rr, db_url):
    make_three_events(rr)
    tamper(db_url, "UPDATE events SET reason = 'better' WHERE seq = 2")
    result = rr("audit", "seal")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: audit chain broken at event 2: event 2 was altered after it was written; "
        "a seal would anchor a tampered history\n",
    )
    assert json.loads(rr("audit", "verify", "--json").stdout)["head"]["events"] == 3  # no seal event


def test_an_override_rewritten_and_rehashed_passes_verify_but_not_the_seal(rr, db_url, tmp_path):
    make_outcomes(rr, tmp_path)  # event 8 is P-1's gate: 'proceed' by alice, with --override
    code = rr.json("audit", "seal")["seal"]

    def plain_decision_by_bob(event: Event) -> None:
        if event.seq == 8:
            event.actor = "bob"
            edit_after(event, override=False)

    tamper(db_url, "UPDATE decisions SET override = false, actor = 'bob'")
    rewrite_history(db_url, plain_decision_by_bob)
    assert rr("audit", "verify").exit_code == 0  # chain and register agree with each other
    rewritten = head(rr)["hash"]
    assert rewritten != code
    result = rr("audit", "verify", "--seal", code)
    engine = create_engine(db_url)
    with Session(engine) as session:
        now = session.scalar(select(Event.hash).where(Event.seq == 8)) or ""
    engine.dispose()
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: seal {code} does not match: event 8 now hashes to {now[:12]}, "
        "so the history up to event 8 was rewritten\n",
    )


def test_later_events_keep_a_seal_and_a_break_after_it_is_still_an_error(rr, db_url):
    make_three_events(rr)
    code = rr.json("audit", "seal")["seal"]  # event 4
    rr("risk", "add", "B", "--side", "shared", "--mode", "design", "--likelihood", "2", "--impact", "2")  # 5
    assert rr("audit", "verify", "--seal", code).exit_code == 0
    tamper(db_url, "UPDATE events SET actor = 'mallory' WHERE seq = 5")
    result = rr("audit", "verify", "--seal", code, "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["broken_at"], document["seal"]["ok"]) == (5, True)


def test_reports_print_the_seal_given_in_their_context(rr, db_url):
    from dataclasses import replace

    from riskreg.db import open_database
    from riskreg.report import board_context, qa_context, render_report

    make_three_events(rr)
    database = open_database(db_url)
    with database.read() as session:
        board = board_context(session, database.config, db_url, as_of="2026-12-01")
        qa = qa_context(session, database.config, db_url, as_of="2026-12-01")
    database.dispose()
    for name, context in (("board", board), ("qa", qa)):
        sealed = replace(context, page=replace(context.page, seal="RR-3-3f9a1c0d7e22"))
        assert '<p class="note seal">Audit seal RR-3-3f9a1c0d7e22</p>' in render_report(name, sealed)
        unsealed = replace(context, page=replace(context.page, seal=""))
        assert "Audit seal" not in render_report(name, unsealed)


def test_board_and_qa_reports_print_the_seal_of_the_data_they_show(rr, tmp_path):
    make_three_events(rr)
    code = head(rr)["seal"]
    for kind in ("board", "qa"):
        out = tmp_path / f"{kind}.html"
        assert rr("report", kind, "-o", str(out), "--as-of", "2026-12-01").exit_code == 0
        first = out.read_bytes()
        assert f'<p class="note seal">Audit seal {code}</p>'.encode() in first
        assert rr("report", kind, "-o", str(out), "--as-of", "2026-12-01").exit_code == 0
        assert out.read_bytes() == first  # the same data give the same bytes
