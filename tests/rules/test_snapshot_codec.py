"""The rule engine's snapshot encoding: parameters left out, compressed, old snapshots read."""

import io
import pickle

import pytest

from rules.snapshot_codec import decode_state, encode_state
from rules.stream import StreamEngine
from tests.rules.factors import O2, SO2
from tests.rules.scenario import gas_outlet, hour_of, tick


def test_parameters_are_referred_to_not_stored_and_come_back_from_reconfigure():
    params = gas_outlet()
    engine = StreamEngine({("E1", "DA001"): params}, grace_s=600)
    engine.process_measurements(hour_of(SO2, tick(0), 150.0)[:3] + hour_of(O2, tick(0), 6.0))
    blob = encode_state(engine)
    assert blob[:1] == b"\x78"  # zlib
    restored = decode_state(blob)
    judge = restored._outlets[("E1", "DA001")].judge
    assert judge.params is None  # not in the snapshot
    assert restored._params == {("E1", "DA001"): None}
    restored.reconfigure(StreamEngine({("E1", "DA001"): params}, grace_s=600))
    found = restored.process_measurements(
        hour_of(SO2, tick(0), 150.0)[3:] + hour_of(O2, tick(1), 6.0)
    )
    [a3] = [f for f in found if f.rule == "A3"]
    assert (a3.evidence["valid_minutes"], a3.value) == (60, 150.0)


def test_a_snapshot_written_as_a_bare_pickle_is_still_read():
    engine = StreamEngine({("E1", "DA001"): gas_outlet()}, grace_s=600)
    engine.process_measurements(hour_of(SO2, tick(0), 150.0)[:3])
    old = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
    restored = decode_state(old)
    assert restored.stats.readings == 3
    assert restored._params == engine._params  # stored inline back then


def test_an_unknown_reference_is_refused():
    class Other(pickle.Pickler):
        def persistent_id(self, obj):
            return "elsewhere" if isinstance(obj, str) and obj == "x" else None

    buf = io.BytesIO()
    Other(buf).dump(["x"])
    with pytest.raises(pickle.UnpicklingError, match="unknown reference"):
        decode_state(buf.getvalue())
