"""Building channels from plain configuration mappings."""

from __future__ import annotations

from contextlib import closing

import pytest

from alerts.channels import (
    DingTalkChannel,
    MqttChannel,
    SmtpChannel,
    WebhookChannel,
    WeComChannel,
    build_channel,
    verify_signature,
)
from tests.alerts.channels.receiver import Receiver
from tests.alerts.channels.samples import notification

SPECS = [
    (
        {
            "name": "brigade-hook",
            "kind": "webhook",
            "url": "https://hook.example.cn/x",
            "secret": "s",
        },
        WebhookChannel,
    ),
    (
        {
            "name": "ding",
            "kind": "dingtalk",
            "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
            "secret": "SECx",
            "at_mobiles": ["13800001111"],
            "timeout_s": 5,
        },
        DingTalkChannel,
    ),
    (
        {
            "name": "wecom",
            "kind": "wecom",
            "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            "mentioned_mobiles": ["13800001111"],
        },
        WeComChannel,
    ),
    (
        {
            "name": "mail",
            "kind": "smtp",
            "host": "smtp.example.cn",
            "port": 465,
            "sender": "nonsite@example.cn",
            "recipients": ["duty@example.cn"],
            "username": "nonsite",
            "password": "pw",
            "ssl": True,
        },
        SmtpChannel,
    ),
    (
        {"name": "bus", "kind": "mqtt", "host": "127.0.0.1", "port": 1883, "topic_prefix": "city"},
        MqttChannel,
    ),
]


@pytest.mark.parametrize(("spec", "cls"), SPECS, ids=[s["kind"] for s, _ in SPECS])
def test_builds_each_kind(spec, cls):
    with closing(build_channel(spec)) as channel:
        assert isinstance(channel, cls)
        assert channel.name == spec["name"]
        assert channel.kind == spec["kind"]


def test_options_reach_the_channel():
    with closing(build_channel(SPECS[1][0])) as ding:
        assert isinstance(ding, DingTalkChannel)
        assert ding.at_mobiles == ("13800001111",)
        assert ding.timeout_s == 5.0
    with closing(build_channel(SPECS[4][0])) as bus:
        assert isinstance(bus, MqttChannel)
        assert bus.event_topic("E1") == "city/events/E1"
        assert bus.timeout_s == 10.0  # the default


@pytest.mark.integration
def test_a_built_webhook_delivers():
    with (
        Receiver() as rx,
        closing(
            build_channel({"name": "hook", "kind": "webhook", "url": rx.url, "secret": "s"})
        ) as channel,
    ):
        channel.send(notification())
        [req] = rx.requests
    assert verify_signature(
        "s", req.header("X-Nonsite-Timestamp"), req.body, req.header("X-Nonsite-Signature")
    )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"name": "x", "kind": "fax", "url": "http://a"}, ["'x'", "'fax'", "webhook"]),
        ({"name": "x", "url": "http://a"}, ["'x'", "None"]),
        ({"name": "x", "kind": "webhook"}, ["'x'", "missing url"]),
        ({"name": "m", "kind": "smtp", "host": "h", "port": 25}, ["'m'", "sender", "recipients"]),
        ({"name": "x", "kind": "webhook", "url": "http://a", "secert": "s"}, ["'x'", "secert"]),
        ({"name": "x", "kind": "webhook", "url": "ftp://a"}, ["'x'", "ftp://a"]),
        ({"name": "x", "kind": "webhook", "url": "http://a", "timeout_s": "soon"}, ["'x'"]),
        ({"name": "x", "kind": "wecom", "url": "http://a", "mentioned_mobiles": "138"}, ["'x'"]),
        (
            {
                "name": "m",
                "kind": "smtp",
                "host": "h",
                "port": 25,
                "sender": "a@b",
                "recipients": ["c@d"],
                "ssl": True,
                "starttls": True,
            },
            ["'m'", "starttls"],
        ),
    ],
)
def test_bad_specs_name_the_channel_and_the_problem(spec, words):
    with pytest.raises(ValueError) as err:
        build_channel(spec)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("name", [None, "", 7])
def test_a_channel_needs_a_name(name):
    spec = {"kind": "webhook", "url": "http://a"}
    if name is not None:
        spec["name"] = name
    with pytest.raises(ValueError, match="name"):
        build_channel(spec)
