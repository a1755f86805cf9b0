"""A simulated fleet at the reading level, with injected faults, for the stream = batch check
and the rule benchmarks. Deterministic for a seed.

70 % flue-gas outlets (CN 2051 minute records every 10 minutes and CN 2061 device hours for
SO2, NOx, PM, O2 and flow), 30 % wastewater outlets (hourly COD, NH3-N, flow, pH). Faults:
exceedance episodes, O2 at 21 %, invalid flags, marked maintenance periods, outages whose
data arrives hours later (late), re-sent records (duplicates), arrival jitter (out of order),
device clocks far ahead (future), device hour values that disagree with the minutes, water
days above the daily limit and pH out of range. One flue-gas outlet in ten is an MSW
incinerator: it also reports the furnace temperature (cold spells below 850 ℃) and marks
start-ups beyond its yearly 60-hour cap; its O2 is judged against the combustion band (B8-2).

The conditions of a real fleet (issue 15): plants stopped for days (flag F, 停运), one of them
with its logger switched off inside a declared 停产 marking; loggers that send minute data
every minute with no interval configured; outlets that send real-time data only (CN 2011)
for their first days, and others that send real-time data beside their minute data; a
logger that sends no hour packets and loses three hours of minute data; an outlet whose
configured interval the data contradict (B11); intermittent dischargers (no flow at night);
pH dips seen only in an hour packet's Min field; control devices that report only their
running state (HJ 212 CN 2021 SBx-RS, no power).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.readings import Measurement, PowerSample
from rules.markings import INCINERATION_CAPS, Marking
from rules.params import INCINERATION_O2_BAND, FactorParams, OutletParams, Thresholds
from rules.power_params import EnterprisePowerParams, MeterParams, Order
from rules.timebase import DAY, HOUR

START = 1_795_190_400  # 2026-11-20 00:00 +08:00
GAS = {
    "a21026": (
        40.0,
        8.0,
        FactorParams("a21026", "mg/m³", Thresholds(hour_alarm=100, day_alarm=80), reference_o2=6),
    ),
    "a21002": (
        60.0,
        10.0,
        FactorParams("a21002", "mg/m³", Thresholds(hour_alarm=100), reference_o2=6),
    ),
    "a34013": (
        10.0,
        3.0,
        FactorParams("a34013", "mg/m³", Thresholds(hour_alarm=30), reference_o2=6),
    ),
    "a19001": (7.0, 0.8, FactorParams("a19001", "%")),
    "a00000": (100.0, 10.0, FactorParams("a00000", "m³/s")),
}
FURNACE = (900.0, 20.0, FactorParams("a01901", "℃", Thresholds(value_low=850)))
WATER = {
    "w01018": (30.0, 6.0, FactorParams("w01018", "mg/L", Thresholds(day_alarm=50))),
    "w21003": (2.0, 0.8, FactorParams("w21003", "mg/L", Thresholds(day_alarm=5))),
    "w00000": (20.0, 4.0, FactorParams("w00000", "L/s")),
    "w01001": (7.2, 0.3, FactorParams("w01001", "", Thresholds(value_low=6, value_high=9))),
}


@dataclass
class Fleet:
    params: dict[tuple[str, str], OutletParams]
    markings: list[Marking]
    readings: list[Measurement | PowerSample]  # in arrival order
    power: dict[str, EnterprisePowerParams] = field(default_factory=dict)


@dataclass
class _Plan:
    """Which hours of one outlet carry which injected fault."""

    exceed: set[int]
    o2_bad: set[int]
    ph_bad: set[int]
    bad_days: set[int]
    cold: set[int] = field(default_factory=set)
    low_flow: set[int] = field(default_factory=set)
    stopped: set[int] = field(default_factory=set)  # hours of 停运 (flag F)
    night_off: bool = False  # an intermittent discharger: no flow from 20:00 to 06:00


def _value(rng: random.Random, code: str, base: float, sd: float, h: int, plan: _Plan) -> float:
    v = rng.gauss(base, sd)
    if h in plan.stopped:
        return round(abs(rng.gauss(20.6 if code == "a19001" else 0.1, 0.1)), 2)
    if plan.night_off and code == "w00000" and not 6 <= h % 24 < 20:
        return 0.0
    if code in ("a21026", "w01018") and (h in plan.exceed or (h // 24) in plan.bad_days):
        v = rng.uniform(2.5, 4.0) * base
    if code == "a19001" and h in plan.o2_bad:
        v = 21.0
    if code == "w01001" and h in plan.ph_bad:
        v = 5.2
    if code == "a01901" and h in plan.cold:
        v = rng.gauss(845.0, 10.0)
    if code == "a00000" and h in plan.low_flow:
        v = rng.gauss(40.0, 3.0)
    return round(max(v, 0.0), 2)


class _Times:
    """datetimes for epoch seconds, cached (the same slots repeat across the fleet)."""

    def __init__(self) -> None:
        self._cache: dict[int, datetime] = {}

    def __call__(self, t: int) -> datetime:
        d = self._cache.get(t)
        if d is None:
            d = self._cache[t] = datetime.fromtimestamp(t, tz=UTC)
        return d


def generate(n_enterprises: int = 200, days: int = 30, seed: int = 2026) -> Fleet:
    rng = random.Random(seed)
    times = _Times()
    params: dict[tuple[str, str], OutletParams] = {}
    markings: list[Marking] = []
    rows: list[tuple[int, int, Measurement]] = []  # (received, order, reading)
    order = 0
    for i in range(n_enterprises):
        ent, outlet = f"E{i:04d}", "DA001" if i % 10 < 7 else "DW001"
        gas = outlet == "DA001"
        incinerator = i % 10 == 3
        spec = {**GAS, "a01901": FURNACE} if incinerator else GAS if gas else WATER
        params[(ent, outlet)] = OutletParams(
            ent,
            outlet,
            "gas" if gas else "water",
            factors={c: s[2] for c, s in spec.items()},
            incineration=incinerator,
            marking_caps=INCINERATION_CAPS if incinerator else (),
            flow_low=60.0 if i % 10 == 4 else None,  # its stack is linked to its meters
            o2_band=INCINERATION_O2_BAND if incinerator else None,
            minute_interval_min=5 if i == 35 else None,  # contradicted by its data (B11)
        )
        # Fault plan for this outlet, in hours since START.
        hours = days * 24
        exceed = {
            h for s in rng.sample(range(hours - 8), 3) for h in range(s, s + rng.randint(2, 6))
        }
        o2_bad = set(rng.sample(range(hours), 2)) if gas else set()
        disagree = set(rng.sample(range(hours), 3)) if gas else set()
        outage = rng.randrange(hours - 6) if i % 4 == 0 else -1  # 3 h whose data comes 4 h late
        bad_days = {rng.randrange(days)} if not gas and i % 3 == 0 else set()
        ph_bad = set(rng.sample(range(hours), 2)) if not gas else set()
        plan = _Plan(exceed, o2_bad, ph_bad, bad_days)
        if gas and i % 20 == 1:  # stopped for three days (停运: flag F)
            first = rng.randrange(hours - 72)
            plan.stopped = set(range(first, first + 72))
        silence: set[int] = set()  # hours without any data
        if gas and i % 20 == 2:  # switched off with the plant inside a declared 停产 marking
            first = rng.randrange(hours - 12)
            silence = set(range(first, first + 12))
            stop = START + first * HOUR
            markings.append(Marking(ent, outlet, "stopped", stop, stop + 12 * HOUR))
        one_minute = {"a21026", "a19001"} if i in (5, 105) else set()
        realtime_days = 5 if i in (6, 106) else 0  # real-time data only, at first
        realtime_beside = i in (15, 25)
        no_hour_packets = i in (16, 26)
        if no_hour_packets:
            first = rng.randrange(hours - 3)
            silence = set(range(first, first + 3))  # minute data lost (B7 from minute data)
        plan.night_off = not gas and i % 10 == 9
        if i % 10 == 4:  # the flow drops for 3 production hours (B8-6)
            day = rng.randrange(days)
            plan.low_flow = {day * 24 + 10 + k for k in range(3)}
        if incinerator:
            for _ in range(3):  # start-ups of 20-30 h: the third passes the 60-h cap
                m_start = START + rng.randrange(hours - 30) * HOUR
                m_end = m_start + rng.randint(20, 30) * HOUR
                markings.append(Marking(ent, outlet, "startup", m_start, m_end))
                plan.exceed |= {(m_start - START) // HOUR + k for k in range(20)}
            for d in rng.sample(range(days), 3):
                plan.cold |= {d * 24 + k for k in range(rng.randint(0, 8))}
        if i % 5 == 0:
            m_start = START + rng.randrange(hours - 10) * HOUR
            markings.append(
                Marking(ent, outlet, "maintenance", m_start, m_start + rng.randint(4, 8) * HOUR)
            )
            plan.exceed |= {(m_start - START) // HOUR + k for k in range(3)}  # muted by the marking
        for h in range(hours):
            if h in silence:
                continue
            t_hour = START + h * HOUR
            flag_of_hour = "F" if h in plan.stopped else "N"
            for code, (base, sd, _) in spec.items():
                received_delay = 4 * HOUR if outage >= 0 and outage <= h < outage + 3 else 0
                values: list[float] = []
                only_realtime = gas and h < realtime_days * 24
                if only_realtime or realtime_beside:
                    # every 120 s and nothing else, or every 300 s beside the minute data at
                    # five times the value (what the hours must not see)
                    every, scale = (120, 1.0) if only_realtime else (300, 5.0)
                    for k in range(HOUR // every):
                        t = t_hour + every * k
                        v = _value(rng, code, base, sd, h, plan) * scale
                        received = t + rng.randint(1, 60)
                        m = _reading(ent, outlet, code, "rtd", t, v, "N", received, times)
                        rows.append((received, order, m))
                        order += 1
                    if only_realtime:
                        continue
                if gas:
                    every = 60 if code in one_minute else 600
                    for k in range(HOUR // every):
                        t = t_hour + every * k
                        v = _value(rng, code, base, sd, h, plan)
                        flag = (
                            flag_of_hour
                            if flag_of_hour != "N"
                            else "D"
                            if rng.random() < 0.01
                            else "N"
                        )
                        if flag == "N":
                            values.append(v)
                        received = t + every + rng.randint(-every // 2, every // 2) + received_delay
                        t_out = t + 2 * DAY if rng.random() < 0.0005 else t  # clock far ahead
                        m = _reading(ent, outlet, code, "minute", t_out, v, flag, received, times)
                        rows.append((received, order, m))
                        order += 1
                        if rng.random() < 0.01:  # re-sent: the copy arrives later
                            again = received + rng.randint(1, 900)
                            rows.append((again, order, m._replace(received_at=times(again))))
                            order += 1
                    dev = (
                        round(sum(values) / len(values), 2)
                        if values
                        else _value(rng, code, base, sd, h, plan)
                    )
                    if h in disagree and code == "a21026":
                        dev = round(dev * 1.1, 2)
                    if no_hour_packets:
                        continue
                else:
                    dev = _value(rng, code, base, sd, h, plan)
                received = t_hour + HOUR + rng.randint(60, 400) + received_delay
                m = _reading(ent, outlet, code, "hour", t_hour, dev, flag_of_hour, received, times)
                if code == "w01001":  # the hour's extremes: a dip shows only in its Min field
                    low = 5.2 if h in plan.ph_bad else round(dev - 0.2, 2)
                    m = m._replace(
                        value=7.2 if h in plan.ph_bad else dev, minimum=low, maximum=dev + 0.2
                    )
                rows.append((received, order, m))
                order += 1
    power: dict[str, EnterprisePowerParams] = {}
    for i in range(4, n_enterprises, 5):
        ent = f"E{i:04d}"
        state_only = i % 10 == 9  # its control device reports only its running state
        power[ent] = _power_params(ent, rng, days, ("DA001",) if i % 10 == 4 else (), state_only)
        for received, m in _power_samples(ent, rng, days, power[ent], times):
            rows.append((received, order, m))
            order += 1
    rows.sort(key=lambda r: (r[0], r[1]))
    return Fleet(params, markings, [r[2] for r in rows], power)


def _reading(
    ent: str,
    outlet: str,
    code: str,
    interval: str,
    t: int,
    value: float,
    flag: str,
    received: int,
    times: _Times,
) -> Measurement:
    return Measurement(
        ent,
        outlet,
        "MN",
        code,
        interval,  # type: ignore[arg-type]
        times(t),
        value,
        None,
        None,
        None,
        None,
        flag,
        None,
        times(received),
        0,
    )


def _power_params(
    ent: str, rng: random.Random, days: int, outlets: tuple[str, ...], state_only: bool = False
) -> EnterprisePowerParams:
    p, k = f"{ent}-P", f"{ent}-K"
    meters = {
        p: MeterParams(ent, p, "production", rated_kw=100, outlets=outlets),
        k: MeterParams(ent, k, "control", rated_kw=None if state_only else 20, serves=(p,)),
    }
    day = rng.randrange(days)
    emergency = Order(
        "emergency",
        START + day * DAY + 10 * HOUR,
        START + day * DAY + 12 * HOUR,
        (p,),
        reference=f"{ent}-应急",
    )
    staggered = Order(
        "staggered",
        START,
        START + days * DAY,
        (p,),
        reference=f"{ent}-错峰",
        daily=(19 * 3600, 19 * 3600 + 1800),
    )
    return EnterprisePowerParams(ent, meters, (emergency, staggered))


def _power_samples(
    ent: str, rng: random.Random, days: int, params: EnterprisePowerParams, times: _Times
) -> list[tuple[int, PowerSample]]:
    """Production runs 08:00-20:00 China time; its control device follows it, with faults:
    a control device off for an hour (C1), started late (C2), stopped early (C3), at low
    load for an afternoon (C4), a meter silent for an hour (C8), the production meter reading
    zero for two hours while production runs on (C8-2), flapping readings."""
    p, k = f"{ent}-P", f"{ent}-K"
    off_day, late_day, early_day, low_day, silent_day, zero_day = (
        rng.randrange(days) for _ in range(6)
    )
    out: list[tuple[int, PowerSample]] = []
    for t in range(START, START + days * DAY, 300):
        day, minute = (t - START) // DAY, (t - START) % DAY // 60
        producing = 8 * 60 <= minute < 20 * 60
        pk = rng.uniform(70, 90) if producing else rng.uniform(0, 2)
        if producing and rng.random() < 0.02:
            pk = rng.uniform(5, 9)  # between the thresholds: the state holds
        if day == zero_day and 14 * 60 <= minute < 16 * 60:
            pk = 0.0  # a bypassed meter
        control_on = producing
        if day == off_day and 14 * 60 <= minute < 15 * 60:
            control_on = False
        if day == late_day and 8 * 60 <= minute < 8 * 60 + 15:
            control_on = False
        if day == early_day and 19 * 60 + 40 <= minute < 20 * 60:
            control_on = False
        kk = rng.uniform(14, 16) if control_on else rng.uniform(0, 0.5)
        if day == low_day and control_on and minute >= 13 * 60:
            kk = rng.uniform(4, 6)
        for meter, kw in ((p, pk), (k, kk)):
            if day == silent_day and meter == k and 3 * 60 <= minute < 4 * 60:
                continue
            received = t + rng.randint(5, 120)
            if meter == k and params.meters[k].rated_kw is None:  # a running state (SBx-RS)
                state = PowerSample(
                    ent, meter, times(t), None, None, None, kw > 5, times(received), 0
                )
                out.append((received, state))
                continue
            sample = PowerSample(
                ent, meter, times(t), round(kw, 2), None, None, None, times(received), 0
            )
            out.append((received, sample))
    return out
