"""The database: created by `riskreg init`, migrations equal to the models, schema status and upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from riskreg.db import SCHEMA_HEAD, alembic_config, init_register, open_database
from riskreg.models import Base


def test_schema_head_constant_matches_the_migration_scripts():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_migrated_schema_equals_the_models(db_url):
    engine = create_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_a_new_database_is_created_at_head_by_init(runner, empty_db_url):
    from tests.conftest import Riskreg

    rr = Riskreg(runner, empty_db_url)
    assert rr.json("init")["schema"] == SCHEMA_HEAD
    assert rr.json("risk", "list") == []
    status = rr.json("db", "status")
    assert (status["revision"], status["head"], status["up_to_date"]) == (SCHEMA_HEAD, SCHEMA_HEAD, True)
    engine = create_engine(empty_db_url)
    assert {"risks", "controls", "reviews", "events", "audit_head"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_db_upgrade_on_current_schema_changes_nothing(rr):
    assert rr.json("db", "upgrade") == {"from": SCHEMA_HEAD, "to": SCHEMA_HEAD, "changed": False}


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    init_register(f"sqlite:///{tmp_path / 'w.db'}")
    database = open_database(f"sqlite:///{tmp_path / 'w.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    database.dispose()


def test_a_schema_that_is_behind_is_refused_until_db_upgrade(runner, empty_db_url):
    from alembic import command

    from tests.conftest import Riskreg

    engine = create_engine(empty_db_url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    engine.dispose()
    rr = Riskreg(runner, empty_db_url)
    result = rr("risk", "list")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: database schema is at revision 0002, this riskreg needs {SCHEMA_HEAD}; "
        "run `riskreg db upgrade` (back the database up first)\n",
    )
    assert rr.json("db", "status")["up_to_date"] is False
    assert rr.json("db", "upgrade") == {"from": "0002", "to": SCHEMA_HEAD, "changed": True}
    assert rr.json("risk", "list") == []
    assert rr.json("audit", "verify")["ok"] is True


def _migrate(url: str, revision: str, down: bool = False) -> None:
    from alembic import command

    engine = create_engine(url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    engine.dispose()


def test_observations_keep_their_pilot_and_stage_through_migration_0004_and_back(rr, db_url, tmp_path):
    from tests.pilot_fixtures import LONG, registered, write

    registered(rr, tmp_path)
    assert (
        rr("pilot", "data", "P-1", write(tmp_path, "long.csv", LONG), "--stage", "feasibility").exit_code == 0
    )
    counts = rr.json("pilot", "show", "P-1")
    analysis = rr.json("pilot", "analyse", "P-1")

    _migrate(db_url, "0003", down=True)  # observations carry pilot_id and stage_index again
    engine = create_engine(db_url)
    with engine.connect() as connection:
        copied = connection.exec_driver_sql("SELECT DISTINCT pilot_id, stage_index FROM observations").all()
    engine.dispose()
    assert copied == [(1, 0)]

    assert rr.json("db", "upgrade") == {"from": "0003", "to": SCHEMA_HEAD, "changed": True}
    assert rr.json("pilot", "show", "P-1") == counts
    assert rr.json("pilot", "analyse", "P-1") == analysis
    assert rr.json("audit", "verify")["ok"] is True


def test_migration_0012_makes_the_observations_index_brin_on_postgresql_and_keeps_the_data(
    rr, db_url, tmp_path
):
    """Issue 19: an import's rows are adjacent, so PostgreSQL indexes them by block range; SQLite keeps its b-tree."""
    from sqlalchemy import text

    from tests.pilot_fixtures import LONG, registered, write

    registered(rr, tmp_path)
    assert rr("pilot", "data", "P-1", write(tmp_path, "d.csv", LONG), "--stage", "feasibility").exit_code == 0
    before = rr.json("pilot", "analyse", "P-1")

    def index() -> str:
        engine = create_engine(db_url)
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_observations_import_id'"
            else:
                query = "SELECT sql FROM sqlite_master WHERE name = 'ix_observations_import_id'"
            found = connection.execute(text(query)).scalar_one()
        engine.dispose()
        return found

    postgres = db_url.startswith("postgresql")
    assert ("USING brin" in index()) is postgres
    _migrate(db_url, "0011", down=True)
    assert "brin" not in index().lower()
    assert rr.json("db", "upgrade") == {"from": "0011", "to": SCHEMA_HEAD, "changed": True}
    assert ("USING brin" in index()) is postgres
    assert rr.json("pilot", "analyse", "P-1") == before
    assert rr.json("audit", "verify")["ok"] is True
