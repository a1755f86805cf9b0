"""Markings (标记) declared online by enterprises.

Revision ID: 0007_declared_markings
Revises: 0006_production
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_declared_markings"
down_revision = "0006_production"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "declared_markings",
        sa.Column("id", ID, primary_key=True),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("outlet_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("factor", sa.String(16), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("declared_by", sa.String(64), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_declared_markings_enterprise_id", "declared_markings", ["enterprise_id"])


def downgrade() -> None:
    op.drop_table("declared_markings")
