"""Scripted incidents: what goes wrong, where and when, so that a demo run can be checked
against the cases it should open.

An incident changes what the traffic generator sends for one source over a time window
(simulated epoch seconds): the values or flags of a factor, whether the logger sends at all,
whether a meter reads its device on, or the frames themselves (late, duplicated, corrupted).
Each says which rules it should trigger at which tier; those that should open no case
(late, duplicate and corrupted frames) say what the service should count instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from nonsite.config.load import parse_config
from nonsite.config.model import Config, EnterpriseConfig
from rules.timebase import CHINA_OFFSET, DAY, HOUR

Kind = Literal[
    "exceed",  # 小时超标: the factor at 1.8 times its hourly limit
    "daily_exceed",  # 日均值超标: the factor at 1.3 times its daily limit all day
    "o2_dilution",  # 稀释排放: air let in, O2 near ambient, the pollutants diluted
    "constant",  # 恒值: the analyser repeats one value
    "zero",  # 零值: the analyser reads 0 while the flue gas flows
    "offline",  # 数采仪离线: the logger sends nothing
    "fault_flag",  # 故障标记: the factor flagged D (fault) and never recovering
    "control_off",  # 治污设施停运: the control meter reads its device off
    "control_late",  # 治污滞后开启: the control device starts minutes after production
    "emergency",  # 停限产期间生产: production runs through an emergency order
    "late_duplicate",  # 迟到/重复报文: frames sent twice, an hour frame re-sent hours later
    "corrupt",  # 报文损坏: one frame garbled in transit (then re-sent intact)
]
Tier = Literal["warning", "alarm"]
FOREVER = 2**40  # an incident that lasts until the run ends


@dataclass(frozen=True)
class Incident:
    name: str  # in the field's words
    kind: Kind
    enterprise_id: str
    source_id: str  # outlet, or the meter
    start: int
    end: int
    factor: str | None = None
    # The (rule, tier) of each case it should open; empty when it should open none.
    expect: tuple[tuple[str, Tier], ...] = ()
    # What the service should count instead (readings outcome or dead-letter), if anything.
    expect_counted: str = ""

    def active(self, t: int) -> bool:
        return self.start <= t < self.end

    def affects(self, key: tuple[str, str], code: str | None, t: int) -> bool:
        return (
            (self.enterprise_id, self.source_id) == key
            and self.active(t)
            and (self.factor is None or code is None or self.factor == code)
        )

    def describe(self) -> str:
        def china(t: int) -> str:
            return datetime.fromtimestamp(t + CHINA_OFFSET, UTC).strftime("%m-%d %H:%M")

        until = "起持续" if self.end >= FOREVER else f"–{china(self.end)}"
        rules = "、".join(
            f"{rule}({'报警' if tier == 'alarm' else '预警'})" for rule, tier in self.expect
        )
        target = f"{self.enterprise_id}/{self.source_id}" + (
            f" {self.factor}" if self.factor else ""
        )
        return (
            f"{china(self.start)}{until}  {self.name}  {target}  → {rules or self.expect_counted}"
        )


def value_override(
    incidents: list[Incident],
    key: tuple[str, str],
    code: str,
    t: int,
    hour_limit: float | None,
    day_limit: float | None,
    noise: float = 1.0,
) -> float | None:
    """The value an incident imposes on an outlet's factor at ``t``, if any; ``noise`` (a
    factor near 1) keeps an exceedance from also looking like a constant value."""
    for i in incidents:
        if not i.affects(key, code, t):
            continue
        if i.kind == "exceed" and hour_limit is not None:
            return round(hour_limit * 1.8 * noise, 2)
        if i.kind == "daily_exceed" and day_limit is not None:
            return round(day_limit * 1.3 * noise, 2)
        if i.kind == "constant":
            return 12.34
        if i.kind == "zero":
            return 0.0
    return None


def dilution(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    return any(i.kind == "o2_dilution" and i.affects(key, None, t) for i in incidents)


# O2 while air is let in, and the share of the flue gas that is still flue gas.
DILUTED_O2 = 19.5
DILUTION_FACTOR = (21.0 - DILUTED_O2) / (21.0 - 7.5)


def flag_override(incidents: list[Incident], key: tuple[str, str], code: str, t: int) -> str:
    return (
        "D" if any(i.kind == "fault_flag" and i.affects(key, code, t) for i in incidents) else "N"
    )


def silent(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    """Whether the outlet's logger sends nothing at ``t``."""
    return any(i.kind == "offline" and i.affects(key, None, t) for i in incidents)


def power_off(incidents: list[Incident], meter_id: str, enterprise_id: str, t: int) -> bool:
    """Whether an incident switches this (control) meter off at ``t``."""
    return any(
        i.kind in ("control_off", "control_late") and i.affects((enterprise_id, meter_id), None, t)
        for i in incidents
    )


def _china_hour(t: int) -> int:
    return ((t + CHINA_OFFSET) % DAY) // HOUR


def _next_china_time(t: int, hour: int) -> int:
    """The first whole China-time ``hour``:00 at or after ``t``."""
    t = t - t % HOUR + (HOUR if t % HOUR else 0)
    while _china_hour(t) != hour:
        t += HOUR
    return t


def _in_working_hours(t: int) -> int:
    """The first hour at or after ``t`` between 09:00 and 19:00 China time (factories run
    06:00–22:00 in the simulation)."""
    while not 9 <= _china_hour(t) < 19:
        t += HOUR
    return t


def _wastewater_day(start: int, end: int, min_hours: int, grace_s: int) -> int | None:
    """The first China day with at least ``min_hours`` whole hours after ``start`` that
    closes (its end plus the grace, and an hour to spare) before ``end``."""
    first_hour = start - start % HOUR + (HOUR if start % HOUR else 0)
    day = first_hour - (first_hour + CHINA_OFFSET) % DAY
    while day + DAY + grace_s + HOUR <= end:
        if (day + DAY - max(day, first_hour)) // HOUR >= min_hours:
            return max(day, first_hour)
        day += DAY
    return None


def demo_incidents(config: Config, start: int, end: int) -> list[Incident]:
    """The demo's script, on the first enterprises of each kind, from ``start`` (simulated
    time); an incident that would not be judged before ``end`` (the end of the run's
    history) is left out, except those that last until the run ends."""
    h = start - start % HOUR + HOUR
    by_kind: dict[str, list[EnterpriseConfig]] = {}
    for e in config.enterprises:
        by_kind.setdefault(e.industry, []).append(e)

    def nth(industry: str, n: int) -> EnterpriseConfig | None:
        found = by_kind.get(industry, [])
        return found[n] if len(found) > n else None

    out: list[Incident] = []

    def add(e: EnterpriseConfig | None, source: str | None, **kw: Any) -> None:
        if e is None or source is None:
            return
        incident = Incident(enterprise_id=e.id, source_id=source, **kw)
        # A closed window needs its hour judged: the hour's end, the grace, and a spare hour.
        if incident.end >= FOREVER or incident.end + config.rules.grace_s + HOUR <= end:
            out.append(incident)

    def outlet(e: EnterpriseConfig | None) -> str | None:
        return e.outlets[0].id if e is not None and e.outlets else None

    def meter(e: EnterpriseConfig | None, role: str) -> str | None:
        found = [m.id for m in e.meters if m.role == role] if e is not None else []
        return found[0] if found else None

    power1, power2 = nth("thermal_power", 0), nth("thermal_power", 1)
    add(
        power1,
        outlet(power1),
        name="小时超标 (SO2)",
        kind="exceed",
        start=h + HOUR,
        end=h + 3 * HOUR,
        factor="a21026",
        expect=(("A3", "alarm"),),
    )
    add(
        power2,
        outlet(power2),
        name="零值 (SO2 分析仪读 0, 烟气照常)",
        kind="zero",
        start=h + 2 * HOUR,
        end=h + 4 * HOUR,
        factor="a21026",
        expect=(("B1", "warning"),),
    )
    boilers = [nth("heating", k) for k in range(4)]
    add(
        boilers[0],
        outlet(boilers[0]),
        name="恒值 (NOx 分析仪)",
        kind="constant",
        start=h,
        end=h + 3 * HOUR,
        factor="a21002",
        expect=(("B2", "warning"),),
    )
    add(
        boilers[1],
        outlet(boilers[1]),
        name="稀释排放 (掺风, O2 19.5 %)",
        kind="o2_dilution",
        start=h + HOUR,
        end=h + 4 * HOUR,
        expect=(("B8-3", "warning"),),
    )
    add(
        boilers[2],
        outlet(boilers[2]),
        name="数采仪离线",
        kind="offline",
        start=h + HOUR,
        end=FOREVER,
        expect=(("B8", "warning"),),
    )
    add(
        boilers[3],
        outlet(boilers[3]),
        name="迟到与重复报文",
        kind="late_duplicate",
        start=h + HOUR,
        end=h + 4 * HOUR,
        expect_counted="late,duplicate",
    )
    wwtp1, wwtp2, wwtp3 = (nth("municipal_wastewater", k) for k in range(3))
    day = _wastewater_day(start, end, config.rules.valid_hours_per_day_water, config.rules.grace_s)
    if day is not None:
        day_end = day + DAY - (day + CHINA_OFFSET) % DAY
        add(
            wwtp1,
            outlet(wwtp1),
            name="日均值超标 (COD)",
            kind="daily_exceed",
            start=day,
            end=day_end,
            factor="w01018",
            expect=(("A4", "alarm"),),
        )
    add(
        wwtp2,
        outlet(wwtp2),
        name="故障标记不恢复 (COD 分析仪 D)",
        kind="fault_flag",
        start=h + HOUR,
        end=FOREVER,
        factor="w01018",
        expect=(("B9", "warning"),),
    )
    add(
        wwtp3,
        outlet(wwtp3),
        name="报文损坏 (CRC 错)",
        kind="corrupt",
        start=h + HOUR,
        end=h + 2 * HOUR,
        expect_counted="dead_letter",
    )
    factories = [nth("manufacturing", k) for k in range(3)]
    t = _in_working_hours(h + HOUR)
    add(
        factories[0],
        meter(factories[0], "control"),
        name="产污治污不同步 (除尘器停运)",
        kind="control_off",
        start=t,
        end=t + 2 * HOUR,
        expect=(("C1", "warning"),),
    )
    six = _next_china_time(h, 6)
    add(
        factories[1],
        meter(factories[1], "control"),
        name="治污滞后开启 (晚开 8 分钟)",
        kind="control_late",
        start=six,
        end=six + 8 * 60,
        expect=(("C2", "warning"),),
    )
    t = _in_working_hours(h + 2 * HOUR)
    add(
        factories[2],
        meter(factories[2], "production"),
        name="停限产期间生产 (应急减排令)",
        kind="emergency",
        start=t,
        end=t + 2 * HOUR,
        expect=(("C5", "alarm"),),
    )
    return out


def emergency_orders(incidents: list[Incident]) -> dict[str, list[dict[str, Any]]]:
    """The emergency orders the script's incidents run through, per enterprise, as
    configuration entries (the order names the production device that keeps running)."""
    orders: dict[str, list[dict[str, Any]]] = {}
    for i in incidents:
        if i.kind == "emergency":
            orders.setdefault(i.enterprise_id, []).append(
                {
                    "kind": "emergency",
                    "reference": f"应急减排令〔{datetime.fromtimestamp(i.start, UTC):%Y}〕演示",
                    "start": datetime.fromtimestamp(i.start, UTC).isoformat(),
                    "end": datetime.fromtimestamp(i.end, UTC).isoformat(),
                    "devices": [i.source_id],
                }
            )
    return orders


def scripted_config(
    data: dict[str, Any], start: int, end: int, source: str = "(demo)"
) -> tuple[Config, list[Incident]]:
    """The fleet's configuration with the script's emergency orders in it, and the script."""
    config = parse_config(data, source, env={})
    incidents = demo_incidents(config, start, end)
    orders = emergency_orders(incidents)
    if orders:
        for e in data["enterprises"]:
            e.setdefault("orders", []).extend(orders.get(e["id"], []))
        config = parse_config(data, source, env={})
    return config, incidents
