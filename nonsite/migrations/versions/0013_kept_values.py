"""The rules' kept hour and day values per outlet × factor, the hours' minute detail and the
meters' hours (partitioned by month, the detail by day, on PostgreSQL).

Revision ID: 0013_kept_values
Revises: 0012_action_requests
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013_kept_values"
down_revision = "0012_action_requests"
branch_labels = None
depends_on = None

# Month partitions are made as values of each month arrive (rules.history_store).
PARTITIONED: dict[str, Any] = {
    "postgresql_partition_by": "RANGE (start)",
    "sqlite_with_rowid": False,
}


def _key() -> list[sa.Column[object]]:
    return [
        sa.Column("enterprise_id", sa.String(64), primary_key=True),
        sa.Column("outlet_id", sa.String(64), primary_key=True),
        sa.Column("factor", sa.String(16), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
    ]


def upgrade() -> None:
    op.create_table(
        "hour_values",
        *_key(),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("flag", sa.String(2), nullable=True),
        sa.Column("converted", sa.Float, nullable=True),
        sa.Column("valid_minutes", sa.SmallInteger, nullable=False),
        sa.Column("interval_s", sa.Integer, nullable=False),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in ("n", "n_valid", "n_marked", "n_d", "n_m", "n_c", "n_b", "n_t", "n_f")
        ),
        sa.Column("device_value", sa.Float, nullable=True),
        sa.Column("device_flag", sa.String(2), nullable=True),
        sa.Column("device_marked", sa.Boolean, nullable=False),
        **PARTITIONED,
    )
    op.create_table(
        "day_values",
        *_key(),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("converted", sa.Float, nullable=True),
        sa.Column("valid_hours", sa.SmallInteger, nullable=False),
        sa.Column("converted_hours", sa.SmallInteger, nullable=False),
        sa.Column("required_hours", sa.SmallInteger, nullable=False),
        sa.Column("flow_weighted", sa.Boolean, nullable=False),
        sa.Column("received", sa.Integer, nullable=True),
        sa.Column("valid_records", sa.Integer, nullable=True),
        sa.Column("expected", sa.Integer, nullable=True),
        sa.Column("due_hours", sa.SmallInteger, nullable=True),
        sa.Column("interval_s", sa.Integer, nullable=True),
        **PARTITIONED,
    )

    op.create_table(
        "minute_detail",
        sa.Column("enterprise_id", sa.String(64), primary_key=True),
        sa.Column("outlet_id", sa.String(64), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("layout", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        **PARTITIONED,
    )

    op.create_table(
        "meter_hours",
        sa.Column("enterprise_id", sa.String(64), primary_key=True),
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("energy_kwh", sa.Float, nullable=True),
        sa.Column("on_s", sa.Integer, nullable=False),
        sa.Column("off_s", sa.Integer, nullable=False),
        sa.Column("mean_kw", sa.Float, nullable=True),
        sa.Column("max_kw", sa.Float, nullable=True),
        **PARTITIONED,
    )


def downgrade() -> None:
    op.drop_table("meter_hours")
    op.drop_table("minute_detail")
    op.drop_table("day_values")
    op.drop_table("hour_values")
