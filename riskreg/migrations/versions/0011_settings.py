"""Governed settings: appetite, categories, bands, review days, currency and organisation in the database.

``settings`` holds one row a key (``appetite.safeguarding``, ``categories``...) with its
value as JSON, a version and who changed it last. Every change is also an audit event
(``config.set``); riskreg.toml keeps the local settings. The table starts empty: the
defaults (and any governed key still in riskreg.toml) apply until ``riskreg config set``
or ``riskreg config import``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=120), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")
