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
from typing import IO, Any

from sqlalchemy import Connection

from alerts.action_requests import done_before, record
from alerts.actions import Request, take_action
from alerts.case import Case
from alerts.case_store import CaseStore, open_key
from alerts.clue_data import surroundings
from alerts.clues import Clue, ClueIn, get_clue, may_attach_to_clue, take_clue
from alerts.deadlines import flag_overdue
from alerts.decisions import Decision, propose, review
from alerts.draws import Drawn
from alerts.evidence import Attachment, attach, manifest_digest, may_attach
from alerts.findings_to_cases import Applied, apply_findings
from alerts.inspections import open_inspections
from alerts.notify import Notifier
from alerts.policy import AlertPolicy
from alerts.rechecks import Recheck, decide, decide_due, reschedule
from alerts.rectification import Rectification, flag_overdue_rectifications, rectify
from alerts.work_orders import current_work_order
from alerts.workflow import OPEN_STATES, Actor, WorkflowError, permitted
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

    def take_clue(self, conn: Connection, clue: ClueIn, actor: Actor) -> Clue:
        """A clue merged into an open case of its enterprise, or opening a case of its own
        (``alerts.clues``), with the monitoring data around its time; WorkflowError when
        refused."""
        return take_clue(conn, self._store, self.policy, self.clock(), clue, actor, surroundings)

    def open_inspections(
        self, conn: Connection, period: str, seed: str, drawn: Sequence[Drawn], due: datetime
    ) -> list[Case]:
        """A 双随机 draw's inspections as cases dispatched to the brigades
        (``alerts.inspections``)."""
        return open_inspections(
            conn, self._store, self.policy, self.clock(), period, seed, drawn, due
        )

    def attach(
        self,
        conn: Connection,
        actor: Actor,
        file: IO[bytes],
        filename: str,
        *,
        case_id: int | None = None,
        clue_id: int | None = None,
        kind: str | None = None,
        note: str = "",
        max_bytes: int,
    ) -> Attachment:
        """Evidence attached to a case, or to a clue (and so to the clue's case); WorkflowError
        when refused (``alerts.evidence``)."""
        if clue_id is not None:
            clue = get_clue(conn, clue_id)
            may_attach_to_clue(actor, clue)
            case_id = clue.case_id
        elif case_id is not None:
            may_attach(actor, self._store.get(conn, case_id))
        else:
            raise WorkflowError("not_found", "attach to a case or a clue")
        return attach(
            conn,
            self._store,
            self.clock(),
            actor,
            file,
            filename,
            case_id=case_id,
            clue_id=clue_id,
            kind=kind,
            note=note,
            max_bytes=max_bytes,
        )

    def export_bundle(self, conn: Connection, case_id: int, actor: Actor, out: IO[bytes]) -> str:
        """The case's evidence bundle written to ``out`` (``alerts.evidence_bundle``), the
        export on its trail; the manifest's SHA-256."""
        from alerts.evidence_bundle import write_bundle  # noqa: PLC0415 - it imports the book

        manifest = write_bundle(conn, self, self._store, case_id, actor, self.clock(), out)
        return manifest_digest(manifest)

    def rectify(
        self, conn: Connection, case_id: int, step: str, actor: Actor, **request: Any
    ) -> Rectification:
        """One step of the case's rectification (``alerts.rectification``): order, report,
        verify, close (销号); WorkflowError when refused."""
        return rectify(
            conn, self._store, self.policy, self.clock(), case_id, step, actor, **request
        )

    def decide_recheck(
        self, conn: Connection, recheck_id: int, actor: Actor, outcome: str, note: str
    ) -> Recheck:
        """A person's decision of a 回头看 (``alerts.rechecks``); a failure reopens its case."""
        return decide(conn, self._store, self.clock(), recheck_id, actor, outcome, note)

    def decide(self, conn: Connection, case_id: int, actor: Actor, **decision: Any) -> Decision:
        """Record a decision on the case (``alerts.decisions``): in effect at once, or awaiting
        the legal review when it is major."""
        return propose(conn, self._store, self.policy, self.clock(), case_id, actor, **decision)

    def review_decision(
        self, conn: Connection, decision_id: int, actor: Actor, *, approve: bool, note: str
    ) -> Decision:
        """A legal reviewer's approval or rejection of a major decision."""
        return review(
            conn, self._store, self.policy, self.clock(), decision_id, actor,
            approve=approve, note=note,
        )  # fmt: skip

    def reschedule_recheck(
        self, conn: Connection, recheck_id: int, actor: Actor, **plan: Any
    ) -> Recheck:
        """A 回头看's date, method or brigade set by the centre or a supervisor."""
        return reschedule(conn, self._store, self.clock(), recheck_id, actor, **plan)

    def tick(self, conn: Connection) -> list[int]:
        """Overdue explanations escalate to alarm; overdue feedback is flagged; an overdue
        rectification escalates; the off-site 回头看 due are decided from the data. Each
        once."""
        now = self.clock()
        touched = flag_overdue(conn, self._store, now, self.enterprises)
        touched += flag_overdue_rectifications(conn, self._store, now, self.enterprises)
        touched += decide_due(conn, self._store, now, self.enterprises)
        return touched


__all__ = ["OPEN_STATES", "Applied", "CaseBook", "open_key", "permitted"]
