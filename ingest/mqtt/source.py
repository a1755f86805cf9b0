"""The MQTT source: a persistent QoS 1 session with acknowledgement after durable storage.

paho-mqtt 2.x is used directly because it is the one Python client that lets the application
send PUBACK itself (``manual_ack``); aiomqtt 2.x acknowledges before application code runs,
and measured here drains a broker at about half paho's rate (docs/ingest.md, "Choosing the
client"). paho's network loop runs in its own thread and reconnects with exponential backoff.

Session: fixed client id, clean start off, a session expiry (MQTT 5) or clean_session=False
(3.1.1), QoS 1 subscriptions renewed on every connect. While we are away the broker queues
for us; messages received but never acknowledged are re-delivered on the next connect.
"""

from __future__ import annotations

import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.metrics import ArchiveMetrics
from ingest.mqtt.settings import MqttSettings
from ingest.mqtt.stream_client import StreamClient

log = logging.getLogger(__name__)

_PUBACK = (mqtt.PUBACK << 24) | (2 << 16)  # fixed header of a PUBACK as the top half of a u32
STOP_FLUSH_S = 2.0  # at most this long for the queued PUBACKs to be written at stop


def connect_options(client: mqtt.Client, settings: MqttSettings) -> None:
    """What every nonsite client takes from its settings: reconnect backoff, login, TLS."""
    client.reconnect_delay_set(
        min_delay=max(1, round(settings.reconnect_min_s)),
        max_delay=max(1, round(settings.reconnect_max_s)),
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_NONE if settings.tls_insecure else ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(settings.tls_insecure)


class Delivery(NamedTuple):
    """A received message awaiting its PUBACK (a NamedTuple: built once per message)."""

    received_us: int
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection number it arrived on; a PUBACK only makes sense on that one
    # The broker's DUP flag: sent before, to this session, and not acknowledged (it may have
    # been stored already, by this client before a crash: ingest.jetstream.publisher).
    redelivered: bool = False


class MqttSource:
    def __init__(
        self,
        settings: MqttSettings,
        on_delivery: Callable[[Delivery], None],
        metrics: ArchiveMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._on_delivery = on_delivery
        self._metrics = metrics
        self._generation = 0
        self._connected = threading.Event()
        self.session_present: bool | None = None
        self.last_error: str | None = None
        self.last_refusal: str | None = None  # why the broker last refused to connect us
        v5 = settings.protocol == "5"
        # Many messages per system call, no garbage cycle per message (see the module).
        self._client = StreamClient(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        self._client.max_inflight_messages_set(1000)  # our replies; incoming is receive_maximum
        self._client.max_queued_messages_set(0)
        connect_options(self._client, settings)
        # A bug in a callback must not kill the network loop; paho logs it instead.
        self._client.suppress_exceptions = True
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_subscribe = self._handle_subscribe
        self._subacks: dict[int, threading.Event] = {}  # mid → waiting for its SUBACK
        # paho's internal queue of outgoing packets (paho-mqtt 2.x); without it, ack one by one.
        self._queue_packet: Callable[[int, bytes, int, int], object] | None = getattr(
            self._client, "_packet_queue", None
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting with backoff until ``stop``."""
        props = None
        if self.settings.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.settings.session_expiry_s
            props.ReceiveMaximum = self.settings.receive_maximum
        kwargs: dict[str, Any] = {"keepalive": self.settings.keepalive_s, "properties": props}
        if self.settings.protocol == "5":
            kwargs["clean_start"] = False
        self._client.connect_async(self.settings.host, self.settings.port, **kwargs)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connections(self) -> int:
        """How many times it has connected (1 while the first connection lasts)."""
        return self._generation

    @property
    def socket_reads(self) -> int:
        """Chunks read from the broker's socket so far (many messages each under load)."""
        return self._client.socket_reads

    def stop(self) -> None:
        """Disconnect cleanly. The broker keeps the session and queues for us meanwhile."""
        props = None
        if self.settings.protocol == "5":
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = self.settings.session_expiry_s
        self._settle_acks(STOP_FLUSH_S)
        try:
            self._client.disconnect(properties=props)
        finally:
            self._client.loop_stop()
            self._connected.clear()

    def _settle_acks(self, timeout: float) -> bool:
        """Wait until the broker has taken every PUBACK sent so far: it answers a packet sent
        after them (MQTT keeps a connection's packets in order), here the SUBACK of the
        subscriptions renewed (MQTT 5: retained messages not sent again). Without it a clean
        stop lost acknowledgements under load: the socket closed with the broker's messages
        unread resets the connection, and the reset drops what the broker had not read yet
        (our last PUBACKs); those messages came again on the next start."""
        deadline = time.monotonic() + timeout
        while self._client.want_write() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self._connected.is_set() or not self.settings.subscriptions:
            return False
        if self.settings.protocol == "5":
            keep = SubscribeOptions.RETAIN_DO_NOT_SEND
            wanted: Any = [
                (topic, SubscribeOptions(qos=qos, retainHandling=keep))
                for topic, qos in self.settings.subscriptions
            ]
        else:
            wanted = list(self.settings.subscriptions)
        answered = threading.Event()
        _rc, mid = self._client.subscribe(wanted)
        if mid is None:
            return False
        self._subacks[mid] = answered
        try:
            return answered.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self._subacks.pop(mid, None)

    def _handle_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, *_rest: Any
    ) -> None:
        waiter = self._subacks.get(mid)
        if waiter is not None:
            waiter.set()

    # -- acknowledgement and publishing ------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Send PUBACKs, in arrival order, for deliveries that are now durably stored.

        A delivery from an earlier connection is skipped: the broker re-delivers it on the
        new connection, the archive recognises the copy, and that copy is acknowledged.
        """
        generation = self._generation
        current = [d for d in deliveries if d.qos > 0 and d.generation == generation]
        mids = [d.mid for d in current if d.qos == 1]
        if mids and self._queue_packet is not None:
            # One write for the whole batch. paho's ack() queues a packet per message, and
            # each costs a wake-up write to its socket pair and a send of four bytes, both
            # system calls that hand the GIL to the network thread (3.5 % of this process's
            # GIL time in its profile, and the hand-offs besides). A PUBACK without reason
            # code or properties is four bytes in MQTT 3.1.1 and 5 alike: 0x40, remaining
            # length 2, the packet id.
            self._queue_packet(
                mqtt.PUBACK, struct.pack(f"!{len(mids)}I", *(_PUBACK | m for m in mids)), 0, 0
            )
        else:
            for mid in mids:
                self._client.ack(mid, 1)
        for d in current:
            if d.qos == 2:  # not used by our QoS 1 subscriptions, but answered correctly
                self._client.ack(d.mid, 2)
        return len(current)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self._client.publish(topic, payload, qos=qos)

    # -- paho callbacks (network thread) -------------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            self.last_error = self.last_refusal = f"connection refused: {reason_code}"
            log.error("MQTT %s", self.last_error)
            return
        self._generation += 1
        self.session_present = bool(flags.session_present)
        if self._metrics:
            self._metrics.broker_connects.labels(str(self.session_present).lower()).inc()
            self._metrics.broker_connected.set(1)
        if not self.session_present and self.settings.subscriptions:
            log.warning(
                "MQTT broker had no session for %s: subscribing afresh", self.settings.client_id
            )
        # Renew subscriptions on every connect: cheap, and repairs a session the broker lost.
        # None: a client that only publishes (a cluster worker's replies and commands).
        if self.settings.subscriptions:
            client.subscribe(list(self.settings.subscriptions))
        self._connected.set()
        log.info(
            "MQTT connected to %s:%s (session present: %s)",
            self.settings.host,
            self.settings.port,
            self.session_present,
        )

    def _handle_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        self._connected.clear()
        if self._metrics:
            self._metrics.broker_connected.set(0)
            self._metrics.broker_disconnects.inc()
        if reason_code != 0:
            self.last_error = f"disconnected: {reason_code}"
            log.warning("MQTT %s; reconnecting with backoff", self.last_error)

    def _handle_message(self, _client: mqtt.Client, _userdata: Any, message: Any) -> None:
        # Brokers enforce UTF-8 topics; decode leniently anyway so one bad topic cannot stall us.
        topic = message._topic.decode("utf-8", "replace")  # bytes already: no copy
        self._on_delivery(
            Delivery(
                time.time_ns() // 1000,
                topic,
                message.payload,
                message.mid,
                message.qos,
                self._generation,
                message.dup,
            )
        )
