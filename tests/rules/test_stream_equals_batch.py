"""The issue's cross-check: on a simulated month with injected faults, the streaming findings
equal the batch findings, finding by finding.

The suite replays a month of 40 enterprises: the fleet generator gives every special outlet
(B11's contradicted interval, minute data every minute, real-time data only or beside the
minute data, no hour packets, stopped plants, a logger off inside a 停产 marking) an index
below 40, and the month still fires and clears every rule the 200-enterprise month does. The
200-enterprise month (about 4.8 M readings, minutes of CPU) is a benchmark:
``bench/stream_equals_batch.py`` runs it with these same helpers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ingest.readings import Measurement
from rules.batch import BatchEngine, readings_frames
from rules.findings import Finding
from rules.snapshot_codec import decode_state, encode_state
from rules.stream import StreamEngine
from tests.rules.fleet import START, Fleet, generate

TICK_S = 300
DAYS = 30
SEED = 20261121
ENTERPRISES = 40  # the suite's month; the benchmark's is 200

# Every rule a month fires and clears, and those it only fires, on the 40- and the
# 200-enterprise month alike.
FIRE_AND_CLEAR = (
    "A1D",
    "A2",
    "A3",
    "A4",
    "A4V",
    "A5-3",
    "B2",
    "B6",
    "B7",
    "B8",
    "B8-2",
    "B8-3",
    "B8-6",
    "B9",
    "B10",
    "C1",
    "C4",
    "C5",
    "C6",
    "C8",
    "C8-2",
)
FIRE_ONLY = (
    "A5-1",  # past the cap, start-up marks no longer excuse
    "A5-2",
    "B11",  # the configured interval the data contradict
    "C2",
    "C3",
)


def month_of(n_enterprises: int) -> Fleet:
    return generate(n_enterprises=n_enterprises, days=DAYS, seed=SEED)


def stream_findings(month: Fleet) -> tuple[list[Finding], Any]:
    """The month through the streaming engine, the clock ticking between readings as in the
    service, restarted from a snapshot halfway: its findings and stats."""
    first, every = START + TICK_S, TICK_S
    count = DAYS * 86400 // TICK_S

    def engine() -> StreamEngine:
        return StreamEngine(month.params, power=month.power, markings=month.markings, grace_s=3600)

    stream = engine()
    streamed: list[Finding] = []
    k = 0
    restart_at = len(month.readings) // 2
    for i, m in enumerate(month.readings):  # the clock ticks between readings, as in the service
        if i == restart_at:  # a restart from a snapshot: open hours, runs, meters carry on
            stream = decode_state(encode_state(stream))
            stream.reconfigure(engine())
        received = int(m.received_at.timestamp())
        while k < count and first + k * every < received:
            streamed += stream.tick(first + k * every)
            k += 1
        if isinstance(m, Measurement):
            streamed += stream.process_measurements([m])
        else:
            streamed += stream.process_power([m])
    for j in range(k, count):
        streamed += stream.tick(first + j * every)
    streamed += stream.flush()
    return streamed, stream.stats


def batch_findings(month: Fleet) -> tuple[list[Finding], Any]:
    """The month through the batch engine, over the same ticks: its findings and stats."""
    first, every = START + TICK_S, TICK_S
    count = DAYS * 86400 // TICK_S
    batch = BatchEngine(month.params, power=month.power, markings=month.markings, grace_s=3600)
    frame, power_frame = readings_frames(month.readings)
    batched = batch.run(frame, ticks=(first, every, count), power_frame=power_frame)
    return batched, batch.stats


def assert_stream_equals_batch(
    streamed: list[Finding], batched: list[Finding], s: Any, b: Any
) -> Counter[tuple[str, str]]:
    """Finding by finding, the stats, the faults exercised and every rule fired (and cleared);
    returns the (rule, state) counts."""
    by_id_stream = {f.id: f for f in streamed}
    by_id_batch = {f.id: f for f in batched}
    assert len(by_id_stream) == len(streamed)  # identities are unique
    missing = sorted(set(by_id_stream) - set(by_id_batch))[:5]
    extra = sorted(set(by_id_batch) - set(by_id_stream))[:5]
    assert not missing, f"in stream only: {missing}"
    assert not extra, f"in batch only: {extra}"
    differing = [i for i in by_id_stream if by_id_stream[i] != by_id_batch[i]][:5]
    assert not differing, f"different content: {differing}"

    assert (s.readings, s.late, s.duplicates, s.future) == (
        b.readings,
        b.late,
        b.duplicates,
        b.future,
    )
    assert s.late > 0 and s.duplicates > 0 and s.future > 0  # the faults were really exercised
    kinds = Counter((f.rule, f.state) for f in streamed)
    for rule in FIRE_AND_CLEAR:
        assert kinds[(rule, "fire")] > 0, rule
        assert kinds[(rule, "clear")] > 0, rule
    for rule in FIRE_ONLY:
        assert kinds[(rule, "fire")] > 0, rule
    return kinds


@pytest.fixture(scope="module")
def month() -> Fleet:
    return month_of(ENTERPRISES)


def test_streaming_findings_equal_batch_findings_on_a_month_of_40_enterprises(month):
    assert len({e for e, _ in month.params}) == ENTERPRISES
    streamed, s = stream_findings(month)
    batched, b = batch_findings(month)
    assert_stream_equals_batch(streamed, batched, s, b)
