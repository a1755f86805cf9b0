"""Production power against the outlet's CEMS flow (B8-6, C8-2), in both engines and in any
arrival order of the two streams."""

from datetime import timedelta

import pytest

from ingest.readings import Measurement, PowerSample
from rules.batch import BatchEngine, readings_frames
from rules.power_params import EnterprisePowerParams, MeterParams
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import FLOW_GAS
from tests.rules.scenario import gas_outlet, hour_of, minutes, tick

P = "E1-P1"


def outlet(**kw):
    return gas_outlet(flow_low=50.0, **kw)


def power(**kw) -> EnterprisePowerParams:
    meter = MeterParams("E1", P, "production", rated_kw=100, outlets=("DA001",), **kw)
    return EnterprisePowerParams("E1", meters={P: meter})


def meter_hour(hour: float, kw: float | list[float], every: int = 5) -> list[PowerSample]:
    """Samples every ``every`` minutes over an hour at ``kw`` (or the listed values)."""
    values = kw if isinstance(kw, list) else [kw] * (60 // every)
    out = []
    for i, v in enumerate(values):
        at = tick(hour) + timedelta(minutes=every * i)
        out.append(PowerSample("E1", P, at, v, None, None, None, at + timedelta(seconds=20), 0))
    return out


def flow_hour(hour: float, value: float, **kw) -> list[Measurement]:
    return hour_of(FLOW_GAS, tick(hour), value, **kw)


def run(readings, params=None, power_params=None, grace_s=600):
    """Stream (in arrival order) and batch findings; they must agree."""
    params = params or outlet()
    power_params = power_params or power()
    readings = sorted(readings, key=lambda r: r.received_at)
    stream = StreamEngine({("E1", "DA001"): params}, power={"E1": power_params}, grace_s=grace_s)
    s = []
    for r in readings:
        if isinstance(r, Measurement):
            s += stream.process_measurements([r])
        else:
            s += stream.process_power([r])
    s += stream.flush()
    frame, power_frame = readings_frames(readings)
    batch = BatchEngine({("E1", "DA001"): params}, power={"E1": power_params}, grace_s=grace_s)
    b = batch.run(frame, power_frame=power_frame)
    assert sorted(s, key=lambda f: f.id) == sorted(b, key=lambda f: f.id)
    return s


def linked(found, *rules):
    return [(f.rule, f.state, f.window_start) for f in found if f.rule in rules]


def test_flow_below_its_bound_while_production_runs_is_b8_6_until_it_recovers():
    data = []
    for h, flow in enumerate([30.0, 30.0, 60.0]):
        data += flow_hour(h, flow) + meter_hour(h, 80.0)
    found = run(data)
    assert linked(found, "B8-6", "C8-2") == [
        ("B8-6", "fire", epoch(tick(0))),
        ("B8-6", "fire", epoch(tick(1))),
        ("B8-6", "clear", epoch(tick(2))),
    ]
    fire = next(f for f in found if f.rule == "B8-6")
    assert (fire.value, fire.limit, fire.factor, fire.source_id) == (30.0, 50.0, FLOW_GAS, "DA001")
    assert fire.evidence["meters"][P] == {"samples": 12, "on": 12, "zero": 0}


def test_a_low_flow_while_production_is_off_is_not_suspicious():
    data = flow_hour(0, 30.0) + meter_hour(0, 0.0)
    assert linked(run(data), "B8-6", "C8-2") == []


def test_flow_equal_to_its_bound_is_not_low():
    data = flow_hour(0, 50.0) + meter_hour(0, 80.0)
    assert linked(run(data), "B8-6") == []


@pytest.mark.parametrize(("running", "fires"), [(4, True), (3, False)])
def test_production_counts_when_on_for_half_the_samples(running, fires):
    # 12 samples; the device is OFF once 3 samples agree (C0), so it counts as ON for
    # ``running`` + 2 samples: 6 of 12 is half the hour.
    values = [80.0] * running + [0.0] * (12 - running)
    found = run(flow_hour(0, 30.0) + meter_hour(0, values))
    assert bool(linked(found, "B8-6")) is fires


def test_a_meter_reading_zero_while_the_cems_shows_production_is_c8_2():
    data = flow_hour(0, 80.0) + meter_hour(0, 0.0)
    data += flow_hour(1, 80.0) + meter_hour(1, 80.0)
    found = run(data)
    assert linked(found, "C8-2") == [
        ("C8-2", "fire", epoch(tick(0))),
        ("C8-2", "clear", epoch(tick(1))),
    ]
    fire = found[[f.rule for f in found].index("C8-2")]
    assert fire.evidence["zero_meters"] == [P]
    assert fire.params_id == "E1/power"


def test_without_a_bound_any_flow_shows_production():
    data = flow_hour(0, 5.0) + meter_hour(0, 0.0)
    assert linked(run(data, params=gas_outlet()), "C8-2")[0][:2] == ("C8-2", "fire")
    assert linked(run(data, params=gas_outlet()), "B8-6") == []


def test_hours_missing_on_either_side_or_with_an_invalid_flow_change_nothing():
    data = flow_hour(0, 30.0) + meter_hour(0, 80.0)  # fires
    data += flow_hour(1, 60.0)  # no power: not judged, no clear
    data += meter_hour(2, 80.0)  # no flow: not judged
    data += minutes(FLOW_GAS, tick(3), [60.0, 60.0]) + meter_hour(3, 80.0)  # invalid hour
    data += flow_hour(4, 30.0) + meter_hour(4, 80.0)  # fires again, never cleared
    found = run(data)
    assert linked(found, "B8-6") == [
        ("B8-6", "fire", epoch(tick(0))),
        ("B8-6", "fire", epoch(tick(4))),
    ]


def shifted(readings, delay: timedelta):
    return [r._replace(received_at=r.received_at + delay) for r in readings]


@pytest.mark.parametrize("power_delay_h", [-3, 0, 3])
def test_the_same_hours_are_judged_whichever_stream_arrives_first(power_delay_h):
    cems, meters = [], []
    for h, (flow, kw) in enumerate([(30, 80), (60, 80), (80, 0), (30, 80), (30, 0), (80, 80)]):
        cems += flow_hour(h, float(flow))
        meters += meter_hour(h, float(kw))
    # Device clocks are right; one stream's data arrives hours after the other's (within the
    # grace of 4 h), e.g. a meter gateway that uploads in batches.
    delay = timedelta(hours=abs(power_delay_h))
    if power_delay_h > 0:
        meters = shifted(meters, delay)
    elif power_delay_h < 0:
        cems = shifted(cems, delay)
    found = run(cems + meters, grace_s=4 * 3600 + 600)
    # Hour 2: the meter turns OFF (confirmed on its third zero sample) and reads zero all hour
    # while the flow shows production; hour 4: production is off, so the low flow is not.
    assert sorted(linked(found, "B8-6", "C8-2"), key=lambda x: (x[2], x[0])) == [
        ("B8-6", "fire", epoch(tick(0))),
        ("B8-6", "clear", epoch(tick(1))),
        ("C8-2", "fire", epoch(tick(2))),
        ("B8-6", "fire", epoch(tick(3))),
        ("C8-2", "clear", epoch(tick(3))),
        ("B8-6", "clear", epoch(tick(4))),
    ]


def test_outlets_a_meter_does_not_name_are_not_compared():
    data = flow_hour(0, 30.0) + meter_hour(0, 80.0)
    unlinked = EnterprisePowerParams(
        "E1", meters={P: MeterParams("E1", P, "production", rated_kw=100)}
    )
    assert linked(run(data, power_params=unlinked), "B8-6", "C8-2") == []
