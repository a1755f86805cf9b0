"""Rectification (整改) to 销号, the active 回头看 and the decisions with their legal review
(alerts.rectification, alerts.rechecks, alerts.decisions).

Revision ID: 0015_rectification_rechecks
Revises: 0014_clues_evidence
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_rectification_rechecks"
down_revision = "0014_clues_evidence"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rectifications",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("requirement", sa.Text, nullable=False),
        sa.Column("ordered_by", sa.String(64), nullable=False),
        sa.Column("ordered_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False, index=True),
        sa.Column("overdue_at", WHEN, nullable=True),
        sa.Column("reported_at", WHEN, nullable=True),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("verified_at", WHEN, nullable=True),
        sa.Column("verified_by", sa.String(64), nullable=True),
        sa.Column("method", sa.String(8), nullable=True),
        sa.Column("outcome", sa.String(8), nullable=True),
        sa.Column("verify_note", sa.Text, nullable=False),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "rechecks",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("brigade", sa.String(64), nullable=True),
        sa.Column("scheduled_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False, index=True),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=False),
    )

    op.create_table(
        "decisions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("legal_ground", sa.Text, nullable=False),
        sa.Column("amount_yuan", sa.Float, nullable=True),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("document_number", sa.String(100), nullable=False),
        sa.Column("decided_on", sa.Date, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("major", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("proposed_at", WHEN, nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", WHEN, nullable=True),
        sa.Column("review_note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("decisions")
    op.drop_table("rechecks")
    op.drop_table("rectifications")
