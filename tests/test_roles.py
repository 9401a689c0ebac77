"""Identity and roles: the actor is the login on PostgreSQL, GRANTs enforce the roles, events are append-only."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from riskreg.audit import event_hash
from riskreg.cli import cli
from riskreg.db import events_maintenance, os_login
from riskreg.models import Event
from tests.conftest import _create_pg_database, tamper

_logins = itertools.count(1)
ADD = ("risk", "add", "Volunteers miss signs", "--side", "citizen", "--mode", "delivery")
SCORE = ("--likelihood", "3", "--impact", "4")


class Team:
    """A PostgreSQL register with riskreg's roles and one login per role, each connecting as itself."""

    def __init__(self, runner: CliRunner, owner_url: str):
        self.runner, self.owner_url = runner, owner_url
        suffix = f"{os.getpid()}_{next(_logins)}"
        self.login = {role: f"{role}_{suffix}" for role in ("board", "manager", "reviewer", "admin")}
        self.login["nobody"] = f"nobody_{suffix}"

    def url(self, who: str) -> str:
        user = self.login.get(who, who)
        return (
            make_url(self.owner_url).set(username=user, password=None).render_as_string(hide_password=False)
        )

    def run(
        self, who: str, *args: str, actor: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        url = self.owner_url if who == "owner" else self.url(who)
        extra = ["--actor", actor] if actor else []
        return self.runner.invoke(cli, ["--db", url, *extra, *args], env=env, catch_exceptions=False)

    def json(self, who: str, *args: str, actor: str | None = None):  # type: ignore[no-untyped-def]
        result = self.run(who, *args, "--json", actor=actor)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def events(self) -> int:
        return int(self.json("owner", "audit", "verify")["events"])


@pytest.fixture
def team(runner: CliRunner, pg_admin_url: str, pg_template: str) -> Team:
    url = _create_pg_database(pg_admin_url, f"riskreg_roles_{os.getpid()}_{next(_logins)}", pg_template)
    crew = Team(runner, url)
    # riskreg's roles are the server's: pytest-xdist workers' first `db roles` may race to
    # create them, and riskreg runs the loser again
    result = crew.run("owner", "db", "roles")
    assert result.exit_code == 0, result.output
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for user in crew.login.values():
            connection.execute(text(f'CREATE ROLE "{user}" LOGIN'))
    engine.dispose()
    for role in ("board", "manager", "reviewer", "admin"):
        result = crew.run("owner", "db", "grant", crew.login[role], role)
        assert result.exit_code == 0, result.output
    return crew


def _one_error(result: Result, message: str) -> None:
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {message}\n")


# --- roles on PostgreSQL --------------------------------------------------------------------------


@pytest.mark.postgres
def test_db_roles_is_idempotent_and_grants_the_matrix(team):
    again = team.json("owner", "db", "roles")
    assert again["created"] == []
    assert again["roles"]["riskreg_board"]["risks"] == "SELECT"
    assert again["roles"]["riskreg_manager"]["risks"] == "SELECT, INSERT, UPDATE, DELETE"
    assert again["roles"]["riskreg_reviewer"]["reviews"] == "SELECT, INSERT"
    assert again["roles"]["riskreg_admin"]["events"] == "SELECT, INSERT"
    engine = create_engine(team.owner_url)
    with engine.connect() as connection:

        def may(role: str, table: str, privilege: str) -> bool:
            query = text("SELECT has_table_privilege(:r, :t, :p)")
            return bool(connection.execute(query, {"r": role, "t": table, "p": privilege}).scalar())

        for role in ("riskreg_board", "riskreg_manager", "riskreg_reviewer", "riskreg_admin"):
            assert may(role, "risks", "SELECT") and may(role, "events", "SELECT")
            for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
                assert not may(role, "events", privilege), (role, privilege)
        assert not may("riskreg_board", "risks", "INSERT")
        assert not may("riskreg_board", "audit_head", "UPDATE")
        assert not may("riskreg_reviewer", "risks", "INSERT")
        assert not may("riskreg_manager", "reviews", "INSERT")
        assert may("riskreg_manager", "observations", "INSERT")
    engine.dispose()


@pytest.mark.postgres
def test_a_board_member_reads_but_cannot_add_a_risk_and_nothing_is_written(team):
    assert team.json("manager", *ADD, *SCORE)["id"] == "R-1"
    before = team.events()
    result = team.run("board", *ADD, *SCORE)
    _one_error(result, "permission denied: your role (riskreg_board) cannot change risks; nothing was saved")
    assert team.events() == before
    assert [r["id"] for r in team.json("board", "risk", "list")] == ["R-1"]
    assert team.json("board", "audit", "verify")["ok"] is True


@pytest.mark.postgres
def test_a_reviewer_cannot_add_a_risk_but_records_a_review(team):
    team.json("manager", *ADD, *SCORE, "--owner", "Sam")
    before = team.events()
    _one_error(
        team.run("reviewer", *ADD, *SCORE),
        "permission denied: your role (riskreg_reviewer) cannot change risks; nothing was saved",
    )
    assert team.events() == before
    review = team.json("reviewer", "review", "record", "R-1", "--outcome", "confirmed", "--note", "checked")
    assert review["reviewer"] == team.login["reviewer"]
    assert team.events() == before + 1


@pytest.mark.postgres
def test_a_manager_cannot_grant_roles_nor_change_events(team):
    result = team.run("manager", "db", "grant", team.login["board"], "admin")
    _one_error(
        result,
        "permission denied: only a member of riskreg_admin may grant riskreg roles "
        f"(you are connected as {team.login['manager']}); nothing was changed",
    )
    team.json("manager", *ADD, *SCORE)
    engine = create_engine(team.url("manager"))
    for sql in ("UPDATE events SET reason = 'x'", "DELETE FROM events", "TRUNCATE events"):
        with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as connection:
            connection.execute(text("SET LOCAL riskreg.maintenance = 'on'"))
            connection.execute(text(sql))
    engine.dispose()
    assert team.json("owner", "audit", "verify")["ok"] is True


@pytest.mark.postgres
def test_an_admin_grants_roles_and_the_grant_is_in_the_trail(team):
    granted = team.json("admin", "db", "grant", team.login["nobody"], "board")
    assert granted == {
        "user": team.login["nobody"],
        "role": "riskreg_board",
        "granted_by": team.login["admin"],
    }
    assert team.json("nobody", "risk", "list") == []


@pytest.mark.postgres
def test_a_login_with_no_role_is_told_so(team):
    result = team.run("nobody", "risk", "list")
    login = team.login["nobody"]
    _one_error(
        result,
        f"permission denied: your login ({login}) has no riskreg role; an admin can run "
        f"riskreg db grant {login} board|manager|reviewer|admin",
    )


# --- identity on PostgreSQL -----------------------------------------------------------------------


@pytest.mark.postgres
def test_on_postgresql_the_actor_is_the_login(team):
    risk = team.json("manager", *ADD, *SCORE)
    history = team.json("manager", "risk", "history", risk["id"])
    assert (history[-1]["actor"], history[-1]["entered_by"]) == (team.login["manager"],) * 2
    # --actor naming the login itself is fine
    assert team.run("manager", *ADD, *SCORE, actor=team.login["manager"]).exit_code == 0


@pytest.mark.postgres
def test_an_actor_other_than_the_login_is_refused(team):
    before = team.events()
    login = team.login["manager"]
    _one_error(
        team.run("manager", *ADD, *SCORE, actor="bob"),
        f"you are connected as {login}; --actor bob is refused (on PostgreSQL the actor is your "
        "login; a login granted riskreg_admin may enter changes for others with --actor)",
    )
    _one_error(
        team.run("manager", *ADD, *SCORE, env={"RISKREG_ACTOR": "bob"}),
        f"you are connected as {login}; RISKREG_ACTOR=bob is refused (on PostgreSQL the actor is "
        "your login; unset RISKREG_ACTOR, or, as a member of riskreg_admin, enter for someone "
        "else with --actor)",
    )
    assert team.events() == before


@pytest.mark.postgres
def test_an_admin_entering_for_someone_records_both_names(team):
    risk = team.json("admin", *ADD, *SCORE, actor="bob")
    history = team.json("admin", "risk", "history", risk["id"])
    assert (history[-1]["actor"], history[-1]["entered_by"]) == ("bob", team.login["admin"])
    assert team.json("owner", "audit", "verify")["ok"] is True


# --- both backends --------------------------------------------------------------------------------


def test_events_refuse_update_and_delete_even_for_the_owner_without_the_switch(rr, db_url, backend):
    rr("risk", "add", "A", "--side", "shared", "--mode", "design", "--likelihood", "2", "--impact", "2")
    engine = create_engine(db_url)
    statements = ["UPDATE events SET reason = 'better'", "DELETE FROM events"]
    if backend == "postgresql":
        statements.append("TRUNCATE events")
    for sql in statements:
        with pytest.raises(DBAPIError, match="events are append-only"), engine.begin() as connection:
            connection.execute(text(sql))
    assert rr.json("audit", "verify")["ok"] is True
    # the maintenance switch lets a documented repair through (and verify then sees the edit)
    with engine.begin() as connection, events_maintenance(connection):
        connection.execute(text("UPDATE events SET reason = 'better' WHERE seq = 1"))
    # ...for that transaction only: the triggers are back
    with pytest.raises(DBAPIError, match="events are append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM events"))
    engine.dispose()
    assert rr("audit", "verify").exit_code == 1


def test_every_event_records_the_login_beside_the_actor(rr, backend):
    risk = rr.json(
        "risk", "add", "A", "--side", "shared", "--mode", "design", "--likelihood", "2", "--impact", "2"
    )
    event = rr.json("risk", "history", risk["id"])[-1]
    # the suite's PostgreSQL login is a superuser, which may enter for others
    login = os_login() if backend == "sqlite" else make_url(rr.url).username
    assert (event["actor"], event["entered_by"]) == ("alice", login)


def test_events_written_before_0010_still_verify(rr, db_url):
    rr("risk", "add", "A", "--side", "shared", "--mode", "design", "--likelihood", "2", "--impact", "2")
    rr("risk", "add", "B", "--side", "shared", "--mode", "design", "--likelihood", "2", "--impact", "2")
    # rewrite the chain as riskreg wrote it before 0010: no entered_by, the old 11-field hash
    engine = create_engine(db_url)
    with Session(engine) as session, session.begin(), events_maintenance(session.connection()):
        previous = "0" * 64
        for event in session.scalars(select(Event).order_by(Event.seq)):
            event.entered_by = None
            event.prev_hash = previous
            event.hash = previous = _hash_before_0010(event)
            assert event_hash(event) == event.hash
        session.flush()
        session.execute(text("UPDATE audit_head SET hash = :h"), {"h": previous})
    engine.dispose()
    assert rr.json("audit", "verify")["ok"] is True
    tamper(db_url, "UPDATE events SET entered_by = 'mallory' WHERE seq = 1")
    assert rr("audit", "verify").exit_code == 1


def _hash_before_0010(event: Event) -> str:
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
    fields = [event.seq, at.isoformat(), event.actor, event.action, event.entity, event.entity_id]
    fields += [event.scope, event.reason, event.before, event.after, event.prev_hash]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def test_sqlite_takes_any_actor_and_refuses_roles_and_grants(runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert runner.invoke(cli, ["--db", url, "init"]).exit_code == 0
    message = (
        "riskreg db {} is for PostgreSQL; a SQLite register has no database roles "
        "(its file's permissions decide who may change it)"
    )
    _one_error(runner.invoke(cli, ["--db", url, "db", "roles"]), message.format("roles"))
    _one_error(runner.invoke(cli, ["--db", url, "db", "grant", "alice", "board"]), message.format("grant"))
    result = runner.invoke(cli, ["--db", url, "--actor", "bob", *ADD, *SCORE, "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.postgres
def test_a_manager_cannot_change_governed_settings_even_with_sql(team):
    assert team.json("admin", "config", "set", "appetite.default", "10", "--reason", "Board")["version"] == 1
    before, history = team.events(), team.json("owner", "config", "history")
    refused = "permission denied: your role (riskreg_manager) cannot change settings; nothing was saved"
    _one_error(team.run("manager", "config", "set", "appetite.default", "8", "--reason", "mine"), refused)
    _one_error(team.run("manager", "config", "unset", "appetite.default", "--reason", "mine"), refused)
    engine = create_engine(team.url("manager"))
    for sql in (
        "UPDATE settings SET value = '8'",
        "INSERT INTO settings (key, value, version, updated_at, updated_by) "
        "VALUES ('ratings.low', '4', 1, now(), 'x')",
        "DELETE FROM settings",
    ):
        with (
            pytest.raises(DBAPIError, match="permission denied for table settings"),
            engine.begin() as connection,
        ):
            connection.execute(text(sql))
    engine.dispose()
    assert (team.events(), team.json("owner", "config", "history")) == (before, history)
    assert team.json("board", "config", "show")[0]["key"] == "organisation"
    assert {r["key"]: r["value"] for r in team.json("manager", "config", "show")}["appetite.default"] == 10


@pytest.mark.postgres
@pytest.mark.slow
def test_db_roles_run_at_once_for_registers_on_a_new_server_all_succeed():
    """Roles are the server's: every run creates or finds them, none fails on another's CREATE ROLE.

    Before runs that lost the race ran again, three of the four runs failed with
    pg_authid_rolname_index's unique violation, in each of 4 trials (measured).
    """
    import threading

    from riskreg.db import create_roles, open_database
    from tests.pgserver import start_cluster

    try:
        server = start_cluster()  # a server where the roles do not exist yet
    except RuntimeError as exc:
        from tests.conftest import _unavailable

        _unavailable(str(exc))
    try:
        databases = [open_database(_new_register(server.admin_url, f"roles_{i}")) for i in range(4)]
        together = threading.Barrier(len(databases))
        outcomes: dict[int, object] = {}

        def run(index: int) -> None:
            together.wait()
            try:
                outcomes[index] = create_roles(databases[index])["created"]
            except Exception as exc:  # the test reports what each run raised
                outcomes[index] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(databases))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for database in databases:
            database.dispose()
        assert all(isinstance(created, list) for created in outcomes.values()), outcomes
        # each role was created by exactly one run
        made = sorted(role for created in outcomes.values() for role in created)  # type: ignore[union-attr]
        assert made == sorted(["riskreg_admin", "riskreg_board", "riskreg_manager", "riskreg_reviewer"])
    finally:
        server.stop()


def _new_register(admin_url: str, name: str) -> str:
    from riskreg.db import init_register

    url = _create_pg_database(admin_url, name)
    init_register(url)
    return url
