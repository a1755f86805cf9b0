"""The minute detail the stream keeps of each closed outlet-hour: its records as the rules
took them (after acceptance), and, read back in bulk, the same findings from the batch engine
as the readings themselves gave (what ``nonsite replay --from-store`` runs on)."""

from rules.batch import BatchEngine, readings_frames
from rules.markings import Marking
from rules.minute_detail import points, readings_frame
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import O2, SO2
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
