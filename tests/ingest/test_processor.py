import json
from datetime import datetime

from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import decode_frame
from tests.ingest.fixtures import MN_GAS, MN_MODBUS, MN_WATER, archived, processor
from tests.ingest.hj212.frames import packet

T = "20261121080000"


def seg(
    mn: str = MN_GAS, cn: str = "2011", flag: int = 5, cp: str | None = None, pw: str = "123456"
) -> str:
    cp = cp if cp is not None else f"DataTime={T};a21026-Rtd=12.5,a21026-ZsRtd=14.1,a21026-Flag=N"
    return f"QN=20261121080000123;ST=31;CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&{cp}&&"


def test_rtd_packet_becomes_measurements_a_logger_event_and_a_reply():
    done = processor().process([archived(1, f"hj212/{MN_GAS}", packet(seg()))])
    [m] = done.readings.measurements
    assert (m.enterprise_id, m.outlet_id, m.factor, m.interval) == ("E1", "DA001", "a21026", "rtd")
    assert (m.value, m.zs, m.flag, m.archive_seq) == (12.5, 14.1, "N", 1)
    assert m.data_time == datetime(2026, 11, 21, 8, tzinfo=CHINA_TZ)
    assert [e.cn for e in done.readings.loggers] == ["2011"]
    [(topic, reply)] = done.replies
    assert topic == f"hj212/{MN_GAS}/reply"
    r = decode_frame(reply)
    assert (r.cn, r.qn, r.mn) == ("9014", "20261121080000123", MN_GAS)
    assert done.outcomes == {"accepted": 1}
    assert done.dead_letters == []


def test_no_reply_without_the_ack_bit_or_when_disabled():
    assert processor().process([archived(1, "hj212/x", packet(seg(flag=4)))]).replies == []
    assert processor(reply_topic="").process([archived(1, "hj212/x", packet(seg()))]).replies == []


def test_minute_and_hour_data_use_avg_and_zsavg():
    cp = (
        f"DataTime={T};a21026-Avg=10,a21026-Min=8,a21026-Max=12,a21026-Cou=0.5,"
        "a21026-ZsAvg=11,a21026-Flag=N"
    )
    for cn, interval in (("2051", "minute"), ("2061", "hour"), ("2031", "day")):
        [m] = (
            processor()
            .process([archived(1, "hj212/x", packet(seg(cn=cn, cp=cp)))])
            .readings.measurements
        )
        assert (m.interval, m.value, m.minimum, m.maximum, m.cou, m.zs) == (
            interval,
            10,
            8,
            12,
            0.5,
            11,
        )


def test_running_state_packets_become_device_states():
    cp = f"DataTime={T};SB1-RS=1;SB2-RS=0;SB1-RT=20.5"
    done = processor().process([archived(1, "hj212/x", packet(seg(cn="2021", cp=cp)))])
    states = {s.device: (s.running_state, s.running_hours) for s in done.readings.device_states}
    assert states == {"SB1": (1, 20.5), "SB2": (0, None)}
    assert done.readings.measurements == []


def test_unknown_mn_wrong_pw_and_missing_datatime_are_dead_letters():
    msgs = [
        archived(1, "hj212/x", packet(seg(mn="NOPE"))),
        archived(2, "hj212/x", packet(seg(pw="000000"))),
        archived(3, "hj212/x", packet(seg(cp="a21026-Rtd=1"))),
    ]
    checked = processor(check_pw=True).process(msgs)
    assert [d.reason for d in checked.dead_letters] == [
        "unknown_mn",
        "wrong_pw",
        "missing_data_time",
    ]
    assert [d.mn for d in checked.dead_letters] == ["NOPE", MN_GAS, MN_GAS]
    assert checked.readings.measurements == []
    # Without PW checking the wrong password is accepted.
    unchecked = processor(check_pw=False).process(msgs)
    assert [d.reason for d in unchecked.dead_letters] == ["unknown_mn", "missing_data_time"]


def test_modbus_crc_is_accepted_only_where_configured():
    done = processor().process(
        [
            archived(1, "hj212/x", packet(seg(mn=MN_GAS), modbus=True)),
            archived(2, "hj212/x", packet(seg(mn=MN_MODBUS), modbus=True)),
        ]
    )
    assert [d.reason for d in done.dead_letters] == ["crc_modbus"]
    assert "accept_modbus_crc" in done.dead_letters[0].detail
    assert [m.outlet_id for m in done.readings.measurements] == ["DA002"]


def test_long_segment_is_accepted_only_where_configured():
    cp = f"DataTime={T};" + ";".join(f"w{i:05d}-Rtd=1.5" for i in range(90))
    done = processor().process(
        [
            archived(1, "hj212/x", packet(seg(mn=MN_GAS, cp=cp))),
            archived(2, "hj212/x", packet(seg(mn=MN_WATER, cp=cp))),
        ]
    )
    assert [d.reason for d in done.dead_letters] == ["segment_too_long"]
    assert len(done.readings.measurements) == 90


def test_payload_with_good_and_bad_packets_is_partial_and_keeps_the_bad_bytes():
    good, bad = packet(seg()), packet(seg(), crc="0000")
    done = processor().process([archived(5, "hj212/x", good + bad + b"junk")])
    assert done.outcomes == {"partial": 1}
    assert [d.reason for d in done.dead_letters] == ["crc_mismatch", "no_header"]
    assert done.dead_letters[0].payload == bad.rstrip(b"\r\n")
    assert done.dead_letters[1].payload == b"junk"
    assert all(d.archive_seq == 5 for d in done.dead_letters)
    assert len(done.readings.measurements) == 1


def test_oversize_and_unknown_topic():
    done = processor(max_payload_bytes=300).process(
        [archived(1, "hj212/x", b"#" * 301), archived(2, "other/x", packet(seg()))]
    )
    assert [d.reason for d in done.dead_letters] == ["oversize_payload", "unknown_topic"]
    assert done.dead_letters[0].payload == b"#" * 301  # kept whole


def test_power_readings_and_power_dead_letters():
    ok = json.dumps(
        {"ts": "2026-11-21T08:00:00+08:00", "p_kw": 30.5, "i_a": [10, 11, 12], "switch": "on"}
    )
    batch = json.dumps(
        [
            {"meter": "E3-M2", "ts": "2026-11-21T08:00:00Z", "p_kw": 3},
            {"meter": "X9", "ts": "2026-11-21T08:00:00Z", "p_kw": 1},
        ]
    )
    done = processor().process(
        [
            archived(1, "power/E3-M1", ok.encode()),
            archived(2, "power/gw", batch.encode()),
            archived(3, "power/E3-M1", b"{not json"),
        ]
    )
    p1, p2 = done.readings.power
    assert (p1.enterprise_id, p1.meter_id, p1.active_power_kw, p1.current_a, p1.switch_on) == (
        "E3",
        "E3-M1",
        30.5,
        (10.0, 11.0, 12.0),
        True,
    )
    assert p2.meter_id == "E3-M2"
    assert [d.reason for d in done.dead_letters] == ["unknown_meter", "bad_json"]
    assert done.outcomes == {"accepted": 1, "partial": 1, "dead_letter": 1}


def test_2005_packet_readings_use_2017_codes():
    s = f"ST=32;CN=2011;PW=1;MN={MN_WATER};CP=&&DataTime={T};011-Rtd=231.0,011-Flag=N;B01-Rtd=3&&"
    done = processor().process([archived(1, "hj212/x", packet(s))])
    assert {m.factor for m in done.readings.measurements} == {"w01018", "w00000"}
    assert done.replies == []  # no Flag: no ack requested


def test_reading_from_an_unconfigured_meter_named_by_the_topic_is_unknown_meter():
    payload = json.dumps({"ts": "2026-11-21T08:00:00+08:00", "p_kw": 3}).encode()
    done = processor().process([archived(1, "power/NOT-CONFIGURED", payload)])
    assert [(d.reason, d.detail) for d in done.dead_letters] == [
        ("unknown_meter", "meter 'NOT-CONFIGURED' is not configured")
    ]
    bad = processor().process([archived(2, "power/NOT-CONFIGURED", b'{"p_kw": 3}')])
    assert [d.reason for d in bad.dead_letters] == ["schema_error"]
