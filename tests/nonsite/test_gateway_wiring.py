"""The gateway's settings from the configuration: where it publishes, where commands come
from, and its own broker login in MQTT 5 (a refused publish must be seen as refused)."""

from __future__ import annotations

from nonsite.config.load import parse_config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.wiring import build_gateway_mqtt_settings, build_gateway_settings


def config(**sections: dict) -> object:
    return parse_config(sections, "test.toml", env={})


def test_its_own_login_keeps_the_configured_protocol():
    c = config(
        mqtt={"url": "mqtt://nonsite:a@broker:1883"},
        tcp={"listen": "0.0.0.0:9212", "mqtt_url": "mqtts://nonsite-gateway:g@broker:8883"},
    )
    s = build_gateway_mqtt_settings(c)  # type: ignore[arg-type]
    assert (s.host, s.port, s.username, s.password, s.tls) == (
        "broker", 8883, "nonsite-gateway", "g", True
    )  # fmt: skip
    assert s.protocol == "5" and s.client_id == "nonsite-gateway"
    embedded = build_gateway_mqtt_settings(c, parse_broker_url("mqtt://127.0.0.1:1999"))  # type: ignore[arg-type]
    assert embedded.protocol == "3.1.1" and embedded.port == 1999


def test_topics_follow_the_subscription_and_the_reply_topic():
    c = config(
        mqtt={
            "subscriptions": [
                {"kind": "power", "filter": "power/+"},
                {"kind": "hj212", "filter": "$share/g/site/hj212/+"},
            ],
            "reply_topic": "site/hj212/{mn}/down",
        },
        tcp={"listen": "127.0.0.1:0"},
    )
    s = build_gateway_settings(c)  # type: ignore[arg-type]
    assert s.data_topic == "site/hj212/{sender}"
    assert s.command_filter == "site/hj212/+/down"
    assert (s.host, s.port) == ("127.0.0.1", 0)
