"""The API's request and response bodies: one pydantic model each, so that the OpenAPI
document and the validation are the same thing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ingest.china_time import CHINA_TZ

Role = Literal[
    "monitor", "supervisor", "enforcer", "enterprise", "admin", "township", "intake", "legal"
]


def china_if_naive(value: datetime) -> datetime:
    """An instant given without a UTC offset is China time, as everywhere in the API (and the
    CLI): the store keeps instants, and a naive time names none."""
    return value if value.utcoffset() is not None else value.replace(tzinfo=CHINA_TZ)


# A time the API takes (in a body or a query): ISO 8601, with an offset or else China time.
Instant = Annotated[
    datetime,
    AfterValidator(china_if_naive),
    Field(description="ISO 8601; without a UTC offset it is China time (+08:00)"),
]


# Limits of what the API takes (docs/api.md, "Limits"); the request models' own fields carry
# theirs inline.
MAX_REFS = 20
RefName = Annotated[str, Field(min_length=1, max_length=64)]
RefValue = Annotated[str, Field(max_length=1000)]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(ApiModel):
    code: str = Field(description="stable machine-readable reason, e.g. role_not_allowed")
    message: str


class LoginIn(ApiModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class MeOut(ApiModel):
    username: str
    display_name: str
    role: Role
    enterprise_id: str | None
    brigade: str | None
    area: str | None = Field(default=None, description="a township user's area (镇街)")


class OutletOut(ApiModel):
    id: str
    name: str
    kind: Literal["gas", "water"]
    mn: str


class MeterOut(ApiModel):
    id: str
    name: str
    role: Literal["production", "control"]
    rated_kw: float | None


class MarkingOut(ApiModel):
    outlet: str
    type: str
    start: datetime
    end: datetime
    factor: str | None
    reason: str


class MarkingWithEnterpriseOut(MarkingOut):
    enterprise_id: str
    source: Literal["config", "declared"] = "config"
    declared_by: str | None = None


class MarkingIn(ApiModel):
    enterprise_id: str | None = Field(
        default=None, max_length=64, description="default: the caller's"
    )
    outlet: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=32, description="startup, shutdown, fault, …")
    start: Instant
    end: Instant
    factor: str | None = Field(default=None, max_length=16)
    reason: str = Field(min_length=1, max_length=1000)


class EnterpriseOut(ApiModel):
    id: str
    name: str
    region: str
    industry: str
    positive_list: bool
    brigade: str | None
    status: Literal["alarm", "offline", "warning", "never_reported", "stopped", "normal"]
    status_zh: str
    open_alarms: int
    open_warnings: int
    unreported_sources: list[str] = Field(
        description="outlets and meters (ids) from which nothing has ever been received "
        "(从未上报); all of them: the status is never_reported (未上线)"
    )
    outlets: list[OutletOut]
    meters: list[MeterOut]
    markings: list[MarkingOut]


class QuantityOut(ApiModel):
    """What the case measures, in its rule family's own terms (alerts/quantity.py)."""

    name: str = Field(
        description="e.g. 小时均值 (A3), 标记持续时长 (B9), 有效传输率 (B10), 不同步时长 (C1)"
    )
    value: float | None
    unit: str = Field(description="the value's and the limit's: mg/m3, h, min, s, %, 次, kW …")
    limit_name: str = Field(
        description="the threshold's name, e.g. 排放限值, 预警值, 预警时长, 最低要求; empty "
        "when the rule states none"
    )
    limit: float | None
    exceedance: bool = Field(
        description="the limit is an emission limit (A3, A4, A5-1): 超标倍数 applies"
    )
    since: datetime = Field(description="the time the rule looked at (the chart marks it) …")
    until: datetime = Field(description="… to this instant")
    ongoing: bool = Field(description="an episode that still holds: its duration is so far")


class CaseOut(ApiModel):
    id: int
    enterprise_id: str
    enterprise_name: str
    source_id: str
    source_name: str
    kind: Literal["rule", "clue", "inspection"] = Field(
        description="rule: opened by the rules' findings; clue: opened by a clue (rule CLUE); "
        "inspection: a 双随机 draw's unannounced inspection (rule INSPECT)"
    )
    rule: str
    rule_name: str
    factor: str | None
    factor_name: str
    tier: Literal["warning", "alarm"]
    tier_zh: str
    state: str
    state_zh: str
    condition: Literal["active", "cleared"]
    positive_list: bool
    opened_at: datetime
    first_seen: datetime
    last_seen: datetime
    count: int
    value: float | None
    peak_value: float | None
    peak_multiple: float | None = Field(
        description="the largest 超标倍数; only for exceedances (quantity.exceedance)"
    )
    limit: float | None
    unit: str
    quantity: QuantityOut
    recurrence: int
    flaps: int
    escalation: str | None
    explain_due: datetime | None
    feedback_due: datetime | None
    due_at: datetime | None = Field(
        description="the deadline the case is waiting on now: explain_due while reminded, "
        "feedback_due while dispatched or on site, else none"
    )
    due_kind: Literal["explanation", "feedback"] | None
    overdue: str | None
    brigade: str | None
    assignee: str | None = Field(description="who handles it (认领); none until someone takes it")
    disposition: str | None
    case_number: str | None
    closed_at: datetime | None
    recheck_until: datetime | None
    version: int


class CaseEventOut(ApiModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str
    refs: dict[str, Any]


class WorkOrderOut(ApiModel):
    id: int
    case_id: int
    brigade: str
    kind: Literal["on_site", "non_site_check"]
    state: str
    created_at: datetime
    created_by: str
    due_at: datetime
    overdue: bool
    outcome: str | None
    case_number: str | None
    reported_at: datetime | None


class OrderOut(ApiModel):
    """An emergency (停限产) or staggered-production (错峰) order naming the case's device."""

    kind: Literal["emergency", "staggered"]
    reference: str
    start: datetime
    end: datetime
    daily: str | None = Field(description="the daily window (China time) of a staggered order")


class CaseDetailOut(ApiModel):
    case: CaseOut
    evidence: dict[str, Any]
    work_order: WorkOrderOut | None
    events: list[CaseEventOut]
    actions: list[str] = Field(description="the workflow actions the caller may take now")
    source_kind: Literal["outlet", "meter", "other"] = Field(
        description="what the case's source is: an outlet (its series: .../outlets/{id}/series) "
        "or a power meter (.../meters/{id}/series)"
    )
    meters: list[str] = Field(
        description="for a meter's case: the meters to chart together, the case's own first, "
        "then the control devices serving it or the production devices it serves"
    )
    orders: list[OrderOut] = Field(description="orders that name the case's device")


class CasePage(ApiModel):
    total: int
    items: list[CaseOut]


class ActionIn(ApiModel):
    note: str = Field(default="", max_length=4000)
    outcome: str | None = Field(default=None, max_length=32)
    brigade: str | None = Field(default=None, max_length=64)
    kind: Literal["on_site", "non_site_check"] | None = None
    due_at: Instant | None = None
    case_number: str | None = Field(default=None, max_length=64)
    refs: dict[RefName, RefValue] = Field(
        default_factory=dict,
        max_length=MAX_REFS,
        description="references kept in the audit trail, e.g. a photo's or a document's id",
    )
    version: int | None = Field(
        default=None, ge=1, le=2**62, description="the case version the caller saw"
    )


class BulkVerifyIn(ApiModel):
    case_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=500)
    outcome: Literal["confirmed", "false_positive"]
    note: str = Field(default="", max_length=4000)


class BulkResultOut(ApiModel):
    done: list[int]
    refused: dict[int, ErrorOut]


class SilenceIn(ApiModel):
    reason: str = Field(min_length=1, max_length=1000)
    starts_at: Instant | None = None
    ends_at: Instant
    enterprise_id: str | None = Field(default=None, max_length=64)
    source_id: str | None = Field(default=None, max_length=64)
    rule: str | None = Field(default=None, max_length=16)


class SilenceOut(ApiModel):
    id: int
    enterprise_id: str | None
    source_id: str | None
    rule: str | None
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime
    active: bool = Field(default=False, description="in force now")
    edited_by: str | None = Field(default=None, description="who last changed it, if anyone")
    ended_by: str | None = Field(default=None, description="who ended it early, if anyone")


class SilenceEditIn(ApiModel):
    """What to change in a silence that has not ended; omitted fields stay."""

    reason: str | None = Field(default=None, min_length=1, max_length=1000)
    starts_at: Instant | None = Field(
        default=None, description="only while the silence has not started"
    )
    ends_at: Instant | None = Field(default=None, description="a later or earlier end, not past")


class SilenceEventOut(ApiModel):
    at: datetime
    actor: str
    role: str | None = Field(description="null for the addition: the silence keeps no role")
    action: Literal["create", "edit", "end"]
    changes: dict[str, list[Any]] = Field(description="field → [before, after]")


class SilenceDetailOut(SilenceOut):
    events: list[SilenceEventOut] = Field(description="its addition, then each change")


class BrigadeOut(ApiModel):
    id: str
    name: str


class DeadLetterOut(ApiModel):
    id: int
    archive_seq: int
    received_at: datetime
    topic: str
    reason: str = Field(description="a stable reason code (docs/ingest.md)")
    detail: str = Field(description="the technical detail, in English")
    mn: str | None
    enterprise_id: str | None = Field(
        default=None, description="whose logger or meter sent it; null: nobody configured"
    )
    enterprise_name: str | None = None
    source_id: str | None = Field(default=None, description="the outlet or meter")
    source_name: str | None = None
