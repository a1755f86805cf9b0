"""The record a risk rating (:mod:`alerts.risk`) is made from, and the ratings kept.

The items come from the alert store's own tables, one query each for the whole fleet: the
cases (by rule family and tier; a false positive counts nothing; a clue's case is counted as
its clue), the confirmed violations (a brigade's 违法事实成立 report or a penalty decision in
effect: one per case, on its first day), the reminders not explained in time, the
rectification rounds overdue or failed, and the clues attributed to an enterprise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select

from alerts.risk import (
    EXCEEDANCE_RULES,
    FRAUD_RULES,
    POWER_RULES,
    Item,
    Rating,
    RiskWeights,
    dumps,
    rating_json,
)
from alerts.schema import (
    case_events,
    cases,
    clues,
    decisions,
    rectifications,
    risk_ratings,
    work_orders,
)
from alerts.workflow import HIDDEN_FROM_ENTERPRISE, SYSTEM
from ingest.china_time import CHINA_TZ

# Decisions that are a finding of a violation (不予处罚 is not).
PENALTIES = ("order_correction", "fine", "seizure", "police_detention", "police_crime", "transfer")


def _day(at: datetime | date) -> date:
    if isinstance(at, datetime):
        return at.astimezone(CHINA_TZ).date()
    return at


def window_start(day: date, weights: RiskWeights) -> datetime:
    """The first instant the window ending on ``day`` counts (China midnight)."""
    first = day - timedelta(days=weights.window_days - 1)
    return datetime.combine(first, time(), CHINA_TZ)


def case_kind(rule: str, tier: str) -> str | None:
    """The kind a case counts as, by its rule family (None: its clue counts instead)."""
    if rule in HIDDEN_FROM_ENTERPRISE:  # a clue counts as its clue; an inspection, its outcome
        return None
    if rule in EXCEEDANCE_RULES:
        return "exceedance_alarm" if tier == "alarm" else "exceedance_warning"
    if rule in FRAUD_RULES:
        return "fraud"
    if rule in POWER_RULES:
        return "power"
    return "data_quality"


def record_items(
    conn: Connection, since: datetime, until: datetime, enterprises: Iterable[str] | None = None
) -> dict[str, list[Item]]:
    """Per enterprise, the items that entered its record in [since, until)."""
    wanted = None if enterprises is None else list(enterprises)
    out: dict[str, list[Item]] = {}

    def add(enterprise: str, item: Item) -> None:
        out.setdefault(enterprise, []).append(item)

    def scoped(column: Any) -> Any:
        return True if wanted is None else column.in_(wanted)

    counted = or_(cases.c.disposition.is_(None), cases.c.disposition != "false_positive")
    rows = conn.execute(
        select(
            cases.c.id, cases.c.enterprise_id, cases.c.rule, cases.c.tier, cases.c.opened_at,
        ).where(
            cases.c.opened_at >= since, cases.c.opened_at < until, counted,
            scoped(cases.c.enterprise_id),
        )
    )  # fmt: skip
    for cid, enterprise, rule, tier, opened in rows:
        kind = case_kind(rule, tier)
        if kind is not None:
            add(enterprise, Item(kind, f"case:{cid}", _day(opened), rule))
    # A reminder not explained by its deadline: the trail's escalation by the clock from
    # 已提醒 (alerts.deadlines), which stays when the case moves on.
    missed = conn.execute(
        select(cases.c.id, cases.c.enterprise_id, cases.c.rule, case_events.c.at)
        .join(case_events, case_events.c.case_id == cases.c.id)
        .where(
            case_events.c.action == "escalate",
            case_events.c.role == SYSTEM.role,
            case_events.c.from_state == "reminded",
            case_events.c.at >= since,
            case_events.c.at < until,
            counted,
            scoped(cases.c.enterprise_id),
        )
    )
    for cid, enterprise, rule, at in missed:
        add(enterprise, Item("unexplained", f"case:{cid}", _day(at), rule))

    # Confirmed violations: one per case, on the first day it was confirmed.
    confirmed: dict[int, tuple[str, date]] = {}
    reports = conn.execute(
        select(cases.c.id, cases.c.enterprise_id, work_orders.c.reported_at)
        .join(work_orders, work_orders.c.case_id == cases.c.id)
        .where(
            work_orders.c.outcome == "violation_confirmed",
            work_orders.c.reported_at >= since,
            work_orders.c.reported_at < until,
            scoped(cases.c.enterprise_id),
        )
    )
    decided = conn.execute(
        select(cases.c.id, cases.c.enterprise_id, decisions.c.proposed_at, decisions.c.decided_on)
        .join(decisions, decisions.c.case_id == cases.c.id)
        .where(
            decisions.c.state == "effective",
            decisions.c.type.in_(PENALTIES),
            decisions.c.proposed_at >= since,
            decisions.c.proposed_at < until,
            scoped(cases.c.enterprise_id),
        )
    )
    for cid, enterprise, at in reports:
        _earliest(confirmed, cid, enterprise, _day(at))
    for cid, enterprise, proposed, decided_on in decided:
        _earliest(confirmed, cid, enterprise, decided_on or _day(proposed))
    for cid, (enterprise, on) in sorted(confirmed.items()):
        add(enterprise, Item("violation", f"case:{cid}", on))

    rounds = conn.execute(
        select(
            rectifications.c.id, cases.c.enterprise_id, rectifications.c.overdue_at,
            rectifications.c.outcome, rectifications.c.verified_at,
        )
        .join(cases, cases.c.id == rectifications.c.case_id)
        .where(
            or_(
                and_(rectifications.c.overdue_at >= since, rectifications.c.overdue_at < until),
                and_(rectifications.c.verified_at >= since, rectifications.c.verified_at < until),
            ),
            scoped(cases.c.enterprise_id),
        )
    )  # fmt: skip
    for rid, enterprise, overdue_at, outcome, verified_at in rounds:
        if overdue_at is not None and since <= overdue_at < until:
            add(enterprise, Item("rectification_overdue", f"rectification:{rid}", _day(overdue_at)))
        if outcome == "failed" and verified_at is not None and since <= verified_at < until:
            add(enterprise, Item("rectification_failed", f"rectification:{rid}", _day(verified_at)))

    attributed = conn.execute(
        select(clues.c.id, clues.c.enterprise_id, clues.c.received_at, clues.c.source).where(
            clues.c.enterprise_id.is_not(None),
            clues.c.received_at >= since,
            clues.c.received_at < until,
            scoped(clues.c.enterprise_id),
        )
    )
    for clue_id, enterprise, received, source in attributed:
        add(enterprise, Item("clue", f"clue:{clue_id}", _day(received), source))
    for items in out.values():
        items.sort(key=lambda i: (i.on, i.kind, i.ref))
    return out


def _earliest(into: dict[int, tuple[str, date]], cid: int, enterprise: str, on: date) -> None:
    have = into.get(cid)
    if have is None or on < have[1]:
        into[cid] = (enterprise, on)


def keep(conn: Connection, rating: Rating, now: datetime, trigger: str) -> None:
    """The enterprise's rating of its day, replacing one made earlier that day."""
    conn.execute(
        delete(risk_ratings).where(
            risk_ratings.c.enterprise_id == rating.enterprise_id,
            risk_ratings.c.day == rating.day,
        )
    )
    conn.execute(
        insert(risk_ratings).values(
            enterprise_id=rating.enterprise_id,
            day=rating.day,
            score=rating.score,
            color=rating.color,
            computed_at=now,
            trigger=trigger,
            rating=dumps(rating_json(rating)),
        )
    )


def rated_on(conn: Connection, day: date) -> set[str]:
    """The enterprises rated on ``day`` already."""
    rows = conn.execute(select(risk_ratings.c.enterprise_id).where(risk_ratings.c.day == day))
    return {r[0] for r in rows}


def latest(conn: Connection, enterprises: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each enterprise's latest rating (its JSON, with ``computed_at``)."""
    newest = select(
        risk_ratings.c.enterprise_id, func.max(risk_ratings.c.day).label("day")
    ).group_by(risk_ratings.c.enterprise_id)
    sub = newest.subquery()
    query = select(risk_ratings.c.rating, risk_ratings.c.computed_at).join(
        sub,
        and_(risk_ratings.c.enterprise_id == sub.c.enterprise_id, risk_ratings.c.day == sub.c.day),
    )
    if enterprises is not None:
        query = query.where(risk_ratings.c.enterprise_id.in_(list(enterprises)))
    out: dict[str, dict[str, Any]] = {}
    for rating, computed_at in conn.execute(query):
        doc = json.loads(rating)
        doc["computed_at"] = computed_at.isoformat()
        out[doc["enterprise_id"]] = doc
    return out


def history(conn: Connection, enterprise_id: str, since: date) -> list[Mapping[str, Any]]:
    """An enterprise's ratings from ``since``, oldest first: day, score, colour."""
    rows = conn.execute(
        select(risk_ratings.c.day, risk_ratings.c.score, risk_ratings.c.color)
        .where(risk_ratings.c.enterprise_id == enterprise_id, risk_ratings.c.day >= since)
        .order_by(risk_ratings.c.day)
    )
    return [{"day": d.isoformat(), "score": s, "color": c} for d, s, c in rows]


__all__ = [
    "PENALTIES",
    "case_kind",
    "history",
    "keep",
    "latest",
    "rated_on",
    "record_items",
    "window_start",
]
