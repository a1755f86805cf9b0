"""Rules tables: findings and engine snapshots.

Revision ID: 0002_rules
Revises: 0001_ingest
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_rules"
down_revision = "0001_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "findings",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("tier", sa.String(8), nullable=True),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("factor", sa.String(16), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("limit_value", sa.Float, nullable=True),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("multiple", sa.Float, nullable=True),
        sa.Column("params_id", sa.String(140), nullable=False),
        sa.Column("params_version", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_findings_recorded_at", "findings", ["recorded_at"])
    op.create_index("ix_findings_rule", "findings", ["rule"])
    op.create_index("ix_findings_enterprise_id", "findings", ["enterprise_id"])
    op.create_index("ix_findings_window_start", "findings", ["window_start"])
    op.create_table(
        "rule_snapshots",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_snapshots")
    op.drop_index("ix_findings_recorded_at", "findings")
    op.drop_index("ix_findings_window_start", "findings")
    op.drop_index("ix_findings_enterprise_id", "findings")
    op.drop_index("ix_findings_rule", "findings")
    op.drop_table("findings")
