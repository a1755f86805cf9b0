"""Reporting periods as the supervision work names them: a year (2026), a month (2026-11), a
quarter (2026Q4) or a half (2026H2), each a span of China time. One home for what a period is:
the 双随机 draws are made per period, the reports count per period."""

from __future__ import annotations

import re
from datetime import datetime

from ingest.china_time import CHINA_TZ

PATTERN = r"^20\d{2}(-(0[1-9]|1[0-2])|Q[1-4]|H[12])?$"  # years 2000-2099
PERIOD = re.compile(PATTERN)


def _month_start(year: int, month: int) -> datetime:
    """The first China instant of ``month`` (13 and above run into the next years)."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=CHINA_TZ)


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of ``period`` in China time; ValueError for a malformed one."""
    if not PERIOD.match(period):
        raise ValueError(f"a period is 2026, 2026-11, 2026Q4 or 2026H2, not {period!r}")
    year = int(period[:4])
    if len(period) == 4:
        first, months = 1, 12
    elif period[4] == "-":
        first, months = int(period[5:]), 1
    elif period[4] == "Q":
        first, months = (int(period[5]) - 1) * 3 + 1, 3
    else:
        first, months = (int(period[5]) - 1) * 6 + 1, 6
    return _month_start(year, first), _month_start(year, first + months)


__all__ = ["PATTERN", "PERIOD", "bounds"]
