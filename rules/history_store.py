"""The kept hour and day values (``rules.history``) in the service database.

Written by the rule stage in the batch's transaction (with its findings and checkpoint), keyed
by outlet × factor × hour (or day): a batch judged again after a restart or a takeover writes
the same rows again, not new ones. Read by outlet and range through the primary key, which
leads with the outlet, so 31 days or a year of one outlet is one index range.

On PostgreSQL both tables are partitioned by China month (``RANGE`` on the epoch-second start):
a month's partition is created the first time a value of that month is written, and
retention drops whole partitions (:func:`drop_months_before`) rather than deleting rows. On
SQLite they are plain tables without rowid, clustered on the same key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Table,
    and_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from ingest.china_time import CHINA_TZ
from rules.history import DayRecord, HourRecord
from rules.store import day_values, hour_values
from rules.timebase import month_start, next_month_start

HOUR_FIELDS: Final = tuple(f for f in HourRecord.__slots__ if f not in ("enterprise_id",))
DAY_FIELDS: Final = tuple(DayRecord.__slots__)

PARTITIONED: Final = (hour_values, day_values)


# -- months ------------------------------------------------------------------------------------


def partition_name(table: Table, start: int) -> str:
    return f"{table.name}_{datetime.fromtimestamp(start, CHINA_TZ):%Y%m}"


class MonthPartitions:
    """PostgreSQL's month partitions, created as values of a new month arrive. The months
    known to exist are remembered once the transaction that made them has committed
    (:meth:`committed`; one rolled back made none), so a batch pays the DDL once a month."""

    def __init__(self) -> None:
        self._known: set[tuple[str, int]] = set()
        self._made: set[tuple[str, int]] = set()

    def ensure(self, conn: Connection, table: Table, starts: Iterable[int]) -> None:
        if conn.dialect.name != "postgresql":
            return
        for month in sorted({month_start(t) for t in starts}):
            if (table.name, month) in self._known or (table.name, month) in self._made:
                continue
            # IF NOT EXISTS: another worker may have made it; a race of two makes one fail
            # on the catalog's unique index, and its batch is retried (it then exists).
            conn.execute(
                text(
                    f'CREATE TABLE IF NOT EXISTS "{partition_name(table, month)}" '
                    f'PARTITION OF "{table.name}" FOR VALUES FROM ({month}) '
                    f"TO ({next_month_start(month)})"
                )
            )
            self._made.add((table.name, month))

    def committed(self) -> None:
        self._known |= self._made
        self._made.clear()

    def rolled_back(self) -> None:
        self._made.clear()


def drop_months_before(conn: Connection, cutoff: int) -> list[str]:
    """Retention: drop the month partitions that end at or before ``cutoff`` (PostgreSQL), or
    delete the rows before the month holding it (SQLite). The names dropped."""
    month = month_start(cutoff)
    if conn.dialect.name != "postgresql":
        for table in PARTITIONED:
            conn.execute(table.delete().where(table.c.start < month))
        return []
    dropped = []
    for table in PARTITIONED:
        rows = conn.execute(
            text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE p.relname = :parent AND p.relnamespace = "
                "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
            ),
            {"parent": table.name},
        ).all()
        for name, bound in rows:
            upper = int(str(bound).rsplit("(", 1)[1].rstrip(")").strip("'"))
            if upper <= month:
                conn.execute(text(f'DROP TABLE "{name}"'))
                dropped.append(name)
    return dropped


# -- writing -----------------------------------------------------------------------------------


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert, or overwrite a row judged before (a batch replayed after a restart)."""
    keys = [c.name for c in table.primary_key.columns]
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table)
        stmt: Any = pg.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: pg.excluded[c.name] for c in table.columns if c.name not in keys},
        )
    else:
        lite = sqlite.insert(table)
        stmt = lite.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: lite.excluded[c.name] for c in table.columns if c.name not in keys},
        )
    conn.execute(stmt, rows)


def record_history(
    conn: Connection,
    hours: Sequence[HourRecord],
    days: Sequence[DayRecord],
    partitions: MonthPartitions,
) -> None:
    """Store closed hours and days in ``conn``'s transaction."""
    for table, records, fields in (
        (hour_values, hours, HOUR_FIELDS),
        (day_values, days, DAY_FIELDS),
    ):
        if not records:
            continue
        partitions.ensure(conn, table, (r.start for r in records))
        rows = [
            {"enterprise_id": r.enterprise_id, **{f: getattr(r, f) for f in fields}}
            for r in records
        ]
        _upsert(conn, table, rows)


# -- reading -----------------------------------------------------------------------------------


def read_hours(
    conn: Connection, enterprise_id: str, outlet_id: str, lo: int, hi: int
) -> list[HourRecord]:
    """An outlet's kept hours starting in [lo, hi), in (factor, start) order."""
    t = hour_values
    rows = conn.execute(
        select(*(t.c[f] for f in HOUR_FIELDS)).where(
            and_(
                t.c.enterprise_id == enterprise_id,
                t.c.outlet_id == outlet_id,
                t.c.start >= lo,
                t.c.start < hi,
            )
        )
    ).all()
    return [HourRecord(enterprise_id, *row) for row in rows]


def read_days(
    conn: Connection, enterprise_id: str, outlet_id: str, lo: int, hi: int
) -> list[DayRecord]:
    """An outlet's kept days starting in [lo, hi)."""
    t = day_values
    rows = conn.execute(
        select(*(t.c[f] for f in DAY_FIELDS)).where(
            and_(
                t.c.enterprise_id == enterprise_id,
                t.c.outlet_id == outlet_id,
                t.c.start >= lo,
                t.c.start < hi,
            )
        )
    ).all()
    return [DayRecord(*row) for row in rows]


__all__ = [
    "MonthPartitions",
    "day_values",
    "drop_months_before",
    "hour_values",
    "read_days",
    "read_hours",
    "record_history",
]
