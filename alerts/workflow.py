"""The linkage workflow (感知 → 派单 → 执法) as a table: which action moves a case from which
states to which, and which role may take it.

  sensed ─remind─▶ reminded ─explain─▶ explained ─verify─▶ verified ─dispatch─▶ dispatched
  (warnings are reminded      (enterprise)        (monitor)         (supervisor:      │
   automatically; alarms go to the dispatch queue and may be        work order)  arrive
   dispatched unverified)                                                  (enforcer) ▼
  verify "false_positive" (monitor) ─▶ closed                                      on_site
  a clear before dispatch (system) ──▶ resolved                      report (enforcer) │
                                   closed ◀─close (supervisor)─ reported ◀────────────┘
  回头看: the rule fires again within the re-check window after closing → reopen → sensed

Anyone who works an open case may take it (acknowledge, 认领): the case then names who
handles it, until someone else takes it or it is dispatched (the brigade's officer then takes
it, confirming receipt). An enforcer takes only cases dispatched to its brigade.

The system (the service itself) takes the automatic steps: reminders, escalations, resolving a
case whose condition cleared, reopening a recurrence. Only the roles named here move a case;
an administrator configures the service but does not decide cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from alerts.case import Case

State = Literal[
    "sensed",
    "reminded",
    "explained",
    "verified",
    "dispatched",
    "on_site",
    "reported",
    "closed",
    "resolved",
]
# township 镇街 (submits and follows the clues of its area), intake (a system sending clues)
# legal 法制审核 (reviews the major decisions before they take effect)
Role = Literal[
    "monitor",
    "supervisor",
    "enforcer",
    "enterprise",
    "admin",
    "township",
    "intake",
    "legal",
    "system",
]
Action = Literal[
    "remind",
    "explain",
    "verify",
    "dispatch",
    "arrive",
    "report",
    "close",
    "comment",
    "escalate",
    "acknowledge",
    "resolve",
    "reopen",
]

# The rule of a case a clue opened (alerts.clues): its kind is "clue", not a rule's.
CLUE_RULE: Final = "CLUE"
# The rule of a case a 双随机 draw opened (alerts.inspections): an unannounced inspection.
INSPECTION_RULE: Final = "INSPECT"
# Cases no rule's data opened: never put to the enterprise, which does not see them (a
# complaint is not shown to the enterprise it is about; an inspection is unannounced).
HIDDEN_FROM_ENTERPRISE: Final = frozenset({CLUE_RULE, INSPECTION_RULE})

OPEN_STATES: Final = frozenset(
    {"sensed", "reminded", "explained", "verified", "dispatched", "on_site", "reported"}
)
BEFORE_DISPATCH: Final = frozenset({"sensed", "reminded", "explained", "verified"})
WITH_BRIGADE: Final = frozenset({"dispatched", "on_site", "reported"})
TERMINAL: Final = frozenset({"closed", "resolved"})

VERIFY_OUTCOMES: Final = ("confirmed", "false_positive")
REPORT_OUTCOMES: Final = (
    "violation_confirmed",  # 违法事实成立
    "not_confirmed",  # 未发现违法
    "rectification_ordered",  # 责令改正
    "check_failed",  # 非现场核查未通过: escalates to an on-site work order
)
WORK_ORDER_KINDS: Final = ("on_site", "non_site_check")

STATE_NAMES: Final = {
    "sensed": "已感知",
    "reminded": "已提醒",
    "explained": "已说明",
    "verified": "已核实",
    "dispatched": "已派单",
    "on_site": "现场检查",
    "reported": "已反馈",
    "closed": "已办结",
    "resolved": "已消除",
}
ACTION_NAMES: Final = {
    "remind": "提醒企业",
    "explain": "企业说明",
    "verify": "平台核实",
    "dispatch": "派单",
    "arrive": "到达现场",
    "report": "现场反馈",
    "close": "办结",
    "comment": "备注",
    "escalate": "升级",
    "acknowledge": "认领",
    "resolve": "自动消除",
    "reopen": "回头看复发",
}


# Every action the audit trail holds, by its Chinese name: the workflow's, and the system's
# own entries (a case sensed, its condition cleared, a notification sent).
EVENT_NAMES: Final = {
    **ACTION_NAMES,
    "sense": "感知",
    "condition_cleared": "条件消除",
    "notify": "通知",
    "clue": "线索并入",
    "attach": "上传证据",
    "export_bundle": "导出证据包",
    "rectify_order": "责令整改",
    "rectify_report": "整改完成报告",
    "rectify_verify": "整改核查",
    "rectify_close": "整改销号",
    "rectify_overdue": "整改逾期",
    "recheck_scheduled": "安排回头看",
    "recheck": "回头看复查",
    "recheck_on_site": "转现场复查",
    "decide": "处理决定",
    "legal_review": "法制审核",
}


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[str]
    target: State | None  # None: the state does not change
    roles: frozenset[str]


def _t(action: Action, sources: set[str], target: State | None, *roles: Role) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles))


TRANSITIONS: Final = {
    t.action: t
    for t in (
        _t("remind", {"sensed"}, "reminded", "system", "monitor"),
        _t("explain", {"sensed", "reminded"}, "explained", "enterprise"),
        _t("verify", {"sensed", "reminded", "explained"}, "verified", "monitor"),
        _t("dispatch", {"sensed", "reminded", "explained", "verified"}, "dispatched", "supervisor"),
        _t("arrive", {"dispatched"}, "on_site", "enforcer"),
        _t("report", {"dispatched", "on_site"}, "reported", "enforcer"),
        _t("close", {"reported", "verified"}, "closed", "supervisor"),
        _t(
            "comment",
            set(OPEN_STATES | TERMINAL),
            None,
            "monitor",
            "supervisor",
            "enforcer",
            "enterprise",
        ),
        _t("escalate", set(OPEN_STATES), None, "system", "monitor", "supervisor"),
        _t("acknowledge", set(OPEN_STATES), None, "monitor", "supervisor", "enforcer"),
        _t("resolve", set(BEFORE_DISPATCH), "resolved", "system"),
        _t("reopen", {"closed", "resolved"}, "sensed", "system"),
    )
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a person with a role, scoped to an enterprise or a brigade where the role is."""

    name: str
    role: Role
    enterprise_id: str | None = None  # the enterprise role's own enterprise
    brigade: str | None = None  # the enforcer role's brigade
    area: str | None = None  # the township role's area (镇街)


SYSTEM: Final = Actor("nonsite", "system")


class WorkflowError(Exception):
    """A refused action; ``code`` is stable for APIs, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check(action: str, state: str, actor: Actor) -> Transition:
    """The transition ``actor`` may take from ``state``, or a WorkflowError saying why not."""
    t: Transition | None = TRANSITIONS.get(action)  # type: ignore[call-overload]
    if t is None:
        raise WorkflowError("unknown_action", f"unknown action {action!r}")
    if actor.role not in t.roles:
        allowed = ", ".join(sorted(t.roles))
        raise WorkflowError(
            "role_not_allowed", f"the {actor.role} role may not {action}; allowed: {allowed}"
        )
    if state not in t.sources:
        allowed = ", ".join(sorted(t.sources))
        raise WorkflowError(
            "invalid_transition",
            f"cannot {action} a case that is {state} ({STATE_NAMES.get(state, state)}); "
            f"{action} applies to: {allowed}",
        )
    return t


def permitted(case: Case, action: str, actor: Actor) -> Transition:
    """The transition ``actor`` may take on ``case`` now, or a WorkflowError saying why not:
    the workflow's table, the actor's scope, and what the case itself allows. The API offers
    a person exactly the actions this permits."""
    if actor.role == "enterprise" and actor.enterprise_id != case.enterprise_id:
        raise WorkflowError("out_of_scope", "an enterprise acts only on its own cases")
    if actor.role == "enforcer" and case.state in WITH_BRIGADE and actor.brigade != case.brigade:
        raise WorkflowError("out_of_scope", f"the case is assigned to brigade {case.brigade}")
    t = check(action, case.state, actor)
    if action in ("remind", "explain") and case.rule == INSPECTION_RULE:
        raise WorkflowError(
            "inspection_case",
            "a 双随机 inspection is unannounced: it is not put to the enterprise",
        )
    if action in ("remind", "explain") and case.rule == CLUE_RULE:
        raise WorkflowError(
            "clue_case",
            "a case a clue opened is not put to the enterprise (a complaint is not shown to "
            "the enterprise it is about): verify it, then dispatch it",
        )
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
