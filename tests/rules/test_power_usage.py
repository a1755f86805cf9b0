"""Power-usage rules (C), through both engines, with late, duplicate and flapping samples."""

from dataclasses import replace
from datetime import timedelta

from ingest.readings import PowerSample
from rules.batch import BatchEngine, readings_frames
from rules.power_judge import capacity_kw
from rules.power_params import EnterprisePowerParams, MeterParams, Order, sample_kw
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.scenario import T0

P, K = "E3-P1", "E3-K1"


def power_params(*orders: Order, **kw) -> EnterprisePowerParams:
    meters = {
        P: MeterParams("E3", P, "production", rated_kw=100),
        K: MeterParams("E3", K, "control", rated_kw=20, serves=(P,)),
    }
    return EnterprisePowerParams("E3", meters=meters, orders=orders, **kw)


def sample(meter: str, minute: float, kw: float, received_after_s: int = 30) -> PowerSample:
    at = T0 + timedelta(minutes=minute)
    return PowerSample(
        "E3", meter, at, kw, None, None, None, at + timedelta(seconds=received_after_s), 0
    )


def series(
    meter: str, start: float, end: float, kw: float, every: float = 1.0
) -> list[PowerSample]:
    out, m = [], start
    while m < end:
        out.append(sample(meter, m, kw))
        m += every
    return out


def run(samples, params=None, grace_s=600):
    params = params or power_params()
    samples = sorted(samples, key=lambda s: (s.received_at, s.meter_id))
    stream = StreamEngine({}, power={"E3": params}, grace_s=grace_s)
    s = stream.process_power(samples) + stream.flush()
    measurements, power = readings_frames(samples)
    b = BatchEngine({}, power={"E3": params}, grace_s=grace_s).run(measurements, power_frame=power)
    assert sorted(s, key=lambda f: f.id) == sorted(b, key=lambda f: f.id)
    return s


def rules_of(found, rule):
    return [(f.state, f.source_id, f.tier, f.window_start) for f in found if f.rule == rule]


def at(minute: float) -> int:
    return epoch(T0 + timedelta(minutes=minute))


def test_c1_production_on_while_its_control_device_is_off_then_on():
    data = series(P, 0, 60, 80.0) + series(K, 0, 30, 0.0) + series(K, 30, 60, 15.0)
    c1 = rules_of(run(data), "C1")
    # Both states known from minute 0; the condition holds 10 minutes at minute 10.
    assert c1 == [("fire", K, "warning", at(0)), ("clear", K, "warning", at(30))]


def test_c1_is_an_alarm_while_an_emergency_order_is_in_force():
    order = Order("emergency", at(-60), at(120), devices=("E3-other",), reference="2026-应急-001")
    data = series(P, 0, 30, 80.0) + series(K, 0, 30, 0.0)
    assert [t for _, _, t, _ in rules_of(run(data, power_params(order)), "C1")] == ["alarm"]


def test_c1_needs_ten_sustained_minutes():
    data = (
        series(P, 0, 20, 80.0)
        + series(K, 0, 9, 15.0)
        + series(K, 9, 18, 0.0)
        + series(K, 18, 20, 15.0)
    )
    assert rules_of(run(data), "C1") == []  # off from minute 9 (confirmed), back on at 18


def test_a_flapping_meter_does_not_flap_the_state():
    flapping = [sample(P, m, 80.0 if m % 2 else 1.0) for m in range(40)]
    data = series(P, -5, 0, 1.0) + flapping + series(K, -5, 40, 0.0)
    assert rules_of(run(data), "C1") == []  # production never confirmed ON: no C1
    # Between the thresholds (5 kW < p < 10 kW) the state holds.
    holding = series(P, 0, 5, 80.0) + series(P, 5, 40, 7.0) + series(K, 0, 40, 0.0)
    assert [s for s, *_ in rules_of(run(holding), "C1")] == ["fire"]


def test_c2_control_started_late_and_c3_stopped_early():
    late = series(P, 0, 40, 80.0) + series(K, 0, 8, 0.0) + series(K, 8, 40, 15.0)
    [(state, source, _, start)] = rules_of(run(late), "C2")
    assert (state, source, start) == ("fire", K, at(0))
    on_time = series(P, 0, 40, 80.0) + series(K, 0, 3, 0.0) + series(K, 3, 40, 15.0)
    assert rules_of(run(on_time), "C2") == []
    early = (
        series(P, 0, 38, 80.0)
        + series(P, 38, 50, 0.0)
        + series(K, 0, 30, 15.0)
        + series(K, 30, 50, 0.0)
    )
    [c3] = [f for f in run(early) if f.rule == "C3"]
    assert (c3.window_start, c3.window_end, c3.value) == (at(30), at(38), 480)
    tidy = (
        series(P, 0, 33, 80.0)
        + series(P, 33, 50, 0.0)
        + series(K, 0, 30, 15.0)
        + series(K, 30, 50, 0.0)
    )
    assert rules_of(run(tidy), "C3") == []


def test_c4_control_at_low_load_against_the_learned_baseline():
    data = []
    for day in range(3):  # three days of normal operation: a 15 kW baseline
        base = day * 1440
        data += series(P, base, base + 120, 80.0, every=5) + series(
            K, base, base + 120, 15.0, every=5
        )
    day4 = 3 * 1440
    data += series(P, day4, day4 + 90, 80.0, every=5) + series(K, day4, day4 + 90, 6.0, every=5)
    c4 = rules_of(run(data), "C4")
    assert [s for s, *_ in c4] == ["fire"]
    assert c4[0][3] == at(day4)
    normal = (
        data[:-36]
        + series(P, day4, day4 + 90, 80.0, every=5)
        + series(K, day4, day4 + 90, 13.0, every=5)
    )
    assert rules_of(run(normal), "C4") == []


def test_c5_production_during_an_emergency_stop_order():
    order = Order("emergency", at(30), at(90), devices=(P,), reference="滨江〔2026〕12号")
    data = series(P, 0, 120, 80.0) + series(K, 0, 120, 15.0)
    c5 = rules_of(run(data, power_params(order)), "C5")
    assert c5 == [("fire", P, "alarm", at(30)), ("clear", P, "alarm", at(90))]
    stopped = series(P, 0, 29, 80.0) + series(P, 29, 120, 0.0) + series(K, 0, 120, 15.0)
    assert rules_of(run(stopped, power_params(order)), "C5") == []


def test_c6_production_inside_a_staggered_window():
    # Daily 08:00-11:00 China time on the order's days; T0 is midnight China time.
    order = Order(
        "staggered",
        at(0),
        at(2 * 1440),
        devices=(P,),
        reference="错峰-冬季",
        daily=(8 * 3600, 11 * 3600),
    )
    data = series(P, 7 * 60, 9 * 60, 80.0, every=5) + series(K, 7 * 60, 9 * 60, 15.0, every=5)
    c6 = rules_of(run(data, power_params(order)), "C6")
    assert [(s, t, w) for s, _, t, w in c6] == [("fire", "warning", at(8 * 60))]


def test_late_and_duplicate_samples():
    data = series(P, 0, 30, 80.0) + series(K, 0, 30, 15.0)
    dup = data[:5]
    late = [sample(K, 2, 0.0, received_after_s=3600)]  # an OFF sample from long ago
    stream = StreamEngine({}, power={"E3": power_params()}, grace_s=600)
    stream.process_power(sorted(data + dup + late, key=lambda s: s.received_at))
    assert (stream.stats.duplicates, stream.stats.late) == (5, 1)
    assert rules_of(run(data + dup + late), "C1") == []


def test_c8_meter_offline_on_the_clock():
    data = series(P, 0, 20, 80.0) + series(K, 0, 20, 15.0) + series(P, 70, 75, 80.0)
    params = {
        "E3": replace(
            power_params(),
            meters={
                P: MeterParams("E3", P, "production", rated_kw=100, offline_after_s=1800),
                K: MeterParams("E3", K, "control", rated_kw=20, serves=(P,), offline_after_s=1800),
            },
        )
    }
    stream = StreamEngine({}, power=params, grace_s=600)
    ticks = [epoch(T0) + 60 * k for k in range(1, 80)]
    found, i = [], 0
    for s in sorted(data, key=lambda x: x.received_at):
        while i < len(ticks) and ticks[i] < epoch(s.received_at):
            found += stream.tick(ticks[i])
            i += 1
        found += stream.process_power([s])
    for t in ticks[i:]:
        found += stream.tick(t)
    c8 = [(f.state, f.source_id) for f in found if f.rule == "C8"]
    assert c8 == [("fire", P), ("fire", K), ("clear", P)]
    measurements, power = readings_frames(sorted(data, key=lambda x: x.received_at))
    batch = BatchEngine({}, power=params, grace_s=600).absence(
        measurements, (ticks[0], 60, len(ticks)), power
    )
    assert sorted(batch, key=lambda f: f.id) == sorted(
        [f for f in found if f.rule == "C8"], key=lambda f: f.id
    )


def test_c2_once_per_production_run_even_when_the_control_device_restarts():
    data = (series(P, 0, 120, 80.0) + series(K, 0, 8, 0.0) + series(K, 8, 40, 15.0)
            + series(K, 40, 60, 0.0) + series(K, 60, 120, 15.0))  # fmt: skip
    found = run(data)
    assert [s for s, *_ in rules_of(found, "C2")] == ["fire"]
    assert [s for s, *_ in rules_of(found, "C1")] == ["fire", "clear"]  # the restart gap is C1's


def test_judging_only_when_something_can_change_equals_judging_every_sample():
    """The judge skips samples that cannot change any condition; on a simulated fleet's
    power data (faults of every kind) that must give exactly what judging always gives."""
    from rules.power_judge import PowerJudge
    from tests.rules.fleet import generate

    fleet = generate(n_enterprises=40, days=20, seed=7)
    samples = sorted((s for s in fleet.readings if isinstance(s, PowerSample)),
                     key=lambda s: (s.enterprise_id, s.ts, s.meter_id))  # fmt: skip
    results = []
    for always in (False, True):
        judges = {}
        found = []
        for s in samples:
            judge = judges.get(s.enterprise_id)
            if judge is None:
                judge = judges[s.enterprise_id] = PowerJudge(fleet.power[s.enterprise_id])
                judge.always_evaluate = always
            kw = sample_kw(s.active_power_kw, s.switch_on)
            if kw is not None:
                found += judge.sample(s.meter_id, epoch(s.ts), kw)
        results.append(found)
    assert results[0] == results[1]
    assert {f.rule for f in results[0]} >= {"C1", "C2", "C3", "C4", "C5", "C6"}


def test_batch_counts_meter_samples_like_the_stream():
    data = series(P, 0, 30, 80.0) + series(K, 0, 30, 15.0)
    data += [*data[:4], sample(K, 2, 0.0, received_after_s=3600)]
    data += [PowerSample("E3", "unknown", T0, 1.0, None, None, None, T0, 0)]
    data += [
        PowerSample(
            "E3", P, T0 + timedelta(days=2), 1.0, None, None, None, T0 + timedelta(minutes=31), 0
        )
    ]
    data = sorted(data, key=lambda s: s.received_at)
    stream = StreamEngine({}, power={"E3": power_params()}, grace_s=600)
    stream.process_power(data)
    measurements, power = readings_frames(data)
    batch = BatchEngine({}, power={"E3": power_params()}, grace_s=600)
    batch.run(measurements, power_frame=power)
    s = stream.stats
    assert (
        tuple(batch.stats)
        == (s.readings, s.late, s.duplicates, s.future, s.unconfigured)
        == (67, 1, 4, 1, 1)
    )


def test_production_state_per_enterprise_follows_its_production_devices():
    stream = StreamEngine({}, power={"E3": power_params()}, grace_s=0)
    assert stream.production() == {}  # nothing known yet
    stream.process_power(series(P, 0, 5, 80.0) + series(K, 0, 5, 15.0))
    assert stream.production() == {"E3": True}
    stream.process_power(series(P, 5, 12, 0.0) + series(K, 5, 12, 0.0))
    assert stream.production() == {"E3": False}  # 停产 once the stop is confirmed


# -- C7 擅自扩大产能: a production day's level above 1.2 × the P95s of its earlier days ------


def capacity_params(**c7) -> EnterprisePowerParams:
    """The production meter alone (rated 100 kW: C7 bins of 3 kW, centres 1.5, 4.5, ...)."""
    return EnterprisePowerParams(
        "E3", meters={P: MeterParams("E3", P, "production", rated_kw=100, **c7)}
    )


def working_day(day: int, kw: float, hours: float = 8) -> list[PowerSample]:
    """A day running from 08:00 at ``kw`` for ``hours``, every 10 minutes."""
    start = day * 1440 + 8 * 60
    return series(P, start, start + hours * 60, kw, every=10)


def state_only(minute: float, on: bool) -> PowerSample:
    at = T0 + timedelta(minutes=minute)
    return PowerSample("E3", P, at, None, None, None, on, at + timedelta(seconds=30), 0)


def c7(found):
    return [(f.state, f.window_start, f.window_end) for f in found if f.rule == "C7"]


def day(k: int) -> tuple[int, int]:
    return at(k * 1440), at((k + 1) * 1440)


def test_c7_a_day_above_its_history_fires_and_the_next_normal_day_clears():
    data = [s for k in range(7) for s in working_day(k, 60.0)]  # a week at 60 kW
    data += working_day(7, 90.0) + working_day(8, 91.0) + working_day(9, 60.0)
    found = run(data, capacity_params())
    assert c7(found) == [("fire", *day(7)), ("fire", *day(8)), ("clear", *day(9))]
    fire = next(f for f in found if f.rule == "C7")
    # 60 kW is in the bin [60, 63) (centre 61.5), 90 kW in [90, 93) (centre 91.5).
    assert (fire.tier, fire.value, fire.limit, fire.unit) == ("warning", 91.5, 73.8, "kW")
    assert fire.evidence == {"level_kw": 91.5, "baseline_kw": 61.5, "days": 7, "factor": 1.2}
    second, clear = [f for f in found if f.rule == "C7"][1:]
    assert second.evidence["since"] == clear.evidence["since"] == day(7)[0]
    assert second.evidence["days"] == 8  # day 7 itself is history for day 8


def test_c7_needs_c7_min_days_learned():
    data = [s for k in range(6) for s in working_day(k, 60.0)] + working_day(6, 90.0)
    assert c7(run(data, capacity_params())) == []  # six days known, seven needed
    assert c7(run(data, capacity_params(c7_min_days=6))) == [("fire", *day(6))]


def test_c7_a_level_equal_to_the_bound_does_not_fire():
    # Bin centres 67.5 kW (bin 22) and 94.5 kW (bin 31): 1.4 × 67.5 == 94.5 exactly.
    assert capacity_kw(31, 100) == 1.4 * capacity_kw(22, 100)
    week = [s for k in range(7) for s in working_day(k, 67.0)]
    params = capacity_params(c7_factor=1.4)
    assert c7(run(week + working_day(7, 94.0), params)) == []
    assert c7(run(week + working_day(7, 97.0), params)) == [("fire", *day(7))]  # next bin


def test_c7_judges_a_mostly_off_day_on_its_on_samples_only():
    def mostly_off(k: int, kw: float) -> list[PowerSample]:
        # Off all day but two hours from 10:00; off, it mostly draws a standby 7 kW, between
        # the OFF (5 kW) and ON (10 kW) thresholds: the state stays OFF, but it is power.
        base = k * 1440
        return (
            series(P, base, base + 60, 0.0, every=10)
            + series(P, base + 60, base + 600, 7.0, every=10)
            + series(P, base + 600, base + 720, kw, every=10)
            + series(P, base + 720, base + 750, 0.0, every=10)
            + series(P, base + 750, base + 1440, 7.0, every=10)
        )

    week = [s for k in range(7) for s in mostly_off(k, 60.0)]
    found = run(week + mostly_off(7, 90.0), capacity_params())
    assert c7(found) == [("fire", *day(7))]
    [fire] = [f for f in found if f.rule == "C7"]
    assert (fire.evidence["level_kw"], fire.evidence["baseline_kw"]) == (91.5, 61.5)
    # A day that never ran is not judged: it neither clears nor counts as a day learned.
    idle = series(P, 8 * 1440, 9 * 1440, 0.0, every=30)
    found = run(week + mostly_off(7, 90.0) + idle + mostly_off(9, 91.0), capacity_params())
    assert c7(found) == [("fire", *day(7)), ("fire", *day(9))]
    assert [f.evidence["days"] for f in found if f.rule == "C7"] == [7, 8]


def test_c7_state_only_samples_do_not_disturb_the_baseline():
    data = []
    for k in range(7):
        data += working_day(k, 60.0)
        base = k * 1440
        # The breaker's state between the power readings: ON while running, OFF at night.
        data += [state_only(base + 8 * 60 + m + 5, on=True) for m in range(0, 480, 10)]
        data += [state_only(base + m + 5, on=False) for m in range(0, 8 * 60, 30)]
    # A day of states only (running, no power reading): not judged, not learned.
    data += [state_only(7 * 1440 + 8 * 60 + m, on=True) for m in range(0, 480, 10)]
    data += working_day(8, 90.0)
    found = run(data, capacity_params())
    assert c7(found) == [("fire", *day(8))]
    [fire] = [f for f in found if f.rule == "C7"]
    assert fire.evidence == {"level_kw": 91.5, "baseline_kw": 61.5, "days": 7, "factor": 1.2}


def test_c7_the_last_day_is_judged_at_flush_only():
    data = [s for k in range(7) for s in working_day(k, 60.0)] + working_day(7, 90.0)
    samples = sorted(data, key=lambda s: s.received_at)
    stream = StreamEngine({}, power={"E3": capacity_params()}, grace_s=600)
    assert c7(stream.process_power(samples)) == []  # day 7 is still open
    assert c7(stream.flush()) == [("fire", *day(7))]
    measurements, power = readings_frames(samples)
    batch = BatchEngine({}, power={"E3": capacity_params()}, grace_s=600)
    assert c7(batch.run(measurements, power_frame=power, flush=False)) == []


def test_c7_parameters_from_rules_defaults_and_meter_overrides():
    import pytest

    from nonsite.config import ConfigError
    from nonsite.config.load import parse_config
    from nonsite.rule_wiring import build_power_params

    def config(rules: dict, **meter) -> dict:
        return {
            "rules": rules,
            "enterprises": [
                {
                    "id": "E1",
                    "name": "甲",
                    "meters": [
                        {"id": "P1", "role": "production", "rated_kw": 100, **meter},
                        {"id": "P2", "role": "production", "rated_kw": 100},
                    ],
                }
            ],
        }

    c = parse_config(config({"c7_factor": 1.3}, c7_baseline_days=60, c7_min_days=14), "t", env={})
    meters = build_power_params(c)["E1"].meters
    assert (meters["P1"].c7_factor, meters["P1"].c7_baseline_days, meters["P1"].c7_min_days) == (
        1.3,
        60,
        14,
    )
    assert (meters["P2"].c7_factor, meters["P2"].c7_baseline_days, meters["P2"].c7_min_days) == (
        1.3,
        30,
        7,
    )
    with pytest.raises(ConfigError, match="c7_min_days"):
        parse_config(config({"c7_min_days": 40}), "t", env={})


def test_c7_learning_survives_a_restart_from_a_snapshot():
    from rules.snapshot_codec import decode_state, encode_state

    data = [s for k in range(7) for s in working_day(k, 60.0)] + working_day(7, 90.0)
    samples = sorted(data, key=lambda s: s.received_at)
    half = len(samples) // 2  # in day 3: a day's histogram open, three P95s learned

    def engine() -> StreamEngine:
        return StreamEngine({}, power={"E3": capacity_params()}, grace_s=600)

    stream = engine()
    found = stream.process_power(samples[:half])
    stream = decode_state(encode_state(stream))
    stream.reconfigure(engine())
    found += stream.process_power(samples[half:]) + stream.flush()
    assert c7(found) == c7(run(data, capacity_params())) == [("fire", *day(7))]
