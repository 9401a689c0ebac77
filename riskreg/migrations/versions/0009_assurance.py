"""Assurance framework: controls' effectiveness and assurance, risks' gaps, and actions.

``controls`` gain ``effectiveness`` (``effective``, ``partially effective``,
``ineffective`` or ``not assessed``; existing controls read ``not assessed``), the source
of assurance on them (``assurance``) and its line (``assurance_line``: ``first``,
``second`` or ``third``). ``risks`` gain free-text ``gaps_in_control`` and
``gaps_in_assurance``. ``actions`` (``A-<n>``) are the steps planned to treat a risk: title,
owner, due date and status, versioned like risks.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

EFFECTIVENESS = ("effective", "partially effective", "ineffective", "not assessed")


def _choice(name: str, *values: str, length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    # plain nullable text: SQLite adds these in place
    with op.batch_alter_table("risks") as batch:
        batch.add_column(sa.Column("gaps_in_control", sa.Text(), nullable=True))
        batch.add_column(sa.Column("gaps_in_assurance", sa.Text(), nullable=True))
    # the checked choices make SQLite copy the table; nothing refers to controls, so it may
    with op.batch_alter_table("controls") as batch:
        batch.add_column(
            sa.Column(
                "effectiveness",
                _choice("control_effectiveness", *EFFECTIVENESS, length=20),
                server_default="not assessed",
                nullable=False,
            )
        )
        batch.add_column(sa.Column("assurance", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("assurance_line", _choice("assurance_line", "first", "second", "third"), nullable=True)
        )
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("status", _choice("action_status", "open", "done", "cancelled"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_actions_risk_id", "actions", ["risk_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_actions_risk_id", table_name="actions")
    op.drop_table("actions")
    with op.batch_alter_table("controls") as batch:
        # SQLite's copy keeps the named checks it reflects: they go before their columns
        batch.drop_constraint("assurance_line", type_="check")
        batch.drop_constraint("control_effectiveness", type_="check")
        batch.drop_column("assurance_line")
        batch.drop_column("assurance")
        batch.drop_column("effectiveness")
    with op.batch_alter_table("risks") as batch:
        batch.drop_column("gaps_in_assurance")
        batch.drop_column("gaps_in_control")
