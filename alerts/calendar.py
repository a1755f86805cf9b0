"""Working days for deadlines: weekends and a configured holiday list, with the make-up
working days (调休) that China moves onto weekends around its holidays.

No library is used: the official holiday arrangement is published by the State Council each
year and differs from any rule a package could compute, so the operator configures it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ingest.china_time import CHINA_TZ as CHINA


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # weekend days worked (调休)

    @classmethod
    def of(cls, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkingCalendar:
        return cls(frozenset(holidays), frozenset(workdays))

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th working day after ``start`` (China time): a feedback due
        "in 3 working days" from Friday afternoon is due at the end of Wednesday."""
        local = start.astimezone(CHINA)
        day = local.date()
        left = days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        end = datetime(day.year, day.month, day.day, tzinfo=CHINA) + timedelta(days=1)
        return end.astimezone(start.tzinfo)
