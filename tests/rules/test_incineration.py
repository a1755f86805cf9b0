"""MSW incineration (A5): daily exceedance with capped marks (A5-1), the furnace temperature's
five-minute means (A5-2 alarm per day, A5-3 warning per hour). Both engines, same findings."""

from dataclasses import replace
from datetime import timedelta

import pytest

from rules.batch import BatchEngine, measurements_frame
from rules.markings import INCINERATION_CAPS, Marking
from rules.params import FactorParams, OutletParams, Thresholds
from rules.stream import StreamEngine
from rules.timebase import HOUR, epoch
from tests.rules.factors import O2
from tests.rules.scenario import T0, hour_of, minutes, reading, tick

PM, FURNACE = "a34013", "a01901"


def incinerator(**kw) -> OutletParams:
    factors = {
        PM: FactorParams(PM, "mg/m³", Thresholds(hour_warning=30, day_alarm=20), reference_o2=11),
        O2: FactorParams(O2, "%"),
        FURNACE: FactorParams(FURNACE, "℃", Thresholds(value_low=850), allow_negative=True),
    }
    base = OutletParams(
        "E9", "DA001", "gas", factors=factors, incineration=True, marking_caps=INCINERATION_CAPS
    )
    return replace(base, **kw)


def run(params, readings, markings=()):
    """Findings of the streaming and the batch engine, which must agree."""
    table = {(params.enterprise_id, params.outlet_id): params}
    stream = StreamEngine(table, markings=markings, grace_s=600)
    s = stream.process_measurements(readings) + stream.flush()
    b = BatchEngine(table, markings=markings, grace_s=600).run(measurements_frame(readings))
    assert sorted(s, key=lambda f: f.id) == sorted(b, key=lambda f: f.id)
    return s


def of(found, rule):
    return [f for f in found if f.rule == rule]


def day_of_dust(value: float, hours: int = 24):
    """A day of converted particulate hours at ``value`` (O2 at the reference: no change)."""
    data = []
    for h in range(hours):
        data += hour_of(PM, tick(h), value, outlet=("E9", "DA001"))
        data += hour_of(O2, tick(h), 11.0, outlet=("E9", "DA001"))
    return data


def startup(start, hours: float) -> Marking:
    return Marking("E9", "DA001", "startup", epoch(start), epoch(start) + int(hours * HOUR))


def test_daily_mean_above_the_24h_limit_is_a5_1_with_the_years_marked_hours():
    found = run(incinerator(), day_of_dust(25.0))
    [a51] = of(found, "A5-1")
    assert (a51.state, a51.tier, a51.value, a51.limit) == ("fire", "alarm", 25.0, 20)
    assert a51.window_end - a51.window_start == 24 * HOUR
    caps = {c["types"]: c for c in a51.evidence["marking_caps"]}
    assert caps["startup+shutdown+fault+accident"]["cap_hours"] == 60.0
    assert of(found, "A4") == []  # reported under the incineration rule
    assert of(found, "A3") == []  # 25 is below the 1-hour warning value 30


def test_a_day_equal_to_the_limit_is_not_an_exceedance():
    [f] = of(run(incinerator(), day_of_dust(20.0)), "A5-1")
    assert (f.tier, f.limit) == ("warning", 16.0)  # only the derived 80 % warning tier
    assert of(run(incinerator(warning_fraction=None), day_of_dust(20.0)), "A5-1") == []


@pytest.mark.parametrize(
    ("used_before", "fires", "valid_hours"),
    [
        (0, False, None),  # the whole day is excused
        (50, False, None),  # 10 h excused: 14 valid hours are too few for a daily mean
        (56, True, 20),  # 4 h excused: 20 valid hours
        (60, True, 24),  # cap used up: the startup mark excuses nothing
    ],
)
def test_marks_excuse_only_up_to_the_yearly_cap(used_before, fires, valid_hours):
    marks = [startup(T0, 24)]
    if used_before:
        earlier = T0 - timedelta(days=100)
        marks.insert(
            0, Marking("E9", "DA001", "fault", epoch(earlier), epoch(earlier) + used_before * HOUR)
        )
    found = of(run(incinerator(), day_of_dust(25.0), marks), "A5-1")
    assert bool(found) is fires
    if fires:
        assert found[0].evidence["valid_hours"] == valid_hours
        assert found[0].evidence["marking_caps"][0]["exceeded"] is True


def test_caps_apply_only_where_configured():
    marks = [
        Marking("E9", "DA001", "fault", epoch(T0) - 100 * HOUR, epoch(T0) - 30 * HOUR),
        startup(T0, 24),
    ]
    assert of(run(incinerator(), day_of_dust(25.0), marks), "A5-1")
    plain = incinerator(incineration=False, marking_caps=())
    assert of(run(plain, day_of_dust(25.0), marks), "A4") == []


def furnace_day(low_periods: int, *, every: int = 5, value: float = 820.0, **kw):
    """A day of furnace data (one record per ``every`` minutes, all 900 ℃) in which the first
    ``low_periods`` five-minute periods of successive hours read ``value``."""
    per_hour = 60 // every
    data = []
    for h in range(24):
        values = [900.0 + (i % 3) for i in range(per_hour)]
        if h < low_periods:
            for i in range(5 // every if every < 5 else 1):
                values[i] = value
        data += minutes(FURNACE, tick(h), values, every=every, outlet=("E9", "DA001"), **kw)
    return data


def params_5min():
    return incinerator(minute_interval_min=5)


@pytest.mark.parametrize(("low", "alarm"), [(5, False), (6, True)])
def test_more_than_five_low_five_minute_means_in_a_day_is_an_a5_2_alarm(low, alarm):
    found = run(params_5min(), furnace_day(low))
    a52 = of(found, "A5-2")
    assert bool(a52) is alarm
    if alarm:
        [f] = a52
        assert (f.tier, f.value, f.limit, f.evidence["low_periods"]) == ("alarm", 6.0, 5.0, 6)
        assert [h for h, _ in f.evidence["hours"]] == [epoch(tick(h)) for h in range(6)]
    warnings = of(found, "A5-3")
    assert [f.window_start for f in warnings if f.state == "fire"] == [
        epoch(tick(h)) for h in range(low)
    ]
    assert warnings[0].value == 820.0 and warnings[0].limit == 850
    assert of(found, "A4V") == []  # the bound is not a per-value limit


def test_one_minute_data_is_averaged_over_five_minutes():
    # 4 records at 800 and one at 1050: the five-minute mean is 850, which is not below 850.
    data = []
    for h in range(7):
        values = [900.0] * 60
        values[:5] = [800.0, 800.0, 800.0, 800.0, 1050.0] if h else [800.0] * 5
        data += minutes(FURNACE, tick(h), values, every=1, outlet=("E9", "DA001"))
    found = run(incinerator(minute_interval_min=1), data)
    assert [f.window_start for f in of(found, "A5-3") if f.state == "fire"] == [epoch(tick(0))]
    assert of(found, "A5-2") == []


def test_invalid_and_marked_periods_are_not_normal_operation():
    data = furnace_day(6)
    data[0] = data[0]._replace(flag="F")  # the furnace was stopped in the first period
    found = run(params_5min(), data)
    assert of(found, "A5-2") == []
    found = run(params_5min(), furnace_day(6), [startup(tick(5), 1)])
    assert of(found, "A5-2") == []


def test_a_low_period_read_from_late_or_duplicate_data_counts_once():
    data = furnace_day(6)
    data += [reading(FURNACE, tick(0), 1200.0, outlet=("E9", "DA001"))]  # duplicate: first wins
    found = run(params_5min(), data)
    assert of(found, "A5-2")[0].evidence["low_periods"] == 6
