"""The minute detail the stream keeps of each closed outlet-hour: its records as the rules
took them (after acceptance), and, read back in bulk, the same findings from the batch engine
as the readings themselves gave (what ``nonsite replay --from-store`` runs on)."""

import random
from array import array

from ingest.readings import Measurement
from rules.batch import BatchEngine, readings_frames
from rules.markings import Marking
from rules.minute_detail import points, readings_frame, rows_frame, stored_records
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import O2, SO2
from tests.rules.fleet import generate
from tests.rules.scenario import gas_outlet, hour_of, minutes, reading, tick, water_outlet

PH = "w01001"  # water_outlet's, with its allowed range 6-9


def kept_detail(params, readings, markings=()):
    engine = StreamEngine(
        {(params.enterprise_id, params.outlet_id): params}, markings=markings, grace_s=600
    )
    found = engine.process_measurements(readings) + engine.flush()
    return found, engine.take_history().detail


def gas_data():
    data = []
    for h in range(30):
        data += hour_of(SO2, tick(h), 150.0 if h % 7 == 3 else 40.0 + h % 5)
        data += hour_of(O2, tick(h), 6.0 + (h % 3))
    data += minutes(SO2, tick(30), [50.0] * 5 + [999.0])
    data[-1] = data[-1]._replace(flag="D")
    data.append(data[10])  # a duplicate: kept once
    return data


def test_the_detail_holds_the_records_the_rules_took():
    params = gas_outlet()
    data = gas_data()
    _, detail = kept_detail(params, data)
    assert [d.start for d in detail] == sorted({d.start for d in detail})
    got = points(detail)
    so2 = got[SO2]
    assert len(so2) == 31 * 6  # every record once, the duplicate dropped
    assert [p.t for p in so2] == sorted(p.t for p in so2)
    [flagged] = [p for p in so2 if p.flag == "D"]
    assert (flagged.value, flagged.interval, flagged.t) == (999.0, "minute", epoch(tick(30)) + 3000)
    assert sum(d.records for d in detail) == len(so2) + len(got[O2])


def test_the_batch_engine_finds_on_the_kept_detail_what_the_stream_found():
    params = gas_outlet()
    marked = Marking("E1", "DA001", "maintenance", epoch(tick(5)), epoch(tick(7)))
    found, detail = kept_detail(params, gas_data(), [marked])
    batch = BatchEngine({("E1", "DA001"): params}, markings=[marked], grace_s=600)
    replayed = batch.run(readings_frame(detail))

    def key(f):
        return (f.id, f.state, f.tier, f.value)

    closed = {key(f) for f in found if f.window_end <= epoch(tick(30))}
    assert {key(f) for f in replayed if f.window_end <= epoch(tick(30))} == closed
    assert any(f.rule == "A3" for f in found)


def test_the_hours_extremes_come_back_for_the_allowed_range():
    # pH's own Min field below 6 in a record whose mean is inside: A4V sees it from the
    # detail as from the readings (each record carries its block's extremes).
    params = water_outlet()
    data = [
        reading(PH, tick(0).replace(minute=10 * k), 7.0, outlet=("E2", "DW001"))._replace(
            minimum=5.2 if k == 2 else 6.9, maximum=7.1
        )
        for k in range(6)
    ] + [reading(PH, tick(1), 7.0, outlet=("E2", "DW001"))]
    found, detail = kept_detail(params, data)
    original = BatchEngine({("E2", "DW001"): params}, grace_s=600).run(readings_frames(data)[0])
    replayed = BatchEngine({("E2", "DW001"): params}, grace_s=600).run(readings_frame(detail))

    def a4v(findings):
        return [(f.state, f.value) for f in findings if f.rule == "A4V"]

    assert a4v(original) and a4v(found) == a4v(original) == a4v(replayed)
    assert a4v(replayed)[0] == ("fire", 5.2)


def _reversed_blocks(row):
    """``row`` with each block's records in reverse time order (a logger's records can reach
    an open hour out of order): the judging sorts them back."""
    enterprise, outlet, start, layout, data = row
    values = array("d")
    values.frombytes(data)
    at = 0
    for block in layout.split(";"):
        n = int(block.rsplit(":", 1)[1])
        records = [values[at + 2 + 4 * i : at + 6 + 4 * i] for i in range(n)]
        values[at + 2 : at + 2 + 4 * n] = array("d", [x for r in reversed(records) for x in r])
        at += 2 + 4 * n
    return enterprise, outlet, start, layout, values.tobytes()


def test_stored_records_are_judged_as_the_frame_of_the_same_rows():
    # The replay's way (records taken as accepted, sorted by series) and the measurement
    # frame's (accepted by arrival) find the same, on a fleet's kept detail with real-time
    # outlets (judged through acceptance), markings, stopped plants and an outlet not judged;
    # the replay's with half the hours' records out of time order (as an hour's records may
    # reach the stream), which it sorts back, and the rows in no order (as the database
    # returns them unsorted): the real-time outlets' rows are accepted in hour order.
    month = generate(n_enterprises=20, days=6, seed=7)
    stream = StreamEngine(month.params, markings=month.markings, grace_s=3600)
    stream.process_measurements([m for m in month.readings if isinstance(m, Measurement)])
    stream.flush()
    detail = stream.take_history().detail
    rows = [(d.enterprise_id, d.outlet_id, d.start, d.layout, d.data) for d in detail]
    shuffled = [_reversed_blocks(row) if k % 2 else row for k, row in enumerate(rows)]
    random.Random(3).shuffle(shuffled)
    dropped = ("E0003", "DA001")
    params = {key: p for key, p in month.params.items() if key != dropped}

    def engine():
        return BatchEngine(params, power=month.power, markings=month.markings, grace_s=3600)

    by_frame = engine()
    framed = by_frame.run(rows_frame(rows))
    by_records = engine()
    stored = stored_records(shuffled, by_records.okeys)
    judged = by_records.run_accepted(
        stored.records, stored.others, unconfigured=stored.unconfigured
    )

    def key(f):
        return (f.id, f.state, f.tier, f.value, f.limit, repr(f.evidence))

    assert sorted(map(key, judged)) == sorted(map(key, framed))
    assert len({f.rule for f in judged}) >= 10
    realtime = {("E0006", "DA001"), ("E0015", "DA001")}
    assert set(stored.others.select("enterprise_id", "outlet_id").unique().iter_rows()) == realtime
    dropped_records = sum(d.records for d in detail if (d.enterprise_id, d.outlet_id) == dropped)
    assert stored.unconfigured == dropped_records > 0
    assert by_records.stats is not None and by_frame.stats is not None
    assert by_records.stats.readings == by_frame.stats.readings == sum(d.records for d in detail)
    assert by_records.stats.unconfigured == by_frame.stats.unconfigured == dropped_records
