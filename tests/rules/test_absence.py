"""Absence rules driven by a clock: B8 logger offline, B7 missing hour data; clock jumps."""

from dataclasses import replace
from datetime import timedelta

from rules.batch import BatchEngine, measurements_frame
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import O2, SO2
from tests.rules.scenario import T0, gas_outlet, reading, tick

EVERY = 60


def drive(readings, params=None, until_hours=6.0, ticks=None):
    """Run the stream with a manual clock ticking every minute, and the batch with the same
    ticks; both must agree. Returns the absence findings."""
    params = params or gas_outlet()
    table = {(params.enterprise_id, params.outlet_id): params}
    first = epoch(T0) + EVERY
    count = int(until_hours * 3600 // EVERY)
    tick_times = ticks if ticks is not None else [first + k * EVERY for k in range(count)]
    stream = StreamEngine(table, grace_s=600)
    found = []
    i = 0
    for m in readings:
        received = epoch(m.received_at)
        while i < len(tick_times) and tick_times[i] < received:
            found += stream.tick(tick_times[i])
            i += 1
        found += stream.process_measurements([m])
    for t in tick_times[i:]:
        found += stream.tick(t)
    absence = [f for f in found if f.rule in ("B7", "B8")]
    if ticks is None:
        batch = BatchEngine(table, grace_s=600).absence(
            measurements_frame(readings), (first, EVERY, count)
        )
        assert sorted(batch, key=lambda f: f.id) == sorted(absence, key=lambda f: f.id)
    return absence


def rtd_every_minute(minutes_from, minutes_to):
    return [
        reading(
            O2,
            T0 + timedelta(minutes=m),
            7.0,
            interval="rtd",
            received=T0 + timedelta(minutes=m, seconds=5),
        )
        for m in range(minutes_from, minutes_to)
    ]


def test_b8_fires_after_ten_silent_minutes_with_a_window_fixed_by_the_last_receipt():
    data = rtd_every_minute(0, 30) + rtd_every_minute(60, 70)
    found = drive(data, until_hours=75 / 60)
    assert [(f.rule, f.state) for f in found] == [("B8", "fire"), ("B8", "clear")]
    fire, clear = found
    last = epoch(T0 + timedelta(minutes=29, seconds=5))
    assert (fire.window_start, fire.window_end) == (last, last + 600)
    assert clear.window_start == epoch(T0 + timedelta(minutes=60, seconds=5))


def test_b8_quiet_for_a_gap_of_exactly_the_limit():
    data = [
        *rtd_every_minute(0, 10),
        reading(
            O2,
            T0 + timedelta(minutes=19, seconds=5),
            7.0,
            interval="rtd",
            received=T0 + timedelta(minutes=19, seconds=5),
        ),
    ]
    assert drive(data, until_hours=19.5 / 60) == []  # silent exactly 600 s: not more than the limit


def hour_packets(hours, factors=(SO2, O2), late_by=timedelta(minutes=5)):
    return [
        reading(f, tick(h), 40.0, interval="hour", received=tick(h + 1) + late_by)
        for h in hours
        for f in factors
    ]


def test_b7_missing_hour_then_on_time_again():
    live = rtd_every_minute(0, 360)  # B7 judges an hour once the logger's data is past it
    data = sorted(hour_packets([0, 1, 3, 4]) + live, key=lambda m: m.received_at)
    found = drive(data, until_hours=6)
    b7 = [(f.state, f.window_start, f.factor) for f in found if f.rule == "B7"]
    assert b7 == [("fire", epoch(tick(2)), None), ("clear", epoch(tick(3)), None)]


def test_b7_incomplete_hour_names_the_missing_factor_and_new_loggers_are_not_expected():
    # Real-time data every minute: the logger is alive and its data moves on past the hours.
    data = hour_packets([0, 1]) + hour_packets([2], factors=(SO2,)) + rtd_every_minute(0, 330)
    found = drive(sorted(data, key=lambda m: m.received_at), until_hours=5.4)
    assert [(f.rule, f.factor, f.window_start) for f in found if f.rule == "B7"] == [
        ("B7", O2, epoch(tick(2))),
        ("B7", None, epoch(tick(3))),
    ]
    # The first hour a logger ever sends starts the expectation: nothing before it is missing.
    late_start = sorted(hour_packets([3]), key=lambda m: m.received_at)
    assert [f for f in drive(late_start, until_hours=4.5) if f.rule == "B7"] == []


def test_b7_leaves_a_silent_logger_to_b8_and_judges_a_backfill_by_what_it_sends():
    # Hours 0-1 on time, then silence; at 5 h the logger comes back and backfills hours 2-4
    # (补发), all but hour 3, and then goes on live.
    on_time = hour_packets([0, 1])
    backfill = [
        reading(f, tick(h), 40.0, interval="hour", received=tick(5) + timedelta(seconds=h))
        for h in (2, 4)
        for f in (SO2, O2)
    ]
    live = [
        reading(
            O2,
            tick(5) + timedelta(minutes=m),
            7.0,
            interval="rtd",
            received=tick(5) + timedelta(minutes=m, seconds=5),
        )
        for m in range(1, 60)
    ]
    found = drive(sorted(on_time + backfill + live, key=lambda m: m.received_at), until_hours=6)
    b8 = [(f.state, f.window_start) for f in found if f.rule == "B8"]
    assert b8[-2:] == [
        ("fire", epoch(tick(2) + timedelta(minutes=5))),
        ("clear", epoch(tick(5)) + 2),
    ]
    assert [(f.state, f.window_start) for f in found if f.rule == "B7"] == [
        ("fire", epoch(tick(3))),  # only the hour the backfill lacks
        ("clear", epoch(tick(4))),
    ]


def test_b7_waits_for_the_deadline():
    params = replace(gas_outlet(), hour_deadline_s=3600)
    data = hour_packets([0]) + hour_packets(
        [1], late_by=timedelta(minutes=50)
    )  # late but before the deadline
    assert [
        f
        for f in drive(sorted(data, key=lambda m: m.received_at), params, until_hours=3)
        if f.rule == "B7"
    ] == []


def test_a_clock_jump_forward_does_not_declare_everyone_offline():
    data = rtd_every_minute(0, 30)
    start = epoch(T0) + EVERY
    ticks = [start + k * EVERY for k in range(25)] + [start + 7200 + k * EVERY for k in range(5)]
    found = drive(data, ticks=ticks)
    assert found == []  # the jump starts a warm-up
    ticks += [start + 7200 + k * EVERY for k in range(5, 15)]
    assert [f.state for f in drive(data, ticks=ticks)] == [
        "fire"
    ]  # genuinely silent: after the warm-up


def test_a_clock_going_backwards_is_ignored():
    data = rtd_every_minute(0, 5)
    start = epoch(T0)
    ticks = [start + 60, start + 120, start - 3600, start + 180]
    assert drive(data, ticks=ticks) == []


def test_a_reading_arriving_after_a_tick_with_an_earlier_receipt_time():
    # A copy stamped before the last tick but arriving after it: both engines place it after
    # the tick (the stream cannot go back in time), so it clears the outage it follows.
    data = rtd_every_minute(0, 5)
    late_copy = reading(
        O2, T0 + timedelta(minutes=3), 7.0, interval="rtd", received=T0 + timedelta(minutes=3)
    )
    back = reading(
        O2, T0 + timedelta(minutes=30), 7.0, interval="rtd", received=T0 + timedelta(minutes=30)
    )
    found = drive([*data, back, late_copy], until_hours=0.55)
    assert [f.state for f in found] == ["fire", "clear"]
