"""The stream client (ingest/mqtt/stream_client.py) against a real Mosquitto: many messages per
system call, every one whole, in order and once, and no garbage cycle per message."""

import gc
import time

import pytest

from ingest.mqtt.stream_client import READ_CHUNK
from tests.mqtt_tools import Collector, Publisher, settings, start_source

pytestmark = pytest.mark.integration


def _sized(n: int) -> list[tuple[str, bytes]]:
    """Sizes that put packet boundaries everywhere in a chunk, some inside a length field."""
    return [
        (f"hj212/MN{i % 5}", f"{i:06d};".encode() + b"x" * ((i * 379) % 3000)) for i in range(n)
    ]


def test_a_queued_stream_is_read_many_messages_per_socket_read_each_whole_in_order_once(
    mosquitto,
):
    s = settings(mosquitto.host, mosquitto.port, client_id="chunks")
    first = Collector()
    start_source(s, first).stop()  # the session exists: the broker queues while it is away
    messages = _sized(3000)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(messages)
    pub.close()
    collector = Collector()
    source = start_source(s, collector)
    try:
        received = collector.wait_for(3000)
        time.sleep(0.3)  # nothing more comes: no message twice
        assert collector.payloads == [p for _, p in messages]
        assert [d.topic for d in collector.deliveries] == [t for t, _ in messages]
        # paho alone makes four or five reads per message; here one read carries dozens.
        assert source.socket_reads <= len(received) // 10, source.socket_reads
        assert source.connections == 1  # no packet was misread into a dropped connection
    finally:
        source.stop()


def test_messages_larger_than_a_read_arrive_whole_between_small_ones(mosquitto):
    s = settings(mosquitto.host, mosquitto.port, client_id="large")
    collector = Collector()
    source = start_source(s, collector)
    try:
        messages = [
            ("hj212/BIG", bytes(range(256)) * (3 * READ_CHUNK // 256 + 7)),
            ("hj212/SMALL", b"1"),
            ("hj212/BIG", b"\x00" * (READ_CHUNK - 3)),
            ("hj212/SMALL", b""),
            ("hj212/BIG", b"z" * (READ_CHUNK + 1)),
        ] * 3
        pub = Publisher(mosquitto.host, mosquitto.port)
        pub.publish_all(messages)
        pub.close()
        collector.wait_for(len(messages))
        time.sleep(0.3)
        assert collector.payloads == [p for _, p in messages]
        assert source.connections == 1
    finally:
        source.stop()


def test_receiving_leaves_no_reference_cycles_for_the_collector(mosquitto):
    """paho's per-topic callback search left six objects in a cycle per message, which only
    the cyclic collector frees (its passes are what paused the service under load)."""
    s = settings(mosquitto.host, mosquitto.port, client_id="cycles")
    collector = Collector()
    source = start_source(s, collector)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        gc.collect()
        gc.disable()  # nothing freed behind our back: the count below is all of it
        messages = _sized(2000)
        pub.publish_all(messages)
        assert len(collector.wait_for(2000)) == 2000
        found = gc.collect()
    finally:
        gc.enable()
        pub.close()
        source.stop()
    assert found < 200, f"{found} objects in reference cycles for 2,000 messages"
