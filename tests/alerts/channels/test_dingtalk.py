"""The DingTalk group robot against a real local HTTP server standing in for oapi.dingtalk.com."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from contextlib import closing

import pytest

from alerts.channels import DingTalkChannel
from alerts.channels.dingtalk import dingtalk_sign
from tests.alerts.channels.receiver import Receiver
from tests.alerts.channels.samples import closed_port, notification, send_error

TOKEN = "0123456789abcdef"
SECRET = "SEC0123456789abcdef0123456789abcdef"
OK = {"errcode": 0, "errmsg": "ok"}


def robot(rx: Receiver, **kw) -> DingTalkChannel:
    rx.respond(200, OK)
    return DingTalkChannel("ding", f"{rx.url}?access_token={TOKEN}", **kw)


def test_sign_matches_a_published_vector():
    # Test vector of an independent implementation (the Rust crate dingding's signature.rs).
    assert (
        dingtalk_sign("secret", 1700000000000)
        == "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
    )


@pytest.mark.integration
def test_delivers_a_signed_markdown_message():
    n = notification()
    with Receiver() as rx, closing(robot(rx, secret=SECRET)) as ch:
        before = time.time_ns() // 1_000_000
        ch.send(n)
        after = time.time_ns() // 1_000_000
        [req] = rx.requests
    assert req.header("Content-Type") == "application/json; charset=utf-8"
    query = req.query
    assert query["access_token"] == [TOKEN]
    [timestamp] = query["timestamp"]
    assert before <= int(timestamp) <= after
    # Recompute per DingTalk's documentation: HmacSHA256(secret, ts + "\n" + secret),
    # Base64, then URL-encoded.
    digest = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(digest).decode()]
    raw_sign = dict(p.split("=", 1) for p in req.raw_query.split("&"))["sign"]
    assert raw_sign == urllib.parse.quote_plus(base64.b64encode(digest))
    assert req.json() == {
        "msgtype": "markdown",
        "markdown": {"title": n.title, "text": f"{n.text}\n\n> 编号 {n.key}"},
        "at": {"atMobiles": [], "isAtAll": False},
    }


@pytest.mark.integration
def test_without_secret_the_url_is_left_alone():
    with Receiver() as rx, closing(robot(rx)) as ch:
        ch.send(notification())
        [req] = rx.requests
    assert req.query == {"access_token": [TOKEN]}


@pytest.mark.integration
def test_mentions_are_listed_and_written_into_the_text_before_the_key_line():
    n = notification()
    mobiles = ["13800001111", "13900002222"]
    with Receiver() as rx, closing(robot(rx, at_mobiles=mobiles)) as ch:
        ch.send(n)
        [req] = rx.requests
    body = req.json()
    assert body["at"] == {"atMobiles": mobiles, "isAtAll": False}
    text = body["markdown"]["text"]
    assert "@13800001111 @13900002222" in text
    assert text.endswith(f"\n\n> 编号 {n.key}")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("errcode", "retryable"),
    [
        (130101, True),  # send too fast, exceed 20 times per minute
        (410100, True),
        (-1, True),  # 系统繁忙
        (310000, False),  # sign not match / keywords not in content
        (300001, False),  # token is not exist
        (400102, False),  # robot stopped
    ],
)
def test_errcodes_decide_retrying(errcode, retryable):
    with Receiver() as rx, closing(robot(rx, secret=SECRET)) as ch:
        rx.respond(200, {"errcode": errcode, "errmsg": "refused"})
        err = send_error(ch)
    assert err.retryable is retryable
    assert str(errcode) in err.detail
    assert TOKEN not in err.detail  # the access token is a credential


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (429, True), (400, False), (404, False)]
)
def test_http_errors_as_for_the_webhook(status, retryable):
    with Receiver() as rx, closing(robot(rx)) as ch:
        rx.respond(status, "<html>gateway</html>")
        err = send_error(ch)
    assert err.retryable is retryable
    assert TOKEN not in err.detail


@pytest.mark.integration
@pytest.mark.parametrize("body", ["<html>portal</html>", {"errmsg": "no code"}, {"errcode": "0"}])
def test_a_2xx_that_is_not_a_robot_reply_is_retryable(body):
    with Receiver() as rx, closing(robot(rx)) as ch:
        rx.respond(200, body)
        err = send_error(ch)
    assert err.retryable


@pytest.mark.integration
def test_connection_refused_and_slow_servers_are_retryable():
    url = f"http://127.0.0.1:{closed_port()}/robot/send?access_token={TOKEN}"
    with closing(DingTalkChannel("ding", url)) as ch:
        err = send_error(ch)
        assert err.retryable
    with Receiver() as rx, closing(robot(rx, timeout_s=0.5)) as ch:
        rx.respond(200, OK, delay_s=5.0)
        start = time.monotonic()
        err = send_error(ch)
        assert err.retryable
        assert time.monotonic() - start < 2.0


def test_at_mobiles_must_be_a_list():
    with pytest.raises(ValueError):
        DingTalkChannel(
            "ding", "https://oapi.dingtalk.com/robot/send?access_token=x", at_mobiles="138"
        )
