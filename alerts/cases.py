"""Cases: one open case per (enterprise, source, rule), moved through the workflow.

``CaseBook.apply`` turns findings into cases in the caller's transaction (the pipeline stores
findings, cases and outbox rows with its checkpoint, so a finding is applied exactly once).
``CaseBook.act`` is a person's action; ``CaseBook.tick`` the clock's (deadlines). Every change
writes an audit row and queues its notifications in the same transaction. Changes are
compare-and-set on the case's version, so two people acting on one case at once cannot both
succeed: the second gets a ``conflict`` error and sees the new state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, select, update

from alerts.case import TIERS, Case, Evidence
from alerts.noise import (
    Silence,
    active_silences,
    inhibited,
    offline_sources,
    record_suppressed,
)
from alerts.notify import Notifier
from alerts.policy import AlertPolicy
from alerts.schema import case_events, cases, work_orders
from alerts.workflow import (
    BEFORE_DISPATCH,
    OPEN_STATES,
    REPORT_OUTCOMES,
    SYSTEM,
    VERIFY_OUTCOMES,
    WITH_BRIGADE,
    WORK_ORDER_KINDS,
    Actor,
    Transition,
    WorkflowError,
    check,
)
from ingest.china_time import stored_utc
from rules.findings import Finding


def open_key(enterprise_id: str, source_id: str, rule: str) -> str:
    return f"{enterprise_id}|{source_id}|{rule}"


# Statements built once: building and cache-keying a statement per finding costs more than
# running it (bench/alerts_store.py's profile).
_BY_ID = select(cases).where(cases.c.id == bindparam("id"))
_BY_KEY = select(cases).where(cases.c.open_key == bindparam("key"))
_OPEN_IN = select(cases).where(cases.c.open_key.in_(bindparam("keys", expanding=True)))
_LAST_CLOSED = (
    select(cases)
    .where(
        cases.c.enterprise_id == bindparam("enterprise"),
        cases.c.source_id == bindparam("source"),
        cases.c.rule == bindparam("rule"),
        cases.c.closed_at.is_not(None),  # closed or resolved (ix_cases_problem serves it)
    )
    .order_by(cases.c.id.desc())
    .limit(1)
)
_LATEST = (
    select(cases.c.id)
    .where(
        cases.c.enterprise_id == bindparam("enterprise"),
        cases.c.source_id == bindparam("source"),
        cases.c.rule == bindparam("rule"),
    )
    .order_by(cases.c.id.desc())
    .limit(1)
)
_UNEXPLAINED = (
    select(func.count())
    .select_from(cases)
    .where(
        cases.c.enterprise_id == bindparam("enterprise"),
        cases.c.source_id == bindparam("source"),
        cases.c.tier == "warning",
        cases.c.opened_at >= bindparam("since"),
        ~exists().where(case_events.c.case_id == cases.c.id, case_events.c.action == "explain"),
        cases.c.disposition.is_distinct_from("false_positive"),
    )
)
_AUDIT = insert(case_events)
_UPDATES: dict[tuple[str, ...], Any] = {}


def _update_statement(names: tuple[str, ...]) -> Any:
    statement = _UPDATES.get(names)
    if statement is None:
        statement = _UPDATES[names] = (
            update(cases)
            .where(cases.c.id == bindparam("_id"), cases.c.version == bindparam("_version"))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
    return statement


def permitted(case: Case, action: str, actor: Actor) -> Transition:
    """The transition ``actor`` may take on ``case`` now, or a WorkflowError saying why not:
    the workflow's table, the actor's scope, and what the case itself allows. The API offers
    a person exactly the actions this permits."""
    if actor.role == "enterprise" and actor.enterprise_id != case.enterprise_id:
        raise WorkflowError("out_of_scope", "an enterprise acts only on its own cases")
    if actor.role == "enforcer" and case.state in WITH_BRIGADE and actor.brigade != case.brigade:
        raise WorkflowError("out_of_scope", f"the case is assigned to brigade {case.brigade}")
    t = check(action, case.state, actor)
    if action == "dispatch" and case.state != "verified" and case.tier != "alarm":
        raise WorkflowError(
            "not_verified",
            "a warning is dispatched only after the monitoring centre verified it",
        )
    if action == "escalate" and case.tier == "alarm":
        raise WorkflowError("already_alarm", "the case is already at alarm tier")
    if action == "acknowledge":
        if case.assignee == actor.name:
            raise WorkflowError("already_assignee", f"{actor.name} already handles the case")
        if actor.role == "enforcer" and case.state not in WITH_BRIGADE:
            raise WorkflowError(
                "invalid_transition",
                "an enforcer takes a case once it is dispatched to its brigade",
            )
    return t


def _key_of(case: Case) -> str:
    return open_key(case.enterprise_id, case.source_id, case.rule)


def _at(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


@dataclass
class Applied:
    """What ``apply`` did, for metrics and tests."""

    opened: list[int] = field(default_factory=list)
    updated: int = 0
    resolved: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    suppressed: int = 0
    ignored: int = 0  # clears without an open case


class CaseBook:
    def __init__(
        self,
        policy: AlertPolicy,
        notifier: Notifier | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policy = policy
        self.notifier = notifier
        self.clock = clock
        # While ``apply`` runs: the open case of each key of the batch (None: none open).
        self._batch_open: dict[str, Case | None] | None = None

    # -- reading ----------------------------------------------------------------------------

    def get(self, conn: Connection, case_id: int) -> Case:
        row = conn.execute(_BY_ID, {"id": case_id}).first()
        if row is None:
            raise WorkflowError("not_found", f"no case {case_id}")
        return Case.from_row(row)

    def open_case(self, conn: Connection, key: str) -> Case | None:
        if self._batch_open is not None and key in self._batch_open:
            return self._batch_open[key]
        row = conn.execute(_BY_KEY, {"key": key}).first()
        return Case.from_row(row) if row is not None else None

    def latest_case_id(
        self, conn: Connection, enterprise_id: str, source_id: str, rule: str
    ) -> int | None:
        """The newest case of a problem, open or closed (the one a finding just went to, even
        if a clear in the same batch resolved it)."""
        found = conn.execute(
            _LATEST, {"enterprise": enterprise_id, "source": source_id, "rule": rule}
        ).scalar_one_or_none()
        return int(found) if found is not None else None

    def events(self, conn: Connection, case_id: int) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
        ).all()
        return [
            {
                "id": r.id,
                "at": stored_utc(r.at).isoformat(),
                "actor": r.actor,
                "role": r.role,
                "action": r.action,
                "from_state": r.from_state,
                "to_state": r.to_state,
                "note": r.note,
                "refs": json.loads(r.refs),
            }
            for r in rows
        ]

    # -- findings ---------------------------------------------------------------------------

    def apply(self, conn: Connection, findings: Sequence[Finding]) -> Applied:
        """Apply findings (each exactly once: the caller passes only newly stored ones)."""
        done = Applied()
        if not findings:
            return done
        now = self.clock()
        silences = active_silences(conn, now)
        offline = offline_sources(conn, {f.enterprise_id for f in findings})
        keys = sorted({open_key(f.enterprise_id, f.source_id, f.rule) for f in findings})
        self._batch_open = dict.fromkeys(keys)
        for row in conn.execute(_OPEN_IN, {"keys": keys}):
            case = Case.from_row(row)
            self._batch_open[_key_of(case)] = case
        try:
            self._apply(conn, findings, now, silences, offline, done)
        finally:
            self._batch_open = None
        return done

    def _apply(
        self,
        conn: Connection,
        findings: Sequence[Finding],
        now: datetime,
        silences: list[Silence],
        offline: dict[tuple[str, str], int],
        done: Applied,
    ) -> None:
        for f in findings:
            if f.state == "fire":
                silence = next((s for s in silences if s.matches(f)), None)
                if silence is not None:
                    record_suppressed(conn, f, "silence", silence.id, now)
                    done.suppressed += 1
                    continue
                by = inhibited(f, offline)
                if by is not None:
                    record_suppressed(conn, f, "inhibited", by, now)
                    done.suppressed += 1
                    continue
                self._fire(conn, f, now, done)
                if f.rule == "B8":
                    offline = offline_sources(conn, {f.enterprise_id}) | offline
            else:
                self._clear(conn, f, now, done)
                if f.rule == "B8":
                    offline.pop((f.enterprise_id, f.source_id), None)

    def _fire(self, conn: Connection, f: Finding, now: datetime, done: Applied) -> None:
        episode_of = f.evidence.get("episode_of")
        if isinstance(episode_of, str):  # one incident, one case (e.g. C2 within C1's episode)
            joined = self.open_case(conn, open_key(f.enterprise_id, f.source_id, episode_of))
            if joined is not None:
                self._attach(conn, joined, f, now, done)
                return
        key = open_key(f.enterprise_id, f.source_id, f.rule)
        case = self.open_case(conn, key)
        if case is not None:
            self._update(conn, case, f, now, done)
            return
        previous = self._last_closed(conn, f)
        if previous is not None and self._recurs(previous, f, now):
            self._reopen(conn, previous, f, now, done)
            return
        self._open(conn, f, now, done)

    def _last_closed(self, conn: Connection, f: Finding) -> Case | None:
        params = {"enterprise": f.enterprise_id, "source": f.source_id, "rule": f.rule}
        row = conn.execute(_LAST_CLOSED, params).first()
        return Case.from_row(row) if row is not None else None

    def _recurs(self, case: Case, f: Finding, now: datetime) -> bool:
        """回头看: the rule fires again on data after closing, within the re-check window;
        or the condition returns soon after it resolved (a flapping condition keeps its case)."""
        if case.closed_at is None:
            return False
        if case.state == "closed":
            return (
                case.recheck_until is not None
                and now < case.recheck_until
                and _at(f.window_end) > case.closed_at
            )
        return now - case.closed_at < timedelta(seconds=self.policy.flap_window_s)

    def _open(self, conn: Connection, f: Finding, now: datetime, done: Applied) -> None:
        info = self.policy.enterprise(f.enterprise_id)
        evidence = Evidence()
        evidence.add(f, self.policy.evidence_trail)
        tier = f.tier or "warning"
        escalation = None
        if tier == "warning" and self._unexplained(conn, f, now) + 1 >= (
            self.policy.escalate_unexplained
        ):
            tier = "alarm"
            escalation = (
                f"{self.policy.escalate_window_days} 日内第 {self.policy.escalate_unexplained} "
                "次未说明的预警"
            )
        key = open_key(f.enterprise_id, f.source_id, f.rule)
        values: dict[str, Any] = {
            "open_key": key,
            "enterprise_id": f.enterprise_id,
            "source_id": f.source_id,
            "rule": f.rule,
            "factor": f.factor,
            "tier": tier,
            "state": "sensed",
            "condition": "active",
            "positive_list": info.positive_list,
            "opened_at": now,
            "first_seen": _at(f.window_start),
            "last_seen": _at(f.window_end),
            "count": 1,
            "value": f.value,
            "peak_value": f.value,
            "peak_multiple": f.multiple,
            "limit_value": f.limit,
            "unit": f.unit,
            "evidence": evidence.dumps(),
            "recurrence": 0,
            "flaps": 0,
            "escalation": escalation,
            "brigade": info.brigade,
            "updated_at": now,
            "version": 1,
        }
        result = conn.execute(insert(cases), values)
        case_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        done.opened.append(case_id)
        row = dict.fromkeys(cases.c.keys()) | values | {"id": case_id, "evidence": evidence}
        case = Case.from_mapping(row)
        self._remember(key, case)
        event = self._audit(conn, case, SYSTEM, "sense", None, "sensed", now, "", {"finding": f.id})
        if escalation:
            done.escalated.append(case_id)
        self._route_new(conn, case, event, now)

    def _route_new(self, conn: Connection, case: Case, event_id: int, now: datetime) -> None:
        """A warning is a reminder to the enterprise (预警提醒); an alarm goes to the dispatch
        queue and the supervisors are told."""
        if case.tier == "warning":
            due = now + timedelta(hours=self.policy.explain_hours)
            case = self._move(conn, case, "reminded", now, explain_due=due)
            event_id = self._audit(conn, case, SYSTEM, "remind", "sensed", "reminded", now, "", {})
            self._notify(conn, case, "case.opened", event_id, ("enterprise",), now)
        else:
            self._notify(conn, case, "case.opened", event_id, ("supervisors", "monitors"), now)

    def _unexplained(self, conn: Connection, f: Finding, now: datetime) -> int:
        """Warnings for this source in the window that were never explained."""
        since = now - timedelta(days=self.policy.escalate_window_days)
        params = {"enterprise": f.enterprise_id, "source": f.source_id, "since": since}
        count = conn.execute(_UNEXPLAINED, params).scalar_one()
        return int(count)

    def _update(
        self, conn: Connection, case: Case, f: Finding, now: datetime, done: Applied
    ) -> None:
        evidence = case.evidence
        evidence.add(f, self.policy.evidence_trail)
        peak_multiple = case.peak_multiple
        peak_value = case.peak_value
        if f.multiple is not None and (peak_multiple is None or f.multiple > peak_multiple):
            peak_multiple, peak_value = f.multiple, f.value
        elif (
            f.multiple is None
            and f.value is not None
            and (peak_value is None or f.value > peak_value)
        ):
            peak_value = f.value
        values: dict[str, Any] = {
            "count": case.count + 1,
            "last_seen": max(case.last_seen, _at(f.window_end)),
            "value": f.value,
            "peak_value": peak_value,
            "peak_multiple": peak_multiple,
            "limit_value": f.limit if f.limit is not None else case.limit_value,
            "evidence": evidence,
            "condition": "active",
        }
        escalate = f.tier == "alarm" and TIERS[case.tier] < TIERS["alarm"]
        if escalate:
            values |= {"tier": "alarm", "escalation": "规则判定达到报警级别"}
        updated = self._cas(conn, case, now, values)
        done.updated += 1
        if escalate:
            done.escalated.append(case.id)
            event = self._audit(
                conn,
                updated,
                SYSTEM,
                "escalate",
                case.state,
                case.state,
                now,
                "发现达到报警级别",
                {"finding": f.id},
            )
            self._notify(conn, updated, "case.escalated", event, ("supervisors",), now)

    def _attach(
        self, conn: Connection, case: Case, f: Finding, now: datetime, done: Applied
    ) -> None:
        """Another rule's finding on the same incident: evidence on this case, which keeps
        its own rule, value and count."""
        evidence = case.evidence
        evidence.add(f, self.policy.evidence_trail)
        self._cas(conn, case, now, {"evidence": evidence})
        done.updated += 1

    def _reopen(
        self, conn: Connection, case: Case, f: Finding, now: datetime, done: Applied
    ) -> None:
        flap = case.state == "resolved"
        evidence = case.evidence
        evidence.add(f, self.policy.evidence_trail)
        values: dict[str, Any] = {
            "open_key": open_key(case.enterprise_id, case.source_id, case.rule),
            "condition": "active",
            "count": case.count + 1,
            "last_seen": _at(f.window_end),
            "value": f.value,
            "evidence": evidence,
            "closed_at": None,
        }
        if flap:
            # The condition came back soon after it cleared: the same case, its state before
            # resolving, and no second reminder.
            values |= {"state": self._state_before_resolve(conn, case), "flaps": case.flaps + 1}
        else:
            values |= {
                "state": "sensed",
                "recurrence": case.recurrence + 1,
                "tier": "alarm",
                "escalation": "回头看期间复发",
                "recheck_until": None,
                "disposition": None,
                "explain_due": None,
                "feedback_due": None,
                "overdue": None,
                "assignee": None,
            }
        reopened = self._cas(conn, case, now, values)
        done.reopened.append(case.id)
        note = "条件消除后短时间内复现，恢复原处理状态" if flap else "回头看期间复发"
        event = self._audit(
            conn,
            reopened,
            SYSTEM,
            "reopen",
            case.state,
            reopened.state,
            now,
            note,
            {"finding": f.id},
        )
        if not flap:
            self._notify(conn, reopened, "case.reopened", event, ("supervisors", "brigade"), now)
        else:
            self._notify(conn, reopened, "case.changed", event, (), now)

    def _state_before_resolve(self, conn: Connection, case: Case) -> str:
        row = conn.execute(
            select(case_events.c.from_state)
            .where(case_events.c.case_id == case.id, case_events.c.action == "resolve")
            .order_by(case_events.c.id.desc())
            .limit(1)
        ).first()
        return row[0] if row is not None and row[0] else "sensed"

    def _clear(self, conn: Connection, f: Finding, now: datetime, done: Applied) -> None:
        case = self.open_case(conn, open_key(f.enterprise_id, f.source_id, f.rule))
        if case is None:
            done.ignored += 1
            return
        evidence = case.evidence
        evidence.add(f, self.policy.evidence_trail)
        if evidence.active:  # another factor of the same rule still holds
            self._cas(conn, case, now, {"evidence": evidence})
            done.updated += 1
            return
        if case.state in BEFORE_DISPATCH and case.tier in self.policy.resolve_on_clear:
            resolved = self._cas(
                conn,
                case,
                now,
                {
                    "state": "resolved",
                    "condition": "cleared",
                    "open_key": None,
                    "closed_at": now,
                    "evidence": evidence,
                },
            )
            done.resolved.append(case.id)
            event = self._audit(
                conn,
                resolved,
                SYSTEM,
                "resolve",
                case.state,
                "resolved",
                now,
                "派单前条件已消除",
                {"finding": f.id},
            )
            self._notify(conn, resolved, "case.changed", event, (), now)
        else:
            # Dispatched, or an alarm: the work goes on; the case records that it cleared.
            cleared = self._cas(conn, case, now, {"condition": "cleared", "evidence": evidence})
            done.updated += 1
            event = self._audit(
                conn,
                cleared,
                SYSTEM,
                "condition_cleared",
                case.state,
                case.state,
                now,
                "条件已消除",
                {"finding": f.id},
            )
            self._notify(conn, cleared, "case.changed", event, (), now)

    # -- people ------------------------------------------------------------------------------

    def act(
        self,
        conn: Connection,
        case_id: int,
        action: str,
        actor: Actor,
        *,
        note: str = "",
        outcome: str | None = None,
        brigade: str | None = None,
        kind: str | None = None,
        due_at: datetime | None = None,
        case_number: str | None = None,
        refs: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> Case:
        """One person's action on a case; WorkflowError (with a stable code) when refused."""
        now = self.clock()
        case = self.get(conn, case_id)
        if expected_version is not None and expected_version != case.version:
            raise WorkflowError("conflict", f"case {case_id} changed meanwhile; reload it")
        t = permitted(case, action, actor)
        refs = dict(refs or {})
        values: dict[str, Any] = {}
        audience: tuple[str, ...] = ()
        event = "case.changed"
        target = t.target
        if action in ("explain", "comment", "escalate") and not note.strip():
            raise WorkflowError("note_required", f"{action} needs a note")
        if action == "verify":
            if outcome not in VERIFY_OUTCOMES:
                raise WorkflowError(
                    "bad_outcome", f"verify outcome must be one of {', '.join(VERIFY_OUTCOMES)}"
                )
            if outcome == "false_positive":
                if not note.strip():
                    raise WorkflowError("note_required", "a false positive needs its reason")
                target = "closed"
                values |= {"disposition": "false_positive", "open_key": None, "closed_at": now}
            refs["outcome"] = outcome
        elif action == "dispatch":
            values, refs, audience = self._dispatch(
                conn, case, actor, brigade, kind, due_at, refs, now
            )
            event = "case.dispatched"
        elif action == "arrive":
            self._work_order_state(conn, case, "on_site")
        elif action == "report":
            return self._report(conn, case, actor, outcome, case_number, note, refs, now)
        elif action == "close":
            values |= {
                "open_key": None,
                "closed_at": now,
                "recheck_until": now + timedelta(days=self.policy.recheck_days),
                "disposition": case.disposition or "closed",
            }
            self._work_order_state(conn, case, "closed")
        elif action == "escalate":
            values |= {"tier": "alarm", "escalation": note}
            event, audience = "case.escalated", ("supervisors",)
        elif action == "remind":
            values["explain_due"] = now + timedelta(hours=self.policy.explain_hours)
            audience = ("enterprise",)
        elif action == "acknowledge":
            values["assignee"] = refs["assignee"] = actor.name
            if case.assignee:
                refs["from"] = case.assignee  # taken over from someone
        if target is not None:
            values["state"] = target
        changed = self._cas(conn, case, now, values)
        event_id = self._audit(
            conn, changed, actor, action, case.state, changed.state, now, note, refs
        )
        self._notify(conn, changed, event, event_id, audience, now, note)
        return changed

    def _dispatch(
        self,
        conn: Connection,
        case: Case,
        actor: Actor,
        brigade: str | None,
        kind: str | None,
        due_at: datetime | None,
        refs: dict[str, Any],
        now: datetime,
    ) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
        brigade = brigade or case.brigade
        if not brigade:
            raise WorkflowError("brigade_required", "name the brigade that takes the work order")
        default_kind = (
            "non_site_check" if case.positive_list and case.tier != "alarm" else "on_site"
        )
        kind = kind or default_kind
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
        due = due_at or self.policy.calendar.add_working_days(
            now, self.policy.feedback_working_days
        )
        order_id = self._new_work_order(conn, case, brigade, kind, actor.name, due, now)
        refs |= {"work_order": order_id, "brigade": brigade, "kind": kind, "due": due.isoformat()}
        # The brigade handles it now: its officer takes it (confirms receipt) by acknowledging.
        values = {"brigade": brigade, "feedback_due": due, "overdue": None, "assignee": None}
        return values, refs, ("brigade", "enterprise")

    def _new_work_order(
        self,
        conn: Connection,
        case: Case,
        brigade: str,
        kind: str,
        by: str,
        due: datetime,
        now: datetime,
    ) -> int:
        result = conn.execute(
            insert(work_orders).values(
                case_id=case.id,
                brigade=brigade,
                kind=kind,
                state="open",
                created_at=now,
                created_by=by,
                due_at=due,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def current_work_order(self, conn: Connection, case_id: int) -> dict[str, Any] | None:
        row = conn.execute(
            select(work_orders)
            .where(work_orders.c.case_id == case_id)
            .order_by(work_orders.c.id.desc())
            .limit(1)
        ).first()
        return dict(row._mapping) if row is not None else None

    def _work_order_state(
        self, conn: Connection, case: Case, state: str, **values: Any
    ) -> dict[str, Any] | None:
        order = self.current_work_order(conn, case.id)
        if order is None:
            return None
        conn.execute(
            update(work_orders).where(work_orders.c.id == order["id"]).values(state=state, **values)
        )
        return order

    def _report(
        self,
        conn: Connection,
        case: Case,
        actor: Actor,
        outcome: str | None,
        case_number: str | None,
        note: str,
        refs: dict[str, Any],
        now: datetime,
    ) -> Case:
        if outcome not in REPORT_OUTCOMES:
            raise WorkflowError(
                "bad_outcome", f"report outcome must be one of {', '.join(REPORT_OUTCOMES)}"
            )
        order = self.current_work_order(conn, case.id)
        assert order is not None  # dispatched cases have one
        if outcome == "check_failed" and order["kind"] != "non_site_check":
            raise WorkflowError("bad_outcome", "check_failed reports a non-site check")
        if outcome == "violation_confirmed" and not case_number:
            raise WorkflowError(
                "case_number_required", "a confirmed violation needs its case number"
            )
        self._work_order_state(
            conn, case, "reported", outcome=outcome, case_number=case_number, reported_at=now
        )
        refs |= {"work_order": order["id"], "outcome": outcome}
        if case_number:
            refs["case_number"] = case_number
        if outcome == "check_failed":
            # The non-site check failed: an on-site work order to the same brigade, at once.
            reported = self._cas(conn, case, now, {"state": "reported"})
            self._audit(conn, reported, actor, "report", case.state, "reported", now, note, refs)
            due = self.policy.calendar.add_working_days(now, self.policy.feedback_working_days)
            order_id = self._new_work_order(
                conn, reported, order["brigade"], "on_site", SYSTEM.name, due, now
            )
            escalated = self._cas(
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
            event = self._audit(
                conn,
                escalated,
                SYSTEM,
                "escalate",
                "reported",
                "dispatched",
                now,
                "非现场核查未通过：转现场派单",
                {"work_order": order_id, "kind": "on_site", "due": due.isoformat()},
            )
            self._notify(conn, escalated, "case.dispatched", event, ("brigade", "supervisors"), now)
            return escalated
        reported = self._cas(
            conn,
            case,
            now,
            {"state": "reported", "disposition": outcome, "case_number": case_number},
        )
        event = self._audit(
            conn, reported, actor, "report", case.state, "reported", now, note, refs
        )
        self._notify(conn, reported, "case.changed", event, ("supervisors",), now, note)
        return reported

    # -- the clock ---------------------------------------------------------------------------

    def tick(self, conn: Connection) -> list[int]:
        """Overdue explanations escalate to alarm; overdue feedback is flagged. Each once."""
        now = self.clock()
        touched: list[int] = []
        rows = conn.execute(
            select(cases).where(
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
            changed = self._cas(conn, case, now, values)
            event = self._audit(
                conn, changed, SYSTEM, "escalate", case.state, case.state, now, note, {}
            )
            self._notify(conn, changed, "case.overdue", event, audience, now, note)
            touched.append(case.id)
        return touched

    # -- storage helpers ----------------------------------------------------------------------

    def _move(self, conn: Connection, case: Case, state: str, now: datetime, **values: Any) -> Case:
        return self._cas(conn, case, now, {"state": state, **values})

    def _cas(self, conn: Connection, case: Case, now: datetime, values: dict[str, Any]) -> Case:
        """Compare-and-set on the version; the changed case without reading it back."""
        names = tuple(sorted(values))
        params = {f"v_{k}": v.dumps() if isinstance(v, Evidence) else v for k, v in values.items()}
        params |= {
            "_id": case.id,
            "_version": case.version,
            "v_updated_at": now,
            "v_version": case.version + 1,
        }
        result = conn.execute(_update_statement((*names, "updated_at", "version")), params)
        if result.rowcount != 1:
            raise WorkflowError("conflict", f"case {case.id} changed meanwhile; reload it")
        fields = {k: v for k, v in values.items() if k != "open_key"}
        if isinstance(fields.get("evidence"), str):
            fields["evidence"] = Evidence.loads(fields["evidence"])
        changed = replace(case, **fields, updated_at=now, version=case.version + 1)
        if "open_key" in values:
            self._remember(_key_of(case), changed if values["open_key"] is not None else None)
        elif self._batch_open is not None and self._batch_open.get(_key_of(case)) is not None:
            self._remember(_key_of(case), changed)
        return changed

    def _remember(self, key: str, case: Case | None) -> None:
        if self._batch_open is not None:
            self._batch_open[key] = case

    def _audit(
        self,
        conn: Connection,
        case: Case,
        actor: Actor,
        action: str,
        from_state: str | None,
        to_state: str | None,
        now: datetime,
        note: str,
        refs: dict[str, Any],
    ) -> int:
        result = conn.execute(
            _AUDIT,
            {
                "case_id": case.id,
                "at": now,
                "actor": actor.name,
                "role": actor.role,
                "action": action,
                "from_state": from_state,
                "to_state": to_state,
                "note": note,
                "refs": json.dumps(refs, ensure_ascii=False, sort_keys=True, default=str),
            },
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _notify(
        self,
        conn: Connection,
        case: Case,
        event: str,
        event_id: int,
        audience: Iterable[str],
        now: datetime,
        note: str = "",
    ) -> None:
        if self.notifier is not None:
            self.notifier.case_event(conn, case, event, event_id, audience, now, note)


__all__ = ["OPEN_STATES", "Applied", "CaseBook", "open_key"]
