"""Active 回头看: a re-check scheduled after a case is closed (办结) or its rectification struck
off (销号), on a date, by whom, how: "适时组织开展问题整改'回头看'，对各类环境问题整改实效进行
反复核查".

A re-check off site is decided by the clock from the monitoring data of its window (from the
closing to its date): it passes when the case's rule did not fire again for the source and
the source sent valid hours; it fails when the rule fired again; with no valid data it cannot
pass and is handed to the brigade to re-check on site. A re-check on site is decided by the
brigade's officer (or the centre, a supervisor). A failed re-check opens the case again (a
recurrence at alarm tier), unless its problem already has an open case: the failure then names
it. The passive 回头看 stays as it was: a rule firing again within ``recheck_days`` of closing
reopens the case as the finding arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select, update

from alerts.case import Case, record_json
from alerts.case_store import CaseStore, key_of, recurrence_values
from alerts.policy import AlertPolicy
from alerts.schema import cases, rechecks
from alerts.workflow import HIDDEN_FROM_ENTERPRISE, SYSTEM, Actor, WorkflowError
from ingest.china_time import stored_utc, stored_utc_or_none
from rules.store import findings, hour_values

STATES: Final = {"scheduled": "待复查", "passed": "复查通过", "failed": "复查未通过"}
METHODS: Final = {"off_site": "非现场（数据）", "on_site": "现场"}
REASONS: Final = {"closed": "办结", "rectification_closed": "整改销号"}
DECIDERS: Final = frozenset({"monitor", "supervisor", "enforcer"})


@dataclass(frozen=True)
class Recheck:
    id: int
    case_id: int
    reason: str
    method: str
    brigade: str | None
    scheduled_at: datetime
    due_at: datetime
    state: str
    decided_at: datetime | None
    decided_by: str | None
    note: str

    def to_json(self) -> dict[str, Any]:
        out = record_json(self)
        out["state_name"] = STATES.get(self.state, self.state)
        out["method_name"] = METHODS.get(self.method, self.method)
        out["reason_name"] = REASONS.get(self.reason, self.reason)
        return out


def recheck_of(m: Any) -> Recheck:
    return Recheck(
        id=int(m["id"]),
        case_id=int(m["case_id"]),
        reason=m["reason"],
        method=m["method"],
        brigade=m["brigade"],
        scheduled_at=stored_utc(m["scheduled_at"]),
        due_at=stored_utc(m["due_at"]),
        state=m["state"],
        decided_at=stored_utc_or_none(m["decided_at"]),
        decided_by=m["decided_by"],
        note=m["note"],
    )


def case_rechecks(conn: Connection, case_id: int) -> list[Recheck]:
    rows = conn.execute(
        select(rechecks).where(rechecks.c.case_id == case_id).order_by(rechecks.c.id)
    )
    return [recheck_of(r._mapping) for r in rows]


def schedule(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    case: Case,
    reason: str,
) -> Recheck:
    """A re-check of ``case`` ``recheck_days`` from now: off site from the data, on site for a
    case a clue opened (its problem has no data of its own); written on the case's trail."""
    method = "on_site" if case.rule in HIDDEN_FROM_ENTERPRISE else policy.recheck_method
    due = now + timedelta(days=policy.recheck_days)
    values = {
        "case_id": case.id,
        "reason": reason,
        "method": method,
        "brigade": case.brigade,
        "scheduled_at": now,
        "due_at": due,
        "state": "scheduled",
        "note": "",
    }
    rid = int(conn.execute(insert(rechecks), values).inserted_primary_key[0])  # type: ignore[index]
    changed = store.cas(conn, case, now, {})
    text = f"安排回头看：{due.date().isoformat()}前{METHODS[method]}复查（{REASONS[reason]}后）"
    store.audit(
        conn, changed, SYSTEM, "recheck_scheduled", case.state, now, text,
        {"recheck": rid, "due": due.isoformat(), "method": method},
    )  # fmt: skip
    return recheck_of(values | {"id": rid, "decided_at": None, "decided_by": None})


PLANNERS: Final = frozenset({"monitor", "supervisor"})


def reschedule(
    conn: Connection,
    store: CaseStore,
    now: datetime,
    recheck_id: int,
    actor: Actor,
    *,
    due_at: datetime | None = None,
    method: str | None = None,
    brigade: str | None = None,
) -> Recheck:
    """Set a scheduled re-check's date, how it is made and which brigade makes it (the
    centre, a supervisor); written on the case's trail. WorkflowError when refused."""
    if actor.role not in PLANNERS:
        raise WorkflowError("role_not_allowed", f"the {actor.role} role may not plan re-checks")
    row = conn.execute(select(rechecks).where(rechecks.c.id == recheck_id)).first()
    if row is None:
        raise WorkflowError("not_found", f"no re-check {recheck_id}")
    r = recheck_of(row._mapping)
    if r.state != "scheduled":
        raise WorkflowError("invalid_transition", f"the re-check was decided: {STATES[r.state]}")
    if due_at is not None and due_at <= now:
        raise WorkflowError("bad_date", "a re-check's date is in the future")
    if method is not None and method not in METHODS:
        raise WorkflowError("bad_method", f"a re-check is made {' or '.join(METHODS)}")
    changes = {
        k: v
        for k, v in (("due_at", due_at), ("method", method), ("brigade", brigade))
        if v is not None
    }
    if not changes:
        raise WorkflowError("nothing_changed", "give a date, a method or a brigade")
    _set(conn, r.id, **changes)
    case = store.get(conn, r.case_id)
    due = (due_at or r.due_at).date().isoformat()
    text = f"调整回头看：{due}前{METHODS[method or r.method]}复查" + (
        f"，由{brigade}执行" if brigade else ""
    )
    changed = store.cas(conn, case, now, {})
    store.audit(
        conn, changed, actor, "recheck_scheduled", case.state, now, text,
        {"recheck": r.id, **{k: str(v) for k, v in changes.items()}},
    )  # fmt: skip
    row = conn.execute(select(rechecks).where(rechecks.c.id == recheck_id)).first()
    assert row is not None
    return recheck_of(row._mapping)


def decide_due(
    conn: Connection, store: CaseStore, now: datetime, enterprises: frozenset[str] | None = None
) -> list[int]:
    """Decide the off-site re-checks whose date has come, from the data; the cases' ids."""
    q = (
        select(rechecks)
        .join(cases, cases.c.id == rechecks.c.case_id)
        .where(
            rechecks.c.state == "scheduled",
            rechecks.c.method == "off_site",
            rechecks.c.due_at <= now,
        )
    )
    if enterprises is not None:
        q = q.where(cases.c.enterprise_id.in_(sorted(enterprises)))
    touched = []
    for row in conn.execute(q).all():
        r = recheck_of(row._mapping)
        case = store.get(conn, r.case_id)
        outcome, why = _from_data(conn, case, r)
        if outcome is None:  # no data: the brigade re-checks on site
            _set(conn, r.id, method="on_site", note=why)
            changed = store.cas(conn, case, now, {})
            event = store.audit(
                conn, changed, SYSTEM, "recheck_on_site", case.state, now, why, {"recheck": r.id}
            )
            store.notify(conn, changed, "case.changed", event, ("brigade", "supervisors"), now, why)
        else:
            _decide(conn, store, now, case, r, outcome, why, SYSTEM)
        touched.append(case.id)
    return touched


def decide(
    conn: Connection,
    store: CaseStore,
    now: datetime,
    recheck_id: int,
    actor: Actor,
    outcome: str,
    note: str,
) -> Recheck:
    """A person's decision of a re-check (on site, or before its date); WorkflowError when
    refused."""
    row = conn.execute(select(rechecks).where(rechecks.c.id == recheck_id)).first()
    if row is None:
        raise WorkflowError("not_found", f"no re-check {recheck_id}")
    r = recheck_of(row._mapping)
    case = store.get(conn, r.case_id)
    if actor.role not in DECIDERS:
        raise WorkflowError("role_not_allowed", f"the {actor.role} role may not decide a re-check")
    if actor.role == "enforcer" and r.brigade != actor.brigade:
        raise WorkflowError("out_of_scope", f"the re-check is the brigade {r.brigade}'s")
    if r.state != "scheduled":
        raise WorkflowError("invalid_transition", f"the re-check was decided: {STATES[r.state]}")
    if outcome not in ("passed", "failed"):
        raise WorkflowError("bad_outcome", "a re-check passed or failed")
    if not note.strip():
        raise WorkflowError("note_required", "say what the re-check found")
    _decide(conn, store, now, case, r, outcome, note.strip(), actor)
    row = conn.execute(select(rechecks).where(rechecks.c.id == recheck_id)).first()
    assert row is not None
    return recheck_of(row._mapping)


def _decide(
    conn: Connection,
    store: CaseStore,
    now: datetime,
    case: Case,
    r: Recheck,
    outcome: str,
    why: str,
    actor: Actor,
) -> None:
    _set(conn, r.id, state=outcome, decided_at=now, decided_by=actor.name, note=why)
    text = f"回头看{'通过' if outcome == 'passed' else '未通过'}：{why}"
    refs: dict[str, Any] = {"recheck": r.id, "outcome": outcome}
    if outcome == "passed" or case.state not in ("closed",):
        changed = store.cas(conn, case, now, {})  # still open (reopened by a finding): noted
        event = store.audit(conn, changed, actor, "recheck", case.state, now, text, refs)
        store.notify(conn, changed, "case.changed", event, ("supervisors",), now, text)
        return
    other = store.open_case(conn, key_of(case))
    if other is not None:  # the problem has an open case already: the failure names it
        refs["open_case"] = other.id
        changed = store.cas(conn, case, now, {})
        event = store.audit(conn, changed, actor, "recheck", case.state, now, text, refs)
        store.notify(conn, changed, "case.changed", event, ("supervisors",), now, text)
        return
    reopened = store.cas(conn, case, now, recurrence_values(case, "回头看复查未通过"))
    event = store.audit(conn, reopened, actor, "reopen", case.state, now, text, refs)
    store.notify(conn, reopened, "case.reopened", event, ("supervisors", "brigade"), now, text)


def _from_data(conn: Connection, case: Case, r: Recheck) -> tuple[str | None, str]:
    f = findings.c
    fired = conn.execute(
        select(func.count()).where(
            f.enterprise_id == case.enterprise_id,
            f.source_id == case.source_id,
            f.rule == case.rule,
            f.state == "fire",
            f.window_end > r.scheduled_at,
            f.window_start < r.due_at,
        )
    ).scalar_one()
    if fired:
        return "failed", f"复查期内规则 {case.rule} 又判定 {fired} 次"
    hv = hour_values.c
    valid = conn.execute(
        select(func.count()).where(
            hv.enterprise_id == case.enterprise_id,
            hv.outlet_id == case.source_id,
            hv.start >= int(r.scheduled_at.timestamp()),
            hv.start < int(r.due_at.timestamp()),
            hv.valid.is_(True),
        )
    ).scalar_one()
    if not valid:
        return None, "复查期内无有效监测数据，无法非现场判定，转执法大队现场复查"
    return "passed", f"复查期内规则 {case.rule} 未再判定，有效小时 {valid} 个"


def _set(conn: Connection, rid: int, **values: Any) -> None:
    conn.execute(update(rechecks).where(rechecks.c.id == rid).values(**values))


__all__ = [
    "METHODS",
    "STATES",
    "Recheck",
    "case_rechecks",
    "decide",
    "decide_due",
    "reschedule",
    "schedule",
]
