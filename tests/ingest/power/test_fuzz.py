"""Fuzz: whatever the bytes, decode_power returns sound readings or raises PowerDecodeError.

Seeded ``random.Random`` rather than hypothesis: the point is volume (over 100,000 inputs)
in a few seconds. A failure message carries the input, so it can be replayed directly.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest.power import (
    MAX_READINGS,
    DecodedReading,
    PowerDecodeError,
    PowerErrorCode,
    decode_power,
    is_valid_meter_id,
    json_schema,
)

SEED = 20261121
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "power"
TOPICS = [None, None, "E001-M01", "E001-M02"]

_SMALL_SEEDS = [
    p.read_bytes() for p in sorted(EXAMPLES.glob("*.json")) if p.stat().st_size < 4096
] + [json.dumps(example).encode() for example in json_schema()["examples"]]
_BIG_SEEDS = [
    (EXAMPLES / "invalid-too_many-1.json").read_bytes(),
    json.dumps([{"meter": f"M{i}", "ts": "2026-11-21T08:00:00Z", "p_kw": i} for i in range(1000)])
    .replace(" ", "")
    .encode(),
]

_TOKENS = [
    *"{}[],:",
    " ",
    "\n",
    '"',
    "\\",
    '"meter"',
    '"ts"',
    '"p_kw"',
    '"i_a"',
    '"e_kwh"',
    '"switch"',
    '"pkw"',
    '"on"',
    '"off"',
    '"E001-M01"',
    '"E001-M02"',
    '"一号电表"',
    '"a b"',
    '""',
    '"\\ud800"',
    '"\\u0000"',
    '"2026-11-21T08:00:00+08:00"',
    '"2026-11-21T08:00:00Z"',
    '"2026-11-21T08:00:00"',
    '"2026-02-30T08:00:00Z"',
    '"1763683200"',
    "0",
    "-0",
    "1",
    "150",
    "152.4",
    "-3.75",
    "1e6",
    "1000000.001",
    "-1e6",
    "100000",
    "1e400",
    "1e-400",
    "01",
    "1.",
    "NaN",
    "Infinity",
    "-Infinity",
    "true",
    "false",
    "null",
    "\ufeff",
]

# Per key: (valid values, invalid values); invalid ones are drawn now and then.
_VALUES = {
    "meter": (['"E001-M01"', '"E001-M02"', '"M"', '"一号电表"'], ['""', '"a/b"', '"E\\t1"', "1"]),
    "ts": (
        ['"2026-11-21T08:00:00+08:00"', '"2026-11-21t08:00:00z"', '"2026-11-21 08:00:00.5-05:30"'],
        ['"2026-11-21T08:00:00"', '"2026-11-21T08:00:00+0800"', '"0000-01-01T00:00:00Z"', "17"],
    ),
    "p_kw": (["0", "152.4", "-1e6", "1e6", "150"], ["1000001", "NaN", "true", '"1"', "1e400"]),
    "i_a": (["[1]", "[1,2,3]", "[1e5,0,0.5]", "null"], ["[1,2]", "[]", "[-1]", "[NaN]", "1"]),
    "e_kwh": (["0", "123456.7", "null"], ["-0.1", "Infinity", "false"]),
    "switch": (['"on"', '"off"', "null"], ['"ON"', "true", "1"]),
    "pkw": ([], ["1"]),
}


def _outcome(payload: bytes, topic_meter: str | None) -> list[DecodedReading] | PowerDecodeError:
    # Any other exception propagates and fails the test, with its traceback.
    try:
        return decode_power(payload, topic_meter)
    except PowerDecodeError as error:
        return error


def _check(payload: bytes, topic_meter: str | None, seen: Counter[str]) -> None:
    """The property under test, for one input."""
    readings = _outcome(payload, topic_meter)
    if isinstance(readings, PowerDecodeError):
        assert isinstance(readings.code, PowerErrorCode), (payload, readings)
        assert isinstance(readings.detail, str), (payload, readings)
        assert readings.detail, (payload, readings)
        seen[readings.code.value] += 1
        return
    # Anything accepted must satisfy every field rule.
    assert 1 <= len(readings) <= MAX_READINGS, payload
    for r in readings:
        assert isinstance(r, DecodedReading), payload
        assert is_valid_meter_id(r.meter_id), payload
        assert topic_meter is None or r.meter_id == topic_meter, payload
        assert r.ts.utcoffset() is not None, payload
        assert math.isfinite(r.active_power_kw), payload
        assert abs(r.active_power_kw) <= 1e6, payload
        assert r.current_a is None or len(r.current_a) in (1, 3), payload
        assert all(math.isfinite(i) and 0 <= i <= 1e5 for i in r.current_a or ()), payload
        assert r.energy_kwh is None or (math.isfinite(r.energy_kwh) and r.energy_kwh >= 0)
        assert r.switch_on in (None, True, False), payload
    seen["ok"] += 1


def _run(inputs: Iterator[bytes], rng: random.Random) -> Counter[str]:
    seen: Counter[str] = Counter()
    for payload in inputs:
        _check(payload, rng.choice(TOPICS), seen)
    return seen


# -- generators --------------------------------------------------------------------------


def _random_bytes(rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        size = rng.choice((0, 1, 2, 3, rng.randrange(64), rng.randrange(512)))
        if rng.random() < 0.5:  # mostly printable ASCII reaches the JSON parser further
            yield bytes(rng.choice(b' {}[]",:.-+0123456789eE\\naeflnrstu') for _ in range(size))
        else:
            yield rng.randbytes(size)


def _token_soup(rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield "".join(rng.choices(_TOKENS, k=rng.randrange(1, 40))).encode()


def _reading_text(rng: random.Random) -> str:
    keys = [k for k in _VALUES if rng.random() < (0.95 if k in ("ts", "p_kw", "meter") else 0.3)]
    rng.shuffle(keys)
    fields = []
    for key in keys:
        good, bad = _VALUES[key]
        fields.append(f'"{key}":{rng.choice(bad if not good or rng.random() < 0.05 else good)}')
    return "{" + ",".join(fields) + "}"


def _structured(rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        roll = rng.random()
        if roll < 0.6:
            text = _reading_text(rng)
        elif roll < 0.99:
            text = "[" + ",".join(_reading_text(rng) for _ in range(rng.randrange(0, 6))) + "]"
        else:
            text = "[" + ",".join([_reading_text(rng)] * rng.choice((999, 1000, 1001))) + "]"
        yield text.encode()


def _mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    buf = bytearray(data)

    def flip() -> None:
        if buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)

    def overwrite() -> None:
        if buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)

    def insert() -> None:
        piece = rng.choice(_TOKENS).encode() if rng.random() < 0.5 else rng.randbytes(1)
        at = rng.randrange(len(buf) + 1)
        buf[at:at] = piece

    def delete() -> None:
        if buf:
            at = rng.randrange(len(buf))
            del buf[at : at + rng.randrange(1, 8)]

    def splice() -> None:
        other = rng.choice(seeds)
        cut, cut_other = rng.randrange(len(buf) + 1), rng.randrange(len(other) + 1)
        buf[cut:] = other[cut_other:]

    def truncate() -> None:
        del buf[rng.randrange(len(buf) + 1) :]

    def duplicate() -> None:
        if buf:
            at = rng.randrange(len(buf))
            piece = buf[at : at + rng.randrange(1, 32)]
            buf[at:at] = piece

    ops: list[Callable[[], None]] = [flip, overwrite, insert, delete, splice, truncate, duplicate]
    for _ in range(rng.randrange(1, 5)):
        rng.choice(ops)()
    return bytes(buf)


def _mutations(rng: random.Random, seeds: list[bytes], count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield _mutate(rng, rng.choice(seeds), seeds)


# -- tests -------------------------------------------------------------------------------


def test_fuzz_random_bytes() -> None:
    rng = random.Random(SEED)
    seen = _run(_random_bytes(rng, 20_000), rng)
    assert sum(seen.values()) == 20_000
    assert {"not_utf8", "bad_json", "empty"} <= set(seen)


def test_fuzz_json_token_soup() -> None:
    rng = random.Random(SEED + 1)
    seen = _run(_token_soup(rng, 15_000), rng)
    assert sum(seen.values()) == 15_000
    assert {"bad_json", "schema_error"} <= set(seen)


def test_fuzz_structured_readings() -> None:
    rng = random.Random(SEED + 2)
    seen = _run(_structured(rng, 15_000), rng)
    assert sum(seen.values()) == 15_000
    # The generator is tuned to reach every outcome but the byte-level ones.
    assert {"ok", "schema_error", "meter_mismatch", "empty", "too_many"} <= set(seen)


def test_fuzz_mutated_examples() -> None:
    rng = random.Random(SEED + 3)
    seen = _run(_mutations(rng, _SMALL_SEEDS, 55_000), rng)
    assert sum(seen.values()) == 55_000
    assert set(seen) == {"ok", *(code.value for code in PowerErrorCode)} - {"too_many"}


def test_fuzz_mutated_large_batches() -> None:
    rng = random.Random(SEED + 4)
    seen = _run(_mutations(rng, _BIG_SEEDS, 300), rng)
    assert sum(seen.values()) == 300
    assert {"ok", "too_many"} <= set(seen)
