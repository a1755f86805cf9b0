"""Markings (标记): periods an enterprise declares (start-up, shutdown, fault, maintenance...).

Data inside a marked period is not used as exceedance evidence ("标记为无效的自动监测数据，
不作为超标判定依据"). A marking covers one outlet, optionally one factor of it.

Some industries cap how many marked hours a year may excuse: an MSW incinerator's start-up,
shutdown, fault and accident marks together excuse at most 60 hours per natural year, its
oven-drying and cooling marks 700 hours (部令 / rule A5-1). The book applies such caps when it
is built: the marked time of a capped group is counted in time order (overlapping marks once),
and what lies beyond the cap is no longer excused. Markings come from the configuration, so
the book is the same for the streaming and the batch engine.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ingest.china_time import CHINA_TZ
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
STOPPED_MARK = "stopped"  # data inside it count as stopped (停运), like flag F


@dataclass(frozen=True, slots=True)
class Marking:
    enterprise_id: str
    outlet_id: str
    type: str
    start: int  # epoch seconds, inclusive
    end: int  # exclusive
    factor: str | None = None  # None: every factor of the outlet


@dataclass(frozen=True, slots=True)
class MarkingCap:
    """At most ``hours`` of marks of these types excuse data per natural year (China time)."""

    types: tuple[str, ...]
    hours: float

    @property
    def label(self) -> str:
        return "+".join(self.types)


# GB 18485 incinerators (生活垃圾焚烧发电厂自动监测数据应用管理规定, as quoted in S3).
INCINERATION_CAPS = (
    MarkingCap(("startup", "shutdown", "fault", "accident"), 60.0),
    MarkingCap(("oven_drying", "cooling"), 700.0),
)

OutletKey = tuple[str, str]


class MarkingBook:
    """Markings by outlet, for "is this time excused?" in O(log n), with yearly caps applied."""

    def __init__(
        self,
        markings: Iterable[Marking] = (),
        caps: Mapping[OutletKey, Sequence[MarkingCap]] | None = None,
    ) -> None:
        self.declared: list[Marking] = list(markings)
        self.caps: dict[OutletKey, tuple[MarkingCap, ...]] = {
            k: tuple(v) for k, v in (caps or {}).items() if v
        }
        by_outlet: dict[OutletKey, list[Marking]] = defaultdict(list)
        for m in self.declared:
            by_outlet[(m.enterprise_id, m.outlet_id)].append(m)
        self._declared = {
            key: sorted(items, key=lambda m: (m.start, m.type, m.factor or ""))
            for key, items in by_outlet.items()
        }
        self._by_outlet: dict[OutletKey, list[Marking]] = {}
        self.over_cap: list[Marking] = []  # declared time the caps no longer excuse
        for key, items in by_outlet.items():
            excused = self._apply_caps(key, items)
            excused.sort(key=lambda m: (m.start, m.end))
            self._by_outlet[key] = excused
        self._starts = {k: [m.start for m in v] for k, v in self._by_outlet.items()}
        self._max_len = {
            k: max((m.end - m.start for m in v), default=0) for k, v in self._by_outlet.items()
        }

    def __bool__(self) -> bool:
        return bool(self._by_outlet)

    def declared_for(self, enterprise_id: str, outlet_id: str) -> list[Marking]:
        """The outlet's markings as declared (caps not applied), by start."""
        return self._declared.get((enterprise_id, outlet_id), [])

    def excused(self) -> list[Marking]:
        """Every marking as far as it excuses data (caps applied), in outlet and time order."""
        return [m for key in sorted(self._by_outlet) for m in self._by_outlet[key]]

    def marking_at(
        self, enterprise_id: str, outlet_id: str, factor: str, t: int, of_type: str | None = None
    ) -> Marking | None:
        """A marking (of type ``of_type``, when given) that excuses ``factor`` at ``t``."""
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
            if (
                m.start <= t < m.end
                and (m.factor is None or m.factor == factor)
                and (of_type is None or m.type == of_type)
            ):
                return m
        return None

    def yearly_hours(self, enterprise_id: str, outlet_id: str, year: int) -> dict[str, float]:
        """Declared hours per type in a calendar year (China time), each marking counted."""
        totals: dict[str, float] = defaultdict(float)
        for m in self.declared:
            if (m.enterprise_id, m.outlet_id) != (enterprise_id, outlet_id):
                continue
            start = max(m.start, year_start(year))
            end = min(m.end, year_start(year + 1))
            if end > start:
                totals[m.type] += (end - start) / 3600
        return dict(totals)

    def cap_usage(self, key: OutletKey, until: int) -> list[dict[str, object]]:
        """Per cap of the outlet: hours of the group marked this year before ``until``."""
        year = to_datetime(until - 1).year
        first = year_start(year)
        out: list[dict[str, object]] = []
        for cap in self.caps.get(key, ()):
            spans = [
                (max(m.start, first), min(m.end, until))
                for m in self.declared
                if (m.enterprise_id, m.outlet_id) == key and m.type in cap.types
            ]
            used = _union_seconds(spans) / 3600
            out.append(
                {
                    "types": cap.label,
                    "marked_hours": round(used, 2),
                    "cap_hours": cap.hours,
                    "exceeded": used > cap.hours,
                }
            )
        return out

    def _apply_caps(self, key: OutletKey, items: list[Marking]) -> list[Marking]:
        caps = self.caps.get(key, ())
        capped_types = {t: cap for cap in caps for t in cap.types}
        excused = [m for m in items if m.type not in capped_types]
        for cap in caps:
            group = [m for m in items if m.type in cap.types]
            for year in sorted({y for m in group for y in _years(m)}):
                first, after = year_start(year), year_start(year + 1)
                pieces = [
                    replace(m, start=max(m.start, first), end=min(m.end, after))
                    for m in group
                    if m.start < after and m.end > first
                ]
                # the moment the cap was used up: from then on nothing of the group is excused
                reached = _time_budget_used(pieces, int(cap.hours * 3600))
                for piece in pieces:
                    limit = reached if reached is not None else piece.end
                    if piece.start < limit:
                        excused.append(replace(piece, end=min(piece.end, limit)))
                    if piece.end > limit:
                        self.over_cap.append(replace(piece, start=max(piece.start, limit)))
        return excused


def _years(m: Marking) -> range:
    return range(to_datetime(m.start).year, to_datetime(m.end - 1).year + 1)


def _union_seconds(spans: Iterable[tuple[int, int]]) -> int:
    total, reach = 0, -(2**62)
    for start, end in sorted(spans):
        if end <= max(start, reach):
            continue
        total += end - max(start, reach)
        reach = end
    return total


def _time_budget_used(pieces: Sequence[Marking], budget_s: int) -> int | None:
    """The moment the union of the pieces has covered ``budget_s`` seconds (None: never)."""
    used, reach = 0, -(2**62)
    for m in sorted(pieces, key=lambda m: (m.start, m.end)):
        if m.end <= reach:
            continue
        start = max(m.start, reach)
        if used + (m.end - start) >= budget_s:
            return start + (budget_s - used)
        used += m.end - start
        reach = m.end
    return None


def year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=CHINA_TZ).timestamp())
