"""The MQTT channel against a real Mosquitto (the ``mosquitto`` fixture)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.channels import DeliveryError, MqttChannel
from tests.alerts.channels.samples import (
    closed_port,
    event_document,
    notification,
    send_error,
    timed_send_error,
)
from tests.brokers import Mosquitto


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    user_properties: dict[str, str]

    def json(self):
        return json.loads(self.payload)


class Subscriber:
    """A separate MQTT 5 client that records what arrives on a topic filter."""

    def __init__(self, broker: Mosquitto, topic_filter: str) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe(topic_filter, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "no SUBACK"

    def _on_message(self, _client, _userdata, message) -> None:
        props = getattr(message.properties, "UserProperty", None) or []
        with self._lock:
            self.messages.append(
                Received(
                    message.topic, message.payload, bool(message.retain), message.qos, dict(props)
                )
            )

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= n:
                    break
            time.sleep(0.01)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.integration
def test_publishes_the_event_and_retains_the_status(mosquitto):
    n = notification()
    with (
        closing(Subscriber(mosquitto, "alerts/#")) as sub,
        closing(MqttChannel("bus", mosquitto.host, mosquitto.port, timeout_s=5)) as ch,
    ):
        ch.send(n)
        received = {m.topic: m for m in sub.wait_for(2)}
    event = received[f"alerts/events/{n.enterprise_id}"]
    assert event.json() == event_document(n)
    assert event.qos == 1
    assert event.user_properties == {"key": n.key}
    assert not event.retain
    status = received[f"alerts/status/{n.enterprise_id}"]
    assert status.json() == n.status
    assert status.user_properties == {"key": n.key}

    # A subscriber that arrives later gets the retained status, and no event.
    with closing(Subscriber(mosquitto, "alerts/#")) as late:
        [retained] = late.wait_for(1)
        time.sleep(0.2)
        assert len(late.messages) == 1
    assert retained.topic == f"alerts/status/{n.enterprise_id}"
    assert retained.retain
    assert retained.json() == n.status
    assert retained.user_properties == {"key": n.key}


@pytest.mark.integration
def test_without_status_only_the_event_is_published(mosquitto):
    with (
        closing(Subscriber(mosquitto, "city/#")) as sub,
        closing(MqttChannel("bus", mosquitto.host, mosquitto.port, topic_prefix="city/")) as ch,
    ):
        ch.send(notification(status=None, key="k-1"))
        ch.send(notification(status=None, key="k-2"))  # the connection is reused
        messages = sub.wait_for(2)
        time.sleep(0.2)
    assert [m.topic for m in messages] == ["city/events/91330100MA2B0001X"] * 2
    assert [m.user_properties["key"] for m in messages] == ["k-1", "k-2"]


@pytest.mark.integration
def test_a_stopped_broker_is_retryable_within_the_timeout_and_the_channel_reconnects(mosquitto):
    with (
        closing(Subscriber(mosquitto, "alerts/events/#")) as sub,
        closing(MqttChannel("bus", mosquitto.host, mosquitto.port, timeout_s=1.0)) as ch,
    ):
        ch.send(notification(key="before"))
        assert len(sub.wait_for(1)) == 1
        mosquitto.stop(kill=True)
        start = time.monotonic()
        with pytest.raises(DeliveryError) as err:
            ch.send(notification(key="during"))
        elapsed = time.monotonic() - start
        assert err.value.retryable
        assert elapsed < 2.5
        mosquitto.start()
        # The subscriber's own reconnect is not this test's business: check with a new one.
    with (
        closing(Subscriber(mosquitto, "alerts/events/#")) as sub,
        closing(ch),
    ):
        ch.send(notification(key="after"))
        [after] = sub.wait_for(1)
    assert after.user_properties == {"key": "after"}


@pytest.mark.integration
def test_a_connection_dropped_between_sends_is_restored_for_the_next(mosquitto):
    with closing(MqttChannel("bus", mosquitto.host, mosquitto.port, timeout_s=5)) as ch:
        ch.send(notification(key="first"))
        mosquitto.restart()  # between notifications: no send fails
        with closing(Subscriber(mosquitto, "alerts/events/#")) as sub:
            ch.send(notification(key="second"))
            [second] = sub.wait_for(1)
    assert second.user_properties == {"key": "second"}


@pytest.mark.integration
def test_no_broker_at_all_is_retryable_after_the_timeout():
    with closing(MqttChannel("bus", "127.0.0.1", closed_port(), timeout_s=0.5)) as ch:
        err, elapsed = timed_send_error(ch)
    assert err.retryable
    assert 0.4 < elapsed < 1.5
    assert "not connected" in err.detail


@pytest.mark.integration
def test_a_publish_the_broker_denies_is_permanent(tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("topic read alerts/#\n")  # anonymous clients may read, not write
    broker = Mosquitto(tmp_path / "broker", extra_conf=f"acl_file {acl}\n")
    broker.start()
    try:
        ch = MqttChannel("bus", broker.host, broker.port, timeout_s=5)
        with closing(ch):
            err = send_error(ch)
        assert not err.retryable
        assert "Not authorized" in err.detail
    finally:
        broker.stop(kill=True)


@pytest.mark.integration
def test_refused_credentials_are_permanent(tmp_path):
    broker = Mosquitto(tmp_path / "broker", extra_conf="")
    # Replace anonymous access with a password file nobody is in.
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    broker.conf.write_text(
        broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        + f"password_file {passwords}\n"
    )
    broker.start()
    try:
        ch = MqttChannel("bus", broker.host, broker.port, username="u", password="p", timeout_s=5)
        with closing(ch):
            start = time.monotonic()
            err = send_error(ch)
        assert not err.retryable
        assert time.monotonic() - start < 3  # refused at once, not after the timeout
    finally:
        broker.stop(kill=True)


@pytest.mark.parametrize("enterprise_id", ["", "a/b", "a+", "#"])
def test_an_enterprise_id_that_is_not_a_topic_level_is_permanent(enterprise_id):
    # Refused before any connection is attempted: no broker needed.
    ch = MqttChannel("bus", "127.0.0.1", closed_port())
    with closing(ch), pytest.raises(DeliveryError) as err:
        ch.send(notification(enterprise_id=enterprise_id))
    assert not err.value.retryable


@pytest.mark.parametrize("prefix", ["", "/", "alerts/+", "a/#"])
def test_bad_topic_prefixes_are_refused_at_construction(prefix):
    with pytest.raises(ValueError):
        MqttChannel("bus", "127.0.0.1", 1883, topic_prefix=prefix)
