"""Ingest tables: dead letters and consumer checkpoints.

Revision ID: 0001_ingest
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ingest"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("archive_seq", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("mn", sa.String(64), nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_dead_letters_archive_seq", "dead_letters", ["archive_seq"])
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_index("ix_dead_letters_reason", "dead_letters", ["reason"])
    op.create_table(
        "ingest_checkpoints",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_checkpoints")
    op.drop_index("ix_dead_letters_reason", "dead_letters")
    op.drop_index("ix_dead_letters_received_at", "dead_letters")
    op.drop_index("ix_dead_letters_archive_seq", "dead_letters")
    op.drop_table("dead_letters")
