"""Reporting periods: a year, a month, a quarter or a half, as spans of China time."""

from __future__ import annotations

from datetime import datetime

import pytest

from ingest.china_time import CHINA_TZ
from nonsite.periods import bounds


def day(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=CHINA_TZ)


def test_periods_are_spans_of_china_time():
    assert bounds("2026") == (day(2026, 1), day(2027, 1))
    assert bounds("2026-12") == (day(2026, 12), day(2027, 1))
    assert bounds("2026Q4") == (day(2026, 10), day(2027, 1))
    assert bounds("2026H1") == (day(2026, 1), day(2026, 7))
    for bad in ("0000", "2026Q5", "2026-13", "26Q1"):
        with pytest.raises(ValueError, match="a period is"):
            bounds(bad)
