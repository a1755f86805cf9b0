"""MQTT: the event to ``{prefix}/events/{enterprise}``, the current status retained on
``{prefix}/status/{enterprise}``, both QoS 1 and confirmed by the broker's PUBACK.

One paho-mqtt client (MQTT 5) per channel, connected on the first send and kept: paho's
network thread reconnects by itself when the connection drops between notifications.
When a send fails the client is discarded, with whatever paho still had queued: a stale
status must not be published behind a newer one after a reconnect, and the dispatcher's
retry publishes afresh on a new connection. The key travels as user property ``key``.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from alerts.channels.base import (
    DEFAULT_TIMEOUT_S,
    DeliveryError,
    Notification,
    check_timeout,
    event_document,
    json_bytes,
)

# CONNACK reasons that a retry cannot cure: protocol version, client id, credentials,
# authorisation, authentication method.
PERMANENT_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8C})
# PUBACK reasons that a retry cannot cure: not authorised, topic name invalid, payload
# format invalid. Others (unspecified error, quota exceeded, ...) may pass later.
PERMANENT_PUBACK = frozenset({0x87, 0x90, 0x99})
TOPIC_FORBIDDEN = ("/", "+", "#", "\x00")
KEEPALIVE_S = 30  # also bounds how long a silently dead connection goes unnoticed


def check_topic_level(value: str, what: str) -> str:
    if not value or any(c in value for c in TOPIC_FORBIDDEN):
        raise ValueError(f"{what} {value!r} cannot be an MQTT topic level (empty, or / + # NUL)")
    return value


class MqttChannel:
    """Publishes notifications to an MQTT broker."""

    kind = "mqtt"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        topic_prefix: str = "alerts",
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        client_id: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        prefix = topic_prefix.strip("/")
        if not prefix or "+" in prefix or "#" in prefix or "\x00" in prefix:
            raise ValueError(
                f"topic_prefix {topic_prefix!r} must be a non-empty topic without wildcards"
            )
        if password is not None and username is None:
            raise ValueError("a password needs a username")
        self.name = name
        self.host = host
        self.port = int(port)
        self.topic_prefix = prefix
        self._username = username
        self._password = password
        self.tls = tls
        self.client_id = client_id
        self.timeout_s = check_timeout(timeout_s)
        self._lock = threading.Lock()  # one send (or close) at a time
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._refusal: ReasonCode | None = None  # the broker's last CONNACK failure
        self._last_error = "no connection attempt finished yet"
        self._acks: dict[int, ReasonCode] = {}  # mid -> PUBACK reason, set by paho's thread

    def event_topic(self, enterprise_id: str) -> str:
        return f"{self.topic_prefix}/events/{enterprise_id}"

    def status_topic(self, enterprise_id: str) -> str:
        return f"{self.topic_prefix}/status/{enterprise_id}"

    def send(self, notification: Notification) -> None:
        try:
            enterprise = check_topic_level(notification.enterprise_id, "enterprise_id")
        except ValueError as exc:
            raise DeliveryError(str(exc), retryable=False) from exc
        messages = [(self.event_topic(enterprise), json_bytes(event_document(notification)), False)]
        if notification.status is not None:
            messages.append((self.status_topic(enterprise), json_bytes(notification.status), True))
        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            try:
                client = self._ready(deadline)
                infos = [
                    client.publish(
                        topic, body, qos=1, retain=retain, properties=_properties(notification.key)
                    )
                    for topic, body, retain in messages
                ]
                for info in infos:
                    self._confirm(info, deadline)
            except DeliveryError:
                self._discard()
                raise

    def close(self) -> None:
        with self._lock:
            self._discard()

    def __repr__(self) -> str:
        return f"MqttChannel(name={self.name!r})"

    # -- connection -------------------------------------------------------------------

    def _ready(self, deadline: float) -> mqtt.Client:
        """The connected client, connecting first if need be; DeliveryError at ``deadline``."""
        client = self._client
        if client is None:
            client = self._client = self._new_client()
        where = f"MQTT broker {self.host}:{self.port}"
        while not self._connected.is_set():
            refusal = self._refusal
            if refusal is not None and refusal.value in PERMANENT_CONNACK:
                raise DeliveryError(f"{where} refused the connection: {refusal}", retryable=False)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeliveryError(
                    f"{where} not connected within {self.timeout_s:g} s: {self._last_error}"
                )
            self._connected.wait(min(remaining, 0.05))
        return client

    def _new_client(self) -> mqtt.Client:
        self._connected.clear()
        self._refusal = None
        self._last_error = "no connection attempt finished yet"
        self._acks.clear()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id or "",  # empty: MQTT 5 brokers assign one
            protocol=mqtt.MQTTv5,
        )
        client.connect_timeout = self.timeout_s
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.suppress_exceptions = True  # a bug in a callback must not kill the network loop
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self.tls:
            client.tls_set_context(ssl.create_default_context())
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        # Asynchronous: paho's thread connects and keeps reconnecting; send waits for it.
        client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        return client

    def _discard(self) -> None:
        client, self._client = self._client, None
        self._connected.clear()
        if client is not None:
            client.disconnect()  # sends DISCONNECT and closes the socket, or just stops retrying
            client.loop_stop()

    def _confirm(self, info: mqtt.MQTTMessageInfo, deadline: float) -> None:
        """Wait for the PUBACK of ``info`` and check its reason code."""
        where = f"MQTT broker {self.host}:{self.port}"
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError) as exc:  # paho: not sent (connection lost, queue full)
            raise DeliveryError(f"{where}: publish failed: {exc}") from exc
        if not info.is_published():
            raise DeliveryError(f"{where}: no PUBACK within {self.timeout_s:g} s")
        reason = self._acks.pop(info.mid, None)
        if reason is not None and reason.is_failure:
            raise DeliveryError(
                f"{where} refused the publish: {reason}",
                retryable=reason.value not in PERMANENT_PUBACK,
            )

    # -- paho callbacks (paho's network thread) ---------------------------------------

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason_code: ReasonCode,
        _props: Any,
    ) -> None:
        if reason_code.is_failure:
            self._refusal = reason_code
            self._last_error = f"connection refused: {reason_code}"
            return
        self._refusal = None
        self._connected.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._last_error = f"cannot connect to {self.host}:{self.port}"

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason_code: ReasonCode,
        _props: Any,
    ) -> None:
        self._connected.clear()
        self._last_error = f"disconnected: {reason_code}"

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason_code: ReasonCode, _props: Any
    ) -> None:
        self._acks[mid] = reason_code


def _properties(key: str) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = ("key", key)
    props.ContentType = "application/json"
    props.PayloadFormatIndicator = 1  # UTF-8 text
    return props
