"""Evidence: the pilot result (estimate, CI, n) that a risk re-score relied on.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("recommendation", sa.String(length=16), nullable=True),
        sa.Column("estimate", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("n_comparison", sa.Integer(), nullable=False),
        sa.Column("n_pilot", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"]),
        sa.ForeignKeyConstraint(["risk_id"], ["risks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evidence_risk_id", "evidence", ["risk_id"], unique=False)
    op.create_index("ix_evidence_pilot_id", "evidence", ["pilot_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_evidence_pilot_id", table_name="evidence")
    op.drop_index("ix_evidence_risk_id", table_name="evidence")
    op.drop_table("evidence")
