"""The HJ 212 TCP gateway: the platform side of the standard's transport.

Data loggers connect and push packets (HJ 212-2017 §5, §6.5). Each packet goes to the broker
at QoS 1 on the connection's sender topic (``hj212/{sender}``), where the ingest stage takes
it as from any MQTT logger: archive, decode, attribution, PW, dead letters. The gateway adds
what a TCP receiver owes the logger:

- **Binding.** A connection speaks for one sender, set by its first packet whose MN is
  configured and whose PW is right (``Registry.carrier_of``: the MN, or the [[gateways]]
  entry listing it, for a gateway-type logger carrying several MNs). Later packets go to that
  sender's topic whatever MN they claim, so a packet for another logger becomes a
  ``foreign_mn`` dead letter, exactly as on MQTT. Before binding, a packet goes to the topic
  of the MN it claims (the ingest stage rejects it for its PW or unknown MN, with that
  reason), and bytes without an MN to ``hj212/tcp:{address}``.
- **9014 only for what is stored.** A data upload asking for a reply (Flag A bit) is answered
  after the broker's PUBACK, and only when its CRC holds and the connection may speak for its
  MN with its PW. No PUBACK in time (the broker away): no reply, and the logger resends; the
  archive stores the copies once (the same topic and bytes: the gateway always publishes a
  packet as ``##…CRC\\r\\n``).
- **Notifications.** A 1013 (time-calibration request) is answered with 9013, at once.
- **Commands.** Packets published for a logger on its reply topic (``hj212/{sender}/reply``)
  are written to its connection (the newest, if it has several); 9014s there are the MQTT
  path's replies to the same packets and are dropped.
- **Protection.** Connection limits in total and per address, an idle timeout, a deadline
  for each packet's bytes (slow senders), bounded buffers (``StreamFramer``), and reading
  paused while a connection has too many packets awaiting the broker.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable

from paho.mqtt.client import topic_matches_sub

from ingest.hj212.crc import crc_hj212, crc_modbus
from ingest.hj212.encoder import reply_9013, reply_9014
from ingest.hj212.errors import Hj212DecodeError
from ingest.hj212.framing import RawFrame, split_frames
from ingest.hj212.model import DATA_REPLY_CNS, Hj212Frame
from ingest.hj212.segment import parse_header
from ingest.registry import Registry
from ingest.tcp.connection import LoggerConnection
from ingest.tcp.metrics import PIECE_OUTCOMES, GatewayMetrics
from ingest.tcp.publisher import BrokerRefusedError
from ingest.tcp.settings import GatewaySettings

log = logging.getLogger(__name__)

NOTIFY_CNS = frozenset({"1013"})  # answered with 9013
_BAD_TOPIC_CHARS = frozenset("/+#\x00")
# One message carries at most this of one read's packets (the ingest stage's payload limit is
# 256 KiB by default).
MAX_BATCH_PACKETS = 64
MAX_BATCH_BYTES = 64 * 1024
STORED_MEMORY = 100_000  # packets remembered as stored, to answer a resend of one

Publish = Callable[[str, bytes], "asyncio.Future[None]"]


class TcpGateway:
    def __init__(
        self,
        settings: GatewaySettings,
        registry: Registry,
        publish: Publish,
        metrics: GatewayMetrics | None = None,
        *,
        batching: bool = False,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        """``batching``: publish the packets of one read as one message, and answer a resend
        of a packet stored before without publishing it again (to a broker); off, each packet
        is its own message (to the service's archive, which recognises a copy itself).
        ``connected``: whether the broker is there now."""
        self.batching = batching
        self._connected = connected
        self._away = False  # the broker was away at the last read
        self._stored_keys: dict[bytes, None] = {}  # packets stored lately (batching only)
        self.settings = settings
        self.registry = registry
        self._publish = publish
        self.metrics = metrics
        self._connections: set[LoggerConnection] = set()
        self._per_address: Counter[str] = Counter()
        self._by_sender: dict[str, list[LoggerConnection]] = defaultdict(list)
        # Senders ever connected here: a command for another (a logger on MQTT, or on another
        # gateway) is none of this gateway's business; one for these, unconnected, is noted.
        self._ever_bound: set[str] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._waiting: set[_Waiting] = set()  # packets whose storing is not yet known
        # The labelled counters, looked up once (each packet counts one).
        self._outcomes = (
            {o: metrics.pieces.labels(o) for o in PIECE_OUTCOMES} if metrics is not None else {}
        )
        self.port = settings.port

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on ``sock`` (bound beforehand, so that a taken port is the caller's clear
        error) or on the settings' address."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(
                lambda: LoggerConnection(self), sock=sock, ssl=self.settings.tls, backlog=1024
            )
        else:
            self._server = await loop.create_server(
                lambda: LoggerConnection(self),
                self.settings.host,
                self.settings.port,
                ssl=self.settings.tls,
                backlog=1024,
                reuse_address=True,
            )
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(self._sweep(), name="gateway-sweeper")
        log.info(
            "HJ 212 gateway listening on %s:%d%s",
            self.settings.host,
            self.port,
            " (TLS)" if self.settings.tls else "",
        )

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let packets in flight reach the broker, close every connection."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        deadline = time.monotonic() + grace_s
        while self._waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self._connections):
            conn.close("shutdown")
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def senders(self) -> list[str]:
        return sorted(s for s, conns in self._by_sender.items() if conns)

    # -- connections ------------------------------------------------------------------------

    def opened(self, conn: LoggerConnection) -> None:
        if len(self._connections) >= self.settings.max_connections:
            self._refuse(conn, "limit_total", f"{self.settings.max_connections} connections open")
            return
        if self._per_address[conn.address] >= self.settings.max_connections_per_address:
            limit = self.settings.max_connections_per_address
            self._refuse(conn, "limit_address", f"{limit} connections open from this address")
            return
        self._connections.add(conn)
        self._per_address[conn.address] += 1
        if self.metrics:
            self.metrics.accepted.inc()
            self.metrics.connections.inc()
        log.debug("logger connection from %s", conn.peer)

    def _refuse(self, conn: LoggerConnection, reason: str, detail: str) -> None:
        log.warning("refused a logger connection from %s: %s", conn.peer, detail)
        conn.closing_reason = reason
        if self.metrics:
            self.metrics.closed.labels(reason).inc()
        if conn.transport is not None:
            conn.transport.abort()

    def closed(self, conn: LoggerConnection) -> None:
        if conn not in self._connections:
            return  # refused at the door, already counted
        self._connections.discard(conn)
        self._per_address[conn.address] -= 1
        if self._per_address[conn.address] <= 0:
            del self._per_address[conn.address]
        if conn.sender is not None:
            conns = self._by_sender.get(conn.sender)
            if conns and conn in conns:
                conns.remove(conn)
                if not conns:
                    del self._by_sender[conn.sender]
            if self.metrics:
                self.metrics.connections_bound.dec()
        if self.metrics:
            self.metrics.connections.dec()
            self.metrics.closed.labels(conn.closing_reason).inc()
        log.info(
            "logger connection from %s closed (%s)%s",
            conn.peer,
            conn.closing_reason,
            f", it spoke for {conn.sender}" if conn.sender else "",
        )

    def _bind(self, conn: LoggerConnection, mn: str) -> None:
        sender = self.registry.carrier_of(mn)
        conn.sender = sender
        self._by_sender[sender].append(conn)
        self._ever_bound.add(sender)
        if self.metrics:
            self.metrics.connections_bound.inc()
        log.info("logger %s connected from %s (MN %s)", sender, conn.peer, mn)

    async def _sweep(self) -> None:
        """Close idle connections and those whose packet takes too long to arrive."""
        s = self.settings
        every = max(0.05, min(s.idle_timeout_s, s.packet_timeout_s) / 4)
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for conn in list(self._connections):
                if conn.paused:
                    continue  # waiting on the broker, not on the logger
                if now - conn.last_read > s.idle_timeout_s:
                    conn.close("idle")
                elif conn.packet_started is not None and now - conn.packet_started > (
                    s.packet_timeout_s
                ):
                    # A slow sender holds a buffer: keep what came, for the record, and go.
                    rest = conn.framer.flush()
                    if rest:
                        self.handle_pieces(conn, [rest])
                    conn.close("packet_timeout")

    # -- upstream: logger → broker ------------------------------------------------------

    def handle_pieces(self, conn: LoggerConnection, pieces: list[bytes]) -> None:
        """The pieces one read cut from a connection's stream: packets (each answered once
        stored) or bytes that are none (kept for the record)."""
        items = [self._item(conn, piece) for piece in pieces]
        if not self.batching:
            for item in items:
                self._send(conn, [item])
            return
        if not self._connected():
            self._broker_away(conn, items)
            return
        if self._away:
            self._away = False
            log.info("the broker is back: packets are published again")
        fresh = [i for i in items if not self._already_stored(conn, i)]
        # One message for the consecutive packets of one read that go to one topic: the
        # broker hop and the service's per-message work are paid once for them (the ingest
        # stage decodes every packet of a message).
        group: list[_Item] = []
        size = 0
        for item in fresh:
            if group and (
                item.topic != group[0].topic
                or len(group) >= MAX_BATCH_PACKETS
                or size + len(item.payload) > MAX_BATCH_BYTES
            ):
                self._send(conn, group)
                group, size = [], 0
            group.append(item)
            size += len(item.payload)
        if group:
            self._send(conn, group)

    def _broker_away(self, conn: LoggerConnection, items: list[_Item]) -> None:
        """The broker is away. A packet asking for a 9014 is not taken (the logger resends
        it, as the standard has it, once it is back): queued here as well, it would be stored
        twice if the resend came in another grouping. The rest is queued one packet a
        message (paho sends it on reconnect): nothing else would ever bring it."""
        if not self._away:
            self._away = True
            log.warning(
                "the broker is away: packets asking for a reply are not answered (their "
                "loggers resend them), the others are queued until it is back"
            )
        for item in items:
            if item.reply is not None:
                self._count("unacknowledged")
            else:
                self._send(conn, [item])

    def _already_stored(self, conn: LoggerConnection, item: _Item) -> bool:
        """A resend of a packet stored before (its 9014 was lost or late): answered again,
        not published again (so stored once, whatever message it came in)."""
        if item.reply is None or item.key not in self._stored_keys:
            return False
        self._count("duplicate")
        self._reply(conn, item.reply, "9014")
        return True

    def _item(self, conn: LoggerConnection, piece: bytes) -> _Item:
        items = split_frames(piece)
        if len(items) == 1 and isinstance(items[0], RawFrame):
            return self._packet(conn, items[0])
        # Not one clean packet: keep the bytes as they came, under the connection's sender.
        self._count("junk")
        return _Item(self._topic(self._fallback_sender(conn)), piece, None)

    def _packet(self, conn: LoggerConnection, rf: RawFrame) -> _Item:
        header = _header(rf)
        trusted = False
        if header is not None and self._crc_accepted(rf, header.mn):
            mn = header.mn
            known = self.registry.is_logger(mn)
            pw_ok = not self.settings.check_pw or self.registry.password_ok(mn, header.pw)
            if conn.sender is None and known and pw_ok:
                self._bind(conn, mn)
            trusted = (
                conn.sender is not None
                and known
                and pw_ok
                and self.registry.may_send_mn(conn.sender, mn)
            )
            if trusted and header.cn in NOTIFY_CNS:
                self._reply(conn, reply_9013(header), "9013")
        sender = conn.sender
        if sender is None:
            claimed = header.mn if header is not None else None
            sender = claimed if claimed and _topic_level_ok(claimed) else _address_sender(conn)
        reply: bytes | None = None
        if trusted and header is not None and header.ack_requested and header.cn in DATA_REPLY_CNS:
            reply = reply_9014(header)
        return _Item(self._topic(sender), rf.raw + b"\r\n", reply)

    def _send(self, conn: LoggerConnection, group: list[_Item]) -> None:
        payload = group[0].payload if len(group) == 1 else b"".join(i.payload for i in group)
        ack = self._publish(group[0].topic, payload)
        # A done-callback and a timer per message, not a task: this runs for every packet.
        conn.published()
        waiting = _Waiting(conn, group)
        self._waiting.add(waiting)
        if ack.done():
            self._stored(waiting, ack)
            return
        loop = asyncio.get_running_loop()
        waiting.timer = loop.call_later(self.settings.ack_timeout_s, self._timed_out, waiting)
        ack.add_done_callback(lambda done: self._stored(waiting, done))

    def _timed_out(self, waiting: _Waiting) -> None:
        """No PUBACK in time: no 9014, the logger resends. (The publisher keeps the future
        until its PUBACK comes, if ever; a resend of a packet stored meanwhile is answered
        without being published again.)"""
        if waiting.settled:
            return
        self._settle(waiting)
        for _item in waiting.items:
            self._count("unacknowledged")
        log.warning(
            "%d packet(s) from %s not acknowledged in %g s: no 9014, the logger resends",
            len(waiting.items),
            waiting.conn.peer,
            self.settings.ack_timeout_s,
        )

    def _stored(self, waiting: _Waiting, ack: asyncio.Future[None]) -> None:
        exc = ack.exception()  # retrieved even when late: asyncio logs one never retrieved
        if exc is None and self.batching:
            self._remember(waiting.items)  # even when late: a resend is then answered
        if waiting.settled:
            return  # timed out before
        self._settle(waiting)
        if isinstance(exc, BrokerRefusedError):
            for _item in waiting.items:
                self._count("refused")
            log.error(
                "the broker refused a packet from %s (%s): no 9014, the logger resends it; "
                "check the gateway's broker login and its ACL (write hj212/+)",
                waiting.conn.peer,
                exc,
            )
            return
        if exc is not None:
            for _item in waiting.items:
                self._count("unacknowledged")
            log.warning("a packet from %s was not stored (%s): no 9014", waiting.conn.peer, exc)
            return
        for item in waiting.items:
            self._count("published")
            if item.reply is not None:
                self._reply(waiting.conn, item.reply, "9014")

    def _remember(self, items: list[_Item]) -> None:
        stored = self._stored_keys
        for item in items:
            if item.reply is not None:
                stored[item.key] = None
        while len(stored) > STORED_MEMORY:
            del stored[next(iter(stored))]  # the oldest (dicts keep insertion order)

    def _settle(self, waiting: _Waiting) -> None:
        waiting.settled = True
        if waiting.timer is not None:
            waiting.timer.cancel()
        self._waiting.discard(waiting)
        waiting.conn.acknowledged()

    def _count(self, outcome: str) -> None:
        counter = self._outcomes.get(outcome)
        if counter is not None:
            counter.inc()

    def _reply(self, conn: LoggerConnection, packet: bytes, cn: str) -> None:
        conn.write(packet)
        if self.metrics:
            self.metrics.replies.labels(cn).inc()

    def _crc_accepted(self, rf: RawFrame, mn: str) -> bool:
        """The standard's CRC, or the MODBUS variant for a logger granted it (as the ingest
        stage decides; here it decides whether to bind and to reply)."""
        try:
            received = int(rf.crc_field, 16)
        except ValueError:
            return False
        if received == crc_hj212(rf.segment):
            return True
        logger = self.registry.logger(mn)
        modbus = logger is not None and logger.accept_modbus_crc
        return modbus and received == crc_modbus(rf.segment)

    def _topic(self, sender: str) -> str:
        return self.settings.data_topic.replace("{sender}", sender)

    def _fallback_sender(self, conn: LoggerConnection) -> str:
        return conn.sender if conn.sender is not None else _address_sender(conn)

    # -- downstream: platform → logger --------------------------------------------------

    def deliver_command(self, topic: str, payload: bytes) -> None:
        """A packet published for a logger on its reply topic: write it to its connection."""
        if is_data_reply(payload):
            return  # the MQTT path's data reply: this gateway answered the packet itself
        sender = _sender_of(topic, self.settings.command_filter)
        if sender is None:
            return
        conns = self._by_sender.get(sender)
        if not conns:
            if sender not in self._ever_bound:
                return  # not a logger of this gateway's
            if self.metrics:
                self.metrics.commands_undeliverable.inc()
            log.warning(
                "a command for %s: it is not connected to this gateway now (it was before)", sender
            )
            return
        conn = conns[-1]  # the newest: an older one may be a half-open leftover
        conn.write(payload if payload.endswith(b"\r\n") else payload + b"\r\n")
        if self.metrics:
            cn = _cn_of(payload)
            self.metrics.replies.labels(cn or "other").inc()


class _Item:
    """A piece as the gateway hands it on: where, what, and the 9014 it owes once stored."""

    __slots__ = ("payload", "reply", "topic")

    def __init__(self, topic: str, payload: bytes, reply: bytes | None) -> None:
        self.topic = topic
        self.payload = payload  # a packet with its CRLF, or bytes that are none, as they came
        self.reply = reply  # the 9014 once stored, when the packet asked for one

    @property
    def key(self) -> bytes:
        """The packet's identity in the memory of what was stored (topic and bytes, as the
        archive's)."""
        return hashlib.blake2b(self.topic.encode() + b"\0" + self.payload, digest_size=16).digest()


class _Waiting:
    """One message handed on, until it is known to be stored (or not)."""

    __slots__ = ("conn", "items", "settled", "timer")

    def __init__(self, conn: LoggerConnection, items: list[_Item]) -> None:
        self.conn = conn
        self.items = items
        self.settled = False
        self.timer: asyncio.TimerHandle | None = None


def _header(rf: RawFrame) -> Hj212Frame | None:
    try:
        return parse_header(rf.segment.decode("latin-1"))  # the header is ASCII; CP unused
    except Hj212DecodeError:
        return None


def _topic_level_ok(level: str) -> bool:
    return 0 < len(level) <= 64 and not _BAD_TOPIC_CHARS.intersection(level)


def _address_sender(conn: LoggerConnection) -> str:
    return f"tcp:{conn.address}"


def _sender_of(topic: str, topic_filter: str) -> str | None:
    """The topic level at the filter's "+" (as ingest.mqtt.topics reads a sender)."""
    if not topic_matches_sub(topic_filter, topic):
        return None
    return topic.split("/")[topic_filter.split("/").index("+")]


def _cn_of(payload: bytes) -> str | None:
    at = payload.find(b"CN=")
    return payload[at + 3 : at + 7].decode("ascii", "replace") if at >= 0 else None


def is_data_reply(payload: bytes) -> bool:
    """A 9014 (the MQTT path's data reply to a packet this gateway has answered itself)."""
    return b"CN=9014;" in payload[:80]
