"""What people changed in a silence after adding it (edited, ended early).

Revision ID: 0009_silence_events
Revises: 0008_case_assignee
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_silence_events"
down_revision = "0008_case_assignee"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "silence_events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("silence_id", ID, sa.ForeignKey("silences.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
    )
    op.create_index("ix_silence_events_silence_id", "silence_events", ["silence_id"])


def downgrade() -> None:
    op.drop_table("silence_events")
