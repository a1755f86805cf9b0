"""Index for finding a problem's latest case (enterprise, source, rule, newest first).

Revision ID: 0004_case_problem_index
Revises: 0003_alerts
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0004_case_problem_index"
down_revision = "0003_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_problem", "cases", ["enterprise_id", "source_id", "rule", "id"])


def downgrade() -> None:
    op.drop_index("ix_cases_problem", "cases")
