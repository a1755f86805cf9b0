"""A case as read from the store, and the bounded evidence it carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row

from ingest.china_time import stored_utc_or_none
from rules.findings import Finding
from rules.timebase import iso

TIERS = {"warning": 1, "alarm": 2}


@dataclass
class Evidence:
    """The findings behind a case: the first, the latest ``trail`` ones, and per factor whether
    its condition still holds and its peak (the findings table keeps every finding)."""

    first: dict[str, Any] | None = None
    trail: list[dict[str, Any]] = field(default_factory=list)
    active: list[str] = field(default_factory=list)  # factors ("-" for none) still firing
    peaks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def loads(cls, text: str) -> Evidence:
        data = json.loads(text)
        return cls(
            data.get("first"), data.get("trail", []), data.get("active", []), data.get("peaks", {})
        )

    def dumps(self) -> str:
        return json.dumps(
            {"first": self.first, "trail": self.trail, "active": self.active, "peaks": self.peaks},
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )

    def add(self, f: Finding, keep: int) -> None:
        entry = {
            "finding": f.id,
            "state": f.state,
            "factor": f.factor,
            "tier": f.tier,
            "window_start": iso(f.window_start),
            "window_end": iso(f.window_end),
            "value": f.value,
            "limit": f.limit,
            "unit": f.unit,
            "multiple": f.multiple,
            "params": f"{f.params_id}@{f.params_version}",
            "detail": f.evidence,
        }
        if self.first is None:
            self.first = entry
        self.trail = [*self.trail, entry][-keep:]
        factor = f.factor or "-"
        if f.state == "fire":
            if factor not in self.active:
                self.active = [*self.active, factor]
            peak = self.peaks.get(factor)
            if f.value is not None and (peak is None or _above(f, peak)):
                self.peaks[factor] = entry
        elif factor in self.active:
            self.active = [a for a in self.active if a != factor]


def _above(f: Finding, peak: dict[str, Any]) -> bool:
    if f.multiple is not None and peak.get("multiple") is not None:
        return bool(f.multiple > peak["multiple"])
    return f.value is not None and peak.get("value") is not None and f.value > peak["value"]


def record_json(record: object) -> dict[str, Any]:
    """A record's fields (a dataclass of the store) as JSON values: instants and dates as ISO
    8601."""
    return {
        k: v.isoformat() if isinstance(v, (datetime, date)) else v for k, v in vars(record).items()
    }


@dataclass(frozen=True)
class Case:
    id: int
    enterprise_id: str
    source_id: str
    rule: str
    factor: str | None
    tier: str
    state: str
    condition: str
    positive_list: bool
    opened_at: datetime
    first_seen: datetime
    last_seen: datetime
    count: int
    value: float | None
    peak_value: float | None
    peak_multiple: float | None
    limit_value: float | None
    unit: str
    evidence: Evidence
    recurrence: int
    flaps: int
    escalation: str | None
    explain_due: datetime | None
    feedback_due: datetime | None
    overdue: str | None
    brigade: str | None
    assignee: str | None
    disposition: str | None
    case_number: str | None
    closed_at: datetime | None
    recheck_until: datetime | None
    updated_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: Row[Any]) -> Case:
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> Case:
        evidence = m["evidence"]
        return cls(
            id=m["id"],
            enterprise_id=m["enterprise_id"],
            source_id=m["source_id"],
            rule=m["rule"],
            factor=m["factor"],
            tier=m["tier"],
            state=m["state"],
            condition=m["condition"],
            positive_list=bool(m["positive_list"]),
            opened_at=_must(m["opened_at"]),
            first_seen=_must(m["first_seen"]),
            last_seen=_must(m["last_seen"]),
            count=m["count"],
            value=m["value"],
            peak_value=m["peak_value"],
            peak_multiple=m["peak_multiple"],
            limit_value=m["limit_value"],
            unit=m["unit"],
            evidence=evidence if isinstance(evidence, Evidence) else Evidence.loads(evidence),
            recurrence=m["recurrence"],
            flaps=m["flaps"],
            escalation=m["escalation"],
            explain_due=stored_utc_or_none(m["explain_due"]),
            feedback_due=stored_utc_or_none(m["feedback_due"]),
            overdue=m["overdue"],
            brigade=m["brigade"],
            assignee=m["assignee"],
            disposition=m["disposition"],
            case_number=m["case_number"],
            closed_at=stored_utc_or_none(m["closed_at"]),
            recheck_until=stored_utc_or_none(m["recheck_until"]),
            updated_at=_must(m["updated_at"]),
            version=m["version"],
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Evidence):
                value = json.loads(value.dumps())
            out[name] = value
        return out


def _must(value: datetime | None) -> datetime:
    out = stored_utc_or_none(value)
    assert out is not None
    return out
