"""Findings: what the rules conclude, with the evidence that justifies it.

A finding either *fires* (the condition holds for this window) or *clears* (it held before and
has stopped). Its identity is deterministic (rule, source, factor, window, state), so that a
re-evaluated window gives the same finding again (idempotent downstream) and the streaming
and batch paths can be compared finding by finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rules.timebase import iso

State = Literal["fire", "clear"]
Tier = Literal["warning", "alarm"]

# Rule ids and what they mean (docs/rules.md has the catalogue with sources).
RULES: dict[str, str] = {
    "A1D": "device hour/day value differs from the value recomputed from its data",
    "A2": "converted concentration cannot be computed (O2 invalid or >= 21 %)",
    "A3": "hourly exceedance (超标): valid hourly average above the limit",
    "A4": "daily exceedance (日均值超标): valid daily average above the limit",
    "A4V": "value outside the allowed range (e.g. pH 6-9)",
}


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    state: State
    enterprise_id: str
    source_id: str  # the outlet or meter
    factor: str | None
    window_start: int  # epoch seconds
    window_end: int
    tier: Tier | None = None
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    multiple: float | None = None  # 超标倍数 (value - limit) / limit
    params_id: str = ""
    params_version: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        source = f"{self.enterprise_id}/{self.source_id}"
        return f"{self.rule}:{source}:{self.factor or '-'}:{self.window_start}:{self.state}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "state": self.state,
            "tier": self.tier,
            "enterprise_id": self.enterprise_id,
            "source_id": self.source_id,
            "factor": self.factor,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "multiple": self.multiple,
            "params_id": self.params_id,
            "params_version": self.params_version,
            "evidence": self.evidence,
        }
