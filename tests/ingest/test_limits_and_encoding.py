"""Issue 16 below the service: oversized messages and bounded dead letters (processor, store),
and the per-logger text encoding (configuration, wiring, processor)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ingest.archive import PREFIX_BYTES, ArchivedMessage, to_us
from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy, MessageProcessor
from ingest.registry import Meter, Outlet, Registry
from ingest.store import DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, list_dead_letters, record_batch
from nonsite.config.model import Config, IngestSection, OutletConfig
from nonsite.wiring import build_registry
from tests.ingest.hj212.frames import packet

MN_UTF8, MN_GBK, MN_METERS = "MN-UTF8", "MN-GBK", "MN-METERS"
WHEN = to_us(datetime(2026, 11, 21, tzinfo=UTC))


def registry(default: str = "utf-8") -> Registry:
    return Registry(
        [
            Outlet("E1", "DA001", MN_UTF8, None, "gas"),
            Outlet("E1", "DA002", MN_GBK, None, "gas", encoding="gbk"),
        ],
        [Meter("E1", "LINE", "production", mn=MN_METERS, code="d20405")],
        encoding=default,
    )


def processor(default: str = "utf-8", **policy: int) -> MessageProcessor:
    router = TopicRouter([("hj212", "hj212/+"), ("power", "power/+")])
    return MessageProcessor(registry(default), router, IngestPolicy(check_pw=False, **policy))


def gbk_upload(mn: str) -> bytes:
    seg = (
        f"QN=20261121080000001;ST=31;CN=2011;PW=123456;MN={mn};Flag=4;"
        "CP=&&DataTime=20261121080000;EntName=杭州滨江热电有限公司;a21026-Rtd=12.5,a21026-Flag=N&&"
    )
    return packet(seg, encoding="gbk")


def message(payload: bytes, mn: str = MN_UTF8, seq: int = 1, **kw: object) -> ArchivedMessage:
    return ArchivedMessage(seq, WHEN, f"hj212/{mn}", payload, **kw)  # type: ignore[arg-type]


# -- oversized messages and bounded dead letters -------------------------------------------


def test_a_truncated_archive_row_is_an_oversize_dead_letter_with_the_whole_size_and_digest():
    whole = b"##" + b"x" * 3_000_000
    sha = hashlib.sha256(whole).digest()
    row = message(whole[:PREFIX_BYTES], full_size=len(whole), full_sha256=sha)
    done = processor().process([row])
    [letter] = done.dead_letters
    assert letter.reason == "oversize_payload"
    assert letter.detail == f"{len(whole)} bytes, the limit is {256 * 1024}"
    assert (letter.payload, letter.full_size, letter.full_sha256) == (row.payload, len(whole), sha)
    # Even when the limit has been raised since: the archive has only its start.
    assert processor(max_payload_bytes=10**9).process([row]).dead_letters[0].reason == (
        "oversize_payload"
    )


def test_a_whole_row_above_a_lowered_limit_is_oversize_too():
    done = processor(max_payload_bytes=1000).process([message(b"y" * 5000)])
    [letter] = done.dead_letters
    assert letter.reason == "oversize_payload" and letter.full_size is None


def test_stored_dead_letters_are_bounded_and_say_what_was_cut(engine):
    t = datetime(2026, 11, 21, 8, tzinfo=UTC)
    small = DeadLetter(1, t, "hj212/A", "crc_mismatch", "d", b"##0001x0000")
    long = DeadLetter(2, t, "power/G", "schema_error", "e" * 3000, b"{" + b"z" * 200_000)
    prefix = b"##" + b"x" * (PREFIX_BYTES - 2)
    cut = DeadLetter(
        3, t, "hj212/A", "oversize_payload", "3000000 bytes, the limit is 262144", prefix,
        full_size=3_000_000, full_sha256=b"\x01" * 32,
    )  # fmt: skip
    with engine.begin() as conn:
        record_batch(conn, "ingest", 3, [small, long, cut])
    stored = {d.archive_seq: d for d in list_dead_letters(engine)}
    assert (stored[1].payload, stored[1].detail) == (small.payload, "d")  # small: exact
    assert stored[2].payload == long.payload[:DEAD_LETTER_PAYLOAD_BYTES]
    assert len(stored[2].detail) == 2000
    sha = hashlib.sha256(long.payload).hexdigest()
    assert stored[2].detail.endswith(
        f"(payload 200001 bytes, SHA-256 {sha}; its first 4096 bytes are kept)"
    )
    assert stored[3].payload == prefix
    assert stored[3].detail == (
        "3000000 bytes, the limit is 262144 (payload 3000000 bytes, SHA-256 "
        f"{'01' * 32}; its first 4096 bytes are kept)"
    )


# -- text encoding -------------------------------------------------------------------------


def test_a_gbk_packet_from_a_logger_set_to_gbk_is_used():
    done = processor().process([message(gbk_upload(MN_GBK), MN_GBK)])
    assert done.dead_letters == []
    [m] = done.readings.measurements
    assert (m.outlet_id, m.factor, m.value) == ("DA002", "a21026", 12.5)


def test_a_gbk_packet_from_a_utf8_logger_names_the_setting_to_change():
    [letter] = processor().process([message(gbk_upload(MN_UTF8))]).dead_letters
    assert letter.reason == "not_utf8"
    assert letter.payload == gbk_upload(MN_UTF8).rstrip(b"\r\n")  # the bytes as received
    assert letter.mn == MN_UTF8
    assert letter.detail.endswith(
        "; it reads as GBK text; the data logger's encoding is utf-8: "
        'set encoding = "gbk" on outlet DA001'
    )


def test_loggers_no_outlet_has_use_the_ingest_default():
    [letter] = processor().process([message(gbk_upload(MN_METERS), MN_METERS)]).dead_letters
    assert letter.reason == "not_utf8"
    assert 'set encoding = "gbk" in [ingest] (for loggers no outlet has)' in letter.detail
    # With [ingest] encoding = "gbk" the packet decodes (and then is judged as a meters'
    # logger's: no configured meter code in it).
    [letter] = processor("gbk").process([message(gbk_upload(MN_METERS), MN_METERS)]).dead_letters
    assert letter.reason == "unknown_code"


def test_an_invalid_gbk_packet_from_a_gbk_logger_is_bad_encoding():
    bad = gbk_upload(MN_GBK)
    cut = bad.index("杭".encode("gbk"))
    seg = bad[6:-6][: cut - 6] + b"\xff\xff" + bad[cut + 2 : -6]
    from ingest.hj212.crc import crc_hj212

    data = f"##{len(seg):04d}".encode() + seg + f"{crc_hj212(seg):04X}".encode()
    [letter] = processor().process([message(data, MN_GBK)]).dead_letters
    assert letter.reason == "bad_encoding"
    assert "not valid gbk" in letter.detail and "encoding is gbk" in letter.detail


def test_the_encoding_settings_are_checked_and_carried_to_the_registry():
    assert IngestSection().encoding == "utf-8"
    assert IngestSection(encoding="GBK").encoding == "gbk"
    with pytest.raises(ValidationError, match="unknown encoding 'gbkk'; use one of utf-8, gbk"):
        IngestSection(encoding="gbkk")
    base = {"id": "DA001", "kind": "gas", "mn": "M1"}
    assert OutletConfig(**base).encoding is None
    with pytest.raises(ValidationError, match="keeps ASCII as ASCII"):
        OutletConfig(**base, encoding="utf-16")
    config = Config.model_validate(
        {
            "ingest": {"encoding": "gb18030"},
            "enterprises": [
                {
                    "id": "E1",
                    "name": "e",
                    "outlets": [
                        {**base, "encoding": "cp936"},
                        {"id": "DA002", "kind": "gas", "mn": "M2"},
                    ],
                }
            ],
        }
    )
    reg = build_registry(config)
    assert reg.encoding_of("M1") == "gbk"  # its own, canonical
    assert reg.encoding_of("M2") == "gb18030"  # the [ingest] default
    assert reg.encoding_of("M9") == "gb18030" == reg.encoding_of(None)
