"""双随机 draws (alerts.draws): one per period, with its seed and inputs.

Revision ID: 0018_inspection_draws
Revises: 0017_positive_list
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_inspection_draws"
down_revision = "0017_positive_list"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inspection_draws",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("period", sa.String(16), nullable=False, unique=True),
        sa.Column("seed", sa.String(200), nullable=False),
        sa.Column("draw", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inspection_draws")
