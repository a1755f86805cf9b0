"""The batch engine agrees with the streaming engine, scenario by scenario."""

from datetime import timedelta

import pytest

from rules.batch import BatchEngine, measurements_frame
from rules.markings import Marking, MarkingBook
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import COD, FLOW_WATER, O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, minutes, reading, tick, water_outlet


def both(params_list, readings, *, markings=(), grace_s=600, flush=True):
    params = {(p.enterprise_id, p.outlet_id): p for p in params_list}
    stream = StreamEngine(params, markings=MarkingBook(markings), grace_s=grace_s)
    s = stream.process_measurements(readings)
    if flush:
        s += stream.flush()
    batch = BatchEngine(params, markings=markings, grace_s=grace_s)
    b = batch.run(measurements_frame(readings), flush=flush)
    return sorted(s, key=lambda f: f.id), sorted(b, key=lambda f: f.id), stream.stats, batch.stats


def scenario_gas():
    data = []
    for h, v in enumerate([150.0, 95.0, 50.0, 160.0]):
        data += hour_of(SO2, tick(h), v) + hour_of(O2, tick(h), 6.0 + h)
        if h == 2:
            data += [reading(SO2, tick(2), 52.0, interval="hour")]  # device hour, differs
    data += [reading(SO2, T0 + timedelta(minutes=5), 10_000.0, received=tick(3))]  # late
    data += hour_of(SO2, tick(3), 160.0)[:2]  # duplicates
    data += minutes(SO2, tick(4), [80.0, 80.0, 999.0], flag="D")  # invalid hour
    return data


@pytest.mark.parametrize("flush", [True, False])
def test_gas_scenario_same_findings_and_counts(flush):
    s, b, ss, bs = both([gas_outlet()], scenario_gas(), flush=flush)
    assert s == b
    assert {f.rule for f in s} >= ({"A3", "A1D"} if flush else {"A3"})
    assert (ss.late, ss.duplicates) == (bs.late, bs.duplicates) == (1, 2)


def test_markings_and_water_days_agree():
    data = []
    for h in range(48):
        o = ("E2", "DW001")
        data += [
            reading(COD, tick(h), 30.0 + (h % 7) * 8, interval="hour", outlet=o),
            reading(FLOW_WATER, tick(h), 10.0 + h % 5, interval="hour", outlet=o),
        ]
    markings = [Marking("E2", "DW001", "fault", epoch(tick(30)), epoch(tick(40)))]
    s, b, _, _ = both([water_outlet()], data, markings=markings)
    assert s == b
    assert [f.state for f in s if f.rule == "A4"] == ["fire"]  # day 2 has < 18 unmarked hours


def test_future_and_unconfigured_readings_agree():
    data = hour_of(SO2, T0, 150.0) + hour_of(O2, T0, 6.0)
    data += [reading(SO2, T0 + timedelta(days=3), 1.0, received=T0)]
    data += hour_of(SO2, T0, 150.0, outlet=("E9", "X"))
    s, b, ss, bs = both([gas_outlet()], data)
    assert s == b
    assert (ss.future, ss.unconfigured) == (bs.future, bs.unconfigured) == (1, 6)


def test_include_late_re_evaluates_late_data():
    # half an hour of SO2 on time (an invalid hour), the other half late
    data = hour_of(O2, T0, 6.0) + minutes(SO2, T0, [50.0, 51.0, 52.0]) + hour_of(O2, tick(1), 6.0)
    params = {("E1", "DA001"): gas_outlet()}
    batch = BatchEngine(params, grace_s=600)
    assert [f for f in batch.run(measurements_frame(data)) if f.rule == "A3"] == []
    late_times = [
        reading(SO2, T0 + timedelta(minutes=30 + 10 * i), 500.0, received=tick(3)) for i in range(3)
    ]
    judged = BatchEngine(params, grace_s=600).run(
        measurements_frame(data + late_times), include_late=True
    )
    assert any(f.rule == "A3" for f in judged)
