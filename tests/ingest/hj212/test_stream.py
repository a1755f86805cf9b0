"""The stream framer: the same packets and the same diagnosis as a whole payload gives,
however the bytes are split across reads."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.hj212.decoder import DecodeFailure, decode_payload
from ingest.hj212.stream import MAX_PACKET_BYTES, StreamFramer
from tests.ingest.hj212.frames import SEG_2011, packet

GOOD = packet(SEG_2011)
SEG_B = SEG_2011.replace("20261121080000123", "20261121080100000").replace("12.30", "13.00")
STREAM = (
    GOOD
    + packet(SEG_B, tail="")  # no tail: the next packet follows directly
    + GOOD
    + b"AT+CSQ\r\n"  # a modem's junk between packets
    + packet(SEG_2011, length=10)  # a wrong declared length
    + packet(SEG_B, tail="\n")
)


def _decoded(pieces: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for piece in pieces:
        for item in decode_payload(piece):
            if isinstance(item, DecodeFailure):
                out.append(("failure", item.code))
            else:
                out.append(("frame", item.qn or ""))
    return out


def _feed(chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    framer = StreamFramer()
    pieces: list[bytes] = []
    for chunk in chunks:
        pieces += framer.feed(chunk)
    return pieces, framer.flush()


def test_whole_stream_in_one_read():
    pieces, rest = _feed([STREAM])
    assert rest == b""
    assert _decoded(pieces) == [
        ("frame", "20261121080000123"),
        ("frame", "20261121080100000"),
        ("frame", "20261121080000123"),
        ("failure", "no_header"),
        ("failure", "length_mismatch"),
        ("frame", "20261121080100000"),
    ]
    assert pieces[0] == GOOD.rstrip(b"\r\n")  # the tail is not part of the piece


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_what_the_whole_gives(cuts):
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    pieces, rest = _feed(chunks)
    whole, _ = _feed([STREAM])
    assert rest == b""
    # A junk line split across reads may come out in two pieces; the packets never differ.
    frames = [d for d in _decoded(pieces) if d[0] == "frame"]
    assert frames == [d for d in _decoded(whole) if d[0] == "frame"]
    assert ("failure", "length_mismatch") in _decoded(pieces)


def test_byte_by_byte():
    framer = StreamFramer()
    pieces = [p for i in range(len(GOOD)) for p in framer.feed(GOOD[i : i + 1])]
    assert pieces == [GOOD.rstrip(b"\r\n")]
    assert framer.pending == 0


def test_a_packet_cut_off_mid_way_is_left_for_the_record():
    framer = StreamFramer()
    assert framer.feed(GOOD[:40]) == []
    assert framer.pending == 40
    rest = framer.flush()
    assert rest == GOOD[:40]
    assert [f.code for f in decode_payload(rest) if isinstance(f, DecodeFailure)] == [
        "length_mismatch"
    ]
    assert framer.pending == 0


def test_junk_without_a_header_does_not_grow_the_buffer():
    framer = StreamFramer(max_junk_bytes=100)
    pieces = framer.feed(b"x" * 250)
    assert sum(map(len, pieces)) >= 200
    assert framer.pending < 100
    # A trailing '#' may be the first half of a header: kept until the next read.
    assert framer.feed(b"#") == [] or framer.pending == 1
    assert framer.feed(b"#" + GOOD[2:])[-1] == GOOD.rstrip(b"\r\n")


def test_a_packet_longer_than_declared_waits_for_its_line_end():
    framer = StreamFramer()
    wrong = packet(SEG_2011, length=10, tail="")
    assert framer.feed(wrong) == []  # no end yet: more of it may come
    [piece] = framer.feed(b"\r\n")
    assert piece == wrong


def test_blank_lines_between_packets_are_no_pieces():
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n" + GOOD + b"\r\n") == [GOOD.rstrip(b"\r\n")]
    assert framer.pending == 0


def test_a_packet_without_an_end_is_cut_at_the_longest_a_packet_can_be():
    # '##0010' then megabytes without CR, LF or '##': the buffer must not grow with them.
    framer = StreamFramer()
    pieces = []
    for _ in range(100):
        pieces += framer.feed(b"##0010" + b"x" * 9_994 if not pieces else b"x" * 10_000)
        assert framer.pending <= MAX_PACKET_BYTES
    assert pieces and all(len(p) <= MAX_PACKET_BYTES for p in pieces)
    assert all(isinstance(f, DecodeFailure) for p in pieces for f in decode_payload(p))
