"""The [alerts] configuration: deadlines, channels, brigades and routing, and its errors."""

from datetime import date
from pathlib import Path

import pytest

from nonsite.alert_wiring import build_alert_policy, build_channels, build_routes, channel_spec
from nonsite.config import ConfigError, load_config
from nonsite.config.load import parse_config

EXAMPLE = Path(__file__).parents[2] / "deploy" / "nonsite.example.toml"


def config(alerts=None, brigades=(), enterprise=None):
    data = {
        "alerts": alerts or {},
        "brigades": list(brigades),
        "enterprises": [{"id": "E1", "name": "甲", **(enterprise or {})}],
    }
    return parse_config(data, "test.toml", env={})


def problems(**kw) -> str:
    with pytest.raises(ConfigError) as err:
        config(**kw)
    return str(err.value)


def test_example_configuration_routes_to_its_channels():
    c = load_config(EXAMPLE)
    routes = build_routes(c)
    assert routes.every_change == ("status-mqtt",)
    assert routes.supervisors == ("supervision-dingtalk",)
    assert routes.enterprises["E001"] == ("e001-wecom",)
    assert routes.brigades["B01"] == ("brigade1-system",)
    policy = build_alert_policy(c)
    assert policy.enterprise("E001").positive_list and policy.enterprise("E001").brigade == "B01"
    assert policy.enterprise("E001").source_names["DA001"] == "1号机组脱硫塔出口"
    assert policy.calendar.is_working_day(date(2027, 2, 20))  # 调休
    with pytest.raises(ValueError, match="status-mqtt"):
        build_channels(c)  # no broker URL: the service passes its embedded broker's
    served = c.model_copy(update={"mqtt": c.mqtt.model_copy(update={"url": "mqtt://127.0.0.1:1"})})
    channels = build_channels(served)
    try:
        assert {n: ch.kind for n, ch in channels.items()} == {
            "status-mqtt": "mqtt",
            "supervision-dingtalk": "dingtalk",
            "brigade1-system": "webhook",
            "e001-wecom": "wecom",
            "e002-mail": "smtp",
        }
    finally:
        for ch in channels.values():
            ch.close()


def test_an_mqtt_channel_without_a_host_publishes_to_the_services_broker():
    c = parse_config(
        {
            "mqtt": {"url": "mqtts://svc:pw@broker.example:8883"},
            "alerts": {"channels": [{"name": "m", "kind": "mqtt"}]},
        },
        "test.toml",
        env={},
    )
    spec = channel_spec(c.alerts.channels[0], c)
    assert (spec["host"], spec["port"], spec["tls"], spec["username"]) == (
        "broker.example",
        8883,
        True,
        "svc",
    )


def test_a_channel_missing_its_url_names_the_entry():
    text = problems(alerts={"channels": [{"name": "hook", "kind": "webhook"}]})
    assert "test.toml" in text and "alerts.channels[0]" in text and "needs url" in text


def test_smtp_needs_a_sender_and_recipients():
    text = problems(alerts={"channels": [{"name": "m", "kind": "smtp", "host": "h"}]})
    assert "sender" in text and "recipients" in text


def test_routes_must_name_configured_channels_and_brigades():
    text = problems(
        alerts={"supervisors": ["nope"], "channels": [{"name": "x", "kind": "mqtt"}]},
        brigades=[{"id": "B1", "name": "一大队", "notify": ["missing"]}],
        enterprise={"notify": ["ghost"], "brigade": "B9"},
    )
    assert "alerts.supervisors[0]" in text and "'nope' is not a channel" in text
    assert 'brigades[0] (id "B1").notify[0]' in text and "'missing'" in text
    assert 'enterprises[0] (id "E1").notify[0]' in text and "'ghost'" in text
    assert 'enterprises[0] (id "E1").brigade' in text and "'B9' is not a brigade" in text


def test_duplicate_channel_names_and_brigade_ids_are_refused():
    text = problems(
        alerts={"channels": [{"name": "x", "kind": "mqtt"}, {"name": "x", "kind": "mqtt"}]},
        brigades=[{"id": "B1", "name": "a"}, {"id": "B1", "name": "b"}],
    )
    assert "channel name already used" in text and "duplicate brigade id" in text


def test_deadline_settings_are_validated():
    text = problems(alerts={"feedback_working_days": 0, "holidays": ["not-a-date"]})
    assert "feedback_working_days" in text and "holidays" in text
