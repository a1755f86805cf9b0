"""Enterprise risk ratings (环保码, alerts.risk): one per enterprise and China day.

Revision ID: 0016_risk_ratings
Revises: 0015_rectification_rechecks
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_risk_ratings"
down_revision = "0015_rectification_rechecks"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "risk_ratings",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("color", sa.String(8), nullable=False),
        sa.Column("computed_at", WHEN, nullable=False),
        sa.Column("trigger", sa.String(12), nullable=False),
        sa.Column("rating", sa.Text, nullable=False),
    )
    op.create_index("ux_risk_ratings_day", "risk_ratings", ["enterprise_id", "day"], unique=True)


def downgrade() -> None:
    op.drop_table("risk_ratings")
