"""Findings into cases: a fire opens its problem's case, updates the open one, joins the case of
the incident it belongs to, or reopens a recently closed one; a clear resolves the case before
dispatch, or records on it that its condition cleared.

The caller applies each finding exactly once, in the transaction that stores it (the pipeline
stores findings, cases and outbox rows with its checkpoint). Silenced findings, and findings
of a source whose logger is offline, are recorded as suppressed instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from alerts.case import TIERS, Case, Evidence
from alerts.case_store import CaseStore, open_key, recurrence_values
from alerts.noise import Silence, active_silences, inhibited, offline_sources, record_suppressed
from alerts.policy import AlertPolicy
from alerts.positive_list import is_member
from alerts.workflow import BEFORE_DISPATCH, SYSTEM
from rules.findings import Finding


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


def apply_findings(
    conn: Connection,
    findings: Sequence[Finding],
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
) -> Applied:
    done = Applied()
    silences = active_silences(conn, now)
    offline = offline_sources(conn, {f.enterprise_id for f in findings})
    keys = sorted({open_key(f.enterprise_id, f.source_id, f.rule) for f in findings})
    with store.batch(conn, keys):
        _Batch(conn, store, policy, now, done).run(findings, silences, offline)
    return done


def _at(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


class _Batch:
    """One batch being applied: where its findings go, and what that did (``done``)."""

    def __init__(
        self,
        conn: Connection,
        store: CaseStore,
        policy: AlertPolicy,
        now: datetime,
        done: Applied,
    ) -> None:
        self.conn = conn
        self.store = store
        self.policy = policy
        self.now = now
        self.done = done

    def run(
        self,
        findings: Sequence[Finding],
        silences: list[Silence],
        offline: dict[tuple[str, str], int],
    ) -> None:
        conn, now, done = self.conn, self.now, self.done
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
                self._fire(f)
                if f.rule == "B8":
                    offline = offline_sources(conn, {f.enterprise_id}) | offline
            else:
                self._clear(f)
                if f.rule == "B8":
                    offline.pop((f.enterprise_id, f.source_id), None)

    def _fire(self, f: Finding) -> None:
        episode_of = f.evidence.get("episode_of")
        if isinstance(episode_of, str):  # one incident, one case (e.g. C2 within C1's episode)
            joined = self.store.open_case(
                self.conn, open_key(f.enterprise_id, f.source_id, episode_of)
            )
            if joined is not None:
                self._attach(joined, f)
                return
        case = self.store.open_case(self.conn, open_key(f.enterprise_id, f.source_id, f.rule))
        if case is not None:
            self._update(case, f)
            return
        previous = self.store.last_closed(self.conn, f.enterprise_id, f.source_id, f.rule)
        if previous is not None and self._recurs(previous, f):
            self._reopen(previous, f)
            return
        self._open(f)

    def _recurs(self, case: Case, f: Finding) -> bool:
        """回头看: the rule fires again on data after closing, within the re-check window;
        or the condition returns soon after it resolved (a flapping condition keeps its case)."""
        if case.closed_at is None:
            return False
        if case.state == "closed":
            return (
                case.recheck_until is not None
                and self.now < case.recheck_until
                and _at(f.window_end) > case.closed_at
            )
        return self.now - case.closed_at < timedelta(seconds=self.policy.flap_window_s)

    def _open(self, f: Finding) -> None:
        conn, now, policy = self.conn, self.now, self.policy
        info = policy.enterprise(f.enterprise_id)
        evidence = Evidence()
        evidence.add(f, policy.evidence_trail)
        tier = f.tier or "warning"
        escalation = None
        if tier == "warning" and self._unexplained(f) + 1 >= policy.escalate_unexplained:
            tier = "alarm"
            escalation = (
                f"{policy.escalate_window_days} 日内第 {policy.escalate_unexplained} 次未说明的预警"
            )
        values: dict[str, Any] = {
            "open_key": open_key(f.enterprise_id, f.source_id, f.rule),
            "enterprise_id": f.enterprise_id,
            "source_id": f.source_id,
            "rule": f.rule,
            "factor": f.factor,
            "tier": tier,
            "state": "sensed",
            "condition": "active",
            "positive_list": is_member(conn, f.enterprise_id, info.positive_list),
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
        case = self.store.insert(conn, values, evidence)
        self.done.opened.append(case.id)
        event = self.store.audit(conn, case, SYSTEM, "sense", None, now, "", {"finding": f.id})
        if escalation:
            self.done.escalated.append(case.id)
        self._route_new(case, event)

    def _unexplained(self, f: Finding) -> int:
        """Warnings for this source in the escalation window that were never explained."""
        since = self.now - timedelta(days=self.policy.escalate_window_days)
        return self.store.unexplained(self.conn, f.enterprise_id, f.source_id, since)

    def _route_new(self, case: Case, event_id: int) -> None:
        """A warning is a reminder to the enterprise (预警提醒); an alarm goes to the dispatch
        queue and the supervisors are told."""
        conn, now, store = self.conn, self.now, self.store
        if case.tier == "warning":
            due = now + timedelta(hours=self.policy.explain_hours)
            case = store.cas(conn, case, now, {"state": "reminded", "explain_due": due})
            event_id = store.audit(
                conn, case, SYSTEM, "remind", "sensed", now, "", {"due": due.isoformat()}
            )
            store.notify(conn, case, "case.opened", event_id, ("enterprise",), now)
        else:
            store.notify(conn, case, "case.opened", event_id, ("supervisors", "monitors"), now)

    def _update(self, case: Case, f: Finding) -> None:
        conn, now, store = self.conn, self.now, self.store
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
        updated = store.cas(conn, case, now, values)
        self.done.updated += 1
        if escalate:
            self.done.escalated.append(case.id)
            note = "发现达到报警级别"
            event = store.audit(
                conn, updated, SYSTEM, "escalate", case.state, now, note, {"finding": f.id}
            )
            store.notify(conn, updated, "case.escalated", event, ("supervisors",), now)

    def _attach(self, case: Case, f: Finding) -> None:
        """Another rule's finding on the same incident: evidence on this case, which keeps
        its own rule, value and count."""
        evidence = case.evidence
        evidence.add(f, self.policy.evidence_trail)
        self.store.cas(self.conn, case, self.now, {"evidence": evidence})
        self.done.updated += 1

    def _reopen(self, case: Case, f: Finding) -> None:
        conn, now, store = self.conn, self.now, self.store
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
            values |= {
                "state": store.state_before_resolve(conn, case.id),
                "flaps": case.flaps + 1,
            }
        else:
            values |= recurrence_values(case, "回头看期间复发")
        reopened = store.cas(conn, case, now, values)
        self.done.reopened.append(case.id)
        note = "条件消除后短时间内复现，恢复原处理状态" if flap else "回头看期间复发"
        event = store.audit(
            conn, reopened, SYSTEM, "reopen", case.state, now, note, {"finding": f.id}
        )
        if not flap:
            store.notify(conn, reopened, "case.reopened", event, ("supervisors", "brigade"), now)
        else:
            store.notify(conn, reopened, "case.changed", event, (), now)

    def _clear(self, f: Finding) -> None:
        conn, now, store = self.conn, self.now, self.store
        case = store.open_case(conn, open_key(f.enterprise_id, f.source_id, f.rule))
        if case is None:
            self.done.ignored += 1
            return
        evidence = case.evidence
        evidence.add(f, self.policy.evidence_trail)
        if evidence.active:  # another factor of the same rule still holds
            store.cas(conn, case, now, {"evidence": evidence})
            self.done.updated += 1
            return
        if case.state in BEFORE_DISPATCH and case.tier in self.policy.resolve_on_clear:
            values: dict[str, Any] = {
                "state": "resolved",
                "condition": "cleared",
                "open_key": None,
                "closed_at": now,
                "evidence": evidence,
            }
            self.done.resolved.append(case.id)
            action, note = "resolve", "派单前条件已消除"
        else:
            # Dispatched, or an alarm: the work goes on; the case records that it cleared.
            values = {"condition": "cleared", "evidence": evidence}
            self.done.updated += 1
            action, note = "condition_cleared", "条件已消除"
        changed = store.cas(conn, case, now, values)
        event = store.audit(conn, changed, SYSTEM, action, case.state, now, note, {"finding": f.id})
        store.notify(conn, changed, "case.changed", event, (), now)
