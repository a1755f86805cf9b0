"""Markings (标记): periods an enterprise declares (start-up, shutdown, fault, maintenance...).

Data inside a marked period is not used as exceedance evidence ("标记为无效的自动监测数据，
不作为超标判定依据"). A marking covers one outlet, optionally one factor of it. Yearly totals
per type feed rule A5-1 (incineration: start/stop/fault/accident > 60 h a year, ...).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rules.timebase import to_datetime

MARKING_TYPES = (
    "startup",  # 启炉 / 开机
    "shutdown",  # 停炉 / 停机
    "fault",  # 故障
    "accident",  # 事故
    "maintenance",  # 维护 / 检修
    "calibration",  # 校准
    "oven_drying",  # 烘炉
    "cooling",  # 停炉降温
    "stopped",  # 停产
)


@dataclass(frozen=True, slots=True)
class Marking:
    enterprise_id: str
    outlet_id: str
    type: str
    start: int  # epoch seconds, inclusive
    end: int  # exclusive
    factor: str | None = None  # None: every factor of the outlet


class MarkingBook:
    """Markings by outlet, for "is this time marked?" in O(log n)."""

    def __init__(self, markings: Iterable[Marking] = ()) -> None:
        self._by_outlet: dict[tuple[str, str], list[Marking]] = defaultdict(list)
        for m in markings:
            self._by_outlet[(m.enterprise_id, m.outlet_id)].append(m)
        self._starts: dict[tuple[str, str], list[int]] = {}
        for key, items in self._by_outlet.items():
            items.sort(key=lambda m: m.start)
            self._starts[key] = [m.start for m in items]
        self._max_len = {
            k: max((m.end - m.start for m in v), default=0) for k, v in self._by_outlet.items()
        }

    def __bool__(self) -> bool:
        return bool(self._by_outlet)

    def marking_at(self, enterprise_id: str, outlet_id: str, factor: str, t: int) -> Marking | None:
        key = (enterprise_id, outlet_id)
        items = self._by_outlet.get(key)
        if not items:
            return None
        starts = self._starts[key]
        i = bisect.bisect_right(starts, t)
        lowest = t - self._max_len[key]
        while i > 0:
            i -= 1
            m = items[i]
            if m.start < lowest:
                break
            if m.start <= t < m.end and (m.factor is None or m.factor == factor):
                return m
        return None

    def yearly_hours(self, enterprise_id: str, outlet_id: str, year: int) -> dict[str, float]:
        """Marked hours per type in a calendar year (China time), overlaps counted once each."""
        totals: dict[str, float] = defaultdict(float)
        for m in self._by_outlet.get((enterprise_id, outlet_id), []):
            if to_datetime(m.start).year <= year <= to_datetime(m.end - 1).year:
                start = max(m.start, _year_start(year))
                end = min(m.end, _year_start(year + 1))
                totals[m.type] += max(0, end - start) / 3600
        return dict(totals)


def _year_start(year: int) -> int:
    from datetime import datetime  # noqa: PLC0415

    from ingest.hj212.timefmt import CHINA_TZ  # noqa: PLC0415

    return int(datetime(year, 1, 1, tzinfo=CHINA_TZ).timestamp())
