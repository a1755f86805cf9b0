"""A reporting period's figures (统计报表) for ``nonsite report``: what the supervision did
(``alerts.statistics``) and what the fleet looked like, per region or brigade and in total.

- 传输率 / 有效传输率 / 有效小时率: each group's kept day counts summed
  (``nonsite.web.month_report.period_figures``: a silent day is due in full);
- 超标小时 排名: the enterprises with the most A3 hours at alarm, then days a daily rule fired;
- 环保码: the distribution at the period's end (each enterprise's last rating before it), and
  the moves: enterprises whose colour at the end differs from the one they had before the
  period began (one first rated in the period is counted apart, not as a move);
- 正面清单: the changes approved in the period, and the members at its end;
- 双随机: each draw of a period inside this one, per class: its quota, those drawn, and those
  inspected (their on-site work order reported by the period's end).

Every figure is a count or sum of rows, so that a test can recompute each one from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, RowMapping, and_, func, select

from alerts.positive_list import members
from alerts.schema import cases, inspection_draws, positive_list_changes, risk_ratings, work_orders
from alerts.statistics import TOTAL, Figures, period_statistics
from alerts.workflow import INSPECTION_RULE
from ingest.china_time import CHINA_TZ
from nonsite.config.model import Config
from nonsite.periods import PERIOD, bounds
from nonsite.rule_wiring import rule_setup
from nonsite.web.month_report import exceedances, period_figures
from nonsite.web.quality import Counts

GroupBy = Literal["region", "brigade"]
NO_REGION = "未分区"
NO_BRIGADE = "未指定大队"
UNRATED = "unrated"
COLORS = ("red", "yellow", "green", UNRATED)
TOP_N = 10
CLASS_ORDER = {"key": 0, "special": 1, "general": 2}  # 重点, 特殊, 一般


def group_of(config: Config, by: GroupBy) -> dict[str, str]:
    """Each enterprise's group: its region, or its brigade's name."""
    brigades = {b.id: b.name for b in config.brigades}
    if by == "region":
        return {e.id: e.region or NO_REGION for e in config.enterprises}
    return {e.id: brigades.get(e.brigade or "", NO_BRIGADE) for e in config.enterprises}


@dataclass(frozen=True, slots=True)
class Exceeding:
    enterprise_id: str
    name: str
    group: str
    alarm_hours: int  # 超标小时
    warning_hours: int  # 预警小时
    exceeded_days: int  # 日均超标天


@dataclass(frozen=True, slots=True)
class Move:
    enterprise_id: str
    name: str
    group: str
    before: str  # a colour, or UNRATED
    after: str


@dataclass(frozen=True, slots=True)
class ListChange:
    enterprise_id: str
    name: str
    change: str  # enter | exit
    decided_at: datetime
    decided_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClassExecution:
    supervision_class: str
    quota: int
    drawn: int
    inspected: int  # on-site work order reported by the period's end


@dataclass(frozen=True, slots=True)
class DrawExecution:
    period: str
    seed: str
    classes: tuple[ClassExecution, ...]


@dataclass(slots=True)
class PeriodReport:
    period: str
    since: datetime
    until: datetime
    by: GroupBy
    generated_at: datetime
    groups: list[str]  # in order, TOTAL last
    statistics: dict[str, Figures]
    transmission: dict[str, Counts]
    top: list[Exceeding]
    colors: dict[str, dict[str, int]]  # group → colour → enterprises, at the period's end
    moves: list[Move]  # from one colour to another (not a first rating)
    first_rated: int  # enterprises rated for the first time in the period
    list_changes: list[ListChange]
    members_at_end: int
    draws: list[DrawExecution] = field(default_factory=list)


def period_report(
    db: Engine,
    config: Config,
    period: str,
    by: GroupBy,
    now: datetime,
) -> PeriodReport:
    """The figures of ``period`` (2026, 2026-11, 2026Q4, 2026H2); ValueError for a bad one.
    The rules' inputs are the service's: the configuration and the 停产 declared online."""
    since, until = bounds(period)
    groups_of = group_of(config, by)
    names = {e.id: e.name for e in config.enterprises}
    groups = [*sorted(set(groups_of.values())), TOTAL]
    with db.connect() as conn:
        statistics = period_statistics(conn, since, until, groups_of)
        rules = rule_setup(config, conn)
    lo, hi = int(since.timestamp()), int(until.timestamp())
    transmission = {g: Counts() for g in groups}
    for enterprise, figures in period_figures(db, config, rules, lo, hi).items():
        for g in (groups_of[enterprise], TOTAL):
            transmission[g].add(figures.counts)
    exceeded = exceedances(db, lo, hi)
    top = sorted(
        (
            Exceeding(e, names.get(e, e), groups_of[e], a, w, d)
            for e, (a, w, d) in exceeded.items()
            if e in groups_of and (a or d)
        ),
        key=lambda x: (-x.alarm_hours, -x.exceeded_days, -x.warning_hours, x.enterprise_id),
    )[:TOP_N]
    before = _colors_before(db, since.date())
    after = _colors_before(db, until.date())
    colors = {g: dict.fromkeys(COLORS, 0) for g in groups}
    moves = []
    first_rated = 0
    for e in config.enterprises:
        was, now_is = before.get(e.id, UNRATED), after.get(e.id, UNRATED)
        for g in (groups_of[e.id], TOTAL):
            colors[g][now_is] += 1
        if was == UNRATED and now_is != UNRATED:
            first_rated += 1  # a first rating is not a move
        elif was != now_is:
            moves.append(Move(e.id, e.name, groups_of[e.id], was, now_is))
    with db.connect() as conn:
        rows = conn.execute(
            select(positive_list_changes).where(
                positive_list_changes.c.state == "approved",
                positive_list_changes.c.decided_at >= since,
                positive_list_changes.c.decided_at < until,
            )
        ).mappings()
        list_changes = sorted(
            (_list_change(r, names) for r in rows if r["enterprise_id"] in groups_of),
            key=lambda c: (c.decided_at, c.enterprise_id),
        )
        at_end = members(conn, {e.id: e.positive_list for e in config.enterprises}, until)
    return PeriodReport(
        period=period,
        since=since,
        until=until,
        by=by,
        generated_at=now,
        groups=groups,
        statistics={g: statistics.get(g, Figures()) for g in groups},
        transmission=transmission,
        top=top,
        colors=colors,
        moves=moves,
        first_rated=first_rated,
        list_changes=list_changes,
        members_at_end=sum(1 for e in config.enterprises if at_end.get(e.id)),
        draws=_draw_executions(db, since, until),
    )


def _list_change(row: RowMapping, names: Mapping[str, str]) -> ListChange:
    e = row["enterprise_id"]
    return ListChange(
        e, names.get(e, e), row["change"], row["decided_at"], row["decided_by"] or "", row["reason"]
    )


def _colors_before(db: Engine, day: date) -> dict[str, str]:
    """Each enterprise's colour on its last rated China day before ``day``."""
    last = (
        select(risk_ratings.c.enterprise_id, func.max(risk_ratings.c.day).label("day"))
        .where(risk_ratings.c.day < day)
        .group_by(risk_ratings.c.enterprise_id)
        .subquery()
    )
    query = select(risk_ratings.c.enterprise_id, risk_ratings.c.color).join(
        last,
        and_(
            risk_ratings.c.enterprise_id == last.c.enterprise_id,
            risk_ratings.c.day == last.c.day,
        ),
    )
    with db.connect() as conn:
        return {str(e): str(c) for e, c in conn.execute(query)}


def _draw_executions(db: Engine, since: datetime, until: datetime) -> list[DrawExecution]:
    """The draws of the periods inside [since, until), each class's quota against what was
    drawn and inspected by ``until``."""
    out = []
    with db.connect() as conn:
        draws = conn.execute(
            select(inspection_draws.c.period, inspection_draws.c.draw).order_by(
                inspection_draws.c.period
            )
        ).all()
        for period, doc_text in draws:
            if not PERIOD.match(period):
                continue
            start, end = bounds(period)
            if start < since or end > until:
                continue
            doc = json.loads(doc_text)
            reported = conn.execute(
                select(cases.c.enterprise_id)
                .join(work_orders, work_orders.c.case_id == cases.c.id)
                .where(
                    cases.c.rule == INSPECTION_RULE,
                    cases.c.source_id == f"draw-{period}",
                    work_orders.c.kind == "on_site",
                    work_orders.c.reported_at.is_not(None),
                    work_orders.c.reported_at < until,
                )
            )
            inspected = {e for (e,) in reported}
            classes = []
            for cls, quota in sorted(doc["quotas"].items(), key=lambda q: CLASS_ORDER[q[0]]):
                ours = [d["enterprise_id"] for d in doc["drawn"] if d["supervision_class"] == cls]
                classes.append(
                    ClassExecution(
                        cls, quota["quota"], len(ours), sum(1 for e in ours if e in inspected)
                    )
                )
            out.append(DrawExecution(period, doc["seed"], tuple(classes)))
    return out


def china_day(at: datetime) -> date:
    return at.astimezone(CHINA_TZ).date()


def last_day(report: PeriodReport) -> date:
    """The period's last China day (its ``until`` is the next one's first instant)."""
    return china_day(report.until) - timedelta(days=1)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


__all__ = [
    "COLORS",
    "TOP_N",
    "UNRATED",
    "ClassExecution",
    "DrawExecution",
    "Exceeding",
    "GroupBy",
    "ListChange",
    "Move",
    "PeriodReport",
    "group_of",
    "last_day",
    "period_report",
    "rate",
]
