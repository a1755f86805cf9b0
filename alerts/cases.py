"""Cases: one open case per (enterprise, source, rule), moved through the workflow.

``CaseBook`` is the one door to them. ``apply`` turns findings into cases in the caller's
transaction (``alerts.findings_to_cases``); ``act`` is a person's action
(``alerts.actions``); ``tick`` the clock's (``alerts.deadlines``). Every change is
compare-and-set on the case's version, writes an audit row and queues its notifications in
the same transaction (``alerts.case_store``): of two people acting on one case at once, the
second gets a ``conflict`` error and sees the new state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from alerts.action_requests import done_before, record
from alerts.actions import Request, take_action
from alerts.case import Case
from alerts.case_store import CaseStore, open_key
from alerts.deadlines import flag_overdue
from alerts.findings_to_cases import Applied, apply_findings
from alerts.notify import Notifier
from alerts.policy import AlertPolicy
from alerts.work_orders import current_work_order
from alerts.workflow import OPEN_STATES, Actor, permitted
from rules.findings import Finding


class CaseBook:
    def __init__(
        self,
        policy: AlertPolicy,
        notifier: Notifier | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        enterprises: frozenset[str] | None = None,
    ) -> None:
        """``enterprises``: the cases whose deadlines this book's clock keeps (a cluster
        worker keeps those of its partitions' enterprises); None: all."""
        self.policy = policy
        self.clock = clock
        self.enterprises = enterprises
        self._store = CaseStore(notifier)

    @property
    def notifier(self) -> Notifier | None:
        return self._store.notifier

    @notifier.setter
    def notifier(self, notifier: Notifier | None) -> None:
        self._store.notifier = notifier

    # -- reading ----------------------------------------------------------------------------

    def get(self, conn: Connection, case_id: int) -> Case:
        return self._store.get(conn, case_id)

    def open_case(self, conn: Connection, key: str) -> Case | None:
        return self._store.open_case(conn, key)

    def latest_case_id(
        self, conn: Connection, enterprise_id: str, source_id: str, rule: str
    ) -> int | None:
        """The newest case of a problem, open or closed (the one a finding just went to, even
        if a clear in the same batch resolved it)."""
        return self._store.latest_case_id(conn, enterprise_id, source_id, rule)

    def events(self, conn: Connection, case_id: int) -> list[dict[str, Any]]:
        return self._store.events(conn, case_id)

    def current_work_order(self, conn: Connection, case_id: int) -> dict[str, Any] | None:
        return current_work_order(conn, case_id)

    # -- changing ---------------------------------------------------------------------------

    def apply(self, conn: Connection, findings: Sequence[Finding]) -> Applied:
        """Apply findings (each exactly once: the caller passes only newly stored ones)."""
        if not findings:
            return Applied()
        return apply_findings(conn, findings, self._store, self.policy, self.clock())

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
        request_key: str | None = None,
    ) -> Case:
        """One person's action on a case; WorkflowError (with a stable code) when refused.
        ``request_key``: the request's (:mod:`alerts.action_requests`): an action already
        taken under it is not taken again; the case is returned as it is."""
        if request_key is not None and done_before(conn, request_key, case_id, action, actor):
            return self._store.get(conn, case_id)
        request = Request(
            note=note,
            outcome=outcome,
            brigade=brigade,
            kind=kind,
            due_at=due_at,
            case_number=case_number,
            refs=refs,
            expected_version=expected_version,
        )
        now = self.clock()
        case = take_action(conn, self._store, self.policy, now, case_id, action, actor, request)
        if request_key is not None:
            record(conn, request_key, case_id, action, actor, now)
        return case

    def tick(self, conn: Connection) -> list[int]:
        """Overdue explanations escalate to alarm; overdue feedback is flagged. Each once."""
        return flag_overdue(conn, self._store, self.clock(), self.enterprises)


__all__ = ["OPEN_STATES", "Applied", "CaseBook", "open_key", "permitted"]
