"""No lost updates: two real connections writing the same risk at the same time, on both backends."""

from __future__ import annotations

import threading

from riskreg import audit
from riskreg.db import open_database
from riskreg.errors import StaleVersion
from riskreg.register import Context, add_risk, get_risk, rescore_risk


def _add_one(url: str) -> None:
    database = open_database(url)
    with database.write() as session:
        add_risk(
            session,
            Context("setup", database.config),
            {"title": "Shared", "side": "shared", "mode": "design", "likelihood": 3, "impact": 3},
        )
    database.dispose()


def test_two_writers_on_the_same_version_one_wins_and_the_other_is_told_who(db_url):
    _add_one(db_url)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def writer(actor: str, likelihood: int) -> None:
        database = open_database(db_url)
        with database.read() as session:
            seen = get_risk(session, "R-1").version
        barrier.wait()
        try:
            with database.write() as session:
                rescore_risk(
                    session,
                    Context(actor, database.config),
                    "R-1",
                    likelihood,
                    2,
                    "concurrent",
                    expect_version=seen,
                )
            outcomes[actor] = "saved"
        except StaleVersion as exc:
            outcomes[actor] = str(exc)
        finally:
            database.dispose()

    threads = [threading.Thread(target=writer, args=(a, n)) for a, n in (("alice", 1), ("bob", 5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winner = next(a for a, o in outcomes.items() if o == "saved")
    loser = next(a for a in outcomes if a != winner)
    assert outcomes[loser].startswith(f"R-1 was changed by {winner} at ")
    assert "(now version 2, you expected 1)" in outcomes[loser]


def test_many_interleaved_writers_lose_nothing(db_url):
    _add_one(db_url)
    per_writer = 15

    def writer(actor: str) -> None:
        database = open_database(db_url)
        for i in range(per_writer):
            with database.write() as session:
                rescore_risk(session, Context(actor, database.config), "R-1", 1 + i % 5, 2, f"{actor} {i}")
        database.dispose()

    threads = [threading.Thread(target=writer, args=(a,)) for a in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    database = open_database(db_url)
    with database.read() as session:
        assert get_risk(session, "R-1").version == 1 + 2 * per_writer
        events = audit.history(session, "R-1")
        assert [e.after for e in events][-1] is not None
        assert [e.seq for e in events] == list(range(1, 2 + 2 * per_writer))
        assert audit.verify(session).ok
    database.dispose()
