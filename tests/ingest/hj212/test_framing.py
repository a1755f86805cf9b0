from ingest.hj212.errors import DecodeErrorCode
from ingest.hj212.framing import FramingError, RawFrame, split_frames
from tests.ingest.hj212.frames import SEG_2011, packet


def frames(data: bytes):
    return split_frames(data)


def test_one_packet_with_crlf():
    [f] = frames(packet(SEG_2011))
    assert isinstance(f, RawFrame)
    assert f.segment == SEG_2011.encode()
    assert f.declared_length == len(SEG_2011)


def test_lf_only_and_no_tail():
    for tail in ("\n", "", "\r"):
        [f] = frames(packet(SEG_2011, tail=tail))
        assert isinstance(f, RawFrame), tail


def test_several_packets_back_to_back_without_separator():
    data = packet(SEG_2011, tail="") + packet(SEG_2011, tail="") + packet(SEG_2011, tail="\n")
    result = frames(data)
    assert len(result) == 3
    assert all(isinstance(f, RawFrame) for f in result)


def test_resync_after_garbage_between_packets():
    data = packet(SEG_2011) + b"##00x1junk\r\n" + packet(SEG_2011)
    result = frames(data)
    assert [type(r).__name__ for r in result] == ["RawFrame", "FramingError", "RawFrame"]
    assert result[1].code == DecodeErrorCode.BAD_LENGTH_FIELD


def test_length_counts_utf8_bytes():
    segment = SEG_2011.replace("CP=&&", "CP=&&i11001-Info=//清洗管路//;")
    [f] = frames(packet(segment))
    assert isinstance(f, RawFrame)
    assert f.declared_length == len(segment.encode()) > len(segment)


def test_length_counting_characters_is_reported_precisely():
    segment = SEG_2011.replace("CP=&&", "CP=&&i11001-Info=//清洗管路//;")
    [f] = frames(packet(segment, length=len(segment)))
    assert isinstance(f, FramingError)
    assert f.code == DecodeErrorCode.LENGTH_MISMATCH
    assert "counts characters" in f.detail


def test_declared_length_too_short_and_too_long():
    for delta in (-1, 1, 50):
        [f] = frames(packet(SEG_2011, length=len(SEG_2011) + delta))
        assert isinstance(f, FramingError)
        assert f.code == DecodeErrorCode.LENGTH_MISMATCH
        assert f"data segment has {len(SEG_2011)} bytes" in f.detail


def test_truncated_packet():
    [f] = frames(b"##0100QN=1")
    assert isinstance(f, FramingError)
    assert f.code in (DecodeErrorCode.LENGTH_MISMATCH, DecodeErrorCode.TRUNCATED)
    [g] = frames(b"##0100QN")
    assert g.code == DecodeErrorCode.TRUNCATED


def test_no_header_and_empty():
    [f] = frames(b"QN=1;ST=32")
    assert f.code == DecodeErrorCode.NO_HEADER
    [g] = frames(b"  \r\n")
    assert g.code == DecodeErrorCode.EMPTY


def test_leading_bytes_are_skipped_with_a_warning():
    [f] = frames(b"2026-11-21 08:00:00 RX: " + packet(SEG_2011))
    assert isinstance(f, RawFrame)
    assert "skipped 23 bytes" in f.warnings[0]


def test_trailing_bytes_without_header_are_reported_not_dropped():
    result = frames(packet(SEG_2011) + b"leftover")
    assert isinstance(result[0], RawFrame)
    assert result[1].code == DecodeErrorCode.NO_HEADER
    assert result[1].raw == b"leftover"


def test_blanks_before_the_tail_are_tolerated():
    [f] = frames(packet(SEG_2011, tail="  \r\n"))
    assert isinstance(f, RawFrame)
    assert f.crc_field == packet(SEG_2011)[-6:-2]
