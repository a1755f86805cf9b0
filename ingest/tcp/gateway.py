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

Publish = Callable[[str, bytes], "asyncio.Future[None]"]


class TcpGateway:
    def __init__(
        self,
        settings: GatewaySettings,
        registry: Registry,
        publish: Publish,
        metrics: GatewayMetrics | None = None,
    ) -> None:
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
                        self.handle_piece(conn, rest)
                    conn.close("packet_timeout")

    # -- upstream: logger → broker ------------------------------------------------------

    def handle_piece(self, conn: LoggerConnection, piece: bytes) -> None:
        """A piece cut from the stream: a packet (answer it after the broker has it) or
        bytes that are none (published for the record)."""
        items = split_frames(piece)
        if len(items) == 1 and isinstance(items[0], RawFrame):
            self._packet(conn, items[0])
            return
        # Not one clean packet: keep the bytes as they came, under the connection's sender.
        self._track(conn, self._publish(self._topic(self._fallback_sender(conn)), piece), None)
        self._count("junk")

    def _packet(self, conn: LoggerConnection, rf: RawFrame) -> None:
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
        self._track(conn, self._publish(self._topic(sender), rf.raw + b"\r\n"), reply)

    def _track(
        self, conn: LoggerConnection, ack: asyncio.Future[None], reply: bytes | None
    ) -> None:
        # A done-callback and a timer per packet, not a task: this runs for every packet.
        conn.published()
        waiting = _Waiting(conn, reply)
        self._waiting.add(waiting)
        if ack.done():
            self._stored(waiting, ack)
            return
        loop = asyncio.get_running_loop()
        waiting.timer = loop.call_later(self.settings.ack_timeout_s, self._timed_out, waiting)
        ack.add_done_callback(lambda done: self._stored(waiting, done))

    def _timed_out(self, waiting: _Waiting) -> None:
        """No PUBACK in time: no 9014, the logger resends. (The publisher keeps the future
        until its PUBACK comes, if ever; the archive stores a copy once.)"""
        if waiting.settled:
            return
        self._settle(waiting)
        self._count("unacknowledged")
        log.warning(
            "a packet from %s was not acknowledged in %g s: no 9014, the logger resends it",
            waiting.conn.peer,
            self.settings.ack_timeout_s,
        )

    def _stored(self, waiting: _Waiting, ack: asyncio.Future[None]) -> None:
        exc = ack.exception()  # retrieved even when late: asyncio logs one never retrieved
        if waiting.settled:
            return  # timed out before
        self._settle(waiting)
        if isinstance(exc, BrokerRefusedError):
            self._count("refused")
            log.error(
                "the broker refused a packet from %s (%s): no 9014, the logger resends it; "
                "check the gateway's broker login and its ACL (write hj212/+)",
                waiting.conn.peer,
                exc,
            )
            return
        if exc is not None:
            self._count("unacknowledged")
            log.warning("a packet from %s was not stored (%s): no 9014", waiting.conn.peer, exc)
            return
        self._count("published")
        if waiting.reply is not None:
            self._reply(waiting.conn, waiting.reply, "9014")

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


class _Waiting:
    """A packet handed on, until it is known to be stored (or not)."""

    __slots__ = ("conn", "reply", "settled", "timer")

    def __init__(self, conn: LoggerConnection, reply: bytes | None) -> None:
        self.conn = conn
        self.reply = reply  # the 9014 to send once stored, if it asked for one
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
