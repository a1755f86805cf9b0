"""Commands to data loggers (recall, clock, an operator's command) and their outcomes.

Revision ID: 0010_logger_commands
Revises: 0009_silence_events
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_logger_commands"
down_revision = "0009_silence_events"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logger_commands",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("mn", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cn", sa.String(4), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("case_id", ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("qn", sa.String(20), nullable=True),
        sa.Column("topic", sa.String(256), nullable=True),
        sa.Column("packet", sa.Text, nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("qn_rtn", sa.Integer, nullable=True),
        sa.Column("exe_rtn", sa.Integer, nullable=True),
        sa.Column("filled", sa.Integer, nullable=False),
        sa.Column("logger_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drift_s", sa.Float, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_logger_commands_mn", "logger_commands", ["mn"])
    op.create_index("ix_logger_commands_status", "logger_commands", ["status"])
    op.create_index("ix_logger_commands_qn", "logger_commands", ["qn"])


def downgrade() -> None:
    op.drop_table("logger_commands")
