"""Scripted incidents: what goes wrong, where and when, so that a demo run can be checked
against the cases it should open.

An incident changes the values the traffic generator produces for one source over a time
window (simulated epoch seconds). Each says which rule it should trigger and at which tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nonsite.config.model import Config, EnterpriseConfig
from rules.timebase import CHINA_OFFSET

Kind = Literal["exceed", "constant", "control_off"]


@dataclass(frozen=True)
class Incident:
    name: str  # in the field's words
    kind: Kind
    enterprise_id: str
    source_id: str  # outlet, or the control meter
    start: int
    end: int
    factor: str | None = None
    expect_rule: str = ""
    expect_tier: Literal["warning", "alarm"] = "alarm"

    def active(self, t: int) -> bool:
        return self.start <= t < self.end


def value_override(
    incidents: list[Incident], key: tuple[str, str], code: str, t: int, limit: float | None
) -> float | None:
    """The value an incident imposes on an outlet's factor at ``t``, if any."""
    for i in incidents:
        if (i.enterprise_id, i.source_id) != key or not i.active(t):
            continue
        if i.factor is not None and i.factor != code:
            continue
        if i.kind == "exceed" and limit is not None:
            return round(limit * 1.8, 2)  # 超标: 0.8 times over the limit
        if i.kind == "constant":
            return 12.34  # 恒值: the analyser repeats one value
    return None


def power_off(incidents: list[Incident], meter_id: str, enterprise_id: str, t: int) -> bool:
    """Whether an incident switches this (control) meter off at ``t``."""
    return any(
        i.kind == "control_off"
        and i.enterprise_id == enterprise_id
        and i.source_id == meter_id
        and i.active(t)
        for i in incidents
    )


def _in_working_hours(t: int) -> int:
    """The first hour at or after ``t`` between 09:00 and 19:00 China time (factories run
    06:00–22:00 in the simulation)."""
    while not 9 <= ((t + CHINA_OFFSET) % 86400) // 3600 < 19:
        t += 3600
    return t


def demo_incidents(config: Config, start: int) -> list[Incident]:
    """Incidents for the first enterprise of each kind, from ``start`` (simulated time) on;
    each begins on an hour boundary so that its hours are whole."""
    h = start - start % 3600 + 3600
    first: dict[str, EnterpriseConfig] = {}
    for e in config.enterprises:
        first.setdefault(e.industry, e)
    out: list[Incident] = []
    power = first.get("thermal_power")
    if power is not None and power.outlets:
        out.append(
            Incident(
                "小时超标 (SO2)",
                "exceed",
                power.id,
                power.outlets[0].id,
                h + 3600,
                h + 3 * 3600,
                factor="a21026",
                expect_rule="A3",
            )
        )
    boiler = first.get("heating")
    if boiler is not None and boiler.outlets:
        out.append(
            Incident(
                "恒值 (NOx 分析仪)",
                "constant",
                boiler.id,
                boiler.outlets[0].id,
                h,
                h + 3 * 3600,
                factor="a21002",
                expect_rule="B2",
                expect_tier="warning",
            )
        )
    factory = first.get("manufacturing")
    controls = [m for m in factory.meters if m.role == "control"] if factory else []
    if factory is not None and controls:
        t = _in_working_hours(h + 3600)
        out.append(
            Incident(
                "产污治污不同步 (除尘器停运)",
                "control_off",
                factory.id,
                controls[0].id,
                t,
                t + 2 * 3600,
                expect_rule="C1",
                expect_tier="warning",
            )
        )
    return out
