"""Data-anomaly rules (B), each firing when it should and quiet when it should not.

Every scenario runs through both engines and requires the same findings from each.
"""

from dataclasses import replace
from datetime import timedelta

import pytest

from rules.batch import BatchEngine, measurements_frame
from rules.hours import EMPTY
from rules.judge import transmission_counts
from rules.markings import Marking, MarkingBook
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import FLOW_GAS, O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, minutes, reading, tick


def run(readings, params=None, markings=()):
    params = params or gas_outlet()
    table = {(params.enterprise_id, params.outlet_id): params}
    stream = StreamEngine(table, markings=MarkingBook(markings), grace_s=600)
    s = stream.process_measurements(readings) + stream.flush()
    b = BatchEngine(table, markings=markings, grace_s=600).run(measurements_frame(readings))
    assert sorted(s, key=lambda f: f.id) == sorted(b, key=lambda f: f.id)
    return s


def fired(found, rule):
    return [f for f in found if f.rule == rule and f.state == "fire"]


def with_o2(data, hours=1):
    return data + [
        r
        for h in range(hours)
        for r in hour_of(O2, tick(h), 7.0) + hour_of(FLOW_GAS, tick(h), 100.0)
    ]


@pytest.mark.parametrize(("zeros", "fires"), [(6, True), (5, False)])
def test_b1_zero_values_for_an_hour_while_producing(zeros, fires):
    so2 = minutes(SO2, T0, [0.0] * zeros + [20.0] * (6 - zeros))
    [*found] = fired(run(with_o2(so2)), "B1")
    assert bool(found) is fires
    if fires:
        assert (found[0].value, found[0].limit) == (60, 60)


def test_b1_not_raised_while_not_producing_or_marked_or_across_a_gap():
    so2 = minutes(SO2, T0, [0.0] * 6)
    stopped = so2 + hour_of(O2, T0, 7.0) + minutes(FLOW_GAS, T0, [0.0] * 6)
    assert fired(run(stopped), "B1") == []
    marked = [
        Marking(
            "E1",
            "DA001",
            "shutdown",
            epoch(T0 + timedelta(minutes=20)),
            epoch(T0 + timedelta(minutes=30)),
        )
    ]
    assert fired(run(with_o2(so2), markings=marked), "B1") == []
    gap = minutes(SO2, T0, [0.0] * 3) + minutes(SO2, T0 + timedelta(minutes=40), [0.0] * 2)
    assert fired(run(with_o2(gap)), "B1") == []


def test_b2_constant_values_including_across_the_hour_boundary():
    assert fired(run(with_o2(minutes(SO2, T0, [33.3] * 6))), "B2")
    assert fired(run(with_o2(minutes(SO2, T0, [33.3] * 5 + [33.4]))), "B2") == []
    across = minutes(SO2, T0 + timedelta(minutes=30), [33.3] * 3) + minutes(
        SO2, tick(1), [33.3] * 3
    )
    [b2] = fired(run(with_o2(across, hours=2)), "B2")
    assert b2.window_start == epoch(tick(1))


def test_b3_negative_values():
    data = with_o2(minutes(SO2, T0, [-1.5, 20, 21, 22, 23, 24]))
    [b3] = fired(run(data), "B3")
    assert b3.value == -1.5
    flagged = with_o2(
        [
            *minutes(SO2, T0, [20, 21, 22, 23, 24]),
            reading(SO2, T0 + timedelta(minutes=50), -3.0, flag="D"),
        ]
    )
    assert fired(run(flagged), "B3") == []
    params = gas_outlet()
    params = replace(
        params, factors={**params.factors, SO2: replace(params.factors[SO2], allow_negative=True)}
    )
    assert fired(run(data, params), "B3") == []


def test_b4_over_range_flag_or_value_and_alarm_after_three_hours():
    params = gas_outlet()
    params = replace(
        params, factors={**params.factors, SO2: replace(params.factors[SO2], range_max=500)}
    )
    t_flag = with_o2(
        [
            *minutes(SO2, T0, [20, 21, 22, 23, 24]),
            reading(SO2, T0 + timedelta(minutes=50), 510.0, flag="T"),
        ]
    )
    assert [f.tier for f in fired(run(t_flag, params), "B4")] == ["warning"]
    below = with_o2(minutes(SO2, T0, [20, 21, 22, 23, 24, 499.99]))
    assert fired(run(below, params), "B4") == []
    at = with_o2(minutes(SO2, T0, [20, 21, 22, 23, 24, 500.0]))
    assert fired(run(at, params), "B4")
    three = with_o2(
        [r for h in range(3) for r in minutes(SO2, tick(h), [600.0, 610, 620, 630, 640, 650])],
        hours=3,
    )
    assert [f.tier for f in fired(run(three, params), "B4")] == ["warning", "warning", "alarm"]


def test_b5_physically_implausible_values():
    o2 = minutes(O2, T0, [7.0, 7.1, 7.2, 7.3, 7.4, 22.5])
    [b5] = fired(run(hour_of(SO2, T0, 30.0) + o2), "B5")
    assert (b5.factor, b5.value, b5.limit) == (O2, 22.5, 21.0)
    at_bound = minutes(O2, T0, [20.9, 20.8, 20.7, 20.9, 20.8, 21.0])  # 21.0 itself is plausible
    assert fired(run(hour_of(SO2, T0, 30.0) + at_bound), "B5") == []


def test_b6_sudden_jump_of_the_hourly_value():
    stable = [r for h in range(14) for r in hour_of(SO2, tick(h), 30.0 + (h % 3))]
    jump = hour_of(SO2, tick(14), 90.0)
    found = run(with_o2(stable + jump, hours=15))
    [b6] = fired(found, "B6")
    assert b6.window_start == epoch(tick(14))
    assert fired(run(with_o2(stable + hour_of(SO2, tick(14), 33.0), hours=15)), "B6") == []


def test_b8_3_o2_near_ambient_while_flue_gas_flows():
    data = hour_of(SO2, T0, 3.0) + hour_of(O2, T0, 19.5) + hour_of(FLOW_GAS, T0, 80.0)
    [b] = fired(run(data), "B8-3")
    assert (b.factor, b.value) == (O2, 19.5)
    stopped = hour_of(SO2, T0, 3.0) + hour_of(O2, T0, 19.5) + minutes(FLOW_GAS, T0, [0.0] * 6)
    assert fired(run(stopped), "B8-3") == []


@pytest.mark.parametrize(
    ("o2", "flow", "fires"),
    [
        (5.9, 80.0, True),  # too little air
        (10.1, 80.0, True),  # too much: dilution
        (6.0, 80.0, False),  # the band's ends are inside it
        (10.0, 80.0, False),
        (12.0, 0.0, False),  # no flue gas: not combustion
    ],
)
def test_b8_2_o2_outside_the_band_of_normal_combustion(o2, flow, fires):
    data = hour_of(SO2, T0, 3.0) + hour_of(O2, T0, o2) + hour_of(FLOW_GAS, T0, flow)
    found = fired(run(data, gas_outlet(o2_band=(6.0, 10.0))), "B8-2")
    assert [(b.factor, b.value, b.tier) for b in found] == ([(O2, o2, "warning")] if fires else [])
    if fires:
        assert found[0].evidence["band"] == [6.0, 10.0]
        assert found[0].limit == (6.0 if o2 < 6 else 10.0)
    assert fired(run(data), "B8-2") == []  # judged only where a band is configured


def test_b8_2_clears_when_o2_is_back_in_the_band():
    data = hour_of(SO2, T0, 3.0) + hour_of(O2, T0, 12.0) + hour_of(FLOW_GAS, T0, 80.0)
    data += (
        hour_of(SO2, tick(1), 3.0) + hour_of(O2, tick(1), 8.0) + hour_of(FLOW_GAS, tick(1), 80.0)
    )
    found = [f for f in run(data, gas_outlet(o2_band=(6.0, 10.0))) if f.rule == "B8-2"]
    assert [(f.state, f.window_start) for f in found] == [
        ("fire", epoch(T0)),
        ("clear", epoch(tick(1))),
    ]


@pytest.mark.parametrize(("reported_factor", "fires"), [(1.05, True), (1.005, False)])
def test_b8_5_reported_converted_value_against_the_recomputed_one(reported_factor, fires):
    # O2 9 %, reference 6 %: converted = measured × 15/12.
    values = [40.0, 41.0, 42.0, 43.0, 44.0, 45.0]
    so2 = [
        reading(SO2, T0 + timedelta(minutes=10 * i), v, zs=round(v * 15 / 12 * reported_factor, 4))
        for i, v in enumerate(values)
    ]
    found = run(so2 + hour_of(O2, T0, 9.0))
    assert bool(fired(found, "B8-5")) is fires


def test_b9_invalid_flags_lasting_hours_warn_then_clear():
    data = []
    for h in range(5):
        flag = "D" if h < 4 else "N"
        data += minutes(SO2, tick(h), [40.0, 41, 42, 43, 44, 45], flag=flag)
    found = run(with_o2(data, hours=5))
    b9 = [f for f in found if f.rule == "B9"]
    assert [(f.state, f.window_start) for f in b9] == [
        ("fire", epoch(tick(3))),
        ("clear", epoch(tick(4))),
    ]
    assert b9[0].evidence == {"flag": "D", "hours": 4}
    three = [r for h in range(3) for r in minutes(SO2, tick(h), [40.0] * 6, flag="M")]
    assert fired(run(with_o2(three, hours=3)), "B9") == []


def test_b10_low_effective_transmission_rate_per_day():
    day = []
    for h in range(24):
        n = 4 if h < 6 else 6  # 12 records missing of 144: 91.7 % received
        day += minutes(SO2, tick(h), [40.0 + h % 3 + i * 0.1 for i in range(n)])
    assert fired(run(day), "B10") == []
    worse = [
        r for r in day if not (r.data_time < tick(8) and r.data_time.minute >= 40)
    ]  # 16 missing
    [b10] = fired(run(worse), "B10")
    assert (b10.value, b10.limit, b10.unit) == (round(128 / 144 * 100, 2), 90, "%")
    assert b10.evidence == {"received": 128, "valid": 128, "expected": 144, "interval_s": 600}


def test_b10_counts_one_hour():
    """B10's one count (the rule's days and the data-quality figures both use it)."""
    ten = EMPTY._replace(n=6, n_valid=6, interval_s=600)
    assert transmission_counts(ten, 60, True) == (6, 6, 6)  # its own interval; marking unread
    short = EMPTY._replace(n=4, n_valid=3, n_d=1, interval_s=600)
    assert transmission_counts(short, 600, False) == (4, 3, 6)
    stopped = EMPTY._replace(n=6, n_valid=2, n_f=4, interval_s=600)
    assert transmission_counts(stopped, 600, False) == (2, 2, 2)  # F on neither side
    over = EMPTY._replace(n=8, n_valid=1, n_f=7, interval_s=600)
    assert transmission_counts(over, 600, False) == (1, 1, 0)  # never expected below none
    assert transmission_counts(None, 300, False) == (0, 0, 12)  # silent: at the interval given
    assert transmission_counts(None, 300, True) == (0, 0, 0)  # ... unless in a 停产 marking
    device_only = EMPTY._replace(dev_value=41.0)
    assert transmission_counts(device_only, 600, False) == (0, 0, 6)
    assert transmission_counts(device_only, 600, True) == (0, 0, 0)


def test_every_b_finding_names_its_parameters():
    data = with_o2(minutes(SO2, T0, [0.0] * 6))
    [b1] = fired(run(data), "B1")
    assert (b1.params_id, b1.params_version) == ("E1/DA001", gas_outlet().version)
