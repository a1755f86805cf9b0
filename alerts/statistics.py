"""What the supervision did in a period, counted from the alert store (统计): the figures of the
bureaus' yearly reports, per group of enterprises (a region, a brigade) and in total.

- 预警提醒: reminders sent (the trail's ``remind``); 企业说明: explanations received, and those
  by their deadline (the one their reminder set, kept on the trail);
- 非现场检查 / 现场检查 家次: work orders created, by kind;
- cases opened, by family (超标, 疑似弄虚作假, 数据异常, 用电异常, 线索, 双随机) and by tier;
- cases closed (办结) in the period by outcome; 办结率: of the cases opened in the period, those
  closed by its end; the mean hours from opening to closing of those;
- 违法事实成立: brigades' reports confirming a violation;
- 责令整改 and 销号: rectification rounds ordered and struck off;
- 复发: cases reopened by a recurrence (回头看).

Every figure is a count of rows in [since, until) (a rate of two counts), so that a test can
recompute each one from the rows themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, select

from alerts.risk import EXCEEDANCE_RULES, FRAUD_RULES, POWER_RULES
from alerts.schema import case_events, cases, rectifications, work_orders
from alerts.workflow import CLUE_RULE, INSPECTION_RULE

FAMILIES = ("exceedance", "fraud", "data_quality", "power", "clue", "inspection")
FAMILY_NAMES = {
    "exceedance": "超标",
    "fraud": "疑似弄虚作假",
    "data_quality": "数据异常",
    "power": "用电异常",
    "clue": "线索",
    "inspection": "双随机检查",
}
TOTAL = "合计"


def family(rule: str) -> str:
    if rule == CLUE_RULE:
        return "clue"
    if rule == INSPECTION_RULE:
        return "inspection"
    if rule in EXCEEDANCE_RULES:
        return "exceedance"
    if rule in FRAUD_RULES:
        return "fraud"
    if rule in POWER_RULES:
        return "power"
    return "data_quality"


@dataclass(slots=True)
class Figures:
    reminders: int = 0
    explanations: int = 0
    explained_on_time: int = 0
    non_site_checks: int = 0
    on_site_checks: int = 0
    opened: int = 0
    by_family: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    by_tier: dict[str, int] = field(default_factory=lambda: {"alarm": 0, "warning": 0})
    closed: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    opened_and_closed: int = 0
    hours_to_close: float = 0.0  # summed; the mean is hours_to_close / opened_and_closed
    violations_confirmed: int = 0
    rectifications_ordered: int = 0
    struck_off: int = 0
    recurrences: int = 0

    @property
    def closure_rate(self) -> float | None:
        return self.opened_and_closed / self.opened if self.opened else None

    @property
    def mean_hours_to_close(self) -> float | None:
        return self.hours_to_close / self.opened_and_closed if self.opened_and_closed else None


def period_statistics(
    conn: Connection, since: datetime, until: datetime, group_of: Mapping[str, str]
) -> dict[str, Figures]:
    """Per group (``group_of``: enterprise → its region or brigade; others are left out) and
    in total (``TOTAL``), the period's figures."""
    out: dict[str, Figures] = {}

    def add(enterprise: str) -> list[Figures]:
        group = group_of.get(enterprise)
        if group is None:
            return []
        return [out.setdefault(group, Figures()), out.setdefault(TOTAL, Figures())]

    def within(column: ColumnElement[datetime]) -> tuple[ColumnElement[bool], ...]:
        return (column >= since, column < until)

    events = conn.execute(
        select(cases.c.enterprise_id, case_events.c.action, case_events.c.at,
               case_events.c.case_id, case_events.c.id, cases.c.explain_due)
        .join(cases, cases.c.id == case_events.c.case_id)
        .where(case_events.c.action.in_(("remind", "explain", "reopen")), *within(case_events.c.at))
    ).all()  # fmt: skip
    explained = {case_id for _e, action, _at, case_id, _id, _due in events if action == "explain"}
    dues = _reminder_dues(conn, explained)
    for enterprise, action, at, case_id, event_id, explain_due in events:
        for f in add(enterprise):
            if action == "remind":
                f.reminders += 1
            elif action == "explain":
                f.explanations += 1
                due = _due_of(dues.get(case_id, []), event_id, explain_due)
                f.explained_on_time += due is not None and at <= due
            else:
                f.recurrences += 1
    orders = conn.execute(
        select(cases.c.enterprise_id, work_orders.c.kind)
        .join(cases, cases.c.id == work_orders.c.case_id)
        .where(*within(work_orders.c.created_at))
    )
    for enterprise, kind in orders:
        for f in add(enterprise):
            if kind == "non_site_check":
                f.non_site_checks += 1
            else:
                f.on_site_checks += 1
    reports = conn.execute(
        select(cases.c.enterprise_id)
        .join(work_orders, work_orders.c.case_id == cases.c.id)
        .where(work_orders.c.outcome == "violation_confirmed", *within(work_orders.c.reported_at))
    )
    for (enterprise,) in reports:
        for f in add(enterprise):
            f.violations_confirmed += 1
    opened = conn.execute(
        select(cases.c.enterprise_id, cases.c.rule, cases.c.tier, cases.c.state, cases.c.opened_at,
               cases.c.closed_at).where(*within(cases.c.opened_at))
    )  # fmt: skip
    for enterprise, rule, tier, state, opened_at, closed_at in opened:
        for f in add(enterprise):
            f.opened += 1
            f.by_family[family(rule)] += 1
            f.by_tier[tier] = f.by_tier.get(tier, 0) + 1
            if state == "closed" and closed_at is not None and closed_at < until:
                f.opened_and_closed += 1
                f.hours_to_close += (closed_at - opened_at).total_seconds() / 3600
    closed = conn.execute(
        select(cases.c.enterprise_id, cases.c.disposition).where(
            cases.c.state == "closed", *within(cases.c.closed_at)
        )
    )
    for enterprise, disposition in closed:
        for f in add(enterprise):
            f.closed += 1
            key = disposition or "closed"
            f.by_outcome[key] = f.by_outcome.get(key, 0) + 1
    rounds = conn.execute(
        select(cases.c.enterprise_id, rectifications.c.ordered_at, rectifications.c.closed_at,
               rectifications.c.state).join(cases, cases.c.id == rectifications.c.case_id)
    )  # fmt: skip
    for enterprise, ordered_at, closed_at, state in rounds:
        for f in add(enterprise):
            f.rectifications_ordered += since <= ordered_at < until
            f.struck_off += (
                state == "closed" and closed_at is not None and since <= closed_at < until
            )
    return out


def _reminder_dues(conn: Connection, case_ids: set[int]) -> dict[int, list[tuple[int, str]]]:
    """Each case's reminders (event id, the deadline it set, if kept), in the trail's order."""
    out: dict[int, list[tuple[int, str]]] = {}
    if not case_ids:
        return out
    rows = conn.execute(
        select(case_events.c.case_id, case_events.c.id, case_events.c.refs)
        .where(case_events.c.action == "remind", case_events.c.case_id.in_(sorted(case_ids)))
        .order_by(case_events.c.id)
    )
    for case_id, event_id, refs in rows:
        out.setdefault(case_id, []).append((event_id, json.loads(refs or "{}").get("due", "")))
    return out


def _due_of(
    reminders: list[tuple[int, str]], explain_id: int, fallback: datetime | None
) -> datetime | None:
    """An explanation's deadline: the one its (latest earlier) reminder set, from the trail
    (a recurrence clears the case's own and a new reminder sets another); for a trail kept
    before reminders recorded theirs, the case's."""
    due = next((d for event_id, d in reversed(reminders) if event_id < explain_id), "")
    return datetime.fromisoformat(due) if due else fallback


__all__ = ["FAMILIES", "FAMILY_NAMES", "TOTAL", "Figures", "family", "period_statistics"]
