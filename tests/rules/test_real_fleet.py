"""Ordinary conditions of a real fleet (issue 15). Each scenario reproduced a false alarm or a
missed one in the engines before that issue; each runs through both engines, which must agree
finding by finding."""

from dataclasses import replace
from datetime import timedelta

import pytest

from ingest.readings import Measurement, PowerSample
from rules.batch import BatchEngine, measurements_frame
from rules.findings import Finding
from rules.hours import MinuteRecord, aggregate
from rules.judge import OutletJudge
from rules.markings import Marking
from rules.params import OutletParams
from rules.power_params import EnterprisePowerParams, MeterParams
from rules.stream import StreamEngine
from rules.timebase import DAY, HOUR, epoch
from tests.rules.factors import COD, FLOW_GAS, FLOW_WATER, O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, minutes, reading, tick, water_outlet
from tests.rules.test_incineration import PM, incinerator
from tests.rules.test_power_usage import K, P, at, rules_of, series
from tests.rules.test_power_usage import run as run_power

PH = "w01001"
WATER = ("E2", "DW001")


def run(
    readings: list[Measurement], params: OutletParams, markings: tuple[Marking, ...] = ()
) -> tuple[list[Finding], StreamEngine]:
    table = {(params.enterprise_id, params.outlet_id): params}
    stream = StreamEngine(table, markings=markings, grace_s=600)
    streamed = stream.process_measurements(readings)
    found = streamed + stream.flush()
    batched = BatchEngine(table, markings=markings, grace_s=600).run(measurements_frame(readings))
    assert sorted(found, key=lambda f: f.id) == sorted(batched, key=lambda f: f.id)
    return found, stream


def fired(found: list[Finding], rule: str) -> list[Finding]:
    return [f for f in found if f.rule == rule and f.state == "fire"]


def gas_hour(h: float, so2: float, *, o2: float = 6.0, flag: str = "N", flow: float = 100.0):
    """A full hour of 10-minute flue-gas records (SO2, O2, flow), all with one flag."""
    return [
        *hour_of(SO2, tick(h), so2, flag=flag),
        *hour_of(O2, tick(h), o2, flag=flag),
        *hour_of(FLOW_GAS, tick(h), flow, flag=flag),
    ]


# -- 1. a stopped plant is not a faulty one ----------------------------------------------------


def test_a_plant_stopped_for_six_days_raises_nothing_at_alarm_tier_and_no_fault_or_rate():
    """Six days of 停运 (flag F, flow 0, ambient O2), as over the Spring Festival, between
    days of normal production. Before: 423-style floods of B9 (an alarm after 120 hours) and
    a B10 for every stopped day."""
    data: list[Measurement] = []
    for h in range(24):
        data += gas_hour(h, 40.0)
    for h in range(24, 24 + 6 * 24):
        data += gas_hour(h, 0.0, o2=20.9, flow=0.0, flag="F")
    for h in range(24 + 6 * 24, 24 + 8 * 24):
        data += gas_hour(h, 40.0)
    found, _ = run(data, gas_outlet())
    assert [f for f in found if f.tier == "alarm"] == []
    assert fired(found, "B9") == []
    stopped_days = {epoch(tick(24 * d)) for d in range(1, 7)}
    assert [f for f in fired(found, "B10") if f.window_start in stopped_days] == []
    assert fired(found, "B7") == []


def test_a_stopped_hour_is_flagged_f_and_the_outlet_shows_as_stopped():
    data = gas_hour(0, 40.0) + gas_hour(1, 0.0, flow=0.0, flag="F")
    table = {("E1", "DA001"): gas_outlet()}
    stream = StreamEngine(table, grace_s=600)
    stream.process_measurements(data)
    assert stream.stopped_outlets() == {("E1", "DA001")}
    assert stream.production() == {"E1": False}  # 停产
    assert stream.production_changes() == {"E1": False}  # what the service stores
    assert stream.production_changes() == {}  # told once
    stream.process_measurements(gas_hour(2, 40.0))
    assert stream.stopped_outlets() == set()
    assert stream.production() == {"E1": True}
    assert stream.production_changes() == {"E1": True}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("FFFFFF", "F"), ("FFFFDD", "F"), ("FFFDDD", "D"), ("NNFFFF", "F"), ("NNN", None)],
)
def test_an_invalid_hour_takes_its_most_frequent_cause(flags, expected):
    """All F is 停运 (it was D, a fault); a tie goes to the fault; an hour short of records
    without any invalid flag is missing data, not a fault."""
    judge = OutletJudge(gas_outlet())
    records = [
        MinuteRecord(SO2, epoch(T0) + 600 * i, 40.0, flag, None, False)
        for i, flag in enumerate(flags)
    ]
    hv = judge.hour_value(aggregate(records, [], judge.params.valid_flags)[SO2])
    assert (hv.valid, hv.flag) == (False, expected)


def test_a_declared_stopped_marking_takes_silent_hours_out_of_the_expected_records():
    """The logger is switched off with the plant for 12 hours of a declared 停产 period: those
    hours are not expected data (B10), and not missing hours (B7)."""
    data: list[Measurement] = []
    for h in [*range(6), *range(18, 48)]:
        data += gas_hour(h, 40.0)
    stop = Marking("E1", "DA001", "stopped", epoch(tick(6)), epoch(tick(18)))
    found, _ = run(data, gas_outlet(), (stop,))
    assert [f for f in fired(found, "B10") if f.window_start == epoch(T0)] == []
    assert fired(found, "B7") == []
    without, _ = run(data, gas_outlet())
    assert {f.window_start for f in fired(without, "B10")} == {epoch(T0)}
    assert len(fired(without, "B7")) == 12  # the same silence, undeclared, is missing data


# -- 2. pH on every value ------------------------------------------------------------------


def test_ph_is_judged_on_every_value_not_the_hourly_mean():
    """20 minutes at pH 5.0 in an hour whose mean is 7.3."""
    ph = minutes(PH, T0, [5.0, 5.0, 8.45, 8.45, 8.45, 8.45], outlet=WATER)
    found, _ = run(ph, water_outlet())
    [a4v] = fired(found, "A4V")
    assert (a4v.tier, a4v.value, a4v.limit) == ("alarm", 5.0, 6)
    assert a4v.evidence["mean"] == 7.3
    assert (a4v.evidence["min"], a4v.evidence["max"]) == (5.0, 8.45)


def test_ph_min_and_max_fields_of_hour_and_minute_packets_are_judged():
    hour = reading(PH, T0, 7.3, interval="hour", outlet=WATER)._replace(minimum=5.2, maximum=7.9)
    [a4v] = fired(run([hour], water_outlet())[0], "A4V")
    assert (a4v.value, a4v.evidence["source"]) == (5.2, "device")
    high = [
        r._replace(maximum=9.6 if i == 3 else r.value + 0.1)
        for i, r in enumerate(minutes(PH, T0, [7.0, 7.1, 7.2, 7.3, 7.2, 7.1], outlet=WATER))
    ]
    [a4v] = fired(run(high, water_outlet())[0], "A4V")
    assert (a4v.value, a4v.limit) == (9.6, 9)


# -- 3. an intermittent discharger -----------------------------------------------------------


def discharger_day(day_cod: float, night_cod: float, *, bad_flow_hour: int | None = None):
    """No flow from 20:00 to 06:00; ``day_cod`` while discharging, ``night_cod`` at night."""
    data: list[Measurement] = []
    for h in range(24):
        night = h < 6 or h >= 20
        cod = night_cod if night else day_cod
        flow = 0.0 if night else 20.0
        flag = "D" if h == bad_flow_hour else "N"
        data += hour_of(COD, tick(h), cod, outlet=WATER)
        data += minutes(FLOW_WATER, tick(h), [flow] * 6, outlet=WATER, flag=flag)
    return data


def test_zero_flow_hours_weigh_nothing_in_the_daily_mean():
    """Arithmetic mean (10 × 100 + 14 × 30) / 24 = 59 > 50; flow-weighted 30."""
    found, _ = run(discharger_day(30.0, 100.0), water_outlet())
    assert fired(found, "A4") == []
    exceeding, _ = run(discharger_day(60.0, 10.0), water_outlet())
    [a4] = fired(exceeding, "A4")
    assert a4.value == 60.0
    assert a4.evidence["flow_weighted"] is True
    assert (a4.evidence["weighted_hours"], a4.evidence["weighted_share"]) == (24, 1.0)


def test_an_intermittent_dischargers_still_nights_raise_no_hourly_warning():
    """Night hours at 100 mg/L (twice the daily limit) with no flow discharged nothing: the
    hourly warning an hour above the daily limit gives is not for them."""
    found, _ = run(discharger_day(30.0, 100.0), water_outlet())
    assert fired(found, "A3") == []
    found, _ = run(discharger_day(60.0, 10.0), water_outlet())
    assert len(fired(found, "A3")) == 14  # the discharging hours above 50 still warn


def test_an_hour_without_a_valid_flow_is_left_out_of_the_weighting():
    found, _ = run(discharger_day(60.0, 10.0, bad_flow_hour=12), water_outlet())
    [a4] = fired(found, "A4")
    assert a4.value == 60.0  # still the flow-weighted mean of the other hours
    assert a4.evidence["weighted_hours"] == 23
    assert a4.evidence["weighted_share"] == round(23 / 24, 4)


def test_a_day_without_any_discharge_has_no_daily_value():
    data: list[Measurement] = []
    for h in range(24):
        data += hour_of(COD, tick(h), 80.0, outlet=WATER)
        data += minutes(FLOW_WATER, tick(h), [0.0] * 6, outlet=WATER)
    found, _ = run(data, water_outlet())
    assert [f for f in found if f.rule == "A4"] == []


# -- 4. the interval comes from the data --------------------------------------------------------


def one_minute(factor: str, h: float, values: list[float]) -> list[Measurement]:
    return minutes(factor, tick(h), values, every=1)


def test_five_one_minute_records_are_not_a_valid_hour():
    """Before: at the default 10 minutes a record, 5 records made a valid 50-minute hour and a
    false A3."""
    data = one_minute(SO2, 0, [500.0 + i for i in range(5)])
    data += one_minute(O2, 0, [6.0 + i / 100 for i in range(60)])
    found, _ = run(data, gas_outlet())
    assert fired(found, "A3") == []
    full = one_minute(SO2, 1, [150.0 + i % 7 for i in range(60)])
    full += one_minute(O2, 1, [6.0 + i / 100 for i in range(60)])
    [a3] = fired(run(data + full, gas_outlet())[0], "A3")
    assert a3.window_start == epoch(tick(1))
    assert a3.evidence["valid_minutes"] == 60


def test_constant_values_are_counted_in_minutes_of_the_data():
    """Ten identical one-minute values are 10 minutes, not 100 (B2 needs 60)."""
    data = one_minute(SO2, 0, [33.3] * 10 + [30.0 + i for i in range(50)])
    data += one_minute(O2, 0, [6.0 + i / 100 for i in range(60)])
    assert fired(run(data, gas_outlet())[0], "B2") == []
    flat = one_minute(SO2, 0, [33.3] * 60) + one_minute(O2, 0, [6.0 + i / 100 for i in range(60)])
    [b2] = fired(run(flat, gas_outlet())[0], "B2")
    assert b2.value == 60


def test_a_configured_interval_that_the_data_contradicts_is_a_finding():
    data = one_minute(SO2, 0, [40.0 + i % 5 for i in range(60)])
    found, _ = run(data, gas_outlet(minute_interval_min=10))
    [b11] = fired(found, "B11")
    assert (b11.value, b11.limit, b11.unit) == (60, 600, "s")
    assert fired(run(data, gas_outlet(minute_interval_min=1))[0], "B11") == []


def test_sparse_hours_of_a_ten_minute_logger_do_not_pass_for_a_coarser_logger():
    """Three records 20 minutes apart: a 10-minute logger that lost half its records (30
    minutes), not a 20-minute logger (a valid hour), once its interval is known."""
    data = gas_hour(0, 40.0)
    data += minutes(SO2, tick(1), [500.0, 510.0, 520.0], every=20)
    data += hour_of(O2, tick(1), 6.0)
    found, _ = run(data, gas_outlet())
    assert fired(found, "A3") == []


# -- 5. real-time-only outlets -----------------------------------------------------------------


def realtime(factor: str, h: float, value: float, every_s: int = 30) -> list[Measurement]:
    return [
        reading(
            factor, tick(h) + timedelta(seconds=i * every_s), value + (i % 3) / 10, interval="rtd"
        )
        for i in range(HOUR // every_s)
    ]


def test_an_outlet_sending_only_real_time_data_is_judged_on_hours_built_from_it():
    data: list[Measurement] = []
    for h in range(2):
        data += realtime(SO2, h, 150.0) + realtime(O2, h, 6.0) + realtime(FLOW_GAS, h, 100.0)
    found, _ = run(data, gas_outlet())
    a3 = fired(found, "A3")
    assert [f.window_start for f in a3] == [epoch(tick(0)), epoch(tick(1))]
    assert a3[0].evidence["source"] == "realtime"
    assert a3[0].evidence["valid_minutes"] == 60


def test_real_time_data_do_not_make_the_hours_of_an_outlet_that_sends_minute_data():
    data = realtime(SO2, 0, 500.0) + gas_hour(0, 40.0) + realtime(SO2, 1, 500.0) + gas_hour(1, 40.0)
    found, _ = run(data, gas_outlet())
    assert fired(found, "A3") == []


# -- 6. gaps in minute data ----------------------------------------------------------------


def test_hours_missing_from_minute_data_are_b7():
    """A logger that sends minute data but no hour packets, silent for three hours."""
    data: list[Measurement] = []
    for h in [0, 1, 5, 6]:
        data += gas_hour(h, 40.0)
    found, _ = run(data, gas_outlet())
    b7 = [(f.state, f.window_start, f.factor) for f in found if f.rule == "B7"]
    assert b7 == [
        ("fire", epoch(tick(2)), None),
        ("fire", epoch(tick(3)), None),
        ("fire", epoch(tick(4)), None),
        ("clear", epoch(tick(5)), None),
    ]


def test_a_logger_that_backfills_in_time_order_leaves_no_hole():
    data = gas_hour(0, 40.0) + gas_hour(1, 40.0)
    backfill = [
        m._replace(received_at=tick(5) + timedelta(minutes=1))
        for h in (2, 3, 4)
        for m in gas_hour(h, 40.0)
    ]
    live = gas_hour(5, 40.0) + gas_hour(6, 40.0)
    found, _ = run(data + backfill + live, gas_outlet())
    assert [f for f in found if f.rule == "B7"] == []


def test_a_factor_the_minute_data_stop_carrying_is_an_incomplete_hour():
    data = gas_hour(0, 40.0) + hour_of(O2, tick(1), 6.0) + hour_of(FLOW_GAS, tick(1), 100.0)
    data += gas_hour(2, 40.0)
    found, _ = run(data, gas_outlet())
    b7 = [(f.state, f.window_start, f.factor) for f in found if f.rule == "B7"]
    assert b7 == [("fire", epoch(tick(1)), SO2), ("clear", epoch(tick(2)), SO2)]
    assert b7 and fired(found, "B7")[0].evidence == {"incomplete": True, "data": "minute"}


# -- 9. an incinerator's short day ---------------------------------------------------------


def furnace_day(last_hours_flag: str, *, o2_flagged: bool = True) -> list[Measurement]:
    """A day of dust at 85 mg/m³ (O2 at the reference) whose last 5 hours carry a flag."""
    outlet = ("E9", "DA001")
    data: list[Measurement] = []
    for h in range(24):
        flag = last_hours_flag if h >= 19 else "N"
        data += hour_of(PM, tick(h), 85.0, outlet=outlet, flag=flag)
        data += hour_of(O2, tick(h), 11.0, outlet=outlet, flag=flag if o2_flagged else "N")
    return data


def test_an_incinerator_day_of_19_running_hours_is_judged_on_them():
    """19 hours at 85 mg/m³ against a 24-hour limit of 80, the furnace stopped (F) for 5."""
    data = furnace_day("F")
    params = incinerator()
    params = replace(
        params,
        factors={
            **params.factors,
            PM: replace(
                params.factors[PM], thresholds=replace(params.factors[PM].thresholds, day_alarm=80)
            ),
        },
    )
    found, _ = run(data, params)
    [a51] = fired(found, "A5-1")
    assert (a51.tier, a51.value, a51.limit) == ("alarm", 85.0, 80)
    assert (a51.evidence["valid_hours"], a51.evidence["running_hours"]) == (19, 19)
    assert a51.window_end - a51.window_start == DAY


def test_an_incinerator_day_with_invalid_running_hours_is_not_judged():
    """19 valid hours of 24 running (5 hours of analyser fault): too few for a daily mean."""
    assert fired(run(furnace_day("D", o2_flagged=False), incinerator())[0], "A5-1") == []


# -- 7. one incident, one case -----------------------------------------------------------


def test_a_control_device_switched_off_while_production_runs_is_c1_only():
    """Before: C1 for the episode and a C2 'started 70 minutes late', measured from the start
    of the production run, for the same incident."""

    data = series(P, 0, 120, 80.0) + series(K, 0, 30, 15.0)
    data += series(K, 30, 70, 0.0) + series(K, 70, 120, 15.0)
    found = run_power(data)
    assert [s for s, *_ in rules_of(found, "C1")] == ["fire", "clear"]
    assert rules_of(found, "C2") == []


def test_a_late_start_is_measured_from_the_restart_and_joins_the_c1_episode():

    # production 0-30, stopped 30-60, restarted at 60; the control follows it down at 30 and
    # comes back only at 75: 15 minutes late, counted from the restart
    data = series(P, 0, 30, 80.0) + series(P, 30, 60, 0.0) + series(P, 60, 120, 80.0)
    data += series(K, 0, 30, 15.0) + series(K, 30, 75, 0.0) + series(K, 75, 120, 15.0)
    found = run_power(data)
    [c2] = [f for f in found if f.rule == "C2"]
    assert (c2.window_start, c2.value, c2.limit) == (at(60), 15 * 60, 300)
    assert c2.evidence["episode_of"] == "C1"  # C1 held from minute 60 to 75: the same incident
    [c1] = [f for f in found if f.rule == "C1" and f.state == "fire"]
    assert c1.window_start == at(60)
    # eight minutes late: not long enough for C1, a C2 of its own
    data = series(P, 60, 120, 80.0) + series(K, 30, 68, 0.0) + series(K, 68, 120, 15.0)
    [c2] = [f for f in run_power(data) if f.rule == "C2"]
    assert (c2.value, "episode_of" in c2.evidence) == (8 * 60, False)


# -- HJ 212-2025 power values and CN 2021 running states as meter samples ---------------------


def test_a_control_device_reporting_only_its_running_state_drives_c1():
    """A treatment facility known only by its SBx-RS state (no power, no rating): off while
    production runs is C1, as for a metered one."""
    meters = {
        P: MeterParams("E3", P, "production", rated_kw=100),
        K: MeterParams("E3", K, "control", rated_kw=None, serves=(P,)),
    }
    params = EnterprisePowerParams("E3", meters=meters)
    data = series(P, 0, 60, 80.0)
    for minute in range(60):
        ts = T0 + timedelta(minutes=minute)
        on = not 20 <= minute < 40
        data.append(PowerSample("E3", K, ts, None, None, None, on, ts + timedelta(seconds=30), 0))
    c1 = rules_of(run_power(data, params), "C1")
    assert c1 == [("fire", K, "warning", at(20)), ("clear", K, "warning", at(40))]


# -- found on review: each failed before its fix ---------------------------------------------


def test_a_daily_mean_is_not_weighted_on_a_few_hours_with_a_valid_flow():
    """One hour of 24 with a valid flow: weighting on it alone made that hour the day (an A4
    alarm at 200 where the day's hours average 28)."""
    data: list[Measurement] = []
    for h in range(24):
        data += hour_of(COD, tick(h), 200.0 if h == 5 else 20.0, outlet=WATER)
        data += minutes(FLOW_WATER, tick(h), [10.0] * 6, outlet=WATER, flag="N" if h == 5 else "D")
    found, _ = run(data, water_outlet())
    assert fired(found, "A4") == []
    assert fired(found, "A3")  # hour 5 itself is above the daily limit: its hourly warning


def test_a_stopped_source_with_a_valid_zero_flow_is_not_an_exceedance():
    """Flow 0 (valid), O2 20.8 %, SO2 drifting at 2 mg/m³: converted, 150 — an A3 alarm every
    hour before, for a source that emitted nothing."""
    data: list[Measurement] = []
    for h in range(3):
        data += hour_of(SO2, tick(h), 2.0) + minutes(O2, tick(h), [20.8] * 6)
        data += minutes(FLOW_GAS, tick(h), [0.0] * 6)
    found, _ = run(data, gas_outlet())
    assert fired(found, "A3") == []


def test_still_water_is_not_a_ph_alarm():
    data: list[Measurement] = []
    for h in range(3):
        data += minutes(PH, tick(h), [5.6] * 6, outlet=WATER)
        data += minutes(FLOW_WATER, tick(h), [0.0] * 6, outlet=WATER)
    found, _ = run(data, water_outlet())
    assert fired(found, "A4V") == []


def test_real_time_data_take_over_soon_after_minute_data_stop():
    """Minute and real-time data for three hours, then real-time only with SO2 at 150 for
    hours 4 and 5: the hours after the takeover are built from real-time data (before, real-
    time values were dropped for two hours after the last minute record: no A3, a false B7)."""
    data: list[Measurement] = []
    for h in range(3):
        data += gas_hour(h, 40.0) + realtime(SO2, h, 40.0) + realtime(O2, h, 6.0)
    for h in range(3, 8):
        so2 = 150.0 if h in (4, 5) else 40.0
        data += realtime(SO2, h, so2) + realtime(O2, h, 6.0) + realtime(FLOW_GAS, h, 100.0)
    found, _ = run(data, gas_outlet())
    assert [f.window_start for f in fired(found, "A3")] == [epoch(tick(4)), epoch(tick(5))]
    assert [f for f in fired(found, "B7") if f.factor is None] == []


def test_an_empty_flag_is_judged_alike_by_both_engines():
    data = [r._replace(flag="") for r in gas_hour(0, 150.0) + gas_hour(1, 150.0)]
    found, _ = run(data, gas_outlet())  # run() asserts that both engines agree
    assert len(fired(found, "A3")) == 2  # an empty flag is no flag: N


def test_removing_a_factor_with_an_open_day_does_not_crash_the_engine():
    table = {("E1", "DA001"): gas_outlet()}
    stream = StreamEngine(table, grace_s=600)
    for h in range(15):
        stream.process_measurements(gas_hour(h, 40.0))
    without = gas_outlet()
    without = replace(without, factors={k: v for k, v in without.factors.items() if k != SO2})
    stream.reconfigure(StreamEngine({("E1", "DA001"): without}, grace_s=600))
    for h in range(15, 50):
        stream.process_measurements(gas_hour(h, 40.0))
    stream.flush()
