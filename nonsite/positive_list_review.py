"""The positive list's daily check (正面清单, ``[positive_list]``): after the day's risk ratings,
an enterprise meeting every entry criterion is proposed for entry, and a member that no longer
holds is proposed for exit; a supervisor decides each (``alerts.positive_list``).

Entry: every daily rating of the last ``green_months`` 绿码 (30-day months, and rated that
long), no confirmed violation in ``violation_free_days``, the effective transmission rate of
its latest rating at least ``min_transmission``, a supervision class in ``classes``. A member
holds while its latest rating is 绿码, it has no confirmed violation in the window and its
transmission rate is at least the minimum: the entry's duration is not asked again, so a
member taken from the configuration is not proposed for exit on the service's first day. A
change the supervisor rejected is not proposed again for ``[positive_list] repropose_after_days``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from alerts.positive_list import Change, members, propose
from alerts.risk_record import history, latest, record_items
from alerts.schema import positive_list_changes
from alerts.workflow import SYSTEM
from ingest.china_time import CHINA_TZ
from nonsite.config.model import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Check:
    enterprise_id: str
    entry_failed: tuple[str, ...]  # why it may not enter (empty: it may)
    hold_failed: tuple[str, ...]  # why a member no longer holds (empty: it holds)
    found: dict[str, Any]  # what was found, kept with a proposal


def check_fleet(db: Engine, config: Config, day: date) -> list[Check]:
    """Every enterprise's criteria on ``day`` (China)."""
    p = config.positive_list
    needed = p.green_months * 30
    with db.connect() as conn:
        ratings = latest(conn)
        since = datetime.combine(day - timedelta(days=p.violation_free_days), time(), CHINA_TZ)
        until = datetime.combine(day + timedelta(days=1), time(), CHINA_TZ)
        record = record_items(conn, since, until, [e.id for e in config.enterprises])
        span = {
            e.id: history(conn, e.id, day - timedelta(days=needed - 1)) for e in config.enterprises
        }
    out = []
    for e in config.enterprises:
        rating = ratings.get(e.id)
        days = [h for h in span[e.id] if h["day"] <= day.isoformat()]
        first = date.fromisoformat(days[0]["day"]) if days else None
        green_days = (day - first).days + 1 if first and all(
            h["color"] == "green" for h in days
        ) else 0  # fmt: skip
        violations = sorted({i.ref for i in record.get(e.id, ()) if i.kind == "violation"})
        rate = rating["inputs"]["transmission_rate"] if rating else None
        color = rating["color"] if rating else None
        found = {
            "color": color,
            "green_days": green_days,
            "needed_days": needed,
            "violations": violations,
            "transmission_rate": rate,
            "min_transmission": p.min_transmission,
            "supervision_class": e.supervision_class,
        }
        # What is not known yet (no rating, no transmission rate: the first days of the
        # service or of an enterprise's data) is no evidence against a member; an entry
        # needs it all.
        hold: list[str] = []
        if color is not None and color != "green":
            hold.append("当前非绿码")
        if violations:
            hold.append(f"{p.violation_free_days}天内有违法事实确认 {len(violations)} 起")
        if rate is not None and rate < p.min_transmission:
            hold.append(f"有效传输率 {rate:.1%}，低于 {p.min_transmission:.0%}")
        entry = list(hold)
        if color is None:
            entry.append("尚无风险评级")
        if rate is None:
            entry.append("尚无有效传输率")
        if color == "green" and green_days < needed:
            entry.append(f"连续绿码 {green_days} 天，不足 {needed} 天")
        if rating and date.fromisoformat(rating["day"]) < day - timedelta(days=1):
            entry.append(f"最近评级为 {rating['day']}，已过期")
        if e.supervision_class not in p.classes:
            entry.append("监管类别不在可纳入范围")
        out.append(Check(e.id, tuple(entry), tuple(hold), found))
    return out


def review_if_due(db: Engine, config: Config, now: datetime) -> int:
    """The day's proposals (once a day: a change already waiting is not proposed again).
    Returns how many were proposed."""
    if not config.positive_list.propose:
        return 0
    day = now.astimezone(CHINA_TZ).date()
    configured = {e.id: e.positive_list for e in config.enterprises}
    checks = check_fleet(db, config, day)
    made = 0
    with db.begin() as conn:
        member = members(conn, configured)
        cooling = _recently_rejected(conn, now, config.positive_list.repropose_after_days)
        for c in checks:
            on_list = member.get(c.enterprise_id, False)
            change: Change
            if on_list and c.hold_failed:
                change, reason = "exit", "；".join(c.hold_failed)
            elif not on_list and not c.entry_failed:
                change, reason = "enter", "符合纳入条件：连续绿码、无违法事实确认、有效传输率达标"
            else:
                continue
            if (c.enterprise_id, change) in cooling:
                continue
            proposed = propose(
                conn, c.enterprise_id, change, reason, SYSTEM, now,
                member=on_list, criteria=c.found,
            )  # fmt: skip
            made += proposed is not None
    if made:
        log.info("positive list: %d changes proposed on %s", made, day.isoformat())
    return made


def _recently_rejected(conn: Connection, now: datetime, days: int) -> set[tuple[str, str]]:
    since = now - timedelta(days=days)
    t = positive_list_changes
    rows = conn.execute(
        select(t.c.enterprise_id, t.c.change).where(
            t.c.state == "rejected", t.c.decided_at >= since
        )
    )
    return {(e, c) for e, c in rows}


__all__ = ["Check", "check_fleet", "review_if_due"]
