"""Shared fixtures: a real database per test on SQLite and PostgreSQL, and a CLI runner."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from riskreg.cli import cli
from riskreg.db import init_register
from tests.pgserver import start_cluster

IN_CI = os.environ.get("CI", "").lower() == "true"
_counter = itertools.count(1)

# CI draws the same hypothesis examples on every run, so that its verdict on a commit can
# be reproduced; local runs draw new ones and keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
# A longer search, for a session spent hunting: pytest --hypothesis-profile=deep
settings.register_profile("deep", max_examples=1000, deadline=None, print_blob=True)
if IN_CI:
    settings.load_profile("ci")


_SHARED_CLUSTER = "_riskreg_shared_cluster"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, start one throwaway PostgreSQL cluster for every worker (they inherit its URL).

    Each worker then makes its own databases in it (names carry the worker's id and pid). Without
    xdist, or when the cluster cannot start, the session fixture below starts one itself
    (and in CI fails rather than skips).
    """
    workers = getattr(config.option, "numprocesses", None)
    if hasattr(config, "workerinput") or not workers or os.environ.get("RISKREG_TEST_DATABASE_URL"):
        return
    if config.option.markexpr and "not postgres" in config.option.markexpr.replace("  ", " "):
        return
    try:
        cluster = start_cluster()
    except RuntimeError:
        return  # each worker tries for itself, and reports why
    setattr(config, _SHARED_CLUSTER, cluster)
    os.environ["RISKREG_TEST_DATABASE_URL"] = cluster.admin_url


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the cluster the workers shared, once they are done."""
    cluster = getattr(config, _SHARED_CLUSTER, None)
    if cluster is not None:
        os.environ.pop("RISKREG_TEST_DATABASE_URL", None)
        cluster.stop()


def _unavailable(reason: str) -> None:
    # Locally the PostgreSQL variants skip; in CI a skip would hide a broken backend.
    if IN_CI:
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server: $RISKREG_TEST_DATABASE_URL or a throwaway cluster."""
    given = os.environ.get("RISKREG_TEST_DATABASE_URL")
    if given:
        yield given
        return
    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        _unavailable(str(exc))
        return
    try:
        yield cluster.admin_url
    finally:
        cluster.stop()


def _tag() -> str:
    """This process's part of a database name: the xdist worker (gw0, gw1...; "main" without) and its pid.

    The pid keeps two sessions sharing one RISKREG_TEST_DATABASE_URL apart too.
    """
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


@functools.cache
def _admin(admin_url: str) -> Engine:
    """One admin connection per server and process, for the thousand databases a session makes."""
    return create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=1, pool_pre_ping=True)


def _create_pg_database(admin_url: str, name: str, template: str | None = None) -> str:
    with _admin(admin_url).connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        clause = f' TEMPLATE "{template}"' if template else ""
        if template and connection.dialect.server_version_info >= (15,):
            # a file copy of the small template, not its every block written to the WAL: 7 ms
            # against 12-16 ms a database, measured on a throwaway cluster (fsync off)
            clause += " STRATEGY FILE_COPY"
        connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(admin_url: str, url: str) -> None:
    """Drop a test's database once it is done (the workers' databases would fill the cluster's memory)."""
    name = url.rsplit("/", 1)[1]
    # a leftover database is harmless (the cluster is thrown away): never fail a test for one
    with contextlib.suppress(SQLAlchemyError), _admin(admin_url).connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    """Name of a database migrated once to the newest schema, copied for each test."""
    name = f"riskreg_template_{_tag()}"
    url = _create_pg_database(pg_admin_url, name)
    init_register(url)
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once to the newest schema, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    init_register(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses a database runs once per backend."""
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database at the newest schema, on the backend under test."""
    if backend == "sqlite":
        target = tmp_path / "riskreg.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    template = request.getfixturevalue("pg_template")
    url = _create_pg_database(admin, f"riskreg_test_{_tag()}_{next(_counter)}", template)
    yield url
    _drop_pg_database(admin, url)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database (no schema yet) on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = _create_pg_database(admin, f"riskreg_empty_{_tag()}_{next(_counter)}")
    yield url
    _drop_pg_database(admin, url)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A click runner in an empty working folder, with no riskreg settings from the environment."""
    for name in ("RISKREG_DATABASE_URL", "RISKREG_ACTOR", "RISKREG_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


class Riskreg:
    """Runs riskreg commands against one database, as a given actor."""

    def __init__(self, runner: CliRunner, url: str):
        self.runner, self.url = runner, url

    def __call__(self, *args: str, actor: str = "alice", input: str | None = None) -> Result:
        return self.runner.invoke(
            cli, ["--db", self.url, "--actor", actor, *args], input=input, catch_exceptions=False
        )

    def json(self, *args: str, actor: str = "alice"):  # type: ignore[no-untyped-def]
        """Run a command with --json, assert it succeeded, and return the parsed document."""
        import json

        result = self(*args, "--json", actor=actor)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def rr(runner: CliRunner, db_url: str) -> Riskreg:
    """riskreg on a fresh database of the backend under test."""
    return Riskreg(runner, db_url)


def intact(
    events: int,
    risks: int = 0,
    controls: int = 0,
    pilots: int = 0,
    data_files: int = 0,
    protocols: int | None = None,
    links: int = 0,
    decisions: int = 0,
    reviews: int = 0,
    evidence: int = 0,
    actions: int = 0,
) -> dict[str, object]:
    """What `audit verify --json` prints for an intact chain and a register that matches it, at any head."""
    counts = {
        "risks": risks,
        "controls": controls,
        "pilots": pilots,
        "data_files": data_files,
        "protocols": pilots if protocols is None else protocols,  # one text per pilot unless amended
        "links": links,
        "decisions": decisions,
        "reviews": reviews,
        "evidence": evidence,
        "actions": actions,
    }
    state = {"ok": True, **counts, "mismatches": []}
    return {"events": events, "ok": True, "broken_at": None, "problem": None, "head": ANY, "state": state}


def tamper(url: str, sql: str) -> None:
    """Change the database behind riskreg's back, as someone with SQL access could.

    The events table is append-only (schema 0010): the edit runs under the maintenance switch.
    """
    from riskreg.db import events_maintenance

    engine = create_engine(url)
    with engine.begin() as connection, events_maintenance(connection):
        connection.execute(text(sql))
    engine.dispose()
