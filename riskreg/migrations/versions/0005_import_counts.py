"""Import counts: observations per import, metric and arm (present and missing), kept by the import.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_counts",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("arm", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["data_imports.id"]),
        sa.PrimaryKeyConstraint("import_id", "metric", "arm"),
    )
    # the counts of observations already imported
    op.execute(
        "INSERT INTO import_counts (import_id, metric, arm, n, missing) "
        "SELECT import_id, metric, arm, count(value), count(*) - count(value) "
        "FROM observations GROUP BY import_id, metric, arm"
    )


def downgrade() -> None:
    op.drop_table("import_counts")
