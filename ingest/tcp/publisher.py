"""The gateway's MQTT side: publish at QoS 1 and learn, as an asyncio future, when the broker
has acknowledged; receive the platform's packets for loggers.

paho-mqtt runs its network loop in its own thread (as in ``ingest.mqtt.source``); PUBACKs and
incoming messages are handed to the gateway's event loop with ``call_soon_threadsafe``.
A publish made while the broker is away is queued by paho (bounded) and sent on reconnect:
its future resolves then, or the gateway stops waiting after its ack timeout and sends no
9014, so the logger resends; the archive stores the copies once (same topic and bytes).
The command subscription uses a clean session on purpose: a clock setting or a recall queued
for hours would be wrong when it finally arrives.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.settings import MqttSettings
from ingest.mqtt.source import connect_options

log = logging.getLogger(__name__)

OnCommand = Callable[[str, bytes], None]  # (topic, payload), on the event loop


class BrokerRefusedError(Exception):
    """The broker answered a publish with a failure (MQTT 5 PUBACK reason code), e.g. "Not
    authorized": its ACL does not let the gateway's login write the topic. MQTT 3.1.1 has no
    way to say so (Mosquitto acknowledges and drops), which is why the gateway speaks 5."""


class GatewayPublisher:
    def __init__(
        self,
        settings: MqttSettings,
        loop: asyncio.AbstractEventLoop,
        on_command: OnCommand,
        *,
        command_filter: str = "",
        max_queued: int = 100_000,
        on_connection: Callable[[bool], None] | None = None,
        ignore: Callable[[bytes], bool] | None = None,
    ) -> None:
        """``ignore``: incoming payloads dropped on paho's thread, without waking the event
        loop (the MQTT path's 9014s, one per packet the gateway forwarded)."""
        self.settings = settings
        self._loop = loop
        self._on_command = on_command
        self._command_filter = command_filter
        self._on_connection = on_connection
        self._ignore = ignore
        self._connected = threading.Event()
        self._lock = threading.Lock()  # publish() and on_publish race for a fast PUBACK
        self._waiting: dict[int, asyncio.Future[None]] = {}
        # PUBACKs that arrived before publish() registered their future. Every publish
        # registers one, so each entry is taken at once and none goes stale.
        self._early: dict[int, str | None] = {}  # mid → the refusal, or None: acknowledged
        self._acked: list[tuple[asyncio.Future[None], str | None]] = []  # for the loop
        self._wake_pending = False
        self.last_error: str | None = None
        self._v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else True,
        )
        # paho scans its in-flight messages on every PUBACK: a window of 1,000 made that scan
        # the gateway's largest cost (bench/gateway.py); 100 keeps loopback and LAN links busy.
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(max_queued)
        connect_options(self._client, settings)
        self._client.suppress_exceptions = True
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_publish = self._handle_publish
        self._client.on_message = self._handle_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        extra: dict[str, Any] = {"clean_start": True} if self._v5 else {}
        self._client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s, **extra
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        """Publish at QoS 1; the future resolves when the broker has acknowledged (callers that
        stop waiting must not cancel it: it stays registered until its PUBACK, so that a
        message id is never matched to a later message's publish). It fails at once when
        paho's queue is full (the broker away for long)."""
        future: asyncio.Future[None] = self._loop.create_future()
        # Not under our lock: paho calls on_publish holding its own, and on_publish takes ours.
        # A PUBACK may beat the registration below; _early keeps it for this one publish.
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                future.set_exception(ConnectionError("the broker is away and the queue is full"))
                return future
            if info.mid in self._early:
                _resolve(future, self._early.pop(info.mid))
            else:
                self._waiting[info.mid] = future
        return future

    # -- paho callbacks (network thread) -------------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _p: Any
    ) -> None:
        if reason_code.is_failure:
            self.last_error = f"connection refused: {reason_code}"
            log.error("gateway MQTT %s", self.last_error)
            return
        self.last_error = None
        if self._command_filter:
            client.subscribe(self._command_filter, qos=1)
        self._connected.set()
        if self._on_connection:
            self._loop.call_soon_threadsafe(self._on_connection, True)
        log.info("gateway connected to the broker at %s:%s", self.settings.host, self.settings.port)

    def _handle_disconnect(
        self, _c: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _p: Any
    ) -> None:
        self._connected.clear()
        if self._on_connection:
            self._loop.call_soon_threadsafe(self._on_connection, False)
        if reason_code != 0:
            self.last_error = f"disconnected: {reason_code}"
            log.warning("gateway MQTT %s; reconnecting with backoff", self.last_error)

    def _handle_publish(
        self, _c: mqtt.Client, _u: Any, mid: int, reason_code: Any, _p: Any
    ) -> None:
        refused = bool(getattr(reason_code, "is_failure", False))
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:  # its publish() has not registered it yet
                self._early[mid] = str(reason_code) if refused else None
                return
        self._loop.call_soon_threadsafe(_resolve, future, str(reason_code) if refused else None)

    def _handle_message(self, _c: mqtt.Client, _u: Any, message: Any) -> None:
        if self._ignore is not None and self._ignore(message.payload):
            return
        topic = message._topic.decode("utf-8", "replace")
        self._loop.call_soon_threadsafe(self._on_command, topic, message.payload)


def _resolve(future: asyncio.Future[None], refusal: str | None = None) -> None:
    if future.done():
        return
    if refusal is None:
        future.set_result(None)
    else:
        future.set_exception(BrokerRefusedError(refusal))
