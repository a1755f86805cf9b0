"""Event time as integer seconds since the Unix epoch, and the windows rules judge.

Hours are clock hours; days are natural days in China time (00:00-24:00 +08:00, the 自然日
of the incineration rules). Integers keep the hot path free of datetime arithmetic and make
stream and batch agree exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.hj212.timefmt import CHINA_TZ

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


def to_datetime(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC).astimezone(CHINA_TZ)


def iso(t: int) -> str:
    return to_datetime(t).isoformat()
