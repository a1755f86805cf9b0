"""Every change as an MQTT event, and each enterprise's status retained, through the outbox."""

import json
import threading

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa

from alerts.channels.mqtt import MqttChannel
from alerts.outbox import Dispatcher
from alerts.schema import cases
from alerts.status import enterprise_status
from alerts.workflow import Actor
from tests.alerts.conftest import finding

pytestmark = pytest.mark.integration


def retained_status(broker, topic: str) -> dict:
    got: list[dict] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):
        got.append({"retain": msg.retain, **json.loads(msg.payload)})
        done.set()

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert done.wait(5), "no retained status"
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_follows_the_cases_and_stays_retained(store, book, clock, mosquitto):
    channel = MqttChannel("mqtt", mosquitto.host, mosquitto.port, topic_prefix="alerts")
    d = Dispatcher(store, {"mqtt": channel}, clock=clock, status_of=enterprise_status)
    try:
        with store.begin() as conn:
            book.apply(conn, [finding("B2", tier="warning", limit=None)])
        d.run_once()
        status = retained_status(mosquitto, "alerts/status/E1")
        assert (status["retain"], status["status"], status["status_zh"]) == (
            True,
            "warning",
            "预警",
        )
        with store.begin() as conn:
            book.apply(conn, [finding()])  # an alarm on top
        d.run_once()
        status = retained_status(mosquitto, "alerts/status/E1")
        assert (status["status_zh"], status["open_alarms"], status["open_warnings"]) == (
            "报警",
            1,
            1,
        )
        with store.begin() as conn:
            book.apply(
                conn,
                [
                    finding(state="clear", hour=1),
                    finding("B2", "clear", "warning", hour=1, limit=None),
                ],
            )
        d.run_once()
        # The warning resolved; the alarm ended but stays open until the monitoring centre
        # decides on it (an exceedance that has ended is still to be verified).
        status = retained_status(mosquitto, "alerts/status/E1")
        assert (status["status_zh"], status["open_alarms"], status["open_warnings"]) == (
            "报警",
            1,
            0,
        )
        with store.begin() as conn:
            alarm = conn.execute(
                sa.select(cases.c.id).where(cases.c.open_key.is_not(None))
            ).scalar_one()
            book.act(
                conn,
                alarm,
                "verify",
                Actor("监测中心", "monitor"),
                outcome="false_positive",
                note="标定误差",
            )
        d.run_once()
        assert retained_status(mosquitto, "alerts/status/E1")["status_zh"] == "正常"
    finally:
        channel.close()
