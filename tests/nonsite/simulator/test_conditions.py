"""The real fleet's conditions, frame by frame: a plant stopped across a midnight, a 1-minute
logger nobody configured, an intermittent discharger, a real-time-only outlet, a logger
backfilling after an outage, a pH dip inside a normal hour. Each is on an enterprise of its
own in the demo's script, which says what the rules should and should not raise."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from typing import Any

from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import decode_frame
from ingest.hj212.model import Hj212Frame
from nonsite.config.load import parse_config
from nonsite.config.model import Config
from nonsite.demo import ABSENCE_TICK_S, backfill_outage_s
from nonsite.rule_wiring import build_outlet_params
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import (
    ALL_OUTLETS,
    NO_ALARM,
    PH_DIP,
    PH_OVERSHOOT,
    SHORT_HOUR_AFTER_S,
    SHORT_HOUR_MINUTES,
    Incident,
    scripted_config,
)
from nonsite.simulator.traffic import FleetTraffic
from rules.params import effective_thresholds
from rules.timebase import CHINA_OFFSET, DAY, HOUR

START = int(datetime(2026, 11, 23, 0, 0, tzinfo=CHINA_TZ).timestamp())  # as the demo starts
END = START + 3 * DAY
ENTERPRISES = 35  # the smallest fleet with an enterprise of its own for every condition
Sent = tuple[int, Hj212Frame]  # (minute it was sent in, the frame)


def _script(**kw: Any) -> tuple[dict[str, Any], list[Incident]]:
    data = demo_fleet(ENTERPRISES)
    _config, incidents = scripted_config(data, START, END, **kw)
    return data, incidents


def _alone(
    kind: str, *, live: bool = False, **kw: Any
) -> tuple[Incident, Config, FleetTraffic, list[Incident]]:
    """The condition ``kind``, and the traffic of its enterprise alone with its incidents."""
    data, incidents = _script(**kw)
    i = next(x for x in incidents if x.kind == kind)
    mine = [x for x in incidents if x.enterprise_id == i.enterprise_id]
    entry = [e for e in data["enterprises"] if e["id"] == i.enterprise_id]
    config = parse_config({"brigades": data["brigades"], "enterprises": entry}, "(test)", env={})
    traffic = FleetTraffic(config, seed=5, incidents=mine, since=START)
    traffic.realtime = live
    return i, config, traffic, mine


def _sent(traffic: FleetTraffic, until: int, since: int = START) -> list[Sent]:
    return [
        (t, decode_frame(payload))
        for t in range(since, until, 60)
        for topic, payload in traffic.frames(t)
        if topic.startswith("hj212/")
    ]


def _at(frame: Hj212Frame) -> int:
    assert frame.data_time is not None
    return int(frame.data_time.timestamp())


def _value(frame: Hj212Frame, code: str) -> float:
    fields = frame.pollutants[code]
    value = fields.get("Rtd", fields.get("Avg"))
    assert isinstance(value, float), fields
    return value


def _china_hour(t: int) -> int:
    return (t + CHINA_OFFSET) % DAY // HOUR


def test_every_condition_is_on_an_enterprise_of_its_own_and_says_what_must_not_fire():
    data, incidents = _script()
    conditions = {
        "stopped",
        "minute_logger",
        "intermittent",
        "realtime_only",
        "backfill",
        "ph_dip",
    }
    by_kind = {i.kind: i for i in incidents if i.kind in conditions}
    assert set(by_kind) == conditions
    owners = Counter(i.enterprise_id for i in incidents)
    for kind, i in by_kind.items():
        # Only the real-time-only outlet shares its enterprise: with the exceedance it must see.
        others = {x.kind for x in incidents if x.enterprise_id == i.enterprise_id} - {kind}
        assert others == ({"exceed"} if kind == "realtime_only" else set()), (kind, others)
        assert owners[i.enterprise_id] == (2 if kind == "realtime_only" else 1)
    assert by_kind["stopped"].source_id == ALL_OUTLETS
    stop = by_kind["stopped"]
    assert stop.end - stop.start == 30 * HOUR
    assert (stop.start + CHINA_OFFSET) // DAY < (stop.end + CHINA_OFFSET) // DAY  # a midnight
    never = {kind: set(i.expect_not) for kind, i in by_kind.items()}
    assert never == {
        "stopped": {NO_ALARM, "B9", "B10"},
        "minute_logger": {NO_ALARM, "A3", "B2"},
        "intermittent": {NO_ALARM, "A4"},
        "realtime_only": {"B7"},
        "backfill": {NO_ALARM, "B7"},
        "ph_dip": set(),
    }
    assert by_kind["backfill"].expect == (("B8", "warning"),)
    assert by_kind["ph_dip"].expect == (("A4V", "alarm"),)
    rt_exceed = next(
        x
        for x in incidents
        if x.kind == "exceed" and x.enterprise_id == by_kind["realtime_only"].enterprise_id
    )
    assert rt_exceed.expect == (("A3", "alarm"),) and rt_exceed.end - rt_exceed.start == 2 * HOUR
    assert "不应: 报警、B9、B10" in stop.describe() and "全部排口" in stop.describe()
    # No outlet of the fleet configures its minute-data interval: the 1-minute logger's
    # platform side does not know it sends every minute.
    assert all("minute_interval_min" not in o for e in data["enterprises"] for o in e["outlets"])


def test_the_stopped_plant_sends_every_factor_flagged_F_with_flow_near_zero_for_its_stop():
    stop, config, traffic, _ = _alone("stopped")
    assert len(config.enterprises[0].outlets) == 2  # both units of the plant stop
    sent: list[Sent] = []
    for t in range(START, stop.end + 2 * HOUR, 60):
        # Live (real-time data too) for the first and last ten minutes of the stop.
        traffic.realtime = stop.start <= t < stop.start + 600 or stop.end <= t < stop.end + 600
        sent += [(t, decode_frame(p)) for topic, p in traffic.frames(t) if topic[0] == "h"]
    stopped_hours: Counter[str] = Counter()
    realtime: Counter[bool] = Counter()
    for _t, f in sent:
        at = _at(f)
        flags = {str(fields["Flag"]) for fields in f.pollutants.values()}
        if f.cn == "2031":
            assert flags == {"N"}  # the day's value of its running hours
            continue
        inside = stop.start <= at < stop.end
        assert flags == ({"F"} if inside else {"N"}), (f.cn, at, flags)
        flow = _value(f, "a00000")
        assert flow < 1.0 if inside else flow > 10.0, (f.cn, at, flow)
        if inside:
            assert _value(f, "a19001") > 20.0  # ambient air in the duct
        if inside and f.cn == "2061":
            stopped_hours[f.mn] += 1
        if f.cn == "2011":
            realtime[inside] += 1
    assert stopped_hours == {o.mn: 30 for o in config.enterprises[0].outlets}
    assert realtime == {True: 20, False: 20}  # two outlets, ten live minutes each side


def test_the_1_minute_logger_sends_60_minute_records_an_hour_without_an_interval_setting():
    _i, config, traffic, _ = _alone("minute_logger")
    assert config.enterprises[0].outlets[0].minute_interval_min is None
    sent = _sent(traffic, START + 3 * HOUR + 60)
    minutes = [f for _t, f in sent if f.cn == "2051"]
    per_hour = Counter(_at(f) - _at(f) % HOUR for f in minutes)
    assert sorted(per_hour.values()) == [60, 60, 60]
    assert [_at(f) for f in minutes] == list(range(START, START + 3 * HOUR, 60))
    hours = [f for _t, f in sent if f.cn == "2061"]
    assert len(hours) == 3
    for h in hours:
        mine = [f for f in minutes if _at(h) <= _at(f) < _at(h) + HOUR]
        for code in ("a21026", "a01013"):
            mean = sum(_value(f, code) for f in mine) / len(mine)
            assert abs(_value(h, code) - mean) < 1e-3
    # The slow sensors (temperature, pressure, humidity) update every 8 minutes: their values
    # repeat for up to 8 records, never for an hour; the analysers' values change every minute.
    for code in ("a01012", "a01013", "a01014"):
        values = [_value(f, code) for f in minutes]
        assert values[:8] == [values[0]] * 8
        assert _longest_run(values) < 60
    assert _longest_run([_value(f, "a21026") for f in minutes]) <= 2


def test_the_1_minute_logger_has_a_short_hour_of_8_minutes_high_in_so2():
    # 8 records at 1 minute are 8 valid minutes (not a valid hour); at the default 10 minutes
    # they would pass for 80 and the hour for an exceedance.
    i, config, traffic, _ = _alone("minute_logger", live=True)
    short = i.start + SHORT_HOUR_AFTER_S
    sent = _sent(traffic, short + HOUR + 120, short - HOUR)
    assert not [f for t, f in sent if short + 9 * 60 <= t < short + HOUR]  # the logger is down
    minutes = [f for _t, f in sent if f.cn == "2051" and short <= _at(f) < short + HOUR]
    assert [_at(f) - short for f in minutes] == [60 * k for k in range(SHORT_HOUR_MINUTES)]
    params = build_outlet_params(config)[(i.enterprise_id, i.source_id)]
    limit = effective_thresholds(params, params.factors["a21026"]).hour_alarm
    assert limit is not None
    assert min(_value(f, "a21026") for f in minutes) > 1.8 * limit
    [hour] = [f for _t, f in sent if f.cn == "2061" and _at(f) == short]
    assert {str(x["Flag"]) for x in hour.pollutants.values()} == {"D"}  # < 75 % of its records
    assert _value(hour, "a21026") > 1.8 * limit
    before = [f for _t, f in sent if f.cn == "2061" and _at(f) == short - HOUR]
    assert {str(x["Flag"]) for f in before for x in f.pollutants.values()} == {"N"}


def _longest_run(values: list[float]) -> int:
    best = run = 1
    for a, b in itertools.pairwise(values):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def test_the_intermittent_discharger_stops_flowing_at_night_and_meets_its_daily_limit_weighted():
    _i, config, traffic, _ = _alone("intermittent")
    key = (config.enterprises[0].id, config.enterprises[0].outlets[0].id)
    params = build_outlet_params(config)[key]
    day_limit = effective_thresholds(params, params.factors["w01018"]).day_alarm
    assert day_limit is not None
    sent = _sent(traffic, START + DAY + 60)
    hours = [f for _t, f in sent if f.cn == "2061"]
    assert len(hours) == 24
    flow = [_value(f, "w00000") for f in hours]
    cod = [_value(f, "w01018") for f in hours]
    for f, q, c in zip(hours, flow, cod, strict=True):
        night = not 6 <= _china_hour(_at(f)) < 20
        assert (q == 0.0) if night else (q > 10.0), (_china_hour(_at(f)), q)
        assert (c > day_limit) if night else (c < day_limit), (_china_hour(_at(f)), c)
        assert {str(x["Flag"]) for x in f.pollutants.values()} == {"N"}  # still reported
    # The day's arithmetic mean is above the limit; weighted by flow (zero-flow hours weigh
    # nothing) it is well below, and that is the day value the logger itself reports.
    assert sum(cod) / 24 > day_limit * 1.05  # about 1.18 times
    weighted = sum(q * c for q, c in zip(flow, cod, strict=True)) / sum(flow)
    assert weighted < day_limit * 0.8
    [day] = [f for _t, f in sent if f.cn == "2031"]
    assert abs(_value(day, "w01018") - weighted) < 0.01


def test_the_real_time_only_outlet_sends_cn_2011_every_30_s_and_nothing_else():
    i, config, traffic, incidents = _alone("realtime_only")
    exceed = next(x for x in incidents if x.kind == "exceed")
    # Across a midnight (no day data either) and through its exceedance, history or live.
    sent = _sent(traffic, START + 3 * HOUR) + _sent(traffic, exceed.end + HOUR, exceed.start - HOUR)
    traffic.realtime = True
    sent += _sent(traffic, START + DAY + 10 * 60, START + DAY - 10 * 60)
    assert {f.cn for _t, f in sent} == {"2011"}
    times = [_at(f) for _t, f in sent]
    assert times[: 6 * 60] == list(range(START, START + 3 * HOUR, 30))
    assert sorted(set(times)) == sorted(times)  # live or not: one frame per 30 s
    params = build_outlet_params(config)[(i.enterprise_id, i.source_id)]
    limit = effective_thresholds(params, params.factors["a21026"]).hour_alarm
    assert limit is not None
    during = [_value(f, "a21026") for _t, f in sent if exceed.start <= _at(f) < exceed.end]
    assert len(during) == 2 * 120 and min(during) > 1.5 * limit
    outside = [_value(f, "a21026") for _t, f in sent if not exceed.start <= _at(f) < exceed.end]
    assert max(outside) < limit


def test_the_backfilling_logger_is_silent_then_resends_its_records_in_time_order():
    outage, _config, traffic, _ = _alone("backfill", live=True)
    assert outage.end - outage.start == 3 * HOUR  # the script's own; the demo's is longer
    sent = _sent(traffic, outage.end + 2 * HOUR)
    assert not [f for t, f in sent if outage.start <= t < outage.end]  # silent
    resent = [f for t, f in sent if t == outage.end]
    recorded = [f for f in resent if f.cn != "2011"]
    # The stored minute and hour records, in the order they were recorded, then the minute's
    # own frames (its real-time value among them).
    minutes = [_at(f) for f in recorded if f.cn == "2051"]
    assert minutes == list(range(outage.start - 600, outage.end, 600))
    hours = [_at(f) for f in recorded if f.cn == "2061"]
    assert hours == list(range(outage.start - HOUR, outage.end, HOUR))
    order = [(_at(f) + (HOUR if f.cn == "2061" else 600)) for f in recorded]
    assert order == sorted(order)  # each record where it was due: time order
    [live] = [f for f in resent if f.cn == "2011"]
    assert _at(live) == outage.end and resent.index(live) == len(resent) - 3
    # Nothing is missing in the end, nothing doubled; real-time values of the outage are lost.
    all_minutes = [_at(f) for _t, f in sent if f.cn == "2051"]
    assert all_minutes == list(range(START, outage.end + 2 * HOUR - 600, 600))
    all_hours = [_at(f) for _t, f in sent if f.cn == "2061"]
    assert all_hours == list(range(START, outage.end + HOUR, HOUR))
    assert not [f for _t, f in sent if f.cn == "2011" and outage.start <= _at(f) < outage.end]


def test_the_demo_cuts_the_backfilling_logger_off_long_enough_for_b8_at_its_speed():
    # B8 is judged on the service's wall clock: at 1200 times the clock, with a 60 s threshold
    # and a 30 s tick, three simulated hours (9 s) would pass unseen.
    assert backfill_outage_s(1200.0, 60) == 34 * HOUR
    assert backfill_outage_s(1200.0, 60) / 1200 > 60 + ABSENCE_TICK_S
    assert backfill_outage_s(1200.0, 80) == 40 * HOUR  # the demo's defaults
    assert backfill_outage_s(60.0, 600) == 11 * HOUR  # a service's threshold (600 s)
    assert backfill_outage_s(1.0, 600) == 3 * HOUR  # in real time: the script's three hours
    _data, incidents = _script(outage_s=34 * HOUR)
    outage = next(i for i in incidents if i.kind == "backfill")
    assert outage.end - outage.start == 34 * HOUR


def test_the_ph_dip_is_20_minutes_at_5_inside_an_hour_whose_mean_is_normal():
    dip, _config, traffic, _ = _alone("ph_dip")
    sent = _sent(traffic, dip.end + HOUR + 60)
    records = [(_at(f), f) for _t, f in sent if f.cn == "2051"]
    inside = [(at, _value(f, "w01001")) for at, f in records if dip.start <= at < dip.end]
    assert [at - dip.start for at, _v in inside] == [0, 600, 1200, 1800, 2400, 3000]
    assert [round(v) for _at_, v in inside] == [round(PH_DIP)] * 2 + [round(PH_OVERSHOOT)] * 4
    [hour] = [f for _t, f in sent if f.cn == "2061" and _at(f) == dip.start]
    assert 7.0 < _value(hour, "w01001") < 7.6  # inside 6-9: only every value shows the dip
    for at, f in records:
        low, high = f.pollutants["w01001"]["Min"], f.pollutants["w01001"]["Max"]
        assert isinstance(low, float) and isinstance(high, float)
        inside_6_9 = low >= 6 and high <= 9
        assert inside_6_9 == (not dip.start <= at < dip.start + 1200), (at, low, high)
