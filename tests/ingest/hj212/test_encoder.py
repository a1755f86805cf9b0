"""Encoder: every packet it writes decodes back to the same content (property tests)."""

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import LENIENT, STRICT, decode_frame
from ingest.hj212.encoder import data_packets, encode_frame, reply_9011, reply_9012, reply_9014
from ingest.hj212.model import Hj212Frame
from ingest.hj212.segment import INTEGER_SUFFIXES, NUMERIC_SUFFIXES
from tests.ingest.hj212.frames import SEG_2011, packet

# Text that may sit in a value: no line breaks, no NUL, no '/' (it would touch the //quotes//).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    max_size=12,
)
PLAIN = st.text(alphabet="ABCDEFabcdef0123456789_.", max_size=24)  # header values
NUMBER = st.floats(min_value=-1e14, max_value=1e14, allow_nan=False).filter(
    lambda x: x == 0 or abs(x) >= 1e-9
)
TIME = st.builds(
    lambda d: d.replace(microsecond=0, tzinfo=CHINA_TZ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
)
CODE = st.from_regex(r"[aw][0-9]{5}", fullmatch=True)


@st.composite
def pollutant_fields(draw):
    fields = {}
    for suffix in draw(st.sets(st.sampled_from(sorted(NUMERIC_SUFFIXES)), max_size=4)):
        fields[suffix] = draw(NUMBER)
    if draw(st.booleans()):
        fields[draw(st.sampled_from(sorted(INTEGER_SUFFIXES)))] = draw(st.integers(0, 10**6))
    if draw(st.booleans()):
        fields["Flag"] = draw(st.sampled_from("NFMSDCTB"))
    if draw(st.booleans()):
        fields["EFlag"] = draw(TEXT)
    if draw(st.booleans()):
        fields["SampleTime"] = draw(TIME)
    if draw(st.booleans()):
        fields["Info"] = draw(TEXT)
    return fields


@st.composite
def frames(draw):
    version_base = draw(st.sampled_from([None, 0, 4, 8]))
    flag = None
    pnum = pno = None
    if version_base is not None:
        split = draw(st.booleans())
        flag = version_base | (2 if split else 0) | draw(st.sampled_from([0, 1]))
        if split:
            pnum = draw(st.integers(1, 9999))
            pno = draw(st.integers(1, pnum))
    fields = {"DataTime": draw(TIME)}
    if draw(st.booleans()):
        fields["QnRtn"] = draw(st.integers(1, 100))
    if draw(st.booleans()):
        fields["PolId"] = draw(TEXT)
    return Hj212Frame(
        st=draw(st.from_regex(r"[0-9A-Z]{2}", fullmatch=True)),
        cn=draw(st.from_regex(r"[0-9]{4}", fullmatch=True)),
        pw=draw(PLAIN),
        mn=draw(PLAIN),
        qn=draw(st.none() | st.from_regex(r"[0-9]{17}", fullmatch=True)),
        flag=flag,
        version={None: "2005", 0: "2005", 4: "2017", 8: "2025"}[version_base],  # type: ignore[index]
        pnum=pnum,
        pno=pno,
        fields=fields,
        pollutants=draw(st.dictionaries(CODE, pollutant_fields(), max_size=6)),
    )


def same_content(a: Hj212Frame, b: Hj212Frame) -> None:
    assert (a.st, a.cn, a.pw, a.mn, a.qn, a.flag, a.version, a.pnum, a.pno) == (
        b.st,
        b.cn,
        b.pw,
        b.mn,
        b.qn,
        b.flag,
        b.version,
        b.pnum,
        b.pno,
    )
    assert a.fields == b.fields
    assert {k: v for k, v in a.pollutants.items() if v} == b.pollutants


@settings(max_examples=400, deadline=None)
@given(frames(), st.sampled_from(["hj212", "modbus"]))
def test_encode_decode_round_trip(frame, variant):
    data = encode_frame(frame, crc_variant=variant)
    decoded = decode_frame(data, LENIENT)
    same_content(frame, decoded)
    assert decoded.crc_variant == variant
    assert decoded.length == len(data) - 12  # '##' + 4 digits, 4 CRC digits, CRLF


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(CODE, pollutant_fields(), min_size=1, max_size=60),
    TIME,
    st.sampled_from(["2017", "2025"]),
)
def test_data_packets_split_within_the_standard_limits_and_reassemble(pollutants, when, version):
    packets = data_packets(
        st="31",
        cn="2051",
        pw="123456",
        mn="010000A8900016F000169DC0",
        data_time=when,
        pollutants=pollutants,
        version=version,
    )
    decoded = [decode_frame(p, STRICT) for p in packets]  # STRICT: every part <= 1024 bytes
    assert all(d.data_time == when for d in decoded)
    if len(packets) > 1:
        assert [d.pno for d in decoded] == list(range(1, len(packets) + 1))
        assert {d.pnum for d in decoded} == {len(packets)}
        assert all(d.split for d in decoded)
        assert len({d.qn for d in decoded}) == len(packets)
    merged = {}
    for d in decoded:
        assert not set(d.pollutants) & set(merged), "a factor group was cut in two"
        merged.update(d.pollutants)
    assert merged == {k: v for k, v in pollutants.items() if v}


def test_replies_echo_the_request():
    upload = decode_frame(packet(SEG_2011))
    r14 = decode_frame(reply_9014(upload))
    assert (r14.st, r14.cn, r14.qn, r14.pw, r14.mn, r14.flag) == (
        "91",
        "9014",
        upload.qn,
        upload.pw,
        upload.mn,
        4,
    )
    assert r14.fields == {} and r14.pollutants == {}
    r11 = decode_frame(reply_9011(upload, 1))
    assert (r11.cn, r11.qn, r11.fields) == ("9011", upload.qn, {"QnRtn": 1})
    r12 = decode_frame(reply_9012(upload, 100))
    assert (r12.cn, r12.fields) == ("9012", {"ExeRtn": 100})


def test_times_are_written_to_the_second_as_the_standard_prints_them():
    when = datetime(2026, 11, 21, 8, 0, 5, 289000, tzinfo=CHINA_TZ)
    [p] = data_packets(st="31", cn="2011", pw="1", mn="A", data_time=when, pollutants={})
    assert b"DataTime=20261121080005;" in p or b"DataTime=20261121080005&&" in p
    assert b"QN=20261121080005289;" in p  # QN keeps its milliseconds


def test_2025_reply_keeps_the_version():
    upload = decode_frame(packet(SEG_2011.replace("Flag=5", "Flag=9")))
    assert decode_frame(reply_9014(upload)).flag == 8
