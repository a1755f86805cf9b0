"""The explanation of an outlet's hours and days (what the dashboard draws) against what the
streaming engine judges from the same readings."""

from datetime import timedelta

import pytest

from rules.batch import BatchEngine
from rules.explain import FLAG_COUNTERS, explain_days, explain_hours
from rules.markings import Marking
from rules.stream import StreamEngine
from rules.timebase import DAY, epoch
from tests.rules.factors import COD, FLOW_WATER, O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, minutes, reading, tick, water_outlet


def judged(params, readings, markings=()):
    engine = StreamEngine(
        {(params.enterprise_id, params.outlet_id): params}, markings=markings, grace_s=600
    )
    return engine.process_measurements(readings) + engine.flush()


def explained(params, readings, markings=()):
    engine = BatchEngine(
        {(params.enterprise_id, params.outlet_id): params}, markings=markings, grace_s=600
    )
    return explain_hours(engine, params, readings)


def test_the_flag_counts_are_the_hour_aggregates_own():
    assert [flag for flag, _ in FLAG_COUNTERS] == ["D", "M", "C", "B", "T", "F"]


def test_an_hour_is_explained_as_it_is_judged():
    params = gas_outlet()
    data = hour_of(SO2, T0, 88.0) + hour_of(O2, T0, 9.0)  # converted: 88 × 15 / 12 = 110
    data += minutes(SO2, tick(1), [50.0, 50.0, 50.0, 50.0, 50.0, 999.0])
    data[-1] = data[-1]._replace(flag="D")
    data += hour_of(O2, tick(1), 9.0) + hour_of(SO2, tick(2), 150.0) + hour_of(O2, tick(2), 6.0)
    data += hour_of(SO2, tick(3), 40.0) + hour_of(O2, tick(3), 6.0)  # closes the hour before
    marked = Marking("E1", "DA001", "maintenance", epoch(tick(2)), epoch(tick(3)))
    a3s = [f for f in judged(params, data, [marked]) if f.rule == "A3"]
    assert [(f.state, f.window_start) for f in a3s] == [
        ("fire", epoch(T0)),
        ("clear", epoch(tick(1))),
    ]
    a3 = a3s[0]
    so2 = explained(params, data, [marked])[SO2]
    assert so2[0].converted == pytest.approx(a3.evidence["converted"]) == pytest.approx(110.0)
    assert so2[0].valid_value == pytest.approx(a3.evidence["measured"])
    assert so2[1].flags == {"D": 1, "M": 0, "C": 0, "B": 0, "T": 0, "F": 0}
    assert so2[1].valid and so2[1].valid_value == pytest.approx(50.0)
    assert (so2[2].marked, so2[2].valid, so2[2].converted) == (True, False, None)
    assert (so2[1].invalid_reason, so2[2].invalid_reason) == (None, "M")
    assert not so2[0].marked


def test_the_day_value_is_the_daily_rules_weighted_by_the_valid_flows():
    # 22 valid hours of wastewater: 20 with a flow (two of them 0: they weigh nothing), two
    # without one (left out of the weighting, not guessed).
    params = water_outlet()
    data = []
    for h in range(22):
        cod = 40.0 + 2 * h
        data.append(reading(COD, tick(h), cod, interval="hour", outlet=("E2", "DW001")))
        if h < 20:
            flow = 0.0 if h in (3, 4) else 10.0 + h
            data.append(reading(FLOW_WATER, tick(h), flow, interval="hour", outlet=("E2", "DW001")))
    [a4] = [f for f in judged(params, data) if f.rule == "A4"]
    hours = explained(params, data)
    [day] = explain_days(params, hours, range(epoch(T0), epoch(T0) + DAY, DAY))[COD]
    assert day.value == pytest.approx(a4.value)
    assert (day.flow_weighted, day.valid_hours) == (True, a4.evidence["valid_hours"])
    assert a4.evidence["flow_weighted"] is True
    plain = sum(40.0 + 2 * h for h in range(22)) / 22
    assert day.value != pytest.approx(plain)
    assert day.start == epoch(T0)
    [next_day] = explain_days(
        params, hours, range(epoch(T0 + timedelta(days=1)), epoch(T0) + 2 * DAY, DAY)
    )[COD]
    assert (next_day.value, next_day.valid_hours) == (None, 0)
