"""The hour and day values the stream engine keeps as it closes windows are the ones the
explanation of the same readings shows (the batch engine's layer 1): charts that read the kept
values show what they showed when they decoded raw frames."""

from dataclasses import replace

import pytest

from rules.batch import BatchEngine
from rules.explain import explain_days, explain_hours
from rules.history import DayRecord
from rules.markings import Marking
from rules.stream import StreamEngine
from rules.timebase import DAY, epoch
from tests.rules.factors import COD, FLOW_WATER, O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, minutes, reading, tick, water_outlet


def kept(params, readings, markings=(), *, batches=1):
    engine = StreamEngine(
        {(params.enterprise_id, params.outlet_id): params}, markings=markings, grace_s=600
    )
    size = -(-len(readings) // batches)
    hours, days = [], []
    for i in range(0, len(readings), size):
        engine.process_measurements(readings[i : i + size])
        h, d, *_ = engine.take_history()
        hours += h
        days += d
    engine.flush()
    h, d, *_ = engine.take_history()
    return hours + h, days + d


def shown_part(day: DayRecord) -> DayRecord:
    """A kept day without B10's count (which the explanation does not make)."""
    return replace(
        day, received=None, valid_records=None, expected=None, due_hours=None, interval_s=None
    )


def explained(params, readings, markings=()):
    engine = BatchEngine(
        {(params.enterprise_id, params.outlet_id): params}, markings=markings, grace_s=600
    )
    return explain_hours(engine, params, readings)


def gas_day():
    data = []
    for h in range(26):  # a day and two hours: the first day closes, its values are kept
        so2 = 150.0 if h % 5 == 0 else 40.0 + h
        data += hour_of(SO2, tick(h), so2) + hour_of(O2, tick(h), 6.0 + (h % 3))
    data += minutes(SO2, tick(26), [50.0] * 5 + [999.0])
    data[-1] = data[-1]._replace(flag="D")
    return data


@pytest.mark.parametrize("batches", [1, 7])
def test_the_kept_hours_and_days_are_the_explained_ones(batches):
    params = gas_outlet()
    data = gas_day()
    marked = Marking("E1", "DA001", "maintenance", epoch(tick(2)), epoch(tick(3)))
    hours, days = kept(params, data, [marked], batches=batches)
    explanation = explained(params, data, [marked])
    assert sorted(hours, key=lambda r: (r.start, r.factor)) == sorted(
        (r for items in explanation.values() for r in items), key=lambda r: (r.start, r.factor)
    )
    assert {r.invalid_reason for r in hours if r.start == epoch(tick(2))} == {"M"}
    converted = [r for r in hours if r.factor == SO2 and r.converted is not None]
    assert len(converted) > 20
    first_day = range(epoch(T0), epoch(T0) + DAY, DAY)
    shown = explain_days(params, explanation, first_day)
    assert sorted(
        (shown_part(d) for d in days if d.start == epoch(T0)), key=lambda d: d.factor
    ) == sorted((d for items in shown.values() for d in items), key=lambda d: d.factor)
    so2_day = next(d for d in days if d.factor == SO2 and d.start == epoch(T0))
    assert so2_day.valid_hours == 23 and so2_day.value is not None  # the marked hour is out
    assert so2_day.converted is not None
    # B10's count of the day, kept with it: 6 records an hour, the marked hour's not valid.
    counts = (so2_day.received, so2_day.valid_records, so2_day.expected, so2_day.due_hours)
    assert counts == (144, 138, 144, 24) and so2_day.interval_s == 600


def test_a_wastewater_day_is_kept_weighted_by_the_valid_flows():
    params = water_outlet()
    data = []
    for h in range(26):
        data.append(reading(COD, tick(h), 40.0 + 2 * h, interval="hour", outlet=("E2", "DW001")))
        if h < 20:
            flow = 0.0 if h in (3, 4) else 10.0 + h
            data.append(reading(FLOW_WATER, tick(h), flow, interval="hour", outlet=("E2", "DW001")))
    _, days = kept(params, data)
    shown = explain_days(params, explained(params, data), range(epoch(T0), epoch(T0) + DAY, DAY))
    [cod] = [d for d in days if d.factor == COD and d.start == epoch(T0)]
    assert shown_part(cod) == shown[COD][0]
    assert cod.flow_weighted and cod.valid_hours == 24


def test_a_meters_hours_keep_its_energy_and_time_on_and_off():
    from tests.rules.test_power_usage import P, power_params, series

    # 100 kW for 90 minutes (on), then 2 kW (off: below its threshold) for 60, a sample a
    # minute; then silent 40 minutes (a gap is not integrated) and one more sample.
    samples = series(P, 0, 90, 100.0) + series(P, 90, 150, 2.0) + series(P, 190, 191, 2.0)
    engine = StreamEngine({}, power={"E3": power_params()}, grace_s=600)
    engine.process_power(samples)
    engine.flush()
    meters = {m.start: m for m in engine.take_history().meters if m.meter_id == P}
    h0, h1, h2, h3 = (meters[epoch(tick(h))] for h in range(4))
    assert (h0.samples, h0.on_s, h0.off_s) == (60, 3600, 0)
    assert h0.energy_kwh == pytest.approx(100.0)
    assert (h0.mean_kw, h0.max_kw) == (100.0, 100.0)
    # 30 minutes on, 30 off (C0 confirms the change samples later, backdated to its start);
    # the step down from 100 to 2 kW integrated as a trapezoid.
    assert (h1.on_s, h1.off_s) == (1800, 1800)
    assert h1.energy_kwh == pytest.approx(29 / 60 * 100 + (100 + 2) / 2 / 60 + 30 / 60 * 2)
    assert (h2.samples, h2.off_s) == (30, 29 * 60)  # the silent 40 minutes not counted
    assert h3.samples == 1 and h3.energy_kwh == 0.0


def test_open_days_keep_each_factor_apart_as_factors_come_and_go():
    """One array of sums per open day: a factor first seen in the middle of a day, a factor
    with hours but no valid one, one asked for without hours, and two days open at once."""
    from rules.history import HourRecord, OpenDays

    params = gas_outlet()

    def hour(factor: str, at: int, value: float | None, converted: float | None = None):
        return HourRecord(
            "E1", "DA001", factor, at, value, value is not None, "minutes", "N", converted,
            60, 600, 6, 6, 0, 0, 0, 0, 0, 0, 0, None, None, False,
        )  # fmt: skip

    day0, day1 = epoch(T0), epoch(T0) + DAY
    days = OpenDays()
    for h in range(24):
        at = day0 + h * 3600
        records = [hour(SO2, at, 10.0 + h, 20.0 + h), hour(O2, at, None)]
        if h >= 12:  # the oxygen analyser's partner comes online at noon
            records.append(hour(COD, at, 5.0))
        days.add_hour(records, params.flow_code)
        if h == 5:
            days.add_hour([hour(SO2, day1 + h * 3600, 99.0)], params.flow_code)
    assert days.open_days() == [day0, day1]
    closed = {d.factor: d for d in days.close(params, day0, [SO2, "a21002"])}
    assert sorted(closed) == sorted([SO2, O2, COD, "a21002"])
    assert closed[SO2].valid_hours == 24 and closed[SO2].value == pytest.approx(21.5)
    assert closed[SO2].converted == pytest.approx(31.5)
    assert closed[COD].valid_hours == 12 and closed[COD].converted is None
    assert closed[O2].valid_hours == 0 and closed[O2].value is None
    assert closed["a21002"].valid_hours == 0 and closed["a21002"].value is None
    assert days.open_days() == [day1]
    [later] = days.close(params, day1)
    assert (later.factor, later.valid_hours) == (SO2, 1)
