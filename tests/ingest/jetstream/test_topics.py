"""The stream read by topic (a web node's charts, data quality and sources heard), against a
real NATS JetStream server: the range by the stream's clock and the receive-time header, the
topics of the wanted sources only, a gateway's payloads by the MN they name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.archive import IncomingMessage
from ingest.archive_topics import Wanted, event_filter
from ingest.jetstream.partitions import Partitioner
from ingest.jetstream.publisher import JetStreamLog
from ingest.jetstream.stream import StreamSettings
from ingest.jetstream.topics import StreamTopics
from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy
from ingest.registry import Gateway, Meter, Outlet, Registry
from nonsite.cluster.nats_servers import NatsCluster
from tests.service_process import gas_packet

pytestmark = pytest.mark.integration

PW = "123456"
SETTINGS = StreamSettings(name="T_RAW", subject_prefix="t.raw", partitions=4, replicas=1)
REGISTRY = Registry(
    [Outlet(f"E{i}", "DA001", f"MN000{i}", PW, "gas") for i in range(1, 7)],
    [Meter("E7", "m7", "production")],
    gateways=[Gateway("G1", mns=frozenset({"MN0005"}))],
)
PARTITIONER = Partitioner.of(REGISTRY, SETTINGS.partitions)
H0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def router() -> TopicRouter:
    return TopicRouter([("hj212", "hj212/+"), ("power", "power/+")])


def sender_of(topic: str) -> str:
    return topic.split("/")[1]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats", 1)
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture
def stream(nats_server: NatsCluster) -> Iterator[JetStreamLog]:
    log = JetStreamLog(nats_server.urls, SETTINGS, PARTITIONER, sender_of, ack_timeout_s=5.0)
    log.start()
    yield log
    log.close()


@pytest.fixture
def topics(nats_server: NatsCluster, stream: JetStreamLog) -> Iterator[StreamTopics]:
    # Margins of a fraction of a second: the test's phases are a second apart.
    reader = StreamTopics(
        nats_server.urls,
        SETTINGS,
        PARTITIONER,
        REGISTRY,
        router,
        IngestPolicy(),
        clock_margin_s=0.3,
        late_store_s=0.3,
    )
    reader.start()
    yield reader
    reader.close()


def now_us() -> int:
    return time.time_ns() // 1000


def packet(mn: str, minute: int, so2: float) -> bytes:
    return gas_packet(mn, PW, H0 + timedelta(minutes=minute), so2)


def test_a_range_is_read_by_stream_time_receive_time_and_the_wanted_sources_topics(
    stream: JetStreamLog, topics: StreamTopics
) -> None:
    before = now_us()
    assert topics.messages(Wanted(mns=frozenset({"MN0001"})), before - 10**6, before) == []
    b = before + 1_200_000  # phase B's receive times, a little after it is stored
    # Phase A: stored a second before the range, though its header says it was received in it
    # (the read starts by the stream's clock, so it is not read at all).
    stream.append([IncomingMessage(b + 100_000, "hj212/MN0001", packet("MN0001", 0, 11.0))])
    time.sleep(1.2)
    b = now_us()
    stream.append(
        [
            IncomingMessage(b, "hj212/MN0001", packet("MN0001", 10, 21.0)),
            IncomingMessage(b + 1, "hj212/MN0002", packet("MN0002", 10, 99.0)),
            IncomingMessage(b + 2, "hj212/G1", b"junk " + packet("MN0005", 10, 55.0)),
            IncomingMessage(b + 3, "hj212/G1", packet("MN0009", 10, 1.0)),  # not MN0005's
            IncomingMessage(b + 4, "hj212/MN0001", b"x" * (SETTINGS.max_payload_bytes + 1)),
            IncomingMessage(b + 5, "hj212/MN0001", packet("MN0001", 20, 22.0)),
            IncomingMessage(b - 200_000, "hj212/MN0001", packet("MN0001", 30, 5.0)),  # early
        ]
    )
    time.sleep(1.2)
    # Phase C: received in the range by its header, stored after the range's end and the
    # margin: the read has stopped before it.
    stream.append([IncomingMessage(b + 6, "hj212/MN0001", packet("MN0001", 40, 33.0))])
    until = b + 500_000

    one = topics.messages(Wanted(mns=frozenset({"MN0001"})), b - 50_000, until)
    assert [(m.topic, m.received_us) for m in one] == [("hj212/MN0001", b), ("hj212/MN0001", b + 5)]
    assert one[0].seq < one[1].seq
    assert topics.partitions_of(Wanted(mns=frozenset({"MN0001"}))) == {
        PARTITIONER.partition("MN0001")
    }
    measurements, _ = topics.decode(one)
    so2 = [m.value for m in measurements if m.factor == "a21026" and m.interval == "minute"]
    assert so2 == [22.0, 24.0]  # 21 and 22 with gas_packet's wobble (+1, +2)
    assert {m.enterprise_id for m in measurements} == {"E1"}

    both = topics.messages(Wanted(mns=frozenset({"MN0001", "MN0002"})), b - 50_000, until)
    assert sorted(m.topic for m in both) == ["hj212/MN0001", "hj212/MN0001", "hj212/MN0002"]
    via_gateway = topics.messages(Wanted(mns=frozenset({"MN0005"})), b - 50_000, until)
    assert [(m.topic, m.received_us) for m in via_gateway] == [("hj212/G1", b + 2)]
    fleet = Wanted(mns=frozenset(o.mn for o in REGISTRY.outlets))
    assert topics.partitions_of(fleet) == set(range(SETTINGS.partitions))  # one wildcard read
    everyone = topics.messages(fleet, b - 50_000, until)
    # In the stream's order: a batch is stored as a pack per partition, each in receive order.
    assert sorted(m.received_us - b for m in everyone) == [0, 1, 2, 5]
    assert [m.seq for m in everyone] == sorted(m.seq for m in everyone)
    mn0001 = [m.received_us - b for m in everyone if m.topic == "hj212/MN0001"]
    assert mn0001 == [0, 5]
    # The caller's filter of payloads (the series' event times) applies too.
    minute_20 = int((H0 + timedelta(minutes=20)).timestamp())
    kept = topics.messages(
        Wanted(mns=frozenset({"MN0001"})),
        b - 50_000,
        until,
        event_filter((minute_20, minute_20 + 60), (minute_20, minute_20 + 60)),
    )
    assert [m.received_us for m in kept] == [b + 5]


def test_sources_heard_by_topic_by_a_gateways_payload_and_later_arrivals(
    stream: JetStreamLog, topics: StreamTopics
) -> None:
    assert topics.heard(budget_s=0.0) is None  # no time to look: not known yet
    assert topics.heard() == (frozenset(), frozenset())  # an empty stream
    t = now_us()
    stream.append(
        [
            IncomingMessage(t, "hj212/MN0001", packet("MN0001", 0, 1.0)),
            IncomingMessage(t, "hj212/MN0002", b"not even a frame"),  # heard all the same
            IncomingMessage(t, "hj212/G1", packet("MN0009", 0, 1.0)),  # names no source of G1
            IncomingMessage(t, "power/m7", b'{"meter": "m7"}'),
            IncomingMessage(t, "hj212/MN0003", packet("MN0003", 0, 1.0)),
        ]
    )
    known = topics.heard()
    assert known is not None
    mns, meters = known
    assert mns >= {"MN0001", "MN0002", "MN0003"}
    assert not mns & {"MN0004", "MN0005", "MN0006"}
    assert meters == {"m7"}
    stream.append(
        [
            IncomingMessage(t, "hj212/G1", packet("MN0005", 0, 1.0)),
            IncomingMessage(t, "hj212/MN0006", packet("MN0006", 0, 1.0)),
        ]
    )
    known = topics.heard()
    assert known is not None
    assert {"MN0005", "MN0006"} <= known[0]
    assert "MN0004" not in known[0]
