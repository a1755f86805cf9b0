"""China time, and datetimes made aware: the one home of both for every stage.

HJ 212 gives no zone; every example and every deployment uses Beijing time. China has kept
UTC+8 without daylight saving since 1991, so a fixed offset is exact for live data and avoids a
tz database lookup per value on the hot path. The regulators read China time whatever the
browser's or the server's zone.

Two kinds of naive datetime reach the code: from the database (SQLite returns naive values for
``timezone=True`` columns, stored in UTC) and from people (a CLI option or a form without an
offset, meant in China time). Each has its own function, so the meaning is named where it is
used.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8), "CST")


def stored_utc(value: datetime) -> datetime:
    """A datetime read from the database: naive ones were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def stored_utc_or_none(value: datetime | None) -> datetime | None:
    """:func:`stored_utc`, passing None through (a nullable column)."""
    return None if value is None else stored_utc(value)


def china_local(value: datetime) -> datetime:
    """A datetime a person gave: naive ones are China time."""
    return value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TZ)


__all__ = ["CHINA_TZ", "china_local", "stored_utc", "stored_utc_or_none"]
