"""The TCP gateway over real sockets and a real Mosquitto: what it publishes, what it answers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from ingest.hj212.decoder import decode_frame
from ingest.registry import Gateway, Outlet, Registry
from ingest.tcp.runtime import GatewayRuntime
from ingest.tcp.settings import GatewaySettings
from nonsite.embedded_broker import free_port
from tests.brokers import Mosquitto
from tests.ingest.hj212.frames import packet
from tests.mqtt_tools import Collector, Publisher, settings, start_source

MN_A, MN_B, MN_C = "MN0000000000000A", "MN0000000000000B", "MN0000000000000C"
PW = {MN_A: "pw-a", MN_B: "pw-b", MN_C: "pw-c"}


def upload(mn: str, minute: int = 0, *, ack: bool = True, pw: str | None = None, cn: str = "2051"):
    qn = f"202611210{minute:02d}000000"[:17].ljust(17, "0")
    seg = (
        f"QN={qn};ST=31;CN={cn};PW={pw or PW[mn]};MN={mn};Flag={5 if ack else 4};"
        f"CP=&&DataTime=2026112108{minute:02d}00;a21026-Avg=12.3,a21026-Flag=N&&"
    )
    return packet(seg)


def registry() -> Registry:
    outlets = [Outlet("E", f"o{mn[-1]}", mn, PW[mn], "gas") for mn in PW]
    # A gateway-type logger: one connection carries MN_B and MN_C.
    return Registry(outlets, gateways=[Gateway("GW1", mns=frozenset({MN_B, MN_C}))])


class Logger:
    """A data logger's side of a connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def replies(self, n: int, timeout: float = 5.0) -> list[bytes]:
        out = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(out) < n:
                    line = await self.reader.readuntil(b"\r\n")
                    out.append(line)
        return out

    async def silent(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.reader.readuntil(b"\r\n"), seconds)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Mosquitto:
    return mosquitto


@pytest.fixture
def seen(broker: Mosquitto):
    """Everything published on hj212/+ (what the ingest stage would archive)."""
    collector = Collector()
    source = start_source(settings(broker.host, broker.port, client_id="watcher"), collector)
    yield collector
    source.stop()


@contextlib.asynccontextmanager
async def running(broker: Mosquitto, **kw: object) -> AsyncIterator[GatewayRuntime]:
    gateway_settings = GatewaySettings(host="127.0.0.1", port=0, **kw)  # type: ignore[arg-type]
    mqtt = settings(broker.host, broker.port, client_id="gw", reconnect_max_s=1.0)
    runtime = GatewayRuntime(gateway_settings, mqtt, registry())
    await runtime.start()
    assert runtime.publisher is not None
    await asyncio.to_thread(runtime.publisher.wait_connected, 10)
    await asyncio.sleep(0.2)  # the command subscription's SUBACK
    try:
        yield runtime
    finally:
        await runtime.stop()


async def connect(runtime: GatewayRuntime) -> Logger:
    reader, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
    return Logger(reader, writer)


def topics_and_payloads(collector: Collector) -> list[tuple[str, bytes]]:
    with collector.lock:
        return [(d.topic, d.payload) for d in collector.deliveries]


async def wait_seen(collector: Collector, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
    """The first ``n`` pieces published, each a packet (or junk) with its topic: the gateway
    may carry the packets of one read in one message."""
    deadline = time.monotonic() + timeout
    while True:
        pieces = [
            (topic, line + b"\r\n")
            for topic, payload in topics_and_payloads(collector)
            for line in payload.split(b"\r\n")
            if line
        ]
        if len(pieces) >= n or time.monotonic() > deadline:
            return pieces
        await asyncio.sleep(0.02)


async def test_split_concatenated_and_garbage_packets(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        one, two, three = upload(MN_A, 1), upload(MN_A, 2, ack=False), upload(MN_A, 3)
        stream = one + b"AT+CSQ\r\n" + two.rstrip(b"\r\n") + three  # three has no tail before it
        for i in range(0, len(stream), 7):  # a packet arrives over many reads
            await logger.send(stream[i : i + 7])
        replies = await logger.replies(2)
        got = await wait_seen(seen, 4)
        await logger.close()
    assert [t for t, _ in got] == [f"hj212/{MN_A}"] * 4
    payloads = [p for _, p in got]
    assert payloads[0] == one and payloads[2] == two and payloads[3] == three
    assert payloads[1] == b"AT+CSQ\r\n"  # junk is published for the record
    # A 9014 for each packet that asked (Flag A bit), with its QN; none for the one that did not.
    assert [decode_frame(r).cn for r in replies] == ["9014", "9014"]
    assert [decode_frame(r).qn for r in replies] == [decode_frame(one).qn, decode_frame(three).qn]


async def test_a_bound_connection_speaks_only_for_its_logger(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1))
        assert len(await logger.replies(1)) == 1
        # MN_B with its own right PW, on MN_A's connection: published on MN_A's topic (the
        # ingest stage makes it a foreign_mn dead letter) and not answered.
        await logger.send(upload(MN_B, 2))
        assert await logger.silent(1.0)
        got = await wait_seen(seen, 2)
        await logger.close()
    assert got[1] == (f"hj212/{MN_A}", upload(MN_B, 2))


async def test_a_gateway_type_logger_carries_the_mns_of_its_entry(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_B, 1) + upload(MN_C, 1) + upload(MN_A, 1))
        replies = await logger.replies(3, timeout=2.0)
        got = await wait_seen(seen, 3)
        await logger.close()
    assert [t for t, _ in got] == ["hj212/GW1"] * 3
    assert sorted(decode_frame(r).mn for r in replies) == [MN_B, MN_C]  # not MN_A's


async def test_a_wrong_pw_does_not_bind_and_is_published_under_the_claimed_mn(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1, pw="guess"))
        assert await logger.silent(1.0)
        assert runtime.gateway is not None and runtime.gateway.senders() == []
        await logger.send(b"garbage\r\n")
        got = await wait_seen(seen, 2)
        await logger.close()
    assert got[0] == (f"hj212/{MN_A}", upload(MN_A, 1, pw="guess"))  # a wrong_pw dead letter
    assert got[1] == ("hj212/tcp:127.0.0.1", b"garbage\r\n")


async def test_a_connection_dropped_mid_packet_leaves_the_part_for_the_record(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1))
        await logger.replies(1)
        half = upload(MN_A, 2)[:50]
        await logger.send(half)
        await logger.close()
        got = await wait_seen(seen, 2)
    assert got[1] == (f"hj212/{MN_A}", half + b"\r\n")


async def test_broker_down_no_9014_and_the_resend_is_answered(broker, seen):
    async with running(broker, ack_timeout_s=1.0) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1))
        assert len(await logger.replies(1)) == 1
        await asyncio.to_thread(broker.stop)
        await logger.send(upload(MN_A, 2))
        assert await logger.silent(2.0)  # not stored: not answered
        await asyncio.to_thread(broker.start)
        assert runtime.publisher is not None
        await asyncio.to_thread(runtime.publisher.wait_connected, 15)
        await logger.send(upload(MN_A, 2))  # the logger resends what was not answered
        [reply] = await logger.replies(1, timeout=10)
        assert decode_frame(reply).qn == decode_frame(upload(MN_A, 2)).qn
        await logger.close()


async def test_the_port_opens_once_the_broker_has_answered(broker, seen):
    # A logger that connects the moment the port opens must be answered: the gateway does
    # not listen before its first broker connection (else the packet waits for a resend).
    gateway_settings = GatewaySettings(host="127.0.0.1", port=0)
    mqtt = settings(broker.host, broker.port, client_id="gw", reconnect_max_s=1.0)
    runtime = GatewayRuntime(gateway_settings, mqtt, registry())
    await runtime.start()
    try:
        assert runtime.publisher is not None and runtime.publisher.connected
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1))
        assert len(await logger.replies(1)) == 1
        await logger.close()
    finally:
        await runtime.stop()


async def test_a_gateway_started_without_its_broker_listens_after_a_while(tmp_path):
    # The broker down at start: the port still opens (after broker_wait_s), nothing answered.
    gateway_settings = GatewaySettings(host="127.0.0.1", port=0, broker_wait_s=0.5)
    mqtt = settings("127.0.0.1", free_port(), client_id="gw", reconnect_max_s=1.0)
    runtime = GatewayRuntime(gateway_settings, mqtt, registry())
    started = time.monotonic()
    await runtime.start()
    try:
        assert 0.4 < time.monotonic() - started < 5
        assert runtime.readiness() is not None
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1))
        assert await logger.silent(1.0)
        await logger.close()
    finally:
        await runtime.stop()


async def test_commands_reach_the_logger_and_mqtt_9014s_do_not(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1, ack=False))
        await wait_seen(seen, 1)
        request = packet(
            f"QN=20261121090000000;ST=31;CN=2051;PW=pw-a;MN={MN_A};Flag=5;"
            "CP=&&BeginTime=20261121080000;EndTime=20261121085900&&"
        )
        mqtt_9014 = packet(f"QN=20261121080100000;ST=91;CN=9014;PW=pw-a;MN={MN_A};Flag=4;CP=&&&&")
        platform = Publisher(broker.host, broker.port, client_id="platform")
        try:
            await asyncio.to_thread(
                platform.publish_all,
                [(f"hj212/{MN_A}/reply", mqtt_9014), (f"hj212/{MN_A}/reply", request)],
            )
        finally:
            platform.close()
        [got] = await logger.replies(1)
        assert got == request
        assert await logger.silent(0.5)
        await logger.close()


async def test_a_time_calibration_request_is_answered_with_9013(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        notify = packet(f"QN=20261121080000000;ST=31;CN=1013;PW=pw-a;MN={MN_A};Flag=4;CP=&&&&")
        await logger.send(notify)
        [reply] = await logger.replies(1)
        frame = decode_frame(reply)
        assert (frame.cn, frame.qn, frame.mn) == ("9013", "20261121080000000", MN_A)
        await logger.close()


async def test_limits_idle_and_slow_senders(broker, seen):
    async with running(
        broker, max_connections_per_address=2, idle_timeout_s=1.0, packet_timeout_s=0.6
    ) as runtime:
        a, b, c = [await connect(runtime) for _ in range(3)]
        assert await c.reader.read() == b""  # the third from one address is closed at once
        # Slow loris: a packet's first bytes, then nothing more of it.
        await a.send(upload(MN_A, 1)[:30])
        assert await asyncio.wait_for(a.reader.read(), 3) == b""
        got = await wait_seen(seen, 1)
        assert got[0][1] == upload(MN_A, 1)[:30] + b"\r\n"  # kept for the record
        # Idle: nothing at all.
        assert await asyncio.wait_for(b.reader.read(), 3) == b""
        assert runtime.gateway is not None and runtime.gateway.connection_count == 0
        for logger in (a, b, c):
            await logger.close()


async def test_a_packet_the_broker_refuses_is_not_answered(tmp_path):
    # The gateway's login may not write the topic (its ACL): Mosquitto says so to an MQTT 5
    # client (PUBACK "Not authorized") and acknowledges and drops for 3.1.1. No 9014 then.
    acl = tmp_path / "acl"
    acl.write_text("topic read hj212/#\n")  # anonymous: read only
    broker = Mosquitto(tmp_path / "broker", extra_conf=f"acl_file {acl}\n")
    broker.start()
    try:
        async with running(broker, ack_timeout_s=2.0) as runtime:
            logger = await connect(runtime)
            await logger.send(upload(MN_A, 1))
            assert await logger.silent(1.5)
            metrics = runtime.metrics.pieces.labels("refused")._value.get()
            assert metrics == 1
            await logger.close()
    finally:
        broker.stop()


async def test_loggers_may_connect_with_tls(broker, seen, tmp_path):
    import ssl

    from tests.deploy.test_mosquitto import make_certificates

    make_certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    async with running(broker, tls=server_tls) as runtime:
        client_tls = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", runtime.port, ssl=client_tls, server_hostname="127.0.0.1"
        )
        logger = Logger(reader, writer)
        await logger.send(upload(MN_A, 1))
        [reply] = await logger.replies(1)
        assert decode_frame(reply).cn == "9014"
        await logger.close()
        # A plain-TCP logger on the TLS port gets nowhere: closed, its packet not taken.
        plain = await connect(runtime)
        await plain.send(upload(MN_A, 2))
        answer = await asyncio.wait_for(plain.reader.read(), 5)  # until the server closes
        assert b"9014" not in answer
        await plain.close()
    got = await wait_seen(seen, 1)
    assert [p for _, p in got] == [upload(MN_A, 1)]


async def test_a_command_for_a_logger_gone_is_counted_one_never_here_ignored(broker, seen):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        await logger.send(upload(MN_A, 1, ack=False))
        await wait_seen(seen, 1)
        await logger.close()
        await asyncio.sleep(0.3)
        assert runtime.gateway is not None
        request = packet(f"QN=1;ST=31;CN=1011;PW=pw-a;MN={MN_A};Flag=5;CP=&&&&")
        runtime.gateway.deliver_command(f"hj212/{MN_A}/reply", request)  # gone: counted
        runtime.gateway.deliver_command(f"hj212/{MN_B}/reply", request)  # never here: not
        assert runtime.metrics.commands_undeliverable._value.get() == 1


async def test_the_packets_of_one_read_go_as_one_message_and_a_resend_is_not_published(
    broker, seen
):
    async with running(broker) as runtime:
        logger = await connect(runtime)
        burst = [upload(MN_A, minute) for minute in range(40)]
        await logger.send(b"".join(burst))  # one write: a read or a few
        assert len(await logger.replies(40)) == 40
        got = await wait_seen(seen, 40)
        assert [p for _, p in got] == burst
        assert len(seen.deliveries) < 40  # fewer messages than packets
        # Its 9014 lost, the logger resends a packet already stored: answered, not published.
        messages = len(seen.deliveries)
        await logger.send(burst[7])
        [again] = await logger.replies(1)
        assert decode_frame(again).qn == decode_frame(burst[7]).qn
        await asyncio.sleep(0.5)
        assert len(seen.deliveries) == messages
        assert runtime.metrics.pieces.labels("duplicate")._value.get() == 1
        await logger.close()
