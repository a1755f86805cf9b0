"""Exceedance rules A1-A4 through the streaming engine, at their boundaries."""

from dataclasses import replace
from datetime import timedelta

import pytest

from rules.markings import Marking, MarkingBook
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import COD, FLOW_WATER, O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, minutes, reading, tick, water_outlet


def run(params, readings, *, markings=None, grace_s=600, flush=True):
    engine = StreamEngine(
        {(params.enterprise_id, params.outlet_id): params}, markings=markings, grace_s=grace_s
    )
    found = engine.process_measurements(readings)
    if flush:
        found += engine.flush()
    return found, engine


def only(found, rule, state=None):
    return [f for f in found if f.rule == rule and (state is None or f.state == state)]


def test_hour_above_the_limit_is_an_alarm_with_converted_value_and_multiple():
    # O2 9 % with reference 6 %: converted = measured × 15/12.
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 88.0) + hour_of(O2, T0, 9.0))
    [a3] = only(found, "A3")
    assert (a3.state, a3.tier, a3.factor) == ("fire", "alarm", SO2)
    assert a3.value == pytest.approx(110.0)
    assert a3.limit == 100
    assert a3.multiple == pytest.approx(0.1)
    assert a3.evidence["measured"] == 88.0
    assert a3.evidence["o2"] == 9.0
    assert a3.evidence["valid_minutes"] == 60
    assert (a3.window_start, a3.window_end) == (epoch(T0), epoch(T0) + 3600)
    assert a3.params_id == "E1/DA001"
    assert a3.params_version == gas_outlet().version


def test_value_equal_to_the_limit_is_not_an_exceedance():
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 100.0) + hour_of(O2, T0, 6.0))
    [a3] = only(found, "A3")
    assert a3.tier == "warning"  # above the 80 warning limit, not above 100
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 80.0) + hour_of(O2, T0, 6.0))
    assert only(found, "A3") == []


@pytest.mark.parametrize(("records", "judged"), [(45, True), (44, False)])
def test_45_valid_minutes_make_a_valid_hour(records, judged):
    params = gas_outlet(minute_interval_min=1)
    data = minutes(SO2, T0, [150.0] * records, every=1) + minutes(O2, T0, [6.0] * 60, every=1)
    found, _ = run(params, data)
    assert bool(only(found, "A3")) is judged


def test_invalid_flags_are_excluded_and_the_rest_averaged():
    so2 = [*minutes(SO2, T0, [90.0] * 5), reading(SO2, T0 + timedelta(minutes=50), 900.0, flag="D")]
    found, _ = run(gas_outlet(minute_interval_min=9), so2 + hour_of(O2, T0, 6.0))
    [a3] = only(found, "A3")  # 5 valid records × 9 min = 45 minutes
    assert a3.value == pytest.approx(90.0)
    # With 10-minute records, 5 valid make only 50 minutes... still valid; 4 would not be.
    so2 = minutes(SO2, T0, [90.0] * 4) + minutes(
        SO2, T0 + timedelta(minutes=40), [900.0, 900.0], flag="C"
    )
    found, _ = run(gas_outlet(), so2 + hour_of(O2, T0, 6.0))
    assert only(found, "A3") == []


def test_o2_at_21_or_invalid_cannot_be_converted():
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 21.0))
    [a2] = only(found, "A2")
    assert (a2.state, a2.evidence["reason"]) == ("fire", "O2 >= 21 %")
    assert only(found, "A3") == []
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 20.9))
    assert only(found, "A2") == []
    assert only(found, "A3")[0].value == pytest.approx(150 * 15 / 0.1)
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0, flag="D"))
    assert only(found, "A2")[0].evidence["reason"] == "no valid O2 hour value"


def test_a_marked_hour_is_not_judged():
    book = MarkingBook([Marking("E1", "DA001", "startup", epoch(T0), epoch(T0) + 3600)])
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0), markings=book)
    assert only(found, "A3") == []
    # A marking of one factor leaves the others judged.
    book = MarkingBook(
        [Marking("E1", "DA001", "maintenance", epoch(T0), epoch(T0) + 3600, factor="a34013")]
    )
    found, _ = run(gas_outlet(), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0), markings=book)
    assert only(found, "A3")


def test_fire_every_exceeding_hour_then_clear_once():
    data = []
    for h, v in enumerate([150.0, 160.0, 50.0, 40.0]):
        data += hour_of(SO2, tick(h), v) + hour_of(O2, tick(h), 6.0)
    found, _ = run(gas_outlet(), data)
    assert [(f.state, f.tier, f.window_start) for f in only(found, "A3")] == [
        ("fire", "alarm", epoch(tick(0))),
        ("fire", "alarm", epoch(tick(1))),
        ("clear", "alarm", epoch(tick(2))),
    ]


def test_an_invalid_hour_between_exceedances_changes_nothing():
    data = hour_of(SO2, tick(0), 150.0) + hour_of(O2, tick(0), 6.0)
    data += minutes(SO2, tick(1), [150.0, 150.0]) + hour_of(O2, tick(1), 6.0)  # 20 minutes: invalid
    data += hour_of(SO2, tick(2), 150.0) + hour_of(O2, tick(2), 6.0)
    found, _ = run(gas_outlet(), data)
    assert [f.state for f in only(found, "A3")] == ["fire", "fire"]


def test_late_data_is_counted_not_judged_and_within_grace_it_is():
    data = hour_of(O2, T0, 6.0) + hour_of(SO2, T0, 50.0)
    data += hour_of(O2, tick(1), 6.0)  # the watermark passes T0's hour end + 10 min grace
    late = reading(SO2, T0 + timedelta(minutes=5), 10_000.0, received=tick(2))
    found, engine = run(gas_outlet(), [*data, late], grace_s=600)
    assert engine.stats.late == 1
    assert only(found, "A3") == []
    # Out of order but within the grace: judged.
    ooo = hour_of(SO2, T0, 150.0)[::-1] + hour_of(O2, T0, 6.0)
    found, engine = run(gas_outlet(), ooo, grace_s=600)
    assert engine.stats.late == 0
    assert only(found, "A3")[0].value == pytest.approx(150.0)


def test_duplicates_count_once():
    data = hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0)
    found, engine = run(gas_outlet(), data + data[:3])
    assert engine.stats.duplicates == 3
    assert only(found, "A3")[0].evidence["valid_minutes"] == 60


def test_a_timestamp_far_in_the_future_is_not_used():
    data = hour_of(SO2, T0, 50.0) + hour_of(O2, T0, 6.0)
    jump = reading(O2, T0 + timedelta(days=2), 6.0, received=T0 + timedelta(minutes=61))
    _found, engine = run(gas_outlet(), [jump, *data], flush=False)
    assert engine.stats.future == 1
    assert engine.stats.late == 0  # the jump did not close the hour early


def test_hours_close_by_watermark_not_by_arrival_of_the_end():
    engine = StreamEngine({("E1", "DA001"): gas_outlet()}, grace_s=600)
    assert engine.process_measurements(hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0)) == []
    # A reading at 01:10 (hour end + grace) closes the 00:00 hour.
    closing = engine.process_measurements([reading(O2, T0 + timedelta(minutes=70), 6.0)])
    assert [f.rule for f in closing] == ["A3"]


def test_device_hour_used_when_there_is_no_minute_data_and_compared_when_there_is():
    device = [reading(SO2, T0, 150.0, interval="hour"), reading(O2, T0, 6.0, interval="hour")]
    found, _ = run(gas_outlet(), device)
    [a3] = only(found, "A3")
    assert a3.evidence["source"] == "device"
    found, _ = run(
        gas_outlet(),
        hour_of(SO2, T0, 50.0) + hour_of(O2, T0, 6.0) + [reading(SO2, T0, 70.0, interval="hour")],
    )
    [a1d] = only(found, "A1D")
    assert (a1d.evidence["device"], a1d.evidence["recomputed"]) == (70.0, 50.0)
    found, _ = run(
        gas_outlet(),
        hour_of(SO2, T0, 50.0) + hour_of(O2, T0, 6.0) + [reading(SO2, T0, 50.5, interval="hour")],
    )
    assert only(found, "A1D") == []  # within the 2 % tolerance


def test_daily_exceedance_needs_enough_valid_hours_and_is_flow_weighted_for_water():
    def day(n_hours, cod_values, flows):
        data = []
        for h in range(n_hours):
            data += [
                reading(COD, tick(h), cod_values[h], interval="hour", outlet=("E2", "DW001")),
                reading(FLOW_WATER, tick(h), flows[h], interval="hour", outlet=("E2", "DW001")),
            ]
        return data

    # 18 hours: 9 at 30 mg/L with flow 10, 9 at 80 mg/L with flow 30 → weighted 67.5, plain 55.
    cod = [30.0] * 9 + [80.0] * 9
    found, _ = run(water_outlet(), day(18, cod, [10.0] * 9 + [30.0] * 9))
    [a4] = only(found, "A4")
    assert (a4.tier, a4.evidence["flow_weighted"], a4.evidence["valid_hours"]) == (
        "alarm",
        True,
        18,
    )
    assert a4.value == pytest.approx(67.5)
    assert a4.window_end - a4.window_start == 86400
    # Hourly values above the daily limit warn hour by hour (hourly_warning_for_daily_limit).
    assert {f.tier for f in only(found, "A3")} == {"warning"}
    found, _ = run(water_outlet(), day(17, cod, [10.0] * 18))
    assert only(found, "A4") == []


def test_value_range_rule_for_ph():
    data = [
        reading("w01001", tick(0), 5.5, interval="hour", outlet=("E2", "DW001")),
        reading("w01001", tick(1), 7.0, interval="hour", outlet=("E2", "DW001")),
    ]
    found, _ = run(water_outlet(), data)
    assert [(f.state, f.limit) for f in only(found, "A4V")] == [("fire", 6), ("clear", 6)]


def test_param_version_changes_with_parameters_and_is_on_every_finding():
    a, _ = run(gas_outlet(), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0))
    b, _ = run(
        gas_outlet(valid_minutes_per_hour=40), hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0)
    )
    assert a[0].params_version != b[0].params_version
    assert replace(a[0], params_version="") == replace(b[0], params_version="")
