"""A unit is counted once per metric: imports say whether they were checked, and count groups keep Σ y²/t.

``data_imports.units_checked`` is True for outcome imports checked against the earlier
stages' units (each unit counted once per metric); imports made before this revision read
False, and the QA rule ``units-counted-twice`` looks for units they counted twice (the
data stay as they are). ``import_counts.sum_y2_t`` is the sum of value²/exposure of a
count group's present observations, for a quasi-Poisson dispersion; this revision
computes it from the observations already imported.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# the present observations, with their exposure, of one import_counts row: its import, metric and arm
_GROUP = (
    "FROM observations o WHERE o.import_id = import_counts.import_id "
    "AND o.metric = import_counts.metric AND o.arm = import_counts.arm "
    "AND o.value IS NOT NULL AND o.exposure IS NOT NULL"
)
_COUNT = (
    "EXISTS (SELECT 1 FROM pilot_metrics m JOIN data_imports i ON i.pilot_id = m.pilot_id "
    "WHERE i.id = import_counts.import_id AND m.code = import_counts.metric AND m.kind = 'count')"
)


def upgrade() -> None:
    # a constant default ("0" is false on both backends): SQLite then adds the column in
    # place, where an expression would make the batch copy the whole table
    with op.batch_alter_table("data_imports") as batch:
        batch.add_column(sa.Column("units_checked", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("import_counts") as batch:
        batch.add_column(sa.Column("sum_y2_t", sa.Float(), nullable=True))
    # as an import keeps it: 0 for a count group without present values, none for other kinds
    op.execute(
        f"UPDATE import_counts SET sum_y2_t = coalesce((SELECT sum(o.value * o.value / o.exposure) {_GROUP}), 0) "
        f"WHERE {_COUNT}"
    )


def downgrade() -> None:
    with op.batch_alter_table("import_counts") as batch:
        batch.drop_column("sum_y2_t")
    with op.batch_alter_table("data_imports") as batch:
        batch.drop_column("units_checked")
