"""Alert stage: rule findings → cases, moved through the sense → dispatch → enforce workflow.

Owns the cases (one open case per enterprise, source and rule; :mod:`alerts.cases` is their
one door), the workflow's states, actions and roles (:mod:`alerts.workflow`), people's actions
and the deadlines' escalations, every change's audit trail and its export
(:mod:`alerts.audit`), the notifications queued in the transactional outbox and delivered
through its channels (:mod:`alerts.outbox`, :mod:`alerts.channels`), noise control (silences,
inhibition by an offline logger), an enterprise's status at a glance and the alert stage the
pipeline runs (:mod:`alerts.stage`). It builds on ingest and rules and imports nothing of
nonsite (checked by import-linter).

The names below are imported on first use: ``import alerts`` loads no database layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.lazy import lazy_exports

if TYPE_CHECKING:
    from alerts.audit import case_record
    from alerts.calendar import WorkingCalendar
    from alerts.case import Case
    from alerts.cases import Applied, CaseBook
    from alerts.metrics import CaseMetrics
    from alerts.noise import Silence, add_silence
    from alerts.notify import Notifier, Routes
    from alerts.outbox import Dispatcher, OutboxMetrics
    from alerts.policy import AlertPolicy, EnterpriseInfo
    from alerts.stage import AlertStage
    from alerts.status import enterprise_status
    from alerts.workflow import Actor, WorkflowError

_HOMES = {
    "case_record": "alerts.audit",
    "WorkingCalendar": "alerts.calendar",
    "Case": "alerts.case",
    "Applied": "alerts.cases",
    "CaseBook": "alerts.cases",
    "CaseMetrics": "alerts.metrics",
    "Silence": "alerts.noise",
    "add_silence": "alerts.noise",
    "Notifier": "alerts.notify",
    "Routes": "alerts.notify",
    "Dispatcher": "alerts.outbox",
    "OutboxMetrics": "alerts.outbox",
    "AlertPolicy": "alerts.policy",
    "EnterpriseInfo": "alerts.policy",
    "AlertStage": "alerts.stage",
    "enterprise_status": "alerts.status",
    "Actor": "alerts.workflow",
    "WorkflowError": "alerts.workflow",
}

__all__ = [
    "Actor",
    "AlertPolicy",
    "AlertStage",
    "Applied",
    "Case",
    "CaseBook",
    "CaseMetrics",
    "Dispatcher",
    "EnterpriseInfo",
    "Notifier",
    "OutboxMetrics",
    "Routes",
    "Silence",
    "WorkflowError",
    "WorkingCalendar",
    "add_silence",
    "case_record",
    "enterprise_status",
]


__getattr__ = lazy_exports(__name__, _HOMES)
