"""A 双随机 draw's inspections as cases in the workflow (rule ``INSPECT``): each drawn
enterprise a case dispatched at once to its brigade with an on-site work order naming the
drawn inspectors, due by the period's end. Unannounced: the enterprise neither sees the case
nor is told of it (``HIDDEN_FROM_ENTERPRISE``); the brigade arrives, reports, and the case is
closed as any other, so its outcome (a violation confirmed) counts on the record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from alerts.case import Case, Evidence
from alerts.case_store import CaseStore, unruled_case
from alerts.draws import Drawn
from alerts.policy import AlertPolicy
from alerts.positive_list import is_member
from alerts.work_orders import new_work_order
from alerts.workflow import INSPECTION_RULE, SYSTEM


def open_inspections(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    period: str,
    seed: str,
    drawn: Sequence[Drawn],
    due: datetime,
) -> list[Case]:
    """The draw's cases, dispatched; an enterprise without a brigade is dispatched to none
    (its case waits, sensed, for a supervisor to name one)."""
    out = []
    source = f"draw-{period}"
    for d in drawn:
        info = policy.enterprise(d.enterprise_id)
        values = unruled_case(
            d.enterprise_id, source, INSPECTION_RULE, tier="warning", at=now, now=now,
            positive_list=is_member(conn, d.enterprise_id, info.positive_list),
            brigade=d.brigade,
        )  # fmt: skip
        case = store.insert(conn, values, Evidence())
        who = "、".join(d.inspectors) or "未抽到"
        note = f"双随机抽查 {period}（公开种子 {seed}），检查人员：{who}"
        refs = {"draw": period, "inspectors": list(d.inspectors), "weight": d.weight}
        event = store.audit(conn, case, SYSTEM, "sense", None, now, note, refs)
        store.notify(conn, case, "case.opened", event, ("supervisors",), now)
        if d.brigade:
            order = new_work_order(conn, case.id, d.brigade, "on_site", SYSTEM.name, due, now)
            case = store.cas(conn, case, now, {"state": "dispatched", "feedback_due": due})
            refs = {"work_order": order, "brigade": d.brigade, "kind": "on_site",
                    "due": due.isoformat(), "inspectors": list(d.inspectors)}  # fmt: skip
            event = store.audit(conn, case, SYSTEM, "dispatch", "sensed", now, note, refs)
            store.notify(conn, case, "case.dispatched", event, ("brigade",), now)
        out.append(case)
    return out


__all__ = ["open_inspections"]
