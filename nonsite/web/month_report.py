"""The fleet's month (月度报表): per enterprise, its exceedance hours and days as the rules
found them, and its transmission figures, from what the rules kept (no raw frame is read).

- 超标小时 / 预警小时: the hours an A3 finding fired for, at alarm or at warning (one finding per
  hour and factor exceeded: the rules fire again each hour a condition holds);
- 日均超标天: the days a daily rule (A4; A5-1 for an incinerator) fired for;
- 传输率, 有效传输率, 有效小时率: B10's own count of each configured factor's days, kept with the
  day values (``rules.judge.OutletJudge.day_counts``); a day without a kept value (the outlet
  silent all day, or the day not closed yet) is due in full at the outlet's interval, unless a
  停产 marking covers it: the same figures as the data-quality window (``nonsite.web.quality``)
  over whole days.

Two grouped queries over the month (the findings of its rules, the kept days of its outlets):
for 2,000 outlets a month is about 300,000 day rows, not the 7 million hour rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, and_, func, select

from ingest.china_time import CHINA_TZ
from nonsite.config.model import Config
from nonsite.rule_wiring import RuleSetup
from nonsite.web.quality import DEFAULT_INTERVAL_S, Counts, Figures
from rules.markings import STOPPED_MARK
from rules.params import marking_book
from rules.store import day_values, findings
from rules.timebase import DAY, HOUR, next_month_start

DAILY_RULES = ("A4", "A5-1")


@dataclass(frozen=True, slots=True)
class MonthFigures:
    figures: Figures  # the enterprise's transmission counts and rates
    alarm_hours: int
    warning_hours: int
    exceeded_days: int


@dataclass(frozen=True, slots=True)
class MonthReport:
    month: date
    since: datetime
    until: datetime
    enterprises: list[MonthFigures]


def month_bounds(month: date) -> tuple[int, int]:
    """The China month of ``month`` as [start, end) epoch seconds."""
    start = int(datetime(month.year, month.month, 1, tzinfo=CHINA_TZ).timestamp())
    return start, next_month_start(start)


def month_report(db: Engine, config: Config, rules: RuleSetup, month: date) -> MonthReport:
    lo, hi = month_bounds(month)
    exceeded = exceedances(db, lo, hi)
    out = []
    for figures in period_figures(db, config, rules, lo, hi).values():
        alarm, warning, daily = exceeded.get(figures.enterprise_id, (0, 0, 0))
        out.append(MonthFigures(figures, alarm, warning, daily))
    out.sort(key=lambda m: (-m.alarm_hours, -m.exceeded_days, m.figures.enterprise_id))
    return MonthReport(
        month,
        datetime.fromtimestamp(lo, CHINA_TZ),
        datetime.fromtimestamp(hi, CHINA_TZ),
        out,
    )


def period_figures(
    db: Engine,
    config: Config,
    rules: RuleSetup,
    lo: int,
    hi: int,
    starts: Mapping[str, int] | None = None,
) -> dict[str, Figures]:
    """Each enterprise's transmission counts and rates over the whole China days in
    [lo, hi) (epoch seconds at day starts), from the kept days, in configuration order.
    ``starts``: count an enterprise only from its day there (and leave out one not in it)."""
    kept = _kept_days(db, lo, hi)
    judged = {key: p for key, p in rules.params.items() if p.factors}
    book = marking_book(rules.markings, judged)
    out: dict[str, Figures] = {}
    for e in config.enterprises:
        if starts is not None and e.id not in starts:
            continue
        days = range(max(lo, starts[e.id]) if starts is not None else lo, hi, DAY)
        total = Counts()
        outlets = 0
        for o in e.outlets:
            params = judged.get((e.id, o.id))
            if params is None:
                continue
            outlets += 1
            for code in params.factors:
                rows = kept.get((e.id, o.id, code), {})
                seen = [r for r in rows.values() if r[5]]
                interval = params.interval_override_s or (
                    max(seen, key=lambda r: r[6])[5] if seen else DEFAULT_INTERVAL_S
                )
                for day in days:
                    row = rows.get(day)
                    if row is not None:
                        received, valid, expected, due, valid_hours, _interval, _at = row
                    else:  # silent all day (or not closed yet): due in full
                        stopped = book.marking_at(e.id, o.id, code, day, STOPPED_MARK)
                        if stopped is not None and stopped.end >= day + DAY:
                            continue
                        received, valid, valid_hours = 0, 0, 0
                        expected, due = 24 * (HOUR // interval), 24
                    total.add(Counts(expected, received, valid, due, valid_hours))
        out[e.id] = Figures(e.id, e.name, outlets, total, 0)
    return out


def exceedances(db: Engine, lo: int, hi: int) -> dict[str, tuple[int, int, int]]:
    """Per enterprise: A3 hours fired at alarm, at warning, and days a daily rule fired."""
    f = findings
    since, until = datetime.fromtimestamp(lo, CHINA_TZ), datetime.fromtimestamp(hi, CHINA_TZ)
    query = (
        select(f.c.enterprise_id, f.c.rule, f.c.tier, func.count())
        .where(
            and_(
                f.c.state == "fire",
                f.c.rule.in_(("A3", *DAILY_RULES)),
                f.c.window_start >= since,
                f.c.window_start < until,
            )
        )
        .group_by(f.c.enterprise_id, f.c.rule, f.c.tier)
    )
    out: dict[str, list[int]] = {}
    with db.connect() as conn:
        for enterprise, rule, tier, n in conn.execute(query):
            counts = out.setdefault(enterprise, [0, 0, 0])
            if rule == "A3":
                counts[0 if tier == "alarm" else 1] += int(n)
            else:
                counts[2] += int(n)
    return {e: (a, w, d) for e, (a, w, d) in out.items()}


Row = tuple[
    int, int, int, int, int, int, int
]  # received, valid, expected, due, valid h, interval, start


def first_kept_days(db: Engine, since: int, enterprises: Sequence[str]) -> dict[str, int]:
    """Each enterprise's first kept day from ``since``: when the service began to hold its
    data (an enterprise without one has none yet)."""
    t = day_values
    query = (
        select(t.c.enterprise_id, func.min(t.c.start))
        .where(t.c.start >= since, t.c.enterprise_id.in_(list(enterprises)))
        .group_by(t.c.enterprise_id)
    )
    with db.connect() as conn:
        return {e: int(first) for e, first in conn.execute(query)}


def _kept_days(db: Engine, lo: int, hi: int) -> dict[tuple[str, str, str], dict[int, Row]]:
    """B10's kept count per outlet × factor × day of the month."""
    t = day_values
    query = select(
        t.c.enterprise_id, t.c.outlet_id, t.c.factor, t.c.start, t.c.received,
        t.c.valid_records, t.c.expected, t.c.due_hours, t.c.valid_hours, t.c.interval_s,
    ).where(t.c.start >= lo, t.c.start < hi, t.c.expected.is_not(None))  # fmt: skip
    out: dict[tuple[str, str, str], dict[int, Row]] = {}
    with db.connect() as conn:
        for ent, outlet, code, start, rec, valid, exp, due, vh, interval in conn.execute(query):
            out.setdefault((ent, outlet, code), {})[start] = (
                rec, valid, exp, due, min(vh, due), interval or 0, start,
            )  # fmt: skip
    return out


__all__ = [
    "MonthFigures",
    "MonthReport",
    "exceedances",
    "first_kept_days",
    "month_bounds",
    "month_report",
    "period_figures",
]
