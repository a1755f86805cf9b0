"""Test-side MQTT helpers: a publisher that waits for the broker's PUBACK, and a collector."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.settings import MqttSettings
from ingest.mqtt.source import Delivery, MqttSource


class Publisher:
    """Publishes QoS 1 and confirms each message reached the broker."""

    def __init__(
        self, host: str, port: int, client_id: str = "test-publisher", **auth: str
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if auth:
            self.client.username_pw_set(auth["username"], auth["password"])
        self.client.max_inflight_messages_set(200)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish_all(self, items: Iterable[tuple[str, bytes]], timeout: float = 60.0) -> int:
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in items]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("the broker did not acknowledge a publish")
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Collector:
    """An on_delivery callback that records deliveries and optionally acks them at once."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        self.source: MqttSource | None = None
        self.auto_ack = True

    def __call__(self, d: Delivery) -> None:
        with self.lock:
            self.deliveries.append(d)
        if self.auto_ack and self.source is not None:
            self.source.ack([d])

    @property
    def payloads(self) -> list[bytes]:
        with self.lock:
            return [d.payload for d in self.deliveries]

    def wait_for(self, n: int, timeout: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.payloads) >= n:
                break
            time.sleep(0.02)
        return self.payloads


def settings(host: str, port: int, client_id: str = "svc", **kw: object) -> MqttSettings:
    defaults: dict[str, object] = {"subscriptions": (("hj212/+", 1),), "reconnect_max_s": 2.0}
    defaults.update(kw)
    return MqttSettings(host=host, port=port, client_id=client_id, **defaults)  # type: ignore[arg-type]


def start_source(s: MqttSettings, collector: Collector, timeout: float = 10.0) -> MqttSource:
    source = MqttSource(s, collector)
    collector.source = source
    source.start()
    if not source.wait_connected(timeout):
        raise TimeoutError(f"could not connect: {source.last_error}")
    time.sleep(0.2)  # let the SUBACK arrive
    return source
