"""HJ 212 time fields (``YYYYMMDDhhmmss``) as aware datetimes in China time.

The standard gives no zone; every example and every deployment uses Beijing time
(:mod:`ingest.china_time`).
"""

from __future__ import annotations

from datetime import datetime

from ingest.china_time import CHINA_TZ

_CACHE: dict[str, datetime] = {}
_CACHE_MAX = 8192  # DataTime values repeat across a fleet within a minute


def parse_hj212_time(text: str) -> datetime:
    """Parse ``YYYYMMDDhhmmss`` or ``YYYYMMDDhhmmsszzz`` (milliseconds, seen in the field).

    Raises ValueError with a human-readable reason.
    """
    cached = _CACHE.get(text)
    if cached is not None:
        return cached
    if len(text) not in (14, 17) or not text.isdigit() or not text.isascii():
        raise ValueError(f"{text!r} is not YYYYMMDDhhmmss")
    ms = int(text[14:17]) if len(text) == 17 else 0
    value = datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[8:10]),
        int(text[10:12]),
        int(text[12:14]),
        ms * 1000,
        tzinfo=CHINA_TZ,
    )
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[text] = value
    return value


def format_hj212_time(value: datetime, *, with_ms: bool = False) -> str:
    """Format an aware datetime as an HJ 212 time in China time."""
    if value.tzinfo is None:
        raise ValueError("HJ 212 times must be built from aware datetimes")
    local = value.astimezone(CHINA_TZ)
    text = local.strftime("%Y%m%d%H%M%S")
    if with_ms:
        text += f"{local.microsecond // 1000:03d}"
    return text
