"""The positive list (正面清单), managed: who is on it, the changes proposed and decided.

Membership starts as the configuration says (``[[enterprises]] positive_list``); from then on
it is what the approved changes made it. A change is proposed by the system (the daily check of
the entry criteria, ``nonsite.positive_list_review``; at once, an exit, when a member's
violation is confirmed) or by a supervisor, and takes effect only when a supervisor approves
it ("动态调整"). Every change is kept with its reason, who proposed and who decided it, and
when: the list's own audit trail, and what is published. A member's new cases follow the
off-site-first path (``cases.positive_list``: a non-site check before any on-site order).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import Connection, RowMapping, insert, select, update

from alerts.schema import positive_list_changes
from alerts.workflow import SYSTEM, Actor, WorkflowError

Change = Literal["enter", "exit"]
CHANGE_NAMES: Final = {"enter": "纳入正面清单", "exit": "移出正面清单"}
STATE_NAMES: Final = {"proposed": "待审批", "approved": "已批准", "rejected": "未批准"}
DECIDERS: Final = frozenset({"supervisor"})
PROPOSERS: Final = frozenset({"supervisor", "system"})


@dataclass(frozen=True, slots=True)
class ListChange:
    id: int
    enterprise_id: str
    change: Change
    reason: str
    criteria: Mapping[str, Any]  # what the check found (the system's proposals)
    proposed_by: str
    proposed_at: datetime
    state: str
    decided_by: str | None
    decided_at: datetime | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "enterprise_id": self.enterprise_id,
            "change": self.change,
            "change_name": CHANGE_NAMES[self.change],
            "reason": self.reason,
            "criteria": dict(self.criteria),
            "proposed_by": self.proposed_by,
            "proposed_at": self.proposed_at,
            "state": self.state,
            "state_name": STATE_NAMES[self.state],
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "note": self.note,
        }


def _change_of(row: RowMapping) -> ListChange:
    return ListChange(
        id=int(row["id"]),
        enterprise_id=row["enterprise_id"],
        change=row["change"],
        reason=row["reason"],
        criteria=json.loads(row["criteria"]),
        proposed_by=row["proposed_by"],
        proposed_at=row["proposed_at"],
        state=row["state"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        note=row["note"],
    )


def members(
    conn: Connection, configured: Mapping[str, bool], before: datetime | None = None
) -> dict[str, bool]:
    """Each enterprise's membership: its last approved change (decided ``before``, if given),
    else the configuration's."""
    out = dict(configured)
    query = (
        select(positive_list_changes.c.enterprise_id, positive_list_changes.c.change)
        .where(positive_list_changes.c.state == "approved")
        .order_by(positive_list_changes.c.decided_at, positive_list_changes.c.id)
    )
    if before is not None:
        query = query.where(positive_list_changes.c.decided_at < before)
    rows = conn.execute(query)
    for enterprise, change in rows:
        out[enterprise] = change == "enter"
    return out


def is_member(conn: Connection, enterprise_id: str, configured: bool) -> bool:
    row = conn.execute(
        select(positive_list_changes.c.change)
        .where(
            positive_list_changes.c.enterprise_id == enterprise_id,
            positive_list_changes.c.state == "approved",
        )
        .order_by(positive_list_changes.c.decided_at.desc(), positive_list_changes.c.id.desc())
        .limit(1)
    ).first()
    return configured if row is None else row[0] == "enter"


def pending(conn: Connection, enterprise_id: str | None = None) -> list[ListChange]:
    q = select(positive_list_changes).where(positive_list_changes.c.state == "proposed")
    if enterprise_id is not None:
        q = q.where(positive_list_changes.c.enterprise_id == enterprise_id)
    return [_change_of(r._mapping) for r in conn.execute(q.order_by(positive_list_changes.c.id))]


def changes(conn: Connection, limit: int = 500) -> list[ListChange]:
    """The list's changes, newest first (proposed, approved or not)."""
    q = select(positive_list_changes).order_by(positive_list_changes.c.id.desc()).limit(limit)
    return [_change_of(r._mapping) for r in conn.execute(q)]


def propose(
    conn: Connection,
    enterprise_id: str,
    change: Change,
    reason: str,
    actor: Actor,
    now: datetime,
    *,
    member: bool,
    criteria: Mapping[str, Any] | None = None,
) -> ListChange | None:
    """Propose a change (None when it would change nothing: an entry for a member, an exit
    for one not on the list, or the same change already waiting for its decision)."""
    if actor.role not in PROPOSERS:
        raise WorkflowError("role_not_allowed", f"the {actor.role} role may not propose")
    if change not in CHANGE_NAMES:
        raise WorkflowError("bad_change", "a change is enter or exit")
    if not reason.strip():
        raise WorkflowError("note_required", "a proposal states its reason")
    if member == (change == "enter"):
        return None
    waiting = [p for p in pending(conn, enterprise_id) if p.change == change]
    if waiting:
        return None
    new_id = conn.execute(
        insert(positive_list_changes).values(
            enterprise_id=enterprise_id,
            change=change,
            reason=reason.strip(),
            criteria=json.dumps(dict(criteria or {}), ensure_ascii=False, sort_keys=True),
            proposed_by=actor.name,
            proposed_at=now,
            state="proposed",
            note="",
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    return get(conn, int(new_id))


def get(conn: Connection, change_id: int) -> ListChange:
    row = conn.execute(
        select(positive_list_changes).where(positive_list_changes.c.id == change_id)
    ).first()
    if row is None:
        raise WorkflowError("not_found", f"no proposal {change_id}")
    return _change_of(row._mapping)


def decide(
    conn: Connection, change_id: int, actor: Actor, approve: bool, note: str, now: datetime
) -> ListChange:
    """A supervisor's decision on a proposal; approved, it takes effect now. A rejection
    states why."""
    if actor.role not in DECIDERS:
        raise WorkflowError("role_not_allowed", f"the {actor.role} role may not decide it")
    proposal = get(conn, change_id)
    if proposal.state != "proposed":
        raise WorkflowError("invalid_transition", f"proposal {change_id} is decided already")
    if not approve and not note.strip():
        raise WorkflowError("note_required", "a rejection states why")
    done = conn.execute(
        update(positive_list_changes)
        .where(
            positive_list_changes.c.id == change_id,
            positive_list_changes.c.state == "proposed",  # a concurrent decision wins once
        )
        .values(
            state="approved" if approve else "rejected",
            decided_by=actor.name,
            decided_at=now,
            note=note.strip(),
        )
    )
    if done.rowcount != 1:
        raise WorkflowError("conflict", f"proposal {change_id} was decided meanwhile")
    return get(conn, change_id)


def violation_confirmed(
    conn: Connection, enterprise_id: str, configured: bool, what: str, now: datetime
) -> ListChange | None:
    """A member's violation confirmed (a brigade's 违法事实成立, a penalty in effect): its exit
    is proposed at once, for a supervisor to decide."""
    return propose(
        conn,
        enterprise_id,
        "exit",
        f"违法事实确认：{what}",
        SYSTEM,
        now,
        member=is_member(conn, enterprise_id, configured),
        criteria={"violation": what},
    )


__all__ = [
    "CHANGE_NAMES",
    "STATE_NAMES",
    "ListChange",
    "changes",
    "decide",
    "get",
    "is_member",
    "members",
    "pending",
    "propose",
    "violation_confirmed",
]
