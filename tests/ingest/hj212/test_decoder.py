from datetime import datetime

import pytest

from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import LENIENT, DecodeFailure, DecodePolicy, decode_frame, decode_payload
from ingest.hj212.errors import DecodeErrorCode, Hj212DecodeError
from tests.ingest.hj212.frames import SEG_2011, packet


def error_of(data: bytes, policy: DecodePolicy | None = None) -> DecodeErrorCode:
    with pytest.raises(Hj212DecodeError) as exc:
        decode_frame(data, policy or DecodePolicy())
    return exc.value.code


def test_typical_2017_upload():
    f = decode_frame(packet(SEG_2011))
    assert (f.qn, f.st, f.cn, f.pw, f.mn) == (
        "20261121080000123",
        "31",
        "2011",
        "123456",
        "010000A8900016F000169DC0",
    )
    assert f.flag == 5 and f.version == "2017" and f.ack_requested and not f.split
    assert f.data_time == datetime(2026, 11, 21, 8, 0, tzinfo=CHINA_TZ)
    assert f.data_time.utcoffset().total_seconds() == 8 * 3600
    assert f.pollutants["a21026"] == {"Rtd": 12.3, "Flag": "N"}
    assert f.crc_variant == "hj212"


@pytest.mark.parametrize(
    ("flag", "version"),
    [(None, "2005"), (0, "2005"), (3, "2005"), (4, "2017"), (7, "2017"), (8, "2025"), (9, "2025")],
)
def test_version_from_flag_bits(flag, version):
    seg = SEG_2011.replace(";Flag=5", "" if flag is None else f";Flag={flag}")
    if flag is not None and flag & 2:
        seg = seg.replace(";CP=", ";PNUM=2;PNO=1;CP=")
    assert decode_frame(packet(seg)).version == version


def test_unknown_version_bits_are_rejected():
    assert (
        error_of(packet(SEG_2011.replace("Flag=5", "Flag=12")))
        == DecodeErrorCode.UNSUPPORTED_VERSION
    )


@pytest.mark.parametrize("flag", ["256", "-1", "x", "5.0", ""])
def test_bad_flag(flag):
    assert error_of(packet(SEG_2011.replace("Flag=5", f"Flag={flag}"))) == DecodeErrorCode.BAD_FLAG


def test_fields_in_any_order_and_uppercase_flag_is_unknown():
    seg = "ST=31;CN=2011;QN=20261121080000123;MN=AB;PW=1;FLAG=0;CP=&&DataTime=20261121080000&&"
    f = decode_frame(packet(seg))
    assert f.qn == "20261121080000123" and f.flag is None and f.version == "2005"
    assert any("FLAG" in w for w in f.warnings)


@pytest.mark.parametrize("missing", ["ST", "CN", "PW", "MN"])
def test_required_fields(missing):
    parts = [p for p in SEG_2011.split(";") if not p.startswith(f"{missing}=")]
    assert error_of(packet(";".join(parts))) == DecodeErrorCode.MISSING_FIELD


def test_empty_mn_and_pw_are_decoded():
    f = decode_frame(
        packet(SEG_2011.replace("PW=123456", "PW=").replace("MN=010000A8900016F000169DC0", "MN="))
    )
    assert f.pw == "" and f.mn == ""


@pytest.mark.parametrize("cn", ["201", "20111", "20a1", ""])
def test_bad_cn(cn):
    assert error_of(packet(SEG_2011.replace("CN=2011", f"CN={cn}"))) == DecodeErrorCode.BAD_CN


def test_split_packet_numbers():
    seg = SEG_2011.replace("Flag=5", "Flag=7").replace(";CP=", ";PNUM=2;PNO=1;CP=")
    f = decode_frame(packet(seg))
    assert f.split and (f.pnum, f.pno) == (2, 1)
    assert error_of(packet(SEG_2011.replace("Flag=5", "Flag=7"))) == DecodeErrorCode.MISSING_FIELD
    bad = SEG_2011.replace("Flag=5", "Flag=7").replace(";CP=", ";PNUM=2;PNO=3;CP=")
    assert error_of(packet(bad)) == DecodeErrorCode.BAD_PACKET_NUMBER
    assert error_of(packet(bad.replace("PNO=3", "PNO=0"))) == DecodeErrorCode.BAD_PACKET_NUMBER


def test_packet_numbers_without_split_bit_are_kept_with_a_warning():
    f = decode_frame(packet(SEG_2011.replace(";CP=", ";PNO=2;PNUM=2;CP=")))
    assert (f.pnum, f.pno) == (2, 2)
    assert any("split bit" in w for w in f.warnings)


def test_bad_crc_and_modbus():
    assert error_of(packet(SEG_2011, crc="0000")) == DecodeErrorCode.CRC_MISMATCH
    assert error_of(packet(SEG_2011, crc="FFFF")) == DecodeErrorCode.CRC_MISMATCH
    assert error_of(packet(SEG_2011, crc="12G4")) == DecodeErrorCode.BAD_CRC_FIELD
    assert error_of(packet(SEG_2011, modbus=True)) == DecodeErrorCode.CRC_MODBUS
    accepted = decode_frame(packet(SEG_2011, modbus=True), DecodePolicy(accept_modbus_crc=True))
    assert accepted.crc_variant == "modbus"


def test_modbus_failure_is_tagged():
    [failure] = list(decode_payload(packet(SEG_2011, modbus=True)))
    assert isinstance(failure, DecodeFailure)
    assert failure.code == DecodeErrorCode.CRC_MODBUS and failure.crc_variant == "modbus"


def test_lowercase_crc_is_accepted():
    data = packet(SEG_2011)
    lower = data[:-6] + data[-6:-2].lower() + b"\r\n"
    assert decode_frame(lower).crc == data[-6:-2].decode()


def test_segment_over_1024_bytes():
    seg = SEG_2011.replace(
        "CP=&&", "CP=&&" + ";".join(f"a{i:05d}-Rtd=1.0" for i in range(80)) + ";"
    )
    assert len(seg.encode()) > 1024
    assert error_of(packet(seg)) == DecodeErrorCode.SEGMENT_TOO_LONG
    assert len(decode_frame(packet(seg), LENIENT).pollutants) == 82


def test_not_utf8():
    data = packet(SEG_2011.replace("MN=010000A8900016F000169DC0", "MN=AB"))
    seg = data[6:-6].replace(b"MN=AB", b"MN=\xff\xfe")
    assert error_of(packet_bytes(seg)) == DecodeErrorCode.NOT_UTF8


def packet_bytes(seg: bytes) -> bytes:
    from ingest.hj212.crc import crc_hj212

    return b"##%04d%s%04X\r\n" % (len(seg), seg, crc_hj212(seg))


@pytest.mark.parametrize(
    ("cp", "code"),
    [
        ("DataTime=20261121080000;a21026-Rtd=abc", DecodeErrorCode.BAD_VALUE),
        ("DataTime=20261121080000;a21026-Rtd=", DecodeErrorCode.BAD_VALUE),
        ("DataTime=20261121080000;a21026-Rtd=nan", DecodeErrorCode.BAD_VALUE),
        ("DataTime=20261121080000;a21026-Rtd=1_0", DecodeErrorCode.BAD_VALUE),
        ("DataTime=2026112108000", DecodeErrorCode.BAD_TIME),
        ("DataTime=20261321080000", DecodeErrorCode.BAD_TIME),
        ("DataTime=20261121080000;a21026-SampleTime=2026", DecodeErrorCode.BAD_TIME),
        ("DataTime=20261121080000;a21026", DecodeErrorCode.BAD_CP),
        ("DataTime=20261121080000;i11001-Info=//open", DecodeErrorCode.BAD_CP),
        ("QnRtn=one", DecodeErrorCode.BAD_VALUE),
        ("DataTime=20261121080000;SB1-RS=x", DecodeErrorCode.BAD_VALUE),
    ],
)
def test_cp_value_errors(cp, code):
    seg = f"QN=20261121080000123;ST=31;CN=2011;PW=1;MN=A;Flag=4;CP=&&{cp}&&"
    assert error_of(packet(seg)) == code


def test_cp_not_closed_or_missing():
    assert (
        error_of(packet("ST=31;CN=2011;PW=1;MN=A;CP=&&DataTime=20261121080000"))
        == DecodeErrorCode.BAD_CP
    )
    assert error_of(packet("ST=31;CN=2011;PW=1;MN=A;CP=DataTime=1")) == DecodeErrorCode.BAD_CP
    assert error_of(packet("ST=31;CN=2011;PW=1;MN=A")) == DecodeErrorCode.MISSING_FIELD
    assert error_of(packet("ST=31;CN=2011;PW=1;MN=A;CP=&&&&x")) == DecodeErrorCode.BAD_CP


def test_cp_field_types_and_every_suffix():
    cp = (
        "DataTime=20261121080000;RestartTime=20261121070000;QnRtn=1;RtdInterval=30;PolId=w01018;"
        "a21026-Rtd=1.5,a21026-Avg=2,a21026-Min=-1.25,a21026-Max=3.5,a21026-Cou=1000,"
        "a21026-ZsRtd=1.6,a21026-ZsAvg=2.1,a21026-ZsMin=1.1,a21026-ZsMax=3.6,a21026-Flag=N,"
        "a21026-EFlag=A01,a21026-SampleTime=20261121075500;SB1-RS=1;SB1-RT=23.5;"
        "i11001-Info=//清洗;管路,完成//;i12001-Info=2;a21026-i22004-Info=1;Flag=N"
    )
    f = decode_frame(packet(f"QN=20261121080000123;ST=31;CN=2011;PW=1;MN=A;Flag=4;CP=&&{cp}&&"))
    p = f.pollutants["a21026"]
    assert p["Rtd"] == 1.5 and p["Avg"] == 2.0 and p["Min"] == -1.25 and p["Cou"] == 1000.0
    assert p["ZsRtd"] == 1.6 and p["ZsMax"] == 3.6 and p["Flag"] == "N" and p["EFlag"] == "A01"
    assert p["SampleTime"] == datetime(2026, 11, 21, 7, 55, tzinfo=CHINA_TZ)
    assert p["i22004-Info"] == 1.0
    assert f.pollutants["SB1"] == {"RS": 1, "RT": 23.5}
    assert f.pollutants["i11001"]["Info"] == "清洗;管路,完成"
    assert f.pollutants["i12001"]["Info"] == 2.0
    assert f.fields["RestartTime"] == datetime(2026, 11, 21, 7, 0, tzinfo=CHINA_TZ)
    assert (
        f.fields["QnRtn"] == 1 and f.fields["RtdInterval"] == 30 and f.fields["PolId"] == "w01018"
    )
    assert f.fields["Flag"] == "N"


def test_key_with_stray_space_as_printed_in_the_standard():
    f = decode_frame(
        packet("QN=1;ST=31;CN=3020;PW=1;MN=A;Flag=4;CP=&&DataTime=20261121080000;i12003-Info =0&&")
    )
    assert f.pollutants["i12003"]["Info"] == 0.0


def test_2005_codes_are_mapped_to_2017():
    seg = (
        "ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817;"
        "B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803;02-Rtd=5;S01-Rtd=6.5&&"
    )
    f = decode_frame(packet(seg))
    assert set(f.pollutants) == {"w00000", "w01018", "w21003", "a21026", "a19001"}
    assert f.codes_2005 == {
        "w00000": "B01",
        "w01018": "011",
        "w21003": "060",
        "a21026": "02",
        "a19001": "S01",
    }
    assert f.qn is None and f.version == "2005"


def test_datatime_with_milliseconds():
    f = decode_frame(
        packet(SEG_2011.replace("DataTime=20261121080000", "DataTime=20261121080000250"))
    )
    assert f.data_time == datetime(2026, 11, 21, 8, 0, 0, 250000, tzinfo=CHINA_TZ)


def test_decode_frame_rejects_more_than_one_packet():
    with pytest.raises(Hj212DecodeError):
        decode_frame(packet(SEG_2011) + packet(SEG_2011))


def test_header_cache_keeps_each_packets_own_qn_and_checks_repeated_qn():
    a = decode_frame(packet(SEG_2011))
    b = decode_frame(packet(SEG_2011.replace("QN=20261121080000123", "QN=20261121080000999")))
    assert (a.qn, b.qn) == ("20261121080000123", "20261121080000999")
    assert b.warnings == []
    twice = decode_frame(packet(SEG_2011.replace(";Flag=5", ";QN=1;Flag=5")))
    assert twice.qn == "1"
    assert any("QN repeated" in w for w in twice.warnings)
    again = decode_frame(packet(SEG_2011.replace(";Flag=5", ";QN=1;Flag=5")))
    assert again.warnings == twice.warnings  # a cached header does not pile up warnings


def test_header_errors_are_raised_again_on_every_packet():
    bad = SEG_2011.replace("CN=2011", "CN=20x1")
    for _ in range(2):
        assert error_of(packet(bad)) == DecodeErrorCode.BAD_CN


def test_command_frames_without_a_data_time_are_protocol_frames():
    # A vendor's parameter query (CN=5015) and a 2017 request reply carry an empty DataTime:
    # protocol frames, not bad data (issue 18).
    query = packet("QN=20261121080000000;ST=91;CN=5015;PW=123456;MN=M1;Flag=4;CP=&&DataTime=&&")
    frame = decode_frame(query)
    assert frame.cn == "5015"
    assert frame.data_time is None
    assert "DataTime" not in frame.fields
    reply = packet("QN=20261121080000000;ST=91;CN=9011;PW=1;MN=M1;Flag=4;CP=&&QnRtn=1&&")
    assert decode_frame(reply).fields == {"QnRtn": 1}


def test_an_empty_time_in_a_data_upload_is_still_a_missing_data_time():
    frame = decode_frame(
        packet("QN=1;ST=31;CN=2011;PW=1;MN=M1;Flag=5;CP=&&DataTime=;a01012-Rtd=1&&")
    )
    assert frame.data_time is None  # the ingest stage rejects it as missing_data_time
