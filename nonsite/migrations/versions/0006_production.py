"""Production state per metered enterprise (停产 on the dashboard).

Revision ID: 0006_production
Revises: 0005_users
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_production"
down_revision = "0005_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "production",
        sa.Column("enterprise_id", sa.String(64), primary_key=True),
        sa.Column("producing", sa.Boolean, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("production")
