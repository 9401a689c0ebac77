"""`risk show` and `risk add` run on SQLAlchemy Core (riskreg.riskcore) and match the ORM's work exactly."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select

from riskreg import riskcore
from riskreg.actions import actions_of
from riskreg.db import open_database
from riskreg.evidence import evidence_for
from riskreg.records import action_to_dict, evidence_to_dict, review_to_dict, risk_to_dict
from riskreg.register import Context, add_risk, get_risk
from riskreg.reviews import reviews_of
from riskreg.tables import audit_head, counters, events, risks
from tests.conftest import intact
from tests.pilot_fixtures import LONG, registered, write
from tests.risk_fixtures import risk_add

NOW = dt.datetime(2027, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
ADDED = (
    {"title": "Volunteers miss signs", "side": "citizen", "mode": "delivery", "likelihood": 3, "impact": 4},
    {
        "title": "  Caseloads delay calls ünïcode ",
        "side": "Professional",
        "mode": "design",
        "likelihood": 4,
        "impact": 3,
        "category": "Safeguarding",
        "owner": "Team manager",
        "description": "Longer text",
        "treatment": "test",
        "target_likelihood": 1,
        "target_impact": 2,
        "review_days": 30,
    },
    {
        "title": "Closed at once",
        "side": "shared",
        "mode": "assessment",
        "likelihood": 1,
        "impact": 1,
        "status": "closed",
    },
)


def _imported_after(url: str, *commands: list[str]) -> str:
    """Run riskreg commands in one fresh interpreter; return the last line: the ORM modules it imported."""
    script = (
        "import sys\n"
        "from riskreg.cli import main\n"
        f"for args in {list(commands)!r}:\n"
        "    try:\n"
        f"        main(['--db', {url!r}, '--actor', 'a', *args])\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
        "print([m for m in ('sqlalchemy.orm', 'riskreg.models') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_risk_show_and_risk_add_import_neither_the_orm_nor_the_models(tmp_path):
    """Issue 19: the ORM's import and mapping are a quarter of these commands' start-up."""
    url = f"sqlite:///{tmp_path}/r.db"
    subprocess.run([sys.executable, "-m", "riskreg", "--db", url, "init"], check=True, capture_output=True)
    add = list(risk_add("A", "--owner", "o", "--category", "finance"))
    shown = (["risk", "show", "R-1"], ["risk", "show", "R-1", "--json"])
    assert _imported_after(url, add, [*add, "--json"], *shown) == "[]"
    # a change that may write a governed setting goes through the ORM (settings), and works too
    _imported_after(url, list(risk_add("B", "--new-category")))
    verify = subprocess.run(
        [sys.executable, "-m", "riskreg", "--db", url, "audit", "verify"], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _stored(executor: Any) -> dict[str, list[Any]]:
    """The rows a risk's addition writes: the risk, the event, the chain's head and the counters."""
    tables = {"risks": risks, "events": events, "audit_head": audit_head, "counters": counters}
    return {
        name: [tuple(row) for row in executor.execute(select(t).order_by(*t.primary_key))]
        for name, t in tables.items()
    }


def test_a_core_add_stores_what_the_orm_add_stores(rr, db_url):
    """Each risk is added through the ORM (rolled back), then through Core: the same rows, event and hash."""
    database = open_database(db_url)
    ctx = Context(actor="alice", config=database.config, now=NOW)
    try:
        for values in ADDED:
            with database.write(dry_run=True) as session:
                by_orm = risk_to_dict(add_risk(session, ctx, values), ctx.config)
                session.flush()
                orm_rows = _stored(session)
            with database.begin() as connection:
                by_core = risk_to_dict(riskcore.add_risk(connection, ctx, values), ctx.config)
                core_rows = _stored(connection)
            assert (by_core, core_rows) == (by_orm, orm_rows)
    finally:
        database.dispose()
    assert rr.json("audit", "verify") == intact(3, risks=3)
    assert [_sealed_as_before(row) for row in core_rows["events"]] == [row[11] for row in core_rows["events"]]


def _sealed_as_before(event: tuple[Any, ...]) -> str:
    """An event's hash as riskreg has always computed it (its fields, then the login if any)."""
    seq, at, actor, action, entity, entity_id, scope, reason, before, after, prev_hash, _, entered_by = event
    fields = [seq, at.isoformat(), actor, action, entity, entity_id, scope, reason, before, after, prev_hash]
    fields += [{"entered_by": entered_by}] if entered_by is not None else []
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def _busy_risk(rr, tmp_path) -> None:
    """R-1 with a control and its assurance, two reviews, evidence from a pilot and three actions."""
    assert rr(*risk_add("Volunteers miss signs", "--owner", "Owen")).exit_code == 0
    rr("control", "add", "R-1", "Peer checks", "--citizen", "--status", "in-place", "--due", "2030-01-02")
    rr(
        "control",
        "add",
        "R-1",
        "Training",
        "--effectiveness",
        "partially effective",
        "--assurance",
        "Records",
        "--line",
        "first",
    )
    registered(rr, tmp_path)
    rr("pilot", "link", "P-1", "R-1")
    assert rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility").exit_code == 0
    rescore = (
        "risk",
        "rescore",
        "R-1",
        "--likelihood",
        "1",
        "--impact",
        "3",
        "--reason",
        "pilot",
        "--evidence",
        "P-1",
    )
    assert rr(*rescore).exit_code == 0
    assert (
        rr("review", "record", "R-1", "--outcome", "rescored", "--note", "seen", actor="rita").exit_code == 0
    )
    assert (
        rr("review", "record", "R-1", "--outcome", "confirmed", "--note", "again", actor="rita").exit_code
        == 0
    )
    rr("action", "add", "R-1", "Overdue", "--owner", "Ann", "--due", "2020-01-01")
    rr("action", "add", "R-1", "Later", "--owner", "Ann", "--due", "2099-01-01")
    rr("action", "add", "R-1", "Finished", "--owner", "Ann", "--due", "2021-01-01")
    assert rr("action", "update", "A-3", "--status", "done").exit_code == 0


def _orm_document(session: Any, ctx: Context, ref: str) -> dict[str, Any]:
    """What `risk show` printed when it read through the ORM."""
    risk = get_risk(session, ref, with_controls=True)
    data = risk_to_dict(risk, ctx.config, with_controls=True)
    data["reviews"] = [review_to_dict(r) for r in reviews_of(session, risk.id)]
    data["evidence"] = [evidence_to_dict(e) for e in evidence_for(session, risk.id)]
    data["actions"] = [action_to_dict(a, ctx.today) for a in actions_of(session, risk.id)]
    return data


def test_risk_show_reads_with_core_what_the_orm_read(rr, db_url, tmp_path):
    _busy_risk(rr, tmp_path)
    database = open_database(db_url)
    ctx = Context(actor="alice", config=database.config)
    try:
        with database.read() as session:
            expected = _orm_document(session, ctx, "R-1")
        with database.connect() as connection:
            assert riskcore.show_risk(connection, ctx, "r1") == expected
    finally:
        database.dispose()
    shown = rr.json("risk", "show", "R-1")
    assert [len(shown[k]) for k in ("controls", "reviews", "evidence", "actions")] == [2, 2, 1, 3]
    assert shown == {**expected, "actions": shown["actions"]}  # the CLI's today, not this test's


@pytest.mark.parametrize("ref", ["R-9", "C-1", "nonsense"])
def test_risk_show_refuses_as_before(rr, ref):
    rr(*risk_add("A"))
    result = rr("risk", "show", ref)
    expected = {"R-9": "no risk R-9", "C-1": "not a risk id: 'C-1' (expected R-<number>, e.g. R-1)"}
    message = expected.get(ref, "not a risk id: 'nonsense' (expected R-<number>, e.g. R-1)")
    assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n")


def test_a_category_off_the_list_is_refused_by_the_core_add(rr):
    assert rr("config", "set", "categories", "finance,safety", "--reason", "agreed").exit_code == 0
    result = rr(*risk_add("A", "--category", "safty"))
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: category 'safty' is not in the register's list (finance, safety); did you mean 'safety'? "
        "Add one with riskreg config set categories ... or --new-category\n",
    )
    assert rr.json(*risk_add("B", "--category", "Safety"))["category"] == "safety"
    assert rr.json(*risk_add("C", "--category", "audit", "--new-category"))["id"] == "R-2"
    assert rr.json(*risk_add("D", "--category", "audit"))["id"] == "R-3"  # on the list now
