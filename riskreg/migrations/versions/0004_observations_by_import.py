"""Observations are scoped by their import: no copied pilot and stage columns, one index on import_id.

A pilot's observations up to a stage are those of its outcome imports (data_imports) up to
that stage. Dropping the two copied columns and the (pilot_id, stage_index, metric) index
keeps the bulk load lean: that index alone made a 1M-row import ~0.8 s slower on SQLite,
while an index on import_id grows only at its right edge as an import appends.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_observations_pilot_stage_metric", table_name="observations")
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("pilot_id")
        batch.drop_column("stage_index")
    op.create_index("ix_observations_import_id", "observations", ["import_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_observations_import_id", table_name="observations")
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("pilot_id", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("stage_index", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE observations SET pilot_id = (SELECT pilot_id FROM data_imports WHERE data_imports.id = observations.import_id), "
        "stage_index = (SELECT stage_index FROM data_imports WHERE data_imports.id = observations.import_id)"
    )
    op.create_index(
        "ix_observations_pilot_stage_metric",
        "observations",
        ["pilot_id", "stage_index", "metric"],
        unique=False,
    )
