"""The catalogue rules added by issue 15, each at its boundaries, through both engines."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from ingest.china_time import CHINA_TZ
from ingest.readings import Measurement, PowerSample
from rules.batch import BatchEngine, measurements_frame, readings_frames
from rules.findings import Finding
from rules.markings import Marking
from rules.params import FactorParams, OutletParams, Thresholds
from rules.power_params import EnterprisePowerParams
from rules.stream import StreamEngine
from rules.timebase import HOUR, epoch
from tests.rules.factors import FLOW_GAS, O2, SO2
from tests.rules.scenario import gas_outlet, hour_of, minutes, reading, tick
from tests.rules.test_linkage import P, meter_hour, power

FURNACE, DP, TEMP = "a01901", "i33310", "a01012"


def run(
    readings: list[Measurement | PowerSample],
    params: OutletParams,
    *,
    markings: tuple[Marking, ...] = (),
    power_params: EnterprisePowerParams | None = None,
) -> list[Finding]:
    """Stream (in arrival order) and batch findings, which must agree."""
    readings = sorted(readings, key=lambda r: r.received_at)
    table = {(params.enterprise_id, params.outlet_id): params}
    powers = {params.enterprise_id: power_params} if power_params else {}
    stream = StreamEngine(table, power=powers, markings=markings, grace_s=600)
    found: list[Finding] = []
    for r in readings:
        if isinstance(r, Measurement):
            found += stream.process_measurements([r])
        else:
            found += stream.process_power([r])
    found += stream.flush()
    frame, power_frame = readings_frames(readings)
    batch = BatchEngine(table, power=powers, markings=markings, grace_s=600)
    batched = batch.run(frame, power_frame=power_frame)
    assert sorted(found, key=lambda f: f.id) == sorted(batched, key=lambda f: f.id)
    return found


def fired(found: list[Finding], rule: str) -> list[Finding]:
    return [f for f in found if f.rule == rule and f.state == "fire"]


# -- A5-3: process factors outside their band ----------------------------------------------


def incinerator(**kw) -> OutletParams:
    factors = {
        FURNACE: FactorParams(
            FURNACE,
            "℃",
            Thresholds(value_low=850, band_high=1200, band_high_2=1300),
            allow_negative=True,
        ),
        DP: FactorParams(DP, "Pa", Thresholds(band_low=500, band_high=2000)),
    }
    return replace(OutletParams("E9", "DA001", "gas", factors=factors, incineration=True), **kw)


def furnace(h: float, value: float) -> list[Measurement]:
    return minutes(
        FURNACE, tick(h), [value + i % 2 for i in range(12)], every=5, outlet=("E9", "DA001")
    )


@pytest.mark.parametrize(
    ("mean", "level"), [(1200.0, None), (1201.0, "偏高"), (1300.0, "偏高"), (1301.0, "过高")]
)
def test_a5_3_a_furnace_hourly_mean_above_1200_is_high_and_above_1300_too_high(mean, level):
    # the minutes alternate mean-0.5 / mean+0.5 so that the hour's mean is exactly ``mean``
    data = minutes(FURNACE, tick(0), [mean - 0.5, mean + 0.5] * 6, every=5, outlet=("E9", "DA001"))
    found = fired(run(data, incinerator()), "A5-3")
    assert [f.evidence["level"] for f in found] == ([level] if level else [])


def test_a5_3_a_bag_filter_pressure_drop_outside_500_to_2000_pa():
    data: list[Measurement] = []
    for h, value in enumerate([1500.0, 2100.0, 450.0, 500.0, 2000.0]):
        data += minutes(DP, tick(h), [value] * 6, outlet=("E9", "DA001"))
    found = [
        (f.state, f.window_start, f.evidence.get("level"))
        for f in run(data, incinerator())
        if f.rule == "A5-3"
    ]
    assert found == [
        ("fire", epoch(tick(1)), "偏高"),
        ("fire", epoch(tick(2)), "偏低"),
        ("clear", epoch(tick(3)), None),
    ]


def test_a5_3_a_cold_five_minutes_and_a_hot_hour_are_one_warning_of_the_hour():
    data = minutes(FURNACE, tick(0), [840.0] + [1400.0] * 11, every=5, outlet=("E9", "DA001"))
    [a53] = fired(run(data, incinerator()), "A5-3")
    assert (a53.value, a53.evidence["low_periods"]) == (840.0, 1)


# -- A7: markings longer than allowed, and contradicted by power ----------------------------


def marking(kind: str, start_h: float, hours: float, factor: str | None = None) -> Marking:
    start = epoch(tick(start_h))
    return Marking("E1", "DA001", kind, start, start + int(hours * HOUR), factor)


def gas_hours(n: int, *, flag: str = "N") -> list[Measurement]:
    out: list[Measurement] = []
    for h in range(n):
        out += hour_of(SO2, tick(h), 40.0, flag=flag) + hour_of(O2, tick(h), 6.0, flag=flag)
        out += hour_of(FLOW_GAS, tick(h), 100.0, flag=flag)
    return out


@pytest.mark.parametrize(("hours", "fires"), [(4.0, False), (4.5, True), (30.0, True)])
def test_a7_a_start_up_mark_longer_than_four_hours(hours, fires):
    limits = (("startup", 4.0), ("fault", 4.0))
    found = run(
        gas_hours(36),
        gas_outlet(marking_max_hours=limits),
        markings=(marking("startup", 2, hours),),
    )
    a7 = fired(found, "A7")
    assert bool(a7) is fires
    if fires:
        [f] = a7
        assert (f.value, f.limit, f.unit) == (hours, 4.0, "h")
        assert (f.window_start, f.window_end) == (epoch(tick(2)), epoch(tick(2 + hours)))
        assert f.evidence["type"] == "startup"


def test_a7_marks_of_types_without_a_limit_are_not_judged():
    found = run(
        gas_hours(30),
        gas_outlet(marking_max_hours=(("fault", 4.0),)),
        markings=(marking("maintenance", 1, 20),),
    )
    assert fired(found, "A7") == []


def linked_outlet() -> OutletParams:
    return gas_outlet(flow_low=50.0)


def test_a7_2_stopped_data_while_production_power_runs():
    data: list[Measurement | PowerSample] = []
    for h in range(4):
        flag = "F" if h in (1, 2) else "N"
        data += hour_of(FLOW_GAS, tick(h), 0.0 if flag == "F" else 100.0, flag=flag)
        data += meter_hour(h, 80.0 if h != 2 else 0.0)  # production on in hours 0, 1, 3
    found = run(data, linked_outlet(), power_params=power())
    a72 = [(f.state, f.window_start) for f in found if f.rule == "A7-2"]
    assert a72 == [("fire", epoch(tick(1))), ("clear", epoch(tick(2)))]
    [f] = fired(found, "A7-2")
    assert (f.evidence["stopped"], f.evidence["producing"]) == ("F", [P])


def test_a7_2_a_declared_stop_while_production_power_runs():
    data: list[Measurement | PowerSample] = []
    for h in range(5):
        data += hour_of(FLOW_GAS, tick(h), 100.0) + meter_hour(h, 80.0)
    found = run(data, linked_outlet(), markings=(marking("stopped", 1, 2),), power_params=power())
    a72 = [(f.state, f.window_start, f.evidence.get("stopped")) for f in found if f.rule == "A7-2"]
    assert a72 == [
        ("fire", epoch(tick(1)), "stopped"),
        ("fire", epoch(tick(2)), "stopped"),
        ("clear", epoch(tick(3)), None),
    ]
    quiet = [m for m in data if not (isinstance(m, PowerSample) and tick(1) <= m.ts < tick(3))]
    quiet += meter_hour(1, 0.0) + meter_hour(2, 0.0)
    found = run(quiet, linked_outlet(), markings=(marking("stopped", 1, 2),), power_params=power())
    assert fired(found, "A7-2") == []  # the production really stopped: the marking is true


def test_a7_2_a_shutdown_marking_is_not_a_claim_that_nothing_runs():
    """停炉/停机 is the process of stopping: production power runs through it."""
    data: list[Measurement | PowerSample] = []
    for h in range(5):
        data += hour_of(FLOW_GAS, tick(h), 100.0) + meter_hour(h, 80.0)
    found = run(data, linked_outlet(), markings=(marking("shutdown", 1, 2),), power_params=power())
    assert fired(found, "A7-2") == []


# -- A8: ultra-low emission, at least 95 % of a month's hours ---------------------------------


def ultra_low_outlet() -> OutletParams:
    so2 = FactorParams(SO2, "mg/m³", Thresholds(hour_warning=35, ultra_low=35), reference_o2=16)
    return OutletParams("E1", "DA001", "gas", factors={SO2: so2, O2: FactorParams(O2, "%")})


@pytest.mark.parametrize(("above", "fires"), [(37, False), (38, True)])
def test_a8_a_month_with_fewer_than_95_percent_of_hours_within_the_target(above, fires):
    """December: 744 valid hours; 37 above the target leave 95.03 %, 38 leave 94.89 %."""
    first = epoch(datetime(2026, 12, 1, tzinfo=CHINA_TZ))
    data: list[Measurement] = []
    for h in range(744 + 24):  # and a day of January, which closes December
        at = datetime.fromtimestamp(first + h * HOUR, tz=CHINA_TZ)
        so2 = 40.0 if h < above else 20.0
        data += [
            reading(SO2, at, so2, interval="hour"),
            reading(O2, at, 16.0, interval="hour"),
        ]
    found = run(data, ultra_low_outlet())
    a8 = fired(found, "A8")
    assert bool(a8) is fires
    if fires:
        [f] = a8
        assert (f.value, f.limit, f.unit) == (round(706 / 744 * 100, 2), 95.0, "%")
        assert (f.window_start, f.window_end) == (
            first,
            epoch(datetime(2027, 1, 1, tzinfo=CHINA_TZ)),
        )
        assert f.evidence == {"valid_hours": 744, "within": 706, "target": 35}


# -- B8-1, B8-4: O2 above the fleet's reference, a wet scrubber's flue gas too hot -------------


@pytest.mark.parametrize(
    ("o2", "flow", "fires"), [(9.5, 100.0, True), (9.0, 100.0, False), (9.5, 0.0, False)]
)
def test_b8_1_o2_above_the_reference_of_similar_outlets_while_flowing(o2, flow, fires):
    data = hour_of(O2, tick(0), o2) + hour_of(FLOW_GAS, tick(0), flow) + hour_of(SO2, tick(0), 40.0)
    found = fired(run(data, gas_outlet(o2_reference=9.0)), "B8-1")
    assert bool(found) is fires
    if fires:
        assert found[0].evidence["reference"] == 9.0
        assert found[0].evidence["pollutants"][SO2]["limit"] == 100


def test_b8_1_not_judged_without_a_reference():
    data = hour_of(O2, tick(0), 15.0) + hour_of(FLOW_GAS, tick(0), 100.0)
    assert fired(run(data, gas_outlet()), "B8-1") == []


@pytest.mark.parametrize(("temperature", "fires"), [(85.0, True), (80.0, False)])
def test_b8_4_flue_gas_too_hot_for_a_running_wet_scrubber(temperature, fires):
    params = gas_outlet(wet_fgd_temp_max=80.0)
    params = replace(params, factors={**params.factors, TEMP: FactorParams(TEMP, "℃")})
    data = hour_of(TEMP, tick(0), temperature) + hour_of(FLOW_GAS, tick(0), 100.0)
    assert bool(fired(run(data, params), "B8-4")) is fires
    assert fired(run(data, gas_outlet()), "B8-4") == []  # no wet FGD declared


# -- B-sub: emission amounts ---------------------------------------------------------------


def test_an_exceedance_states_the_amount_emitted_and_the_part_above_the_limit():
    """SO2 150 mg/m³ at the reference O2 and 100 m³/s: 0.0036 × 150 × 100 = 54 kg in the hour,
    a third of it (150 − 100) / 150 above the limit: 18 kg."""
    data = (
        hour_of(SO2, tick(0), 150.0) + hour_of(O2, tick(0), 6.0) + hour_of(FLOW_GAS, tick(0), 100.0)
    )
    [a3] = fired(run(data, gas_outlet()), "A3")
    assert a3.evidence["emission_kg"] == pytest.approx(54.0)
    assert a3.evidence["excess_kg"] == pytest.approx(18.0)


def test_a_daily_exceedance_states_the_days_amount():
    data: list[Measurement] = []
    for h in range(24):
        data += hour_of(SO2, tick(h), 95.0) + hour_of(O2, tick(h), 6.0)
        data += hour_of(FLOW_GAS, tick(h), 100.0)
    [a4] = fired(run(data, gas_outlet()), "A4")
    assert a4.evidence["emission_kg"] == pytest.approx(24 * 0.0036 * 95 * 100)
    assert a4.evidence["emission_hours"] == 24
    assert a4.evidence["excess_kg"] == pytest.approx(24 * 0.0036 * 95 * 100 * 5 / 95)


# -- B8-7: calibration-like plateaus without a C flag ----------------------------------------


def with_plateau(level: float, minutes_held: int, *, flag: str = "N") -> list[Measurement]:
    """An hour of one-minute SO2 around 40 mg/m³ with a plateau at ``level`` from minute 20."""
    values = [40.0 + (i % 5) / 10 for i in range(60)]
    data = minutes(SO2, tick(0), values, every=1)
    for i in range(20, 20 + minutes_held):
        data[i] = data[i]._replace(value=level, flag=flag)
    return data + minutes(O2, tick(0), [6.0 + (i % 3) / 10 for i in range(60)], every=1)


@pytest.mark.parametrize(
    ("level", "held", "flag", "fires"),
    [
        (200.0, 5, "N", True),  # a span-gas level held five minutes, not flagged C
        (200.0, 3, "N", True),
        (200.0, 15, "N", True),
        (200.0, 2, "N", False),  # too short
        (200.0, 16, "N", False),  # too long for a span check
        (203.7, 5, "N", False),  # not a round value
        (60.0, 5, "N", False),  # no step: 60 is within half of itself from 40
        (200.0, 5, "C", False),  # flagged: a calibration the analyser declared
    ],
)
def test_b8_7_a_round_plateau_with_steps_in_and_out_and_no_c_flag(level, held, flag, fires):
    found = fired(run(with_plateau(level, held, flag=flag), ranged_outlet()), "B8-7")
    assert bool(found) is fires
    if fires:
        assert (found[0].value, found[0].evidence["plateaus"]) == (level, 1)


def ranged_outlet(range_max: float = 250.0) -> OutletParams:
    """SO2 measured on a 0–250 mg/m³ analyser."""
    params = gas_outlet()
    so2 = replace(params.factors[SO2], range_max=range_max)
    return replace(params, factors={**params.factors, SO2: so2})


def test_b8_7_needs_a_span_level_and_the_instruments_range():
    """A low round value with steps (5 → 10 → 5 on an ultra-low plant) is ordinary data; a
    factor without a configured range is not judged."""
    values = [5.0 + (i % 3) / 10 for i in range(60)]
    values[20:25] = [10.0] * 5
    values[25] = 5.0
    low = minutes(SO2, tick(0), values, every=1)
    low += minutes(O2, tick(0), [6.0 + (i % 3) / 10 for i in range(60)], every=1)
    assert fired(run(low, ranged_outlet()), "B8-7") == []
    assert fired(run(with_plateau(200.0, 5), gas_outlet()), "B8-7") == []


def test_b8_7_not_seen_in_ten_minute_data():
    data = minutes(SO2, tick(0), [40.0, 41.0, 200.0, 200.0, 40.5, 41.5])
    data += hour_of(O2, tick(0), 6.0)
    assert fired(run(data, gas_outlet()), "B8-7") == []


# -- B8-8: identical series across factors -------------------------------------------------


def test_b8_8_a_factor_reporting_another_factors_series_is_copied_data():
    nox = "a21002"
    params = gas_outlet()
    params = replace(params, factors={**params.factors, nox: FactorParams(nox, "mg/m³")})
    series = [41.2, 43.5, 40.1, 44.8, 42.0, 39.7]
    copied = minutes(SO2, tick(0), series) + minutes(nox, tick(0), series)
    copied += hour_of(O2, tick(0), 6.0)
    [b88] = fired(run(copied, params), "B8-8")
    assert (b88.factor, b88.evidence["same_as"]) == (SO2, nox)
    different = minutes(SO2, tick(0), series) + minutes(nox, tick(0), [s + 0.1 for s in series])
    assert fired(run(different + hour_of(O2, tick(0), 6.0), params), "B8-8") == []
    flat = minutes(SO2, tick(0), [40.0] * 6) + minutes(nox, tick(0), [40.0] * 6)
    assert fired(run(flat + hour_of(O2, tick(0), 6.0), params), "B8-8") == []  # B2's case


def test_a_daily_exceedance_substitutes_the_amount_of_its_invalid_hours_by_hj_75():
    """Eight valid days at 18 kg/h (one hour at 21.6), then a day of 20 valid hours at 95 mg/m³
    and 4 with a faulty analyser: those 4 take the largest hourly amount of the previous 180
    valid hours (the quarter's capture is above 90 %, the gap under 24 h)."""
    data: list[Measurement] = []
    for h in range(9 * 24):
        day, hour = divmod(h, 24)
        so2 = 95.0 if day == 8 else 60.0 if (day, hour) == (5, 3) else 50.0
        flag = "D" if day == 8 and hour >= 20 else "N"
        data += hour_of(SO2, tick(h), so2, flag=flag) + hour_of(O2, tick(h), 6.0)
        data += hour_of(FLOW_GAS, tick(h), 100.0)
    [a4] = [f for f in fired(run(data, gas_outlet()), "A4") if f.window_start == epoch(tick(192))]
    assert a4.evidence["substituted"] == {
        "hours": 4,
        "window_hours": 180,
        "capture": 1.0,
        "kg_per_hour": pytest.approx(21.6),
    }
    assert a4.evidence["emission_kg"] == pytest.approx(20 * 0.0036 * 95 * 100 + 4 * 21.6)


def two_outlets(late: str = "", by_s: int = 3 * 3600) -> tuple[dict, list[Measurement]]:
    """Outlets DA001 and DA002 of E1 (and DA003, silent); DA002 copies DA001's SO2 series in
    hour 1; the ``late`` outlet's data arrive ``by_s`` late."""
    params = {("E1", o): replace(gas_outlet(), outlet_id=o) for o in ("DA001", "DA002", "DA003")}
    series = [41.2, 43.5, 40.1, 44.8, 42.0, 39.7]
    data: list[Measurement] = []
    for h in range(4):
        for outlet in ("DA001", "DA002"):
            values = (
                series if h == 1 else [v + (0.3 if outlet == "DA002" else 0) + h for v in series]
            )
            shift = timedelta(seconds=by_s if outlet == late else 0)
            rows = minutes(SO2, tick(h), values, outlet=("E1", outlet))
            rows += hour_of(O2, tick(h), 6.0 if outlet == "DA001" else 6.4, outlet=("E1", outlet))
            data += [r._replace(received_at=r.received_at + shift) for r in rows]
    return params, data


def run_fleet(params: dict, readings: list[Measurement]) -> list[Finding]:
    readings = sorted(readings, key=lambda r: r.received_at)
    stream = StreamEngine(params, grace_s=600)
    found: list[Finding] = []
    for r in readings:
        found += stream.process_measurements([r])
    found += stream.flush()
    batched = BatchEngine(params, grace_s=600).run(measurements_frame(readings))
    assert sorted(found, key=lambda f: f.id) == sorted(batched, key=lambda f: f.id)
    return found


@pytest.mark.parametrize("late", ["", "DA001", "DA002"])
def test_b8_8_two_outlets_reporting_the_same_series_whichever_closes_first(late):
    params, data = two_outlets(late)
    found = [
        (f.source_id, f.factor, f.window_start, f.evidence["same_as"])
        for f in fired(run_fleet(params, data), "B8-8")
    ]
    assert found == [
        ("DA001", SO2, epoch(tick(1)), [f"DA002/{SO2}"]),
        ("DA002", SO2, epoch(tick(1)), [f"DA001/{SO2}"]),
    ]


def test_b8_8_a_silent_outlet_does_not_hold_the_comparison_forever():
    """DA003 sends nothing: hour 1 is compared once the others are two days further on."""
    params, data = two_outlets()
    later = []
    for h in range(4, 52):
        for outlet in ("DA001", "DA002"):
            later += minutes(
                SO2,
                tick(h),
                [40.0 + h + i / 10 + (outlet == "DA002") for i in range(6)],
                outlet=("E1", outlet),
            )
    stream = StreamEngine(params, grace_s=600)
    found = stream.process_measurements(sorted(data + later, key=lambda r: r.received_at))
    assert [f.source_id for f in fired(found, "B8-8")] == ["DA001", "DA002"]  # before any flush


def test_days_the_logger_sent_nothing_lower_the_capture_and_then_nothing_is_substituted():
    """Eight valid days, twenty days of silence, then a day with 4 invalid hours: the
    quarter's capture (192 of 672 hours) is below 75 %: HJ 75 gives no substitute (before,
    silent days did not count and the capture read 100 %)."""
    data: list[Measurement] = []
    for h in [*range(8 * 24), *range(28 * 24, 29 * 24)]:
        day, hour = divmod(h, 24)
        so2 = 95.0 if day == 28 else 50.0
        flag = "D" if day == 28 and hour >= 20 else "N"
        data += hour_of(SO2, tick(h), so2, flag=flag) + hour_of(O2, tick(h), 6.0)
        data += hour_of(FLOW_GAS, tick(h), 100.0)
    [a4] = [
        f for f in fired(run(data, gas_outlet()), "A4") if f.window_start == epoch(tick(28 * 24))
    ]
    assert a4.evidence["substituted"]["window_hours"] is None
    assert a4.evidence["substituted"]["capture"] == round(192 / 672, 4)
    assert a4.evidence["emission_kg"] == pytest.approx(20 * 0.0036 * 95 * 100)


def test_b8_7_round_value_and_step_are_parameters():
    """A span gas certified at 205 mg/m³ is round in steps of 5 (plateau_round)."""
    data = with_plateau(205.0, 5)
    assert fired(run(data, ranged_outlet()), "B8-7") == []
    assert fired(run(data, replace(ranged_outlet(), plateau_round=5.0)), "B8-7")
    # a step of at least 90 % of 205 (184.5) is asked: 40 → 205 is not one
    assert (
        fired(run(data, replace(ranged_outlet(), plateau_round=5.0, plateau_step_pct=90)), "B8-7")
        == []
    )
