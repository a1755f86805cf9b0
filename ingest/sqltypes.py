"""Column types shared by every store (ingest, rules, alerts, users).

``UTCDateTime`` is the only type an instant is stored with. SQLAlchemy's
``DateTime(timezone=True)`` keeps the offset on PostgreSQL (``timestamptz``) but on SQLite
writes the wall-clock fields and drops the offset, so ``18:00+08:00`` was stored, and read back,
as ``18:00`` UTC: eight hours late. This type converts every aware value to UTC before it is
bound (a stored value, or one compared with a column in a WHERE clause) and returns aware UTC
on read, on both databases; a naive value is refused, as nobody can tell which instant it means.

The stored representation is unchanged: on SQLite the text SQLAlchemy has always written
(``2026-12-10 10:00:00.000000``, UTC), on PostgreSQL ``timestamptz``; the DDL is the same
``DateTime(timezone=True)``, so the migrations need no change and existing rows (written as UTC)
read back as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(ValueError):
    """A datetime without a UTC offset was about to be stored or compared."""


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: aware datetimes in (converted to UTC), aware UTC datetimes out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"an instant must be a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()}: give it a UTC offset (tzinfo)"
            )
        utc = value.astimezone(UTC)
        # SQLite's DATETIME writes the fields without an offset: write them in UTC.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:  # SQLite: stored as UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
