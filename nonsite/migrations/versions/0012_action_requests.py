"""People's actions keyed by their request, so a retried request acts once.

Revision ID: 0012_action_requests
Revises: 0011_partition_leases
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_action_requests"
down_revision = "0011_partition_leases"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "action_requests",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("action_requests")
