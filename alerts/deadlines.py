"""The clock's part of the workflow: an overdue explanation escalates the case to alarm, overdue
feedback from the brigade is flagged. Each once (the case remembers it is overdue)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, select

from alerts.case import Case
from alerts.case_store import CaseStore
from alerts.schema import cases
from alerts.workflow import SYSTEM


def flag_overdue(
    conn: Connection, store: CaseStore, now: datetime, enterprises: frozenset[str] | None = None
) -> list[int]:
    """Flag (and escalate) the open cases whose deadline passed by ``now``, of
    ``enterprises`` (None: all); their ids."""
    touched: list[int] = []
    scope = [] if enterprises is None else [cases.c.enterprise_id.in_(sorted(enterprises))]
    rows = conn.execute(
        select(cases).where(
            *scope,
            cases.c.open_key.is_not(None),
            cases.c.overdue.is_(None),
            (
                and_(cases.c.state == "reminded", cases.c.explain_due < now)
                | and_(cases.c.state.in_(("dispatched", "on_site")), cases.c.feedback_due < now)
            ),
        )
    ).all()
    for row in rows:
        case = Case.from_row(row)
        if case.state == "reminded":
            values = {
                "overdue": "explanation",
                "tier": "alarm",
                "escalation": "超过说明期限未说明",
            }
            audience: tuple[str, ...] = ("supervisors", "monitors", "enterprise")
            note = "超过说明期限未说明"
        else:
            values = {"overdue": "feedback"}
            audience = ("supervisors", "brigade")
            note = "超过反馈期限未反馈"
        changed = store.cas(conn, case, now, values)
        event = store.audit(conn, changed, SYSTEM, "escalate", case.state, now, note, {})
        store.notify(conn, changed, "case.overdue", event, audience, now, note)
        touched.append(case.id)
    return touched
