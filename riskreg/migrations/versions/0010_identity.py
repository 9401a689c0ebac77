"""Identity and append-only events: who was logged in, and no UPDATE, DELETE or TRUNCATE on events.

``events`` gain ``entered_by``: the login that wrote the event (PostgreSQL: the database
login, ``session_user``; SQLite: the OS login), beside ``actor`` (on whose behalf). It is
nullable and hashed only when set, so every event written before this revision still
verifies unchanged. A downgrade keeps the column (dropping it would break the hashes of
the events that record a login) and drops only the triggers.

Triggers refuse UPDATE and DELETE on ``events`` (and, on PostgreSQL, TRUNCATE) from every
role, the table's owner included. On PostgreSQL the maintenance switch
``SET LOCAL riskreg.maintenance = 'on'`` lets a transaction through (for documented
repairs only: any edit still breaks ``riskreg audit verify``). SQLite has no session
settings: maintenance there drops the two triggers and creates them again
(``riskreg.db.events_maintenance`` does both).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_REFUSED = "events are append-only"

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION riskreg_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('riskreg.maintenance', true), '') = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{_REFUSED}: % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only a documented repair may SET LOCAL riskreg.maintenance = ''on''';
END
$$
"""

SQLITE_TRIGGERS = {
    "events_no_update": (
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: UPDATE on events is refused'); END"
    ),
    "events_no_delete": (
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: DELETE on events is refused'); END"
    ),
}


def upgrade() -> None:
    # a plain nullable column: SQLite adds it in place. A downgrade keeps it (see there), so
    # an upgrade after a downgrade finds it already present, with the logins it recorded.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("events")}
    if "entered_by" not in columns:
        with op.batch_alter_table("events") as batch:
            batch.add_column(sa.Column("entered_by", sa.String(length=200), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION riskreg_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION riskreg_events_append_only()"
        )
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC")
    else:
        for sql in SQLITE_TRIGGERS.values():
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_no_truncate ON events")
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP FUNCTION IF EXISTS riskreg_events_append_only()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    # events.entered_by stays: it is hashed into every event that has one, so dropping it
    # would break the audit chain; older riskreg ignores the column and leaves it empty
