"""Initial register: risks, controls, reviews, the audit chain and identifier counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _choice(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _stamps(prefix: str) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}_at", sa.DateTime(), nullable=False),
        sa.Column(f"{prefix}_by", sa.String(length=200), nullable=False),
    ]


def _score_checks(*columns: str) -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(f"{c} BETWEEN 1 AND 5", name=f"{c}_1_to_5") for c in columns]


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_events_scope", "events", ["scope", "seq"], unique=False)
    op.create_table(
        "risks",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("side", _choice("side", "citizen", "professional", "shared"), nullable=False),
        sa.Column(
            "mode", _choice("mode", "commissioning", "design", "delivery", "assessment"), nullable=False
        ),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("status", _choice("risk_status", "open", "closed"), nullable=False),
        sa.Column(
            "treatment",
            _choice("treatment", "treat", "tolerate", "transfer", "terminate", "test"),
            nullable=True,
        ),
        sa.Column("inherent_likelihood", sa.Integer(), nullable=False),
        sa.Column("inherent_impact", sa.Integer(), nullable=False),
        sa.Column("likelihood", sa.Integer(), nullable=False),
        sa.Column("impact", sa.Integer(), nullable=False),
        sa.Column("target_likelihood", sa.Integer(), nullable=True),
        sa.Column("target_impact", sa.Integer(), nullable=True),
        sa.Column("review_days", sa.Integer(), nullable=True),
        sa.Column("last_reviewed", sa.Date(), nullable=False),
        *_stamps("created"),
        *_stamps("updated"),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_score_checks(
            "impact",
            "inherent_impact",
            "inherent_likelihood",
            "likelihood",
            "target_impact",
            "target_likelihood",
        ),
        sa.CheckConstraint("review_days IS NULL OR review_days > 0", name="review_days_positive"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_risks_category", "risks", ["category"], unique=False)
    op.create_table(
        "controls",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("status", _choice("control_status", "planned", "in-place"), nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("citizen", sa.Boolean(), nullable=False),
        *_stamps("created"),
        *_stamps("updated"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_controls_risk_id", "controls", ["risk_id"], unique=False)
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column(
            "outcome",
            _choice("review_outcome", "confirmed", "rescored", "escalated", "closed"),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reviews_risk_id", "reviews", ["risk_id"], unique=False)


def downgrade() -> None:
    for table, index in (
        ("reviews", "ix_reviews_risk_id"),
        ("controls", "ix_controls_risk_id"),
        ("risks", "ix_risks_category"),
        ("events", "ix_events_scope"),
    ):
        op.drop_index(index, table_name=table)
        op.drop_table(table)
    op.drop_table("counters")
    op.drop_table("audit_head")
