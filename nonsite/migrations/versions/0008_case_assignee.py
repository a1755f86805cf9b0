"""Who handles a case (认领): cases.assignee.

Revision ID: 0008_case_assignee
Revises: 0007_declared_markings
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_case_assignee"
down_revision = "0007_declared_markings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite alters a table by copying it (PostgreSQL gets a plain ALTER TABLE)
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("assignee", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("assignee")
