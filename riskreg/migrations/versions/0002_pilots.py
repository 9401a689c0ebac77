"""Pilots: protocols and amendments, metric codes, linked risks, imports, observations, resources, gate decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("metric", sa.Integer(), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("exposure", sa.Float(), nullable=True),
        sa.Column("site", sa.String(length=200), nullable=True),
    )
    op.create_index(
        "ix_observations_pilot_stage_metric",
        "observations",
        ["pilot_id", "stage_index", "metric"],
        unique=False,
    )

    op.create_table(
        "pilots",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "stopped",
                "completed",
                name="pilot_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("protocol_text", sa.Text(), nullable=False),
        sa.Column("protocol_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "data_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("replaced", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_imports_pilot_id", "data_imports", ["pilot_id"], unique=False)

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column(
            "decision",
            sa.Enum(
                "proceed",
                "continue",
                "stop",
                "adapt",
                name="decision",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.String(length=16), nullable=True),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decisions_pilot_id", "decisions", ["pilot_id"], unique=False)

    op.create_table(
        "pilot_metrics",
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
        ),
        sa.PrimaryKeyConstraint("pilot_id", "code"),
    )
    op.create_table(
        "pilot_risks",
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
        ),
        sa.ForeignKeyConstraint(
            ["risk_id"],
            ["risks.id"],
        ),
        sa.PrimaryKeyConstraint("pilot_id", "risk_id"),
    )
    op.create_table(
        "protocol_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("after_data", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_protocol_versions_pilot_id", "protocol_versions", ["pilot_id"], unique=False)

    op.create_table(
        "resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column(
            "side",
            sa.Enum(
                "public",
                "citizen",
                name="resource_side",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("arm", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["data_imports.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_resources_import_id", "resources", ["import_id"], unique=False)
    op.create_index("ix_resources_pilot_id", "resources", ["pilot_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_resources_pilot_id", table_name="resources")
    op.drop_index("ix_resources_import_id", table_name="resources")

    op.drop_table("resources")
    op.drop_index("ix_protocol_versions_pilot_id", table_name="protocol_versions")

    op.drop_table("protocol_versions")
    op.drop_table("pilot_risks")
    op.drop_table("pilot_metrics")
    op.drop_index("ix_decisions_pilot_id", table_name="decisions")

    op.drop_table("decisions")
    op.drop_index("ix_data_imports_pilot_id", table_name="data_imports")

    op.drop_table("data_imports")
    op.drop_table("pilots")
    op.drop_index("ix_observations_pilot_stage_metric", table_name="observations")

    op.drop_table("observations")
