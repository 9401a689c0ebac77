"""Imports keep their file's SHA-256, so that the same resources file is not counted twice.

Imports made before this revision have none: the check applies to resources imported from
now on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_imports") as batch:
        batch.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("data_imports") as batch:
        batch.drop_column("sha256")
