"""Fuzzing the HJ 212 decoder: >= 100,000 random and mutated inputs.

Every input must give a decoded frame or a documented DecodeErrorCode, and its JSON view
must serialise; nothing else may be raised. Mutations are applied both to whole packets
(exercising framing, length and CRC) and to data segments that are then re-wrapped with a
correct length and CRC (so that they reach the segment parser).
"""

import json
import random
from collections import Counter

from ingest.hj212.crc import crc_hj212, crc_modbus
from ingest.hj212.decoder import STRICT, DecodeFailure, DecodePolicy, decode_payload
from ingest.hj212.errors import DecodeErrorCode
from ingest.hj212.jsonview import result_to_json
from tests.ingest.hj212.frames import SEG_2011

SEEDS = [
    SEG_2011,
    "ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817000;B01-Rtd=36.91;"
    "011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&",
    "QN=20261121080000001;ST=31;CN=3020;PW=123456;MN=AB;Flag=5;CP=&&DataTime=20261121080000;"
    "PolId=w01018;i11001-Info=//清洗;管路//;i12003-Info =0;a21026-i22004-Info=1&&",
    "QN=20261121080000001;ST=32;CN=2051;PW=1;MN=AB;Flag=7;PNUM=2;PNO=1;CP=&&DataTime="
    "20261121080000;w01018-Avg=20.1,w01018-Min=19,w01018-Max=21,w01018-Cou=2.5,w01018-Flag=N&&",
    "QN=20261121080000001;ST=91;CN=9014;PW=1;MN=AB;Flag=4;CP=&&&&",
    "QN=20261121080000001;ST=31;CN=2021;PW=1;MN=AB;Flag=9;CP=&&DataTime=20261121080000;"
    "SB1-RS=1;SB2-RS=0;SB1-RT=23.5&&",
    "QN=20261121080000001;ST=31;CN=1011;PW=1;MN=AB;Flag=5;CP=&&SystemTime=20261121080000;"
    "BeginTime=20261121000000,EndTime=20261121235959&&",
]
INTERESTING = [
    b"#",
    b"##",
    b";",
    b",",
    b"=",
    b"&",
    b"&&",
    b"//",
    b"-",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xe6\xb8\x85",
    b"0",
    b"9",
    b"99999",
    b"CP=&&",
    b"Flag=",
    b"PNUM=",
    b"e",
    b".",
    b" ",
    b"nan",
    b"-Rtd=",
    b"DataTime=",
]


def wrap(segment: bytes, rng: random.Random) -> bytes:
    crc = crc_modbus(segment) if rng.random() < 0.1 else crc_hj212(segment)
    tail = rng.choice([b"\r\n", b"\n", b""])
    return b"##%04d%s%04X%s" % (len(segment) % 10000, segment, crc, tail)


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = rng.choice(INTERESTING)
        elif op == 2 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            buf[pos:pos] = buf[rng.randrange(len(buf) + 1) :][: rng.randint(1, 16)]
        elif op == 4:
            other = rng.choice(SEEDS).encode()
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        else:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    return bytes(buf)


def inputs(n: int, seed: int):
    rng = random.Random(seed)
    seeds = [s.encode() for s in SEEDS]
    for i in range(n):
        mode = i % 4
        if mode == 0:  # random bytes, sometimes with a plausible header
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
            yield (b"##%04d" % rng.randrange(10000) + data) if rng.random() < 0.5 else data
        elif mode == 1:  # mutated whole packets
            yield mutate(wrap(rng.choice(seeds), rng), rng)
        else:  # mutated segments with a correct length and CRC: reach the parser
            yield wrap(mutate(rng.choice(seeds), rng), rng)


def run(n: int, seed: int, policy: DecodePolicy) -> Counter:
    outcomes: Counter = Counter()
    codes = set(DecodeErrorCode)
    for data in inputs(n, seed):
        for result in decode_payload(data, policy):
            if isinstance(result, DecodeFailure):
                assert result.code in codes
                outcomes[str(result.code)] += 1
            else:
                outcomes["ok"] += 1
            json.dumps(result_to_json(result), ensure_ascii=False)
    return outcomes


def test_fuzz_100k_inputs_only_documented_errors():
    outcomes = run(100_000, seed=20261121, policy=STRICT)
    assert outcomes["ok"] > 5_000, outcomes  # the mutations keep many packets decodable
    reached = {c for c in outcomes if c != "ok"}
    # The fuzzer reaches deep into the parser, not just the CRC check.
    assert {
        "crc_mismatch",
        "length_mismatch",
        "bad_cp",
        "bad_value",
        "bad_time",
        "missing_field",
        "bad_flag",
        "crc_modbus",
        "no_header",
    } <= reached, outcomes


def test_fuzz_lenient_policy():
    run(20_000, seed=7, policy=DecodePolicy(accept_modbus_crc=True, max_segment_bytes=10**6))
