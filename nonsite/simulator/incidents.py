"""Scripted incidents: what goes wrong, where and when, so that a demo run can be checked
against the cases it should open.

An incident changes what the traffic generator sends for one source over a time window
(simulated epoch seconds): the values or flags of a factor, whether the logger sends at all,
whether a meter reads its device on, or the frames themselves (late, duplicated, corrupted).
Each says which rules it should trigger at which tier; those that should open no case
(late, duplicate and corrupted frames) say what the service should count instead.

Some are not faults but conditions of a real fleet that the rules must judge right: a plant
stopped for a weekend (every factor flagged F), a logger sending minute data every minute
although nothing configures its interval, an intermittent discharger (no flow at night), an
outlet sending real-time data only, a logger backfilling (补发) after a network outage, and a
short pH dip inside an hour whose mean is normal. These also say which rules they must *not*
raise (``expect_not``; "alarm" for nothing at alarm tier).
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
    # Conditions of a real fleet:
    "stopped",  # 停产: the plant stopped; its CEMS send every factor flagged F, flow near 0
    "minute_logger",  # 1 分钟数据: minute data (CN 2051) every minute, no interval configured
    "intermittent",  # 间歇排放: no flow 20:00-06:00, the sampler's stagnant water high in COD
    "realtime_only",  # 仅实时数据: real-time data (CN 2011) every 30 s, no minute/hour/day data
    "backfill",  # 断线补发: the logger silent (network down), then resending what it stored
    "ph_dip",  # pH 骤降: 20 minutes at pH 5.0, then an alkali overshoot: the hour's mean ~7.3
    "link_lost",  # 丢包: an hour packet lost in transit; the logger keeps it (补遗 recalls it)
]
Tier = Literal["warning", "alarm"]
FOREVER = 2**40  # an incident that lasts until the run ends
ALL_OUTLETS = "*"  # as a source: every outlet of the enterprise
NO_ALARM = "alarm"  # in ``expect_not``: nothing at alarm tier, whatever the rule


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
    # Rules it must not raise on its source, at any tier (NO_ALARM: no rule at alarm tier).
    expect_not: tuple[str, ...] = ()

    def active(self, t: int) -> bool:
        return self.start <= t < self.end

    def on(self, key: tuple[str, str]) -> bool:
        """Whether it concerns the source ``key`` (enterprise, outlet or meter)."""
        return self.enterprise_id == key[0] and self.source_id in (key[1], ALL_OUTLETS)

    def affects(self, key: tuple[str, str], code: str | None, t: int) -> bool:
        return (
            self.on(key)
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
        source = "全部排口" if self.source_id == ALL_OUTLETS else self.source_id
        target = f"{self.enterprise_id}/{source}" + (f" {self.factor}" if self.factor else "")
        never = "、".join("报警" if r == NO_ALARM else r for r in self.expect_not)
        said = "; ".join(x for x in (rules or self.expect_counted, never and f"不应: {never}") if x)
        return f"{china(self.start)}{until}  {self.name}  {target}  → {said}"


def value_override(
    incidents: list[Incident],
    key: tuple[str, str],
    code: str,
    t: int,
    hour_limit: float | None,
    day_limit: float | None,
    noise: float = 1.0,
    *,
    is_flow: bool = False,
) -> float | None:
    """The value an incident imposes on an outlet's factor at ``t``, if any; ``noise`` (a
    factor near 1) keeps an exceedance from also looking like a constant value. ``is_flow``:
    the factor is the outlet's flow."""
    for i in incidents:
        if i.kind == "intermittent" and i.on(key) and i.active(t) and no_discharge(t):
            if is_flow:
                return 0.0
            if code == i.factor and day_limit is not None:
                return round(day_limit * STAGNANT_FACTOR * noise, 2)
            continue
        if not i.affects(key, code, t):
            continue
        if i.kind == "ph_dip":
            level = PH_DIP if t < i.start + PH_DIP_S else PH_OVERSHOOT
            return round(level + (noise - 1.0), 2)
        if i.kind == "minute_logger" and code == SHORT_HOUR_FACTOR and hour_limit is not None:
            short = i.start + SHORT_HOUR_AFTER_S
            if short <= t < short + SHORT_HOUR_MINUTES * 60:
                return round(hour_limit * 2.0 * noise, 2)
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


# The intermittent discharger: no flow from 20:00 to 06:00 China time, when the sampler holds
# stagnant water with this multiple of the daily COD limit (the day's arithmetic mean is above
# the limit, its flow-weighted mean well below).
NO_DISCHARGE_HOURS = (20, 6)
STAGNANT_FACTOR = 2.0
# The pH dip: this long at PH_DIP, then the rest of the hour at PH_OVERSHOOT (too much alkali
# dosed): the hour's mean about 7.3, inside 6-9, while a third of its values are not.
PH_DIP_S = 20 * 60
PH_DIP = 5.0
PH_OVERSHOOT = 8.4


# The 1-minute logger's short hour: this long after it starts, SO2 at twice its hourly limit
# for 8 minutes (the desulphurisation's slurry pump tripped in a voltage dip), and then the
# logger down until the hour's end, its records lost: 8 valid minutes, not a valid hour (45),
# though 8 records of the default 10 minutes would make 80.
SHORT_HOUR_AFTER_S = 14 * HOUR
SHORT_HOUR_MINUTES = 8
SHORT_HOUR_FACTOR = "a21026"


def no_discharge(t: int) -> bool:
    start, end = NO_DISCHARGE_HOURS
    return not end <= _china_hour(t) < start


def flag_override(incidents: list[Incident], key: tuple[str, str], code: str, t: int) -> str:
    if stopped(incidents, key, t):
        return "F"  # 停运
    return (
        "D" if any(i.kind == "fault_flag" and i.affects(key, code, t) for i in incidents) else "N"
    )


def silent(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    """Whether the outlet's logger sends nothing at ``t``."""
    return any(i.kind == "offline" and i.affects(key, None, t) for i in incidents)


def _holds(incidents: list[Incident], kind: Kind, key: tuple[str, str], t: int) -> bool:
    return any(i.kind == kind and i.affects(key, None, t) for i in incidents)


def stopped(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    """Whether the outlet's source is stopped (停产) at ``t``: its analysers read ambient air."""
    return _holds(incidents, "stopped", key, t)


def backfilling(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    """Whether the outlet's logger is cut off at ``t``, storing its records to resend."""
    return _holds(incidents, "backfill", key, t)


def link_lost(incidents: list[Incident], key: tuple[str, str], hour: int) -> bool:
    """Whether the outlet's hour packet for ``hour`` is lost on its way (the logger keeps it
    and answers a recall with it)."""
    return _holds(incidents, "link_lost", key, hour)


def realtime_only(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    """Whether the outlet's logger sends real-time data (CN 2011) only."""
    return _holds(incidents, "realtime_only", key, t)


def minute_logger(incidents: list[Incident], key: tuple[str, str], t: int) -> bool:
    """Whether the outlet's logger sends its minute data every minute (MinInterval 1)."""
    return _holds(incidents, "minute_logger", key, t)


def logger_down(incidents: list[Incident], key: tuple[str, str]) -> tuple[int, int] | None:
    """When the outlet's logger is down, neither measuring nor sending, if ever: (from, until)
    (the 1-minute logger, for the rest of its short hour)."""
    for i in incidents:
        if i.kind == "minute_logger" and i.on(key):
            short = i.start + SHORT_HOUR_AFTER_S
            return short + SHORT_HOUR_MINUTES * 60, short + HOUR
    return None


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


STOP_HOURS = 30  # the stopped plant's stop: a weekend's, from noon to the next evening
OUTAGE_S = 3 * HOUR  # the backfilling logger's network outage


def demo_incidents(
    config: Config,
    start: int,
    end: int,
    *,
    stop_hours: int = STOP_HOURS,
    outage_s: int = OUTAGE_S,
) -> list[Incident]:
    """The demo's script, on the first enterprises of each kind, from ``start`` (simulated
    time); an incident that would not be judged before ``end`` (the end of the run's
    history) is left out, except those that last until the run ends. The real fleet's
    conditions hold from ``start`` on, except the plant stopped ``stop_hours`` from the first
    noon (across a midnight) and the logger cut off for ``outage_s`` from the second hour."""
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
    add(  # after its zero values: one hour packet never arrives
        power2,
        outlet(power2),
        name="小时数据丢包 (一个小时包在传输中丢失, 数采仪留存; 平台补遗召回)",
        kind="link_lost",
        start=h + 6 * HOUR,
        end=h + 7 * HOUR,
        expect=(("B7", "warning"),),
        expect_not=("B8",),
    )
    power3 = nth("thermal_power", 2)
    noon = _next_china_time(h, 12)
    add(
        power3,
        ALL_OUTLETS,
        name=f"停产 {stop_hours} 小时 (全厂停运: 各因子标记 F, 流量近 0; 应显示停产)",
        kind="stopped",
        start=noon,
        end=noon + stop_hours * HOUR,
        expect_not=(NO_ALARM, "B9", "B10"),
    )
    boilers = [nth("heating", k) for k in range(7)]
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
    add(  # from the first hour: B8 is judged on the clock, and history runs fast
        boilers[2],
        outlet(boilers[2]),
        name="数采仪离线",
        kind="offline",
        start=h,
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
    add(
        boilers[4],
        outlet(boilers[4]),
        name=f"断线补发 (离线 {outage_s // HOUR} 小时后按时间顺序补发分钟、小时数据)",
        kind="backfill",
        start=h + HOUR,
        end=h + HOUR + outage_s,
        expect=(("B8", "warning"),),
        expect_not=(NO_ALARM, "B7"),
    )
    add(
        boilers[5],
        outlet(boilers[5]),
        name=(
            "1 分钟数据 (未配置分钟数据间隔; 温压湿每 8 分钟更新; "
            f"{_china_hour(start + SHORT_HOUR_AFTER_S):02d}:00 仅 8 分钟数据, SO2 偏高)"
        ),
        kind="minute_logger",
        start=start,
        end=FOREVER,
        expect_not=(NO_ALARM, "A3", "B2"),
    )
    add(
        boilers[6],
        outlet(boilers[6]),
        name="仅实时数据 (每 30 秒, 无分钟、小时数据)",
        kind="realtime_only",
        start=start,
        end=FOREVER,
        expect_not=("B7",),
    )
    nine = _in_working_hours(h + 2 * HOUR)
    add(
        boilers[6],
        outlet(boilers[6]),
        name="小时超标 (SO2, 仅实时数据的排口)",
        kind="exceed",
        start=nine,
        end=nine + 2 * HOUR,
        factor="a21026",
        expect=(("A3", "alarm"),),
    )
    wwtp1, wwtp2, wwtp3, wwtp4, wwtp5 = (nth("municipal_wastewater", k) for k in range(5))
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
    add(
        wwtp4,
        outlet(wwtp4),
        name="间歇排放 (20:00-06:00 无流量, 夜间 COD 高; 按流量加权日均值达标)",
        kind="intermittent",
        start=start,
        end=FOREVER,
        factor="w01018",
        expect_not=(NO_ALARM, "A4"),
    )
    ten = _next_china_time(h, 10)
    add(
        wwtp5,
        outlet(wwtp5),
        name="pH 骤降 (20 分钟 pH 5.0, 小时均值约 7.3)",
        kind="ph_dip",
        start=ten,
        end=ten + HOUR,
        factor="w01001",
        expect=(("A4V", "alarm"),),
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
    data: dict[str, Any],
    start: int,
    end: int,
    source: str = "(demo)",
    *,
    stop_hours: int = STOP_HOURS,
    outage_s: int = OUTAGE_S,
) -> tuple[Config, list[Incident]]:
    """The fleet's configuration with the script's emergency orders in it, and the script."""
    config = parse_config(data, source, env={})
    incidents = demo_incidents(config, start, end, stop_hours=stop_hours, outage_s=outage_s)
    orders = emergency_orders(incidents)
    if orders:
        for e in data["enterprises"]:
            e.setdefault("orders", []).extend(orders.get(e["id"], []))
        config = parse_config(data, source, env={})
    return config, incidents
