"""Decisions (处理决定) recorded on a case, and the legal review (法制审核) of the major ones.

A case's outcome is a decision of a type: 不予处罚 (with its legal ground: minor, corrected in
time, or self-reported), 责令改正, a fine (with its amount in yuan), 查封扣押, a referral to the
police for administrative detention or as a suspected crime (移送公安), or a transfer to
another department (移送其他部门, naming it); with the decision document's number and date. A
major decision (a fine at or above ``major_fine_yuan``, a seizure, a referral to the police)
takes effect only once a legal reviewer (role ``legal``) approves it; a rejected one is
recorded with the reviewer's reasons and a new decision may be proposed. A case with a decision
awaiting review is not closed (``alerts.actions``). Every step is on the case's trail
(执法全过程记录: 启动、调查取证、审核决定、送达执行).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update

from alerts.case import Case, record_json
from alerts.case_store import CaseStore
from alerts.policy import AlertPolicy
from alerts.positive_list import violation_confirmed
from alerts.schema import decisions
from alerts.workflow import Actor, WorkflowError
from ingest.china_time import stored_utc, stored_utc_or_none

TYPES: Final = {
    "no_penalty": "不予处罚",
    "order_correction": "责令改正",
    "fine": "罚款",
    "seizure": "查封扣押",
    "police_detention": "移送公安（行政拘留）",
    "police_crime": "移送公安（涉嫌犯罪）",
    "transfer": "移送其他部门",
}
STATES: Final = {
    "pending_review": "待法制审核",
    "effective": "已生效",
    "rejected": "审核未通过",
}
ALWAYS_MAJOR: Final = frozenset({"seizure", "police_detention", "police_crime"})
PROPOSERS: Final = frozenset({"supervisor"})
REVIEWERS: Final = frozenset({"legal"})


@dataclass(frozen=True)
class Decision:
    id: int
    case_id: int
    type: str
    legal_ground: str
    amount_yuan: float | None
    department: str
    document_number: str
    decided_on: date | None
    note: str
    major: bool
    state: str
    proposed_by: str
    proposed_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str

    def to_json(self) -> dict[str, Any]:
        out = record_json(self)
        out["type_name"] = TYPES.get(self.type, self.type)
        out["state_name"] = STATES.get(self.state, self.state)
        return out


def decision_of(m: Any) -> Decision:
    return Decision(
        id=int(m["id"]),
        case_id=int(m["case_id"]),
        type=m["type"],
        legal_ground=m["legal_ground"],
        amount_yuan=m["amount_yuan"],
        department=m["department"],
        document_number=m["document_number"],
        decided_on=m["decided_on"],
        note=m["note"],
        major=bool(m["major"]),
        state=m["state"],
        proposed_by=m["proposed_by"],
        proposed_at=stored_utc(m["proposed_at"]),
        reviewed_by=m["reviewed_by"],
        reviewed_at=stored_utc_or_none(m["reviewed_at"]),
        review_note=m["review_note"],
    )


def case_decisions(conn: Connection, case_id: int) -> list[Decision]:
    rows = conn.execute(
        select(decisions).where(decisions.c.case_id == case_id).order_by(decisions.c.id)
    )
    return [decision_of(r._mapping) for r in rows]


def pending_review(conn: Connection, limit: int = 500) -> list[Decision]:
    """The decisions awaiting a legal review, oldest first (the reviewer's queue)."""
    rows = conn.execute(
        select(decisions)
        .where(decisions.c.state == "pending_review")
        .order_by(decisions.c.id)
        .limit(limit)
    )
    return [decision_of(r._mapping) for r in rows]


def is_major(policy: AlertPolicy, kind: str, amount: float | None) -> bool:
    if kind in ALWAYS_MAJOR:
        return True
    return kind == "fine" and amount is not None and amount >= policy.major_fine_yuan


def propose(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    case_id: int,
    actor: Actor,
    *,
    kind: str,
    legal_ground: str = "",
    amount_yuan: float | None = None,
    department: str = "",
    document_number: str = "",
    decided_on: date | None = None,
    note: str = "",
) -> Decision:
    """Record a decision on the case: in effect at once, or awaiting legal review when it is
    major; WorkflowError (with a stable code) when refused."""
    if actor.role not in PROPOSERS:
        raise WorkflowError("role_not_allowed", f"the {actor.role} role may not record decisions")
    if kind not in TYPES:
        raise WorkflowError("bad_type", f"a decision's type is one of {', '.join(TYPES)}")
    if kind == "no_penalty" and not legal_ground.strip():
        raise WorkflowError("ground_required", "不予处罚 needs its legal ground")
    if kind == "fine" and (amount_yuan is None or amount_yuan <= 0):
        raise WorkflowError("amount_required", "a fine needs its amount in yuan")
    if kind != "fine" and amount_yuan is not None:
        raise WorkflowError("bad_amount", "only a fine has an amount")
    if kind == "transfer" and not department.strip():
        raise WorkflowError("department_required", "name the department it is transferred to")
    if not document_number.strip():
        raise WorkflowError("document_required", "the decision document's number")
    case = store.get(conn, case_id)
    if any(d.state == "pending_review" for d in case_decisions(conn, case_id)):
        raise WorkflowError("decision_pending", "a decision on this case awaits legal review")
    major = is_major(policy, kind, amount_yuan)
    values = {
        "case_id": case_id,
        "type": kind,
        "legal_ground": legal_ground.strip(),
        "amount_yuan": amount_yuan,
        "department": department.strip(),
        "document_number": document_number.strip(),
        "decided_on": decided_on,
        "note": note.strip(),
        "major": major,
        "state": "pending_review" if major else "effective",
        "proposed_by": actor.name,
        "proposed_at": now,
        "review_note": "",
    }
    did = int(conn.execute(insert(decisions), values).inserted_primary_key[0])  # type: ignore[index]
    what = TYPES[kind] + (f" {amount_yuan:g} 元" if amount_yuan is not None else "")
    text = f"处理决定：{what}（{document_number.strip()}）"
    if legal_ground.strip():
        text += f"，依据：{legal_ground.strip()}"
    text += "，待法制审核" if major else "，已生效"
    refs = {"decision": did, "type": kind, "major": major}
    changed = store.cas(conn, case, now, {})
    event = store.audit(conn, changed, actor, "decide", case.state, now, text, refs)
    store.notify(conn, changed, "case.changed", event, ("supervisors",), now, text)
    if not major:
        _penalty_in_effect(conn, policy, case, kind, document_number, now)
    return _get(conn, did)


def _penalty_in_effect(
    conn: Connection, policy: AlertPolicy, case: Case, kind: str, document: str, now: datetime
) -> None:
    """A penalty in effect is a confirmed violation: a member's exit is proposed."""
    if kind == "no_penalty":
        return
    configured = policy.enterprise(case.enterprise_id).positive_list
    what = f"案件 #{case.id} {TYPES[kind]}（{document.strip()}）"
    violation_confirmed(conn, case.enterprise_id, configured, what, now)


def review(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    decision_id: int,
    actor: Actor,
    *,
    approve: bool,
    note: str,
) -> Decision:
    """A legal reviewer's approval (the decision takes effect) or rejection (with reasons)."""
    if actor.role not in REVIEWERS:
        raise WorkflowError("role_not_allowed", f"the {actor.role} role may not review decisions")
    d = _get(conn, decision_id)
    if d.state != "pending_review":
        raise WorkflowError("invalid_transition", f"the decision is {STATES[d.state]}")
    if not approve and not note.strip():
        raise WorkflowError("note_required", "a rejection gives its reasons")
    state = "effective" if approve else "rejected"
    conn.execute(
        update(decisions)
        .where(decisions.c.id == decision_id)
        .values(state=state, reviewed_by=actor.name, reviewed_at=now, review_note=note.strip())
    )
    case = store.get(conn, d.case_id)
    text = f"法制审核{'通过' if approve else '未通过'}：{TYPES[d.type]}（{d.document_number}）"
    if note.strip():
        text += f"。{note.strip()}"
    changed = store.cas(conn, case, now, {})
    event = store.audit(
        conn, changed, actor, "legal_review", case.state, now, text,
        {"decision": d.id, "approved": approve},
    )  # fmt: skip
    store.notify(conn, changed, "case.changed", event, ("supervisors",), now, text)
    if approve:
        _penalty_in_effect(conn, policy, case, d.type, d.document_number, now)
    return _get(conn, decision_id)


def _get(conn: Connection, decision_id: int) -> Decision:
    row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
    if row is None:
        raise WorkflowError("not_found", f"no decision {decision_id}")
    return decision_of(row._mapping)


def awaiting_review(conn: Connection, case_id: int) -> bool:
    return any(d.state == "pending_review" for d in case_decisions(conn, case_id))


__all__ = [
    "STATES",
    "TYPES",
    "Decision",
    "awaiting_review",
    "case_decisions",
    "decision_of",
    "is_major",
    "pending_review",
    "propose",
    "review",
]
