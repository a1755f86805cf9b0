"""Event time as integer seconds since the Unix epoch, and the windows rules judge.

Hours are clock hours; days are natural days in China time (00:00-24:00 +08:00, the 自然日
of the incineration rules). Integers keep the hot path free of datetime arithmetic and make
stream and batch agree exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.china_time import CHINA_TZ

HOUR = 3600
DAY = 86400
CHINA_OFFSET = 8 * HOUR


def epoch(when: datetime) -> int:
    return int(when.timestamp())


def hour_start(t: int) -> int:
    return t - t % HOUR


def day_start(t: int) -> int:
    """Start of the China natural day holding ``t``."""
    return t - (t + CHINA_OFFSET) % DAY


def month_start(t: int) -> int:
    """Start of the China calendar month holding ``t``."""
    d = to_datetime(t)
    return int(d.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def quarter_start(t: int) -> int:
    """Start of the China calendar quarter holding ``t``."""
    d = to_datetime(month_start(t))
    month = d.month - (d.month - 1) % 3
    return int(d.replace(month=month).timestamp())


def next_month_start(t: int) -> int:
    """Start of the China calendar month after the one holding ``t``."""
    d = to_datetime(month_start(t))
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return int(d.replace(year=year, month=month).timestamp())


def to_datetime(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC).astimezone(CHINA_TZ)


def iso(t: int) -> str:
    return to_datetime(t).isoformat()
