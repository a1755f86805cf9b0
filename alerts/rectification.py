"""Rectification (整改) to 销号: what a case orders the enterprise to put right, tracked to the end.

  ordered ─report (enterprise)─▶ reported ─verify─▶ verified ─close (supervisor)─▶ closed (销号)
     ▲                                        │ failed: a new round, a new deadline
     └────────────────────────────────────────┘
  past its deadline while ordered: escalated once (the case to alarm, the supervisors and
  the enterprise told)

The bureaus track it so ("1540件信访已完成整改1437件，提交市级核查1307件，完成市级核查1179件，销号
1107件"). A rectification is ordered on a case (by a supervisor, or by the brigade's officer on
site) with a requirement and a deadline in working days; the enterprise reports it done (or
the brigade records the report for it), with its evidence attached to the case; the bureau
verifies it on site or off site from the data: off site, it passes when the case's rule has
not fired for the source in the last ``days`` days and the source sent valid hours in them
(no data is no proof). A failed verification orders a new round with a new deadline. After
销号 the case's active 回头看 is scheduled (``alerts.rechecks``). Each step is on the case's
audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select, update

from alerts.case import Case, record_json
from alerts.case_store import CaseStore
from alerts.policy import AlertPolicy
from alerts.schema import cases, rectifications
from alerts.workflow import HIDDEN_FROM_ENTERPRISE, SYSTEM, Actor, WorkflowError
from ingest.china_time import stored_utc, stored_utc_or_none
from rules.store import findings, hour_values

STATES: Final = {
    "ordered": "整改中",
    "reported": "已报整改完成",
    "verified": "核查通过",
    "closed": "已销号",
}
STEPS: Final = {
    "order": "责令整改",
    "report": "整改完成报告",
    "verify": "整改核查",
    "close": "销号",
}
VERIFY_METHODS: Final = ("on_site", "off_site")
# Who takes each step (the enterprise its own case's report; the brigade's officer where its
# brigade takes the case).
ROLES: Final = {
    "order": frozenset({"supervisor", "enforcer"}),
    "report": frozenset({"enterprise", "enforcer"}),
    "verify": frozenset({"monitor", "supervisor", "enforcer"}),
    "close": frozenset({"supervisor"}),
}


@dataclass(frozen=True)
class Rectification:
    id: int
    case_id: int
    round: int
    state: str
    requirement: str
    ordered_by: str
    ordered_at: datetime
    due_at: datetime
    overdue_at: datetime | None
    reported_at: datetime | None
    report: str
    verified_at: datetime | None
    verified_by: str | None
    method: str | None
    outcome: str | None
    verify_note: str
    closed_at: datetime | None
    closed_by: str | None

    def to_json(self) -> dict[str, Any]:
        out = record_json(self)
        out["state_name"] = STATES.get(self.state, self.state)
        return out


def rectification_of(m: Any) -> Rectification:
    return Rectification(
        id=int(m["id"]),
        case_id=int(m["case_id"]),
        round=int(m["round"]),
        state=m["state"],
        requirement=m["requirement"],
        ordered_by=m["ordered_by"],
        ordered_at=stored_utc(m["ordered_at"]),
        due_at=stored_utc(m["due_at"]),
        overdue_at=stored_utc_or_none(m["overdue_at"]),
        reported_at=stored_utc_or_none(m["reported_at"]),
        report=m["report"],
        verified_at=stored_utc_or_none(m["verified_at"]),
        verified_by=m["verified_by"],
        method=m["method"],
        outcome=m["outcome"],
        verify_note=m["verify_note"],
        closed_at=stored_utc_or_none(m["closed_at"]),
        closed_by=m["closed_by"],
    )


def case_rectifications(conn: Connection, case_id: int) -> list[Rectification]:
    rows = conn.execute(
        select(rectifications)
        .where(rectifications.c.case_id == case_id)
        .order_by(rectifications.c.id)
    )
    return [rectification_of(r._mapping) for r in rows]


def current(conn: Connection, case_id: int) -> Rectification | None:
    found = case_rectifications(conn, case_id)
    return found[-1] if found else None


def _may(step: str, actor: Actor, case: Case) -> None:
    if actor.role not in ROLES[step]:
        allowed = ", ".join(sorted(ROLES[step]))
        raise WorkflowError(
            "role_not_allowed",
            f"the {actor.role} role may not {step} a rectification; allowed: {allowed}",
        )
    if actor.role == "enforcer" and case.brigade != actor.brigade:
        raise WorkflowError("out_of_scope", f"the case is assigned to brigade {case.brigade}")
    if actor.role == "enterprise" and (
        case.enterprise_id != actor.enterprise_id or case.rule in HIDDEN_FROM_ENTERPRISE
    ):
        raise WorkflowError("out_of_scope", "an enterprise acts only on its own cases")


def rectify(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    case_id: int,
    step: str,
    actor: Actor,
    *,
    note: str = "",
    requirement: str = "",
    working_days: int | None = None,
    method: str | None = None,
    outcome: str | None = None,
    days: int | None = None,
) -> Rectification:
    """One step of the case's rectification; WorkflowError (with a stable code) when refused."""
    if step not in STEPS:
        raise WorkflowError("unknown_step", f"a rectification's steps: {', '.join(STEPS)}")
    case = store.get(conn, case_id)
    _may(step, actor, case)
    now_r = current(conn, case_id)
    refs: dict[str, Any] = {}
    if step == "order":
        if case.state == "resolved" or case.disposition == "false_positive":
            raise WorkflowError(
                "invalid_transition", "nothing to rectify: the case found no violation"
            )
        if now_r is not None and now_r.state != "closed":
            raise WorkflowError("rectification_open", f"rectification {now_r.id} is under way")
        if not requirement.strip():
            raise WorkflowError("requirement_required", "say what is to be put right")
        n_days = working_days or policy.rectify_working_days
        if not 1 <= n_days <= 365:
            raise WorkflowError("bad_deadline", "a deadline of 1 to 365 working days")
        due = policy.calendar.add_working_days(now, n_days)
        rid = _insert(
            conn, case_id, 1 if now_r is None else now_r.round + 1, requirement, actor, now, due
        )
        refs = {"rectification": rid, "due": due.isoformat(), "working_days": n_days}
        text = f"责令整改（{n_days}个工作日内）：{requirement.strip()}"
        audience: tuple[str, ...] = ("enterprise", "supervisors")
    else:
        if now_r is None:
            raise WorkflowError("no_rectification", "no rectification was ordered on this case")
        rid = now_r.id
        refs = {"rectification": rid}
        if step == "report":
            if now_r.state != "ordered":
                raise _wrong_state(now_r, step)
            if not note.strip():
                raise WorkflowError("note_required", "say what was done")
            _set(conn, rid, state="reported", reported_at=now, report=note.strip())
            text = f"整改完成报告：{note.strip()}"
            audience = ("supervisors", "monitors")
        elif step == "verify":
            if now_r.state != "reported":
                raise _wrong_state(now_r, step)
            if method not in VERIFY_METHODS:
                raise WorkflowError("bad_method", "verify on_site or off_site")
            if method == "off_site":
                outcome, why = from_data(conn, case, now, days or policy.rectify_check_days)
                note = f"{why}。{note.strip()}" if note.strip() else why
            elif outcome not in ("passed", "failed"):
                raise WorkflowError("bad_outcome", "an on-site verification passed or failed")
            if outcome == "failed" and not note.strip():
                raise WorkflowError("note_required", "say what was not put right")
            _set(
                conn, rid, state="verified" if outcome == "passed" else "failed", verified_at=now,
                verified_by=actor.name, method=method, outcome=outcome, verify_note=note.strip(),
            )  # fmt: skip
            refs |= {"method": method, "outcome": outcome}
            where = "现场" if method == "on_site" else "非现场"
            verdict = "通过" if outcome == "passed" else "未通过"
            text = f"整改核查（{where}）：{verdict}。{note.strip()}".rstrip("。")
            audience = ("supervisors", "enterprise")
            if outcome == "failed":  # a new round, from now, as long as the first
                n_days = policy.rectify_working_days
                due = policy.calendar.add_working_days(now, n_days)
                new_id = _insert(conn, case_id, now_r.round + 1, now_r.requirement, actor, now, due)
                refs |= {"next": new_id, "due": due.isoformat()}
                text += f"；重新整改，期限 {n_days} 个工作日"
        else:  # close: 销号
            if now_r.state != "verified":
                raise _wrong_state(now_r, step)
            _set(conn, rid, state="closed", closed_at=now, closed_by=actor.name)
            text = "整改销号" + (f"：{note.strip()}" if note.strip() else "")
            audience = ("supervisors", "enterprise")
    changed = store.cas(conn, case, now, {})
    event = store.audit(conn, changed, actor, f"rectify_{step}", case.state, now, text, refs)
    store.notify(conn, changed, "case.changed", event, audience, now, text)
    if step == "close":
        from alerts.rechecks import schedule  # noqa: PLC0415 - a 回头看 follows 销号

        schedule(conn, store, policy, now, changed, "rectification_closed")
    return _get(conn, rid)


def _get(conn: Connection, rid: int) -> Rectification:
    row = conn.execute(select(rectifications).where(rectifications.c.id == rid)).first()
    assert row is not None
    return rectification_of(row._mapping)


def _wrong_state(r: Rectification, step: str) -> WorkflowError:
    return WorkflowError(
        "invalid_transition",
        f"cannot {step} a rectification that is {r.state} ({STATES.get(r.state, r.state)})",
    )


def _insert(
    conn: Connection,
    case_id: int,
    round_: int,
    requirement: str,
    actor: Actor,
    now: datetime,
    due: datetime,
) -> int:
    result = conn.execute(
        insert(rectifications),
        {
            "case_id": case_id,
            "round": round_,
            "state": "ordered",
            "requirement": requirement.strip(),
            "ordered_by": actor.name,
            "ordered_at": now,
            "due_at": due,
            "report": "",
            "verify_note": "",
        },
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _set(conn: Connection, rid: int, **values: Any) -> None:
    conn.execute(update(rectifications).where(rectifications.c.id == rid).values(**values))


def from_data(conn: Connection, case: Case, now: datetime, days: int) -> tuple[str, str]:
    """An off-site verification: passed when the case's rule has not fired for its source in
    the last ``days`` days and the source sent valid hours in them; (outcome, why)."""
    since = now - timedelta(days=days)
    f = findings.c
    fired = conn.execute(
        select(func.count()).where(
            f.enterprise_id == case.enterprise_id,
            f.source_id == case.source_id,
            f.rule == case.rule,
            f.state == "fire",
            f.window_end > since,
        )
    ).scalar_one()
    if fired:
        return "failed", f"近{days}天内规则 {case.rule} 又判定 {fired} 次"
    hv = hour_values.c
    valid = conn.execute(
        select(func.count()).where(
            hv.enterprise_id == case.enterprise_id,
            hv.outlet_id == case.source_id,
            hv.start >= int(since.timestamp()),
            hv.valid.is_(True),
        )
    ).scalar_one()
    if not valid:
        raise WorkflowError(
            "no_data",
            f"no valid hour of {case.source_id} in the last {days} days: the data cannot show "
            "it was put right (verify on site)",
        )
    return "passed", f"近{days}天内规则 {case.rule} 未再判定，有效小时 {valid} 个"


def flag_overdue_rectifications(
    conn: Connection, store: CaseStore, now: datetime, enterprises: frozenset[str] | None = None
) -> list[int]:
    """Rectifications past their deadline while still ordered: each escalated once (the case
    to alarm, the supervisors and the enterprise told); the cases' ids."""
    q = (
        select(rectifications.c.id, rectifications.c.case_id)
        .join(cases, cases.c.id == rectifications.c.case_id)
        .where(
            rectifications.c.state == "ordered",
            rectifications.c.due_at < now,
            rectifications.c.overdue_at.is_(None),
        )
    )
    if enterprises is not None:
        q = q.where(cases.c.enterprise_id.in_(sorted(enterprises)))
    touched = []
    for rid, case_id in conn.execute(q).all():
        _set(conn, rid, overdue_at=now)
        case = store.get(conn, case_id)
        changed = store.cas(conn, case, now, {"tier": "alarm", "escalation": "整改逾期未完成"})
        note = "整改逾期未完成，升级为报警"
        event = store.audit(
            conn, changed, SYSTEM, "rectify_overdue", case.state, now, note, {"rectification": rid}
        )
        store.notify(conn, changed, "case.overdue", event, ("supervisors", "enterprise"), now, note)
        touched.append(case_id)
    return touched


__all__ = [
    "STATES",
    "STEPS",
    "Rectification",
    "case_rectifications",
    "current",
    "flag_overdue_rectifications",
    "from_data",
    "rectify",
]
