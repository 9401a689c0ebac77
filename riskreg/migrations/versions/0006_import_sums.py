"""Import sums: each import keeps its sufficient statistics per metric and arm, and its units per arm.

An analysis then reads a few rows per import instead of sorting the observations: over a
million observations, the GROUP BY per metric and arm and the distinct units per arm were
most of its time. The import computes these as it streams; this revision computes them
once, in the database, for the observations already imported.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# the observations of one import_counts row: its import, metric and arm
_GROUP = (
    "FROM observations o WHERE o.import_id = import_counts.import_id "
    "AND o.metric = import_counts.metric AND o.arm = import_counts.arm AND o.value IS NOT NULL"
)
_CONTINUOUS = (
    "EXISTS (SELECT 1 FROM pilot_metrics m JOIN data_imports i ON i.pilot_id = m.pilot_id "
    "WHERE i.id = import_counts.import_id AND m.code = import_counts.metric AND m.kind = 'continuous')"
)


def upgrade() -> None:
    with op.batch_alter_table("import_counts") as batch:
        batch.add_column(sa.Column("total", sa.Float(), server_default="0", nullable=False))
        batch.add_column(sa.Column("exposure", sa.Float(), server_default="0", nullable=False))
        batch.add_column(sa.Column("shift", sa.Float(), nullable=True))
        batch.add_column(sa.Column("sum_d", sa.Float(), nullable=True))
        batch.add_column(sa.Column("sum_d2", sa.Float(), nullable=True))
    op.create_table(
        "import_units",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("arm", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["data_imports.id"]),
        sa.PrimaryKeyConstraint("import_id", "arm"),
    )
    # the statistics of the observations already imported: each continuous group is
    # shifted by one of its own values, as the import does
    op.execute(
        f"UPDATE import_counts SET total = coalesce((SELECT sum(o.value) {_GROUP}), 0), "
        f"exposure = coalesce((SELECT sum(o.exposure) {_GROUP}), 0)"
    )
    op.execute(f"UPDATE import_counts SET shift = (SELECT o.value {_GROUP} LIMIT 1) WHERE {_CONTINUOUS}")
    op.execute(
        f"UPDATE import_counts SET sum_d = (SELECT sum(o.value - import_counts.shift) {_GROUP}), "
        f"sum_d2 = (SELECT sum((o.value - import_counts.shift) * (o.value - import_counts.shift)) {_GROUP}) "
        "WHERE shift IS NOT NULL"
    )
    op.execute(
        "INSERT INTO import_units (import_id, arm, units) "
        "SELECT import_id, arm, count(DISTINCT unit_id) FROM observations GROUP BY import_id, arm"
    )


def downgrade() -> None:
    op.drop_table("import_units")
    with op.batch_alter_table("import_counts") as batch:
        for name in ("sum_d2", "sum_d", "shift", "exposure", "total"):
            batch.drop_column(name)
