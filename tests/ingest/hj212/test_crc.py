import random

import pytest

from ingest.hj212.crc import crc_hj212, crc_hj212_reference, crc_modbus, format_crc
from tests.ingest.hj212.corpus_checker import load_checker

# Worked examples from docs (hj212-spec.md §2): segment, Appendix A value, MODBUS value.
VECTORS = [
    (
        "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
        "CP=&&RtdInterval=30&&",
        0x1C80,
        0x0759,
    ),
    (
        "QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;"
        "CP=&&QnRtn=1&&",
        0xCC01,
        0x2473,
    ),
    (
        "QN=20210412154520280;ST=21;CN=9014;PW=123456;MN=DXCBZ000000005;Flag=5;CP=&&&&",
        0x0140,
        0x6244,
    ),
    (
        "ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817000;B01-Rtd=36.91;"
        "011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&",
        0x4980,
        0x264D,
    ),
    (
        "QN=20170516010101001;ST=22;CN=1011;PW=123456;MN=ABCDEFG1234567;Flag=3;CP=&&&&",
        0x0440,
        0x8411,
    ),
]


# Appendix A exactly as written, bit by bit: the corpus checker's, written from the standard
# apart from the project.
reference_hj212 = load_checker().crc_hj212


@pytest.mark.parametrize(("segment", "hj212", "modbus"), VECTORS)
def test_worked_examples(segment, hj212, modbus):
    data = segment.encode()
    assert crc_hj212(data) == hj212
    assert crc_modbus(data) == modbus


@pytest.mark.parametrize(
    ("data", "expected"), [(b"", 0xFFFF), (b"A", 0x7080), (b"123456789", 0x2F80)]
)
def test_extra_vectors(data, expected):
    assert crc_hj212(data) == expected


def test_table_version_matches_the_bitwise_algorithm_for_all_lengths():
    rng = random.Random(212)
    for length in range(70):
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(length))
            assert crc_hj212(data) == reference_hj212(data), data


def test_fold_agrees_with_the_byte_loop_at_every_length():
    rng = random.Random(2017)
    for length in [*range(70, 1100, 7), 2047, 2048, 2049, 3000, 17_000]:
        data = bytes(rng.randrange(256) for _ in range(length))
        assert crc_hj212(data) == crc_hj212_reference(data) == reference_hj212(data), length


def test_low_byte_is_one_of_eight_values():
    # A property of Appendix A (spec §2): the register is 8 bits wide before each byte's rounds.
    rng = random.Random(7)
    lows = {crc_hj212(bytes(rng.randrange(256) for _ in range(12))) & 0xFF for _ in range(3000)}
    assert lows <= {0x00, 0x01, 0x40, 0x41, 0x80, 0x81, 0xC0, 0xC1}


def test_format_is_four_uppercase_hex_digits():
    assert format_crc(0x1C80) == "1C80"
    assert format_crc(0x0140) == "0140"
