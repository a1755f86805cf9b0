"""A sender speaks only for itself: the topic's sender level decides which MN or meter a
message may carry (tests/nonsite/test_attribution.py runs the same through Mosquitto)."""

from __future__ import annotations

import json

from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy, MessageProcessor
from ingest.registry import Gateway, Meter, Outlet, Registry
from tests.ingest.fixtures import archived
from tests.ingest.test_processor import packet, seg

MN_A = "33010000A8900016F0000801"
MN_B = "33010000A8900016F0000802"
MN_C = "33010000A8900016F0000803"
REGISTRY = Registry(
    outlets=[
        Outlet("EA", "DA001", MN_A, "pw-a", "gas"),
        Outlet("EB", "DA001", MN_B, "pw-b", "gas"),
        Outlet("EC", "DA001", MN_C, "pw-c", "gas"),
    ],
    meters=[Meter("EA", "EA-M1", "production"), Meter("EB", "EB-M1", "production")],
    gateways=[Gateway("GW1", mns=frozenset({MN_B}), meters=frozenset({"EB-M1"}))],
)


def processor(filters: tuple[str, str] = ("hj212/+", "power/+")) -> MessageProcessor:
    router = TopicRouter([("hj212", filters[0]), ("power", filters[1])])
    return MessageProcessor(REGISTRY, router, IngestPolicy(check_pw=True))


def frame(mn: str, pw: str) -> bytes:
    return packet(seg(mn=mn, pw=pw))


def reading(meter: str) -> bytes:
    return json.dumps({"meter": meter, "ts": "2026-11-21T08:00:00+08:00", "p_kw": 5}).encode()


def test_a_packet_for_another_mn_is_refused_whatever_its_pw():
    done = processor().process(
        [
            archived(1, f"hj212/{MN_A}", frame(MN_A, "pw-a")),
            archived(2, f"hj212/{MN_A}", frame(MN_B, "pw-b")),  # the victim's right PW
            archived(3, f"hj212/{MN_A}", frame(MN_B, "wrong")),
        ]
    )
    assert done.frames_accepted == 1
    assert {m.enterprise_id for m in done.readings.measurements} == {"EA"}
    assert [(d.reason, d.mn, d.archive_seq) for d in done.dead_letters] == [
        ("foreign_mn", MN_B, 2),
        ("foreign_mn", MN_B, 3),
    ]
    assert MN_A in done.dead_letters[0].detail and MN_B in done.dead_letters[0].detail


def test_a_gateway_speaks_for_the_mns_it_lists_only():
    done = processor().process(
        [
            archived(1, "hj212/GW1", frame(MN_B, "pw-b")),
            archived(2, "hj212/GW1", frame(MN_C, "pw-c")),
        ]
    )
    assert {m.enterprise_id for m in done.readings.measurements} == {"EB"}
    assert [(d.reason, d.mn) for d in done.dead_letters] == [("foreign_mn", MN_C)]


def test_the_pw_is_still_checked_for_the_senders_own_mn():
    done = processor().process([archived(1, f"hj212/{MN_A}", frame(MN_A, "pw-b"))])
    assert [d.reason for d in done.dead_letters] == ["wrong_pw"]


def test_the_reply_goes_to_the_senders_own_topic():
    done = processor().process([archived(1, "hj212/GW1", frame(MN_B, "pw-b"))])
    assert [topic for topic, _ in done.replies] == ["hj212/GW1/reply"]


def test_the_sender_is_the_level_at_the_filters_plus():
    done = processor(("site/+/hj212", "site/+/power")).process(
        [
            archived(1, f"site/{MN_A}/hj212", frame(MN_A, "pw-a")),
            archived(2, f"site/{MN_A}/hj212", frame(MN_B, "pw-b")),
            archived(3, "site/EA-M1/power", reading("EA-M1")),
        ]
    )
    assert done.frames_accepted == 2
    assert [d.reason for d in done.dead_letters] == ["foreign_mn"]


def test_a_power_reading_for_another_meter_is_refused():
    batch = json.dumps([json.loads(reading("EA-M1")), json.loads(reading("EB-M1"))]).encode()
    done = processor().process(
        [
            archived(1, "power/EA-M1", reading("EB-M1")),  # a meter's topic names its meter
            archived(2, "power/GW1", batch),  # the gateway lists EB-M1 only
            archived(3, "power/ANYONE", reading("EA-M1")),  # no such sender
        ]
    )
    assert [p.meter_id for p in done.readings.power] == ["EB-M1"]
    assert [d.reason for d in done.dead_letters] == [
        "meter_mismatch",
        "foreign_meter",
        "foreign_meter",
    ]
