"""Publishing simulated traffic: simulated time runs ``speed`` times faster than the wall
clock (or as fast as the broker takes it), messages go out at QoS 1 in order."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from nonsite.config.mqtt_url import BrokerUrl
from nonsite.simulator.traffic import LOST_PREFIX, FleetTraffic, Message

log = logging.getLogger(__name__)


@dataclass
class Progress:
    sim_time: int
    messages: int


class MessageSink(Protocol):
    """Where simulated messages go: MQTT (Publisher), or MQTT and TCP (tcp_fleet)."""

    def publish(self, messages: Iterable[Message]) -> int: ...

    def close(self) -> None: ...


class Publisher:
    def __init__(self, broker: BrokerUrl, client_id: str = "nonsite-simulator") -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(1000)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, messages: Iterable[Message]) -> int:
        infos = [
            self.client.publish(topic, payload, qos=1)
            for topic, payload in messages
            if not topic.startswith(LOST_PREFIX)  # lost on the way: never sent
        ]
        for info in infos:
            info.wait_for_publish(30)
        return len(infos)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run(
    traffic: FleetTraffic,
    publisher: Publisher,
    *,
    start: int,
    speed: float | None,
    duration_s: float | None = None,
    until: int | None = None,
    stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Publish minute after minute of simulated time from ``start``. With ``speed``, a
    simulated minute takes 60/speed wall seconds; without, as fast as the broker takes it.
    Ends after ``duration_s`` wall seconds, at simulated time ``until``, or when ``stop()``."""
    wall0 = time.monotonic()
    t = start - start % 60
    sent = 0
    while not stop():
        if until is not None and t >= until:
            break
        if duration_s is not None and time.monotonic() - wall0 >= duration_s:
            break
        sent += publisher.publish(traffic.frames(t))
        t += 60
        progress = Progress(t, sent)
        if on_progress is not None:
            on_progress(progress)
        if speed:
            due = wall0 + (t - start) / speed
            time.sleep(max(0.0, due - time.monotonic()))
    return Progress(t, sent)
