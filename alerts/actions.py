"""People's actions on a case: a handler per action, keyed by the action's name.

The workflow's table says which state an action moves a case to (``alerts.workflow``); a
handler adds what else its action changes (a work order, a deadline, who handles the case)
and who is told. Then the change is recorded like any other: compare-and-set, an audit row,
the notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection

from alerts.case import Case
from alerts.case_store import CaseStore
from alerts.decisions import awaiting_review
from alerts.policy import AlertPolicy
from alerts.positive_list import violation_confirmed
from alerts.work_orders import current_work_order, move_work_order, new_work_order
from alerts.workflow import (
    REPORT_OUTCOMES,
    SYSTEM,
    VERIFY_OUTCOMES,
    WORK_ORDER_KINDS,
    Actor,
    WorkflowError,
    permitted,
)

NOTE_REQUIRED: Final = frozenset({"explain", "comment", "escalate"})


@dataclass(frozen=True)
class Request:
    """What the person gave with the action (what each action needs of it is its own)."""

    note: str = ""
    outcome: str | None = None
    brigade: str | None = None
    kind: str | None = None
    due_at: datetime | None = None
    case_number: str | None = None
    refs: Mapping[str, Any] | None = None
    expected_version: int | None = None  # the version the person saw: a conflict otherwise


@dataclass
class _Act:
    """An action being taken, and the change its handler makes of it."""

    conn: Connection
    store: CaseStore
    policy: AlertPolicy
    now: datetime
    case: Case
    actor: Actor
    request: Request
    target: str | None  # the state the workflow moves the case to (None: it stays)
    refs: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    event: str = "case.changed"
    audience: tuple[str, ...] = ()
    recorded: Case | None = None  # set by a handler that recorded its change itself


def take_action(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    case_id: int,
    action: str,
    actor: Actor,
    request: Request,
) -> Case:
    """One person's action on a case; WorkflowError (with a stable code) when refused."""
    case = store.get(conn, case_id)
    if request.expected_version is not None and request.expected_version != case.version:
        raise WorkflowError("conflict", f"case {case_id} changed meanwhile; reload it")
    t = permitted(case, action, actor)
    refs = dict(request.refs or {})
    if action in NOTE_REQUIRED and not request.note.strip():
        raise WorkflowError("note_required", f"{action} needs a note")
    a = _Act(conn, store, policy, now, case, actor, request, t.target, refs)
    HANDLERS[action](a)
    if a.recorded is not None:
        return a.recorded
    if a.target is not None:
        a.values["state"] = a.target
    changed = store.cas(conn, case, now, a.values)
    event_id = store.audit(conn, changed, actor, action, case.state, now, request.note, a.refs)
    store.notify(conn, changed, a.event, event_id, a.audience, now, request.note)
    if action == "close":  # the active 回头看, on a date (alerts.rechecks)
        from alerts.rechecks import schedule  # noqa: PLC0415 - it builds on the case store

        schedule(conn, store, policy, now, changed, "closed")
        return store.get(conn, changed.id)
    return changed


def _feedback_due(a: _Act) -> datetime:
    return a.policy.calendar.add_working_days(a.now, a.policy.feedback_working_days)


def _state_only(a: _Act) -> None:
    """The action changes nothing but the state the workflow moves the case to (if any)."""


def _verify(a: _Act) -> None:
    outcome = a.request.outcome
    if outcome not in VERIFY_OUTCOMES:
        raise WorkflowError(
            "bad_outcome", f"verify outcome must be one of {', '.join(VERIFY_OUTCOMES)}"
        )
    if outcome == "false_positive":
        if not a.request.note.strip():
            raise WorkflowError("note_required", "a false positive needs its reason")
        a.target = "closed"
        a.values |= {"disposition": "false_positive", "open_key": None, "closed_at": a.now}
    a.refs["outcome"] = outcome


def _dispatch(a: _Act) -> None:
    case = a.case
    brigade = a.request.brigade or case.brigade
    if not brigade:
        raise WorkflowError("brigade_required", "name the brigade that takes the work order")
    default_kind = "non_site_check" if case.positive_list and case.tier != "alarm" else "on_site"
    kind = a.request.kind or default_kind
    if kind not in WORK_ORDER_KINDS:
        raise WorkflowError(
            "bad_kind", f"work order kind must be one of {', '.join(WORK_ORDER_KINDS)}"
        )
    if kind == "on_site" and default_kind == "non_site_check":
        raise WorkflowError(
            "positive_list",
            "正面清单 enterprise: a non-site check first; on-site only after it fails or at "
            "alarm tier",
        )
    due = a.request.due_at or _feedback_due(a)
    order_id = new_work_order(a.conn, case.id, brigade, kind, a.actor.name, due, a.now)
    a.refs |= {"work_order": order_id, "brigade": brigade, "kind": kind, "due": due.isoformat()}
    # The brigade handles it now: its officer takes it (confirms receipt) by acknowledging.
    a.values |= {"brigade": brigade, "feedback_due": due, "overdue": None, "assignee": None}
    a.event, a.audience = "case.dispatched", ("brigade", "enterprise")


def _arrive(a: _Act) -> None:
    move_work_order(a.conn, a.case.id, "on_site")


def _report(a: _Act) -> None:
    outcome, case_number = a.request.outcome, a.request.case_number
    if outcome not in REPORT_OUTCOMES:
        raise WorkflowError(
            "bad_outcome", f"report outcome must be one of {', '.join(REPORT_OUTCOMES)}"
        )
    order = current_work_order(a.conn, a.case.id)
    assert order is not None  # dispatched cases have one
    if outcome == "check_failed" and order["kind"] != "non_site_check":
        raise WorkflowError("bad_outcome", "check_failed reports a non-site check")
    if outcome == "violation_confirmed" and not case_number:
        raise WorkflowError("case_number_required", "a confirmed violation needs its case number")
    move_work_order(
        a.conn, a.case.id, "reported", outcome=outcome, case_number=case_number, reported_at=a.now
    )
    a.refs |= {"work_order": order["id"], "outcome": outcome}
    if case_number:
        a.refs["case_number"] = case_number
    if outcome == "check_failed":
        a.recorded = _on_site_after_failed_check(a, order["brigade"])
        return
    a.values |= {"disposition": outcome, "case_number": case_number}
    a.audience = ("supervisors",)
    if outcome == "violation_confirmed":
        info = a.policy.enterprise(a.case.enterprise_id)
        what = f"案件 #{a.case.id} 违法事实成立（{case_number}）"
        violation_confirmed(a.conn, a.case.enterprise_id, info.positive_list, what, a.now)


def _on_site_after_failed_check(a: _Act, brigade: str) -> Case:
    """The non-site check failed: the report, then at once an on-site work order to the same
    brigade, at alarm tier (the system's step, told to the brigade and the supervisors)."""
    conn, store, now, case = a.conn, a.store, a.now, a.case
    reported = store.cas(conn, case, now, {"state": "reported"})
    store.audit(conn, reported, a.actor, "report", case.state, now, a.request.note, a.refs)
    due = _feedback_due(a)
    order_id = new_work_order(conn, reported.id, brigade, "on_site", SYSTEM.name, due, now)
    escalated = store.cas(
        conn,
        reported,
        now,
        {
            "state": "dispatched",
            "tier": "alarm",
            "escalation": "非现场核查未通过，转现场检查",
            "feedback_due": due,
            "overdue": None,
        },
    )
    event = store.audit(
        conn,
        escalated,
        SYSTEM,
        "escalate",
        "reported",
        now,
        "非现场核查未通过：转现场派单",
        {"work_order": order_id, "kind": "on_site", "due": due.isoformat()},
    )
    store.notify(conn, escalated, "case.dispatched", event, ("brigade", "supervisors"), now)
    return escalated


def _close(a: _Act) -> None:
    if awaiting_review(a.conn, a.case.id):
        raise WorkflowError(
            "decision_pending", "a decision on this case awaits legal review (法制审核)"
        )
    a.values |= {
        "open_key": None,
        "closed_at": a.now,
        "recheck_until": a.now + timedelta(days=a.policy.recheck_days),
        "disposition": a.case.disposition or "closed",
    }
    move_work_order(a.conn, a.case.id, "closed")


def _escalate(a: _Act) -> None:
    a.values |= {"tier": "alarm", "escalation": a.request.note}
    a.event, a.audience = "case.escalated", ("supervisors",)


def _remind(a: _Act) -> None:
    due = a.now + timedelta(hours=a.policy.explain_hours)
    a.values["explain_due"] = due
    a.refs["due"] = due.isoformat()  # kept on the trail: a recurrence clears the case's
    a.audience = ("enterprise",)


def _acknowledge(a: _Act) -> None:
    a.values["assignee"] = a.refs["assignee"] = a.actor.name
    if a.case.assignee:
        a.refs["from"] = a.case.assignee  # taken over from someone


# Every action of the workflow (TRANSITIONS), each with its handler.
HANDLERS: Final[dict[str, Callable[[_Act], None]]] = {
    "remind": _remind,
    "explain": _state_only,
    "verify": _verify,
    "dispatch": _dispatch,
    "arrive": _arrive,
    "report": _report,
    "close": _close,
    "comment": _state_only,
    "escalate": _escalate,
    "acknowledge": _acknowledge,
    "resolve": _state_only,
    "reopen": _state_only,
}
