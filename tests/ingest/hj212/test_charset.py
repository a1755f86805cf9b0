"""Text encodings: bytes are framed and checked as bytes, only the text is decoded, with the
data logger's encoding (chosen by the MN read from the bytes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ingest.hj212.charset import header_mn, readable_as, text_encoding
from ingest.hj212.decoder import DecodeFailure, DecodePolicy, decode_frame, decode_payload
from ingest.hj212.errors import DecodeErrorCode
from ingest.hj212.model import Hj212Frame
from tests.ingest.hj212.frames import packet

MN = "33010000A8900016F0000202"
LOG = (
    f"QN=20261121080000002;ST=31;CN=3020;PW=123456;MN={MN};Flag=4;"
    "CP=&&DataTime=20261121080000;PolId=a21026;i11001-Info=//现场端信息：清洗管路;已完成//&&"
)
UPLOAD = (
    f"QN=20261121080000001;ST=31;CN=2011;PW=123456;MN={MN};Flag=4;"
    "CP=&&DataTime=20261121080000;EntName=杭州滨江热电有限公司;a21026-Rtd=12.5,a21026-Flag=N&&"
)


def only_gbk(mn: str | None) -> str:
    assert mn == MN
    return "gbk"


def test_a_gbk_packet_decodes_with_its_loggers_encoding_and_keeps_its_chinese_text():
    data = packet(LOG, encoding="gbk") + packet(UPLOAD, encoding="gbk")
    assert int(data[2:6]) == len(LOG.encode("gbk"))  # the length counts the GBK bytes
    log, upload = decode_payload(data, encoding_of=only_gbk)
    assert isinstance(log, Hj212Frame) and isinstance(upload, Hj212Frame)
    assert log.pollutants["i11001"]["Info"] == "现场端信息：清洗管路;已完成"
    assert upload.fields["EntName"] == "杭州滨江热电有限公司"
    assert upload.pollutants["a21026"]["Rtd"] == 12.5
    # The same with the encoding as a policy (nonsite decode's way), without a per-MN lookup.
    assert decode_frame(packet(UPLOAD, encoding="gbk"), DecodePolicy(encoding="gbk")).fields == (
        upload.fields
    )


def test_a_gbk_packet_read_as_utf8_is_not_utf8_and_says_it_reads_as_gbk():
    [failure] = decode_payload(packet(LOG, encoding="gbk"))
    assert isinstance(failure, DecodeFailure)
    assert failure.code == DecodeErrorCode.NOT_UTF8
    assert "it reads as GBK text" in failure.detail
    assert failure.raw == packet(LOG, encoding="gbk").rstrip(b"\r\n")  # the bytes, unchanged


def test_text_that_is_not_valid_in_a_configured_gbk_is_bad_encoding():
    # 䶮 is in GB 18030 but not in GBK.
    seg = UPLOAD.replace("杭州滨江热电有限公司", "䶮")
    [failure] = decode_payload(packet(seg, encoding="gb18030"), encoding_of=only_gbk)
    assert isinstance(failure, DecodeFailure)
    assert failure.code == DecodeErrorCode.BAD_ENCODING
    assert "not valid gbk" in failure.detail and "GB18030" in failure.detail
    [frame] = decode_payload(packet(seg, encoding="gb18030"), encoding_of=lambda _mn: "gb18030")
    assert isinstance(frame, Hj212Frame) and frame.fields["EntName"] == "䶮"


def test_utf8_stays_the_default_and_ascii_packets_need_no_lookup():
    [frame] = decode_payload(packet(LOG))
    assert isinstance(frame, Hj212Frame)
    assert frame.pollutants["i11001"]["Info"] == "现场端信息：清洗管路;已完成"

    def never(_mn: str | None) -> str:
        raise AssertionError("an ASCII packet needs no encoding")

    ascii_seg = UPLOAD.replace("杭州滨江热电有限公司", "HZ")
    [frame] = decode_payload(packet(ascii_seg), encoding_of=never)
    assert isinstance(frame, Hj212Frame) and frame.fields["EntName"] == "HZ"


def test_the_mn_is_read_from_the_bytes_of_the_header():
    assert header_mn(UPLOAD.encode("gbk")) == MN
    assert header_mn(b"MN=FIRST;ST=31;CP=&&MN=inside&&") == "FIRST"
    assert header_mn(b"ST=31;MN=A;MN=B;CP=&&&&") == "B"  # the parser keeps the last one too
    assert header_mn(b"ST=31;CN=2011;CP=&&MN=X&&") is None  # only the header counts
    assert header_mn("ST=31;MN=数采仪;CP=&&&&".encode("gbk")) is None  # not ASCII: no logger's


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("utf-8", "utf-8"),
        ("UTF8", "utf-8"),
        ("GBK", "gbk"),
        ("cp936", "gbk"),
        ("gb18030", "gb18030"),
    ],
)
def test_encoding_names_are_checked_and_made_canonical(name, canonical):
    assert text_encoding(name) == canonical


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("gbkk", "unknown encoding 'gbkk'"),
        ("utf-16", "keeps ASCII as ASCII"),
        ("base64", "keeps ASCII as ASCII"),
        ("rot13", "keeps ASCII as ASCII"),
    ],
)
def test_unusable_encodings_are_refused_with_the_choices(name, says):
    with pytest.raises(ValueError, match="use one of utf-8, gbk, gb18030") as exc:
        text_encoding(name)
    assert says in str(exc.value)


def test_readable_as_names_the_chinese_encoding_that_fits():
    assert readable_as("清洗".encode("gbk")) == "gbk"
    assert readable_as("䶮".encode("gb18030")) == "gb18030"
    assert readable_as(b"\xff\xff") is None


def test_nonsite_decode_takes_an_encoding():
    data = packet(LOG, encoding="gbk") + b"\n"
    run = subprocess.run(
        [sys.executable, "-m", "nonsite", "decode", "--encoding", "GBK"],
        input=data,
        capture_output=True,
        timeout=60,
        check=True,
    )
    [line] = run.stdout.decode().splitlines()
    assert json.loads(line)["cp"]["i11001"]["Info"] == "现场端信息：清洗管路;已完成"
    plain = subprocess.run(
        [sys.executable, "-m", "nonsite", "decode"], input=data, capture_output=True, check=True
    )
    assert json.loads(plain.stdout)["error"] == "not_utf8"
    wrong = subprocess.run(
        [sys.executable, "-m", "nonsite", "decode", "--encoding", "gbkk"],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode == 2 and b"unknown encoding 'gbkk'" in wrong.stderr
