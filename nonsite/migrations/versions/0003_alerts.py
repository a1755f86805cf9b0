"""Alerts tables: cases, their audit trail, work orders, silences, suppressed findings and
the notification outbox.

Revision ID: 0003_alerts
Revises: 0002_rules
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_alerts"
down_revision = "0002_rules"
branch_labels = None
depends_on = None

# 64-bit keys on PostgreSQL; on SQLite an INTEGER primary key is the rowid (autoincrementing).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("open_key", sa.String(240), nullable=True, unique=True),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("factor", sa.String(16), nullable=True),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("condition", sa.String(8), nullable=False),
        sa.Column("positive_list", sa.Boolean, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("peak_value", sa.Float, nullable=True),
        sa.Column("peak_multiple", sa.Float, nullable=True),
        sa.Column("limit_value", sa.Float, nullable=True),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("recurrence", sa.Integer, nullable=False),
        sa.Column("flaps", sa.Integer, nullable=False),
        sa.Column("escalation", sa.String(200), nullable=True),
        sa.Column("explain_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.String(16), nullable=True),
        sa.Column("brigade", sa.String(64), nullable=True),
        sa.Column("disposition", sa.String(32), nullable=True),
        sa.Column("case_number", sa.String(64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recheck_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_cases_enterprise_id", "cases", ["enterprise_id"])
    op.create_index("ix_cases_rule", "cases", ["rule"])
    op.create_index("ix_cases_state", "cases", ["state"])
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"])
    op.create_table(
        "silences",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("enterprise_id", sa.String(64), nullable=True),
        sa.Column("source_id", sa.String(64), nullable=True),
        sa.Column("rule", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "suppressed_findings",
        sa.Column("finding_id", sa.String(200), primary_key=True),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_suppressed_findings_enterprise_id", "suppressed_findings", ["enterprise_id"]
    )
    op.create_table(
        "case_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("refs", sa.Text, nullable=False),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    op.create_table(
        "outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_case_id", "outbox", ["case_id"])
    op.create_index("ix_outbox_state", "outbox", ["state"])
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])
    op.create_table(
        "work_orders",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("brigade", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("case_number", sa.String(64), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_work_orders_case_id", "work_orders", ["case_id"])
    op.create_index("ix_work_orders_brigade", "work_orders", ["brigade"])


def downgrade() -> None:
    op.drop_table("work_orders")
    op.drop_table("outbox")
    op.drop_table("case_events")
    op.drop_table("suppressed_findings")
    op.drop_table("silences")
    op.drop_table("cases")
