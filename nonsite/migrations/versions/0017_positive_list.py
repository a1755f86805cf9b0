"""The positive list's changes (正面清单, alerts.positive_list): proposed and decided.

Revision ID: 0017_positive_list
Revises: 0016_risk_ratings
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_positive_list"
down_revision = "0016_risk_ratings"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "positive_list_changes",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
        sa.Column("change", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("criteria", sa.Text, nullable=False),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("proposed_at", WHEN, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("positive_list_changes")
