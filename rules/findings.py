"""Findings: what the rules conclude, with the evidence that justifies it.

A finding either *fires* (the condition holds for this window) or *clears* (it held before and
has stopped). Its identity is deterministic (rule, source, factor, window, state), so that a
re-evaluated window gives the same finding again (idempotent downstream) and the streaming
and batch paths can be compared finding by finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from inspect import signature
from typing import Any, Literal

from rules.timebase import iso

State = Literal["fire", "clear"]
Tier = Literal["warning", "alarm"]

# Rule ids and what they mean (docs/rules.md has the catalogue with sources).
RULES: dict[str, str] = {
    "A1D": "device hour value differs from the one recomputed from its data (小时值与分钟数据不符)",
    "A2": "converted concentration cannot be computed, O2 invalid or >= 21 % (无法折算)",
    "A3": "hourly exceedance (超标): valid hourly average above the limit",
    "A4": "daily exceedance (日均值超标): valid daily average above the limit",
    "A4V": "a value outside the allowed range, e.g. pH 6-9 (超出允许范围)",
    "A5-1": "incinerator daily exceedance (垃圾焚烧日均值超标), marks excused up to yearly caps",
    "A5-2": "furnace temperature: more than 5 five-minute means below 850 ℃ in a day (炉温不达标)",
    "A5-3": "a process value outside its normal band: furnace below 850 ℃ for five minutes or "
    "its hourly mean above 1200 ℃, a bag filter's pressure drop outside 500-2000 Pa (工况预警)",
    "A7": "a marking longer than its type allows per occurrence (标记时长超限)",
    "A7-2": "data say the source is stopped while its production power runs (标记与用电不符)",
    "A8": "under 95 % of a month's valid hours within the ultra-low target (超低限值小时达标率低)",
    "B1": "zero values while producing (零值)",
    "B2": "constant values (恒值)",
    "B3": "negative value (负值)",
    "B4": "over the instrument range or flag T (超量程)",
    "B5": "value outside its physical bounds (数据不合理)",
    "B6": "sudden jump of the hourly value (突变)",
    "B7": "hour data missing or incomplete (小时数据缺失)",
    "B8": "data logger offline (数采仪离线)",
    "B8-1": "O2 above the reference of similar outlets (氧含量高于同类排口)",
    "B8-2": "O2 outside the band of normal combustion (氧含量超出正常燃烧范围)",
    "B8-3": "O2 near ambient while flue gas flows (氧含量异常偏高)",
    "B8-4": "flue gas too hot for a running wet desulphurisation (烟温与脱硫运行不符)",
    "B8-5": "reported converted value differs from the recomputed one (折算值不符)",
    "B8-6": "flow below its lower bound while production runs (流量异常偏低)",
    "B8-7": "a calibration-like plateau without a calibration flag (疑似未标记校准)",
    "B8-8": "one factor reports another factor's series (数据雷同)",
    "B9": "fault, maintenance or calibration flags too long (设备状态标记超时)",
    "B10": "low effective transmission rate in the day (有效传输率低)",
    "B11": "the record interval differs from the configured one (数据间隔与配置不符)",
    "C1": "production on while its control device is off (产污治污不同步)",
    "C2": "control device started late (治污滞后开启)",
    "C3": "control device stopped early (治污提前关闭)",
    "C4": "control device at low load (治污低负荷)",
    "C5": "production during an emergency order (停限产违规)",
    "C6": "production in a staggered-production window (错峰生产违规)",
    "C7": "production above its historical level: capacity expanded without permit (擅自扩大产能)",
    "C8": "meter offline (电表离线)",
    "C8-2": "meter reads zero while the outlet's CEMS shows production (电表零值)",
}


@dataclass(frozen=True, slots=True, init=False)
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

    # Written by hand, why: the ``__init__`` dataclasses write for a frozen class sets each
    # field through ``object.__setattr__``, 3.6 µs a finding, and a replay of a month makes
    # 160,000 (half a second of the interpreter's time). This one sets them through the
    # slots' own descriptors (1.7 µs); still frozen. Its parameters are the fields, in
    # their order (checked below, at import).
    def __init__(
        self,
        rule: str,
        state: State,
        enterprise_id: str,
        source_id: str,
        factor: str | None,
        window_start: int,
        window_end: int,
        tier: Tier | None = None,
        value: float | None = None,
        limit: float | None = None,
        unit: str = "",
        multiple: float | None = None,
        params_id: str = "",
        params_version: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> None:
        _rule(self, rule)
        _state(self, state)
        _enterprise_id(self, enterprise_id)
        _source_id(self, source_id)
        _factor(self, factor)
        _window_start(self, window_start)
        _window_end(self, window_end)
        _tier(self, tier)
        _value(self, value)
        _limit(self, limit)
        _unit(self, unit)
        _multiple(self, multiple)
        _params_id(self, params_id)
        _params_version(self, params_version)
        _evidence(self, {} if evidence is None else evidence)

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


# Each field's slot descriptor's setter, in the order of the fields (``Finding.__init__``).
(
    _rule,
    _state,
    _enterprise_id,
    _source_id,
    _factor,
    _window_start,
    _window_end,
    _tier,
    _value,
    _limit,
    _unit,
    _multiple,
    _params_id,
    _params_version,
    _evidence,
) = (getattr(Finding, f.name).__set__ for f in fields(Finding))
assert [f.name for f in fields(Finding)] == list(signature(Finding).parameters), (
    "Finding.__init__ takes the fields in their order"
)
