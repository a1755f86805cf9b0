"""What the alert stage is configured with: deadlines, escalation, noise control, and what it
knows about each enterprise. Every number here is a default to keep configurable ([I] in the
rule catalogue, §D2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from alerts.calendar import WorkingCalendar


@dataclass(frozen=True)
class EnterpriseInfo:
    id: str
    name: str
    positive_list: bool = False  # 正面清单: a non-site check before any on-site order
    brigade: str | None = None  # the brigade that normally takes its work orders
    region: str = ""
    industry: str = ""
    source_names: Mapping[str, str] = field(default_factory=dict)  # outlet/meter id → name
    location: tuple[float, float] | None = None  # (longitude, latitude), to locate clues


@dataclass(frozen=True)
class ClueMatching:
    """How a clue is located and matched to open cases (alerts.clues) [I]."""

    radius_m: float = 500.0  # a clue's coordinates name the nearest enterprise this close
    window_h: float = 12.0  # an open case seen this close to the clue's time is its case
    data_before_h: float = 6.0  # the monitoring data recorded with a clue: from before ...
    data_after_h: float = 2.0  # ... to after its time


@dataclass(frozen=True)
class AlertPolicy:
    explain_hours: float = 24.0  # T_explain: the enterprise's answer to a reminder
    feedback_working_days: int = 3  # T_feedback: the brigade's report after dispatch
    recheck_days: int = 30  # 回头看 window after closing, and when the active re-check is due
    recheck_method: str = "off_site"  # how a re-check is made: from the data, or on site
    rectify_working_days: int = 15  # 整改: the deadline of a rectification ordered
    rectify_check_days: int = 7  # 整改核查 off site: no recurrence in this many days
    major_fine_yuan: float = 100_000.0  # a fine this large needs a legal review (法制审核)
    escalate_unexplained: int = 3  # this many unexplained warnings for one source ...
    escalate_window_days: int = 30  # ... within this many days become an alarm
    # A condition back this soon after resolving reopens its case: three hours, so that an
    # hourly rule clearing for an hour or two and firing again stays one problem.
    flap_window_s: int = 3 * 3600
    # The tiers whose undispatched case a clear resolves. An alarm (an exceedance, say) that
    # has ended is still a violation to verify and dispatch: it stays in the queue, marked
    # "condition cleared".
    resolve_on_clear: frozenset[str] = frozenset({"warning"})
    evidence_trail: int = 20  # findings kept on a case (the findings table keeps them all)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    enterprises: Mapping[str, EnterpriseInfo] = field(default_factory=dict)
    clues: ClueMatching = field(default_factory=ClueMatching)
    dashboard_url: str = "http://127.0.0.1:8080"

    def enterprise(self, enterprise_id: str) -> EnterpriseInfo:
        info = self.enterprises.get(enterprise_id)
        return info if info is not None else EnterpriseInfo(enterprise_id, enterprise_id)
