"""Cluster mode: the partitions' leases (owner, fencing epoch, expiry) and the live workers.

Revision ID: 0011_partition_leases
Revises: 0010_logger_commands
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_partition_leases"
down_revision = "0010_logger_commands"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_leases",
        # Not autoincrement: the rows are the fixed partitions 0..N-1 (no SERIAL on PostgreSQL).
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "cluster_workers",
        sa.Column("worker_id", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_workers")
    op.drop_table("partition_leases")
