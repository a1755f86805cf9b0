"""The generic webhook against a real local HTTP server."""

from __future__ import annotations

import json
import time
from contextlib import closing

import pytest

from alerts.channels import DeliveryError, WebhookChannel, verify_signature
from alerts.channels.webhook import sign
from tests.alerts.channels.receiver import Receiver
from tests.alerts.channels.samples import (
    closed_port,
    event_document,
    notification,
    send_error,
    timed_send_error,
)

SECRET = "s3cret-签名"


@pytest.mark.integration
def test_delivers_the_event_as_signed_json():
    n = notification()
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url, secret=SECRET)) as ch:
        before = int(time.time())
        ch.send(n)
        after = int(time.time())
        [req] = rx.requests
    assert req.method == "POST"
    assert req.path == "/hook"
    assert req.header("Content-Type") == "application/json; charset=utf-8"
    assert req.header("Idempotency-Key") == n.key
    assert req.header("X-Nonsite-Event") == "case.opened"
    timestamp = req.header("X-Nonsite-Timestamp")
    assert timestamp is not None
    assert before <= int(timestamp) <= after
    assert req.json() == event_document(n)
    # Chinese is sent as UTF-8, not as \u escapes.
    assert "颗粒物".encode() in req.body
    assert b"\\u" not in req.body
    signature = req.header("X-Nonsite-Signature")
    assert signature is not None
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, timestamp, req.body, signature)
    assert verify_signature(SECRET, int(timestamp), req.body, signature)


@pytest.mark.integration
def test_without_secret_no_signature_and_null_status():
    n = notification(status=None)
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        ch.send(n)
        [req] = rx.requests
    assert req.header("X-Nonsite-Signature") is None
    assert req.json()["status"] is None


@pytest.mark.integration
def test_configured_headers_are_sent_but_cannot_override_ours():
    headers = {
        "Authorization": "Bearer t0ken",
        "content-type": "text/plain",
        "idempotency-key": "x",
    }
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url, headers=headers)) as ch:
        ch.send(notification())
        [req] = rx.requests
    assert req.header("Authorization") == "Bearer t0ken"
    assert req.header("Content-Type") == "application/json; charset=utf-8"
    assert req.header("Idempotency-Key") == "case-42-event-7-hook"


@pytest.mark.integration
def test_the_same_notification_twice_carries_the_same_key():
    n = notification()
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        ch.send(n)
        ch.send(n)
        first, second = rx.requests
    assert first.header("Idempotency-Key") == second.header("Idempotency-Key") == n.key


def test_verify_signature_rejects_tampering():
    body = json.dumps({"a": "甲"}, ensure_ascii=False).encode()
    good = sign(SECRET, 1700000000, body)
    assert verify_signature(SECRET, 1700000000, body, good)
    assert verify_signature(SECRET, "1700000000", body, good)
    assert not verify_signature(SECRET, 1700000001, body, good)  # replayed under a new time
    assert not verify_signature(SECRET, 1700000000, body + b" ", good)
    assert not verify_signature("other", 1700000000, body, good)
    assert not verify_signature(SECRET, 1700000000, body, good.removeprefix("sha256="))
    assert not verify_signature(SECRET, 1700000000, body, None)
    assert not verify_signature(SECRET, 1700000000, body, "")
    assert not verify_signature(SECRET, 1700000000, body, "sha256=非十六进制")


@pytest.mark.integration
@pytest.mark.parametrize("status", [201, 202, 204])
def test_any_2xx_is_delivered(status):
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        rx.respond(status)
        ch.send(notification())
        assert len(rx.requests) == 1


@pytest.mark.integration
@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425, 429])
def test_server_errors_and_throttling_are_retryable(status):
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        rx.respond(status, "稍后再试")
        err = send_error(ch)
    assert err.retryable
    assert str(status) in err.detail
    assert "稍后再试" in err.detail


@pytest.mark.integration
@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 301])
def test_other_client_errors_are_permanent(status):
    body = "错" * 150 + "X" * 150  # 300 characters: the detail keeps the first 200
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        rx.respond(status, body)
        err = send_error(ch)
    assert not err.retryable
    assert f"HTTP {status}" in err.detail
    assert body[:200] in err.detail
    assert body[:201] not in err.detail


@pytest.mark.integration
def test_connection_refused_is_retryable():
    ch = WebhookChannel("hook", f"http://127.0.0.1:{closed_port()}/hook")
    with closing(ch):
        err = send_error(ch)
    assert err.retryable


@pytest.mark.integration
def test_a_server_slower_than_the_timeout_is_retryable_after_the_timeout():
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url, timeout_s=0.5)) as ch:
        rx.respond(200, delay_s=5.0)
        err, elapsed = timed_send_error(ch)
        assert len(rx.requests) == 1  # it did arrive; the answer came too late
    assert err.retryable
    assert "timed out" in err.detail
    assert 0.4 < elapsed < 2.0


@pytest.mark.integration
def test_the_channel_recovers_after_failures():
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        rx.respond(503)
        with pytest.raises(DeliveryError):
            ch.send(notification())
        rx.respond(200)
        ch.send(notification())
        assert [r.status for r in rx.requests] == [503, 200]


@pytest.mark.integration
def test_a_payload_that_is_not_json_fails_permanently_without_sending():
    with Receiver() as rx, closing(WebhookChannel("hook", rx.url)) as ch:
        for payload in ({"when": object()}, {"value": float("nan")}):
            with pytest.raises(DeliveryError) as err:
                ch.send(notification(payload=payload))
            assert not err.value.retryable
        assert rx.requests == []


@pytest.mark.parametrize(
    "url", ["", "not a url", "ftp://example.cn/hook", "http://", "//example.cn/hook"]
)
def test_bad_urls_are_refused_at_construction(url):
    with pytest.raises(ValueError):
        WebhookChannel("hook", url)


@pytest.mark.parametrize("timeout_s", [0, -1, float("nan"), float("inf")])
def test_bad_timeouts_are_refused_at_construction(timeout_s):
    with pytest.raises(ValueError):
        WebhookChannel("hook", "http://127.0.0.1/hook", timeout_s=timeout_s)
