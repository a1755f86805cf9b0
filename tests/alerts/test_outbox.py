"""The outbox dispatcher against a real local HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from alerts.channels.webhook import WebhookChannel
from alerts.outbox import Dispatcher, OutboxMetrics
from alerts.schema import outbox
from alerts.status import enterprise_status
from tests.alerts.channels.receiver import Receiver
from tests.alerts.conftest import finding

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def rows(store):
    with store.connect() as conn:
        return conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()


def dispatcher(store, receiver, clock, **kw):
    hook = WebhookChannel("supervisors-hook", receiver.url, secret="s3cret", timeout_s=2)
    channels = {"supervisors-hook": hook}
    registry = CollectorRegistry()
    d = Dispatcher(
        store,
        channels,
        clock=clock,
        status_of=enterprise_status,
        metrics=OutboxMetrics(registry),
        **kw,
    )
    return d, registry


def open_alarm(store, book):
    with store.begin() as conn:
        [cid] = book.apply(conn, [finding()]).opened
    return cid


def test_each_queued_notification_is_delivered_once_and_audited(store, book, clock, receiver):
    cid = open_alarm(store, book)
    d, registry = dispatcher(store, receiver, clock)
    assert d.run_once() == 2  # supervisors-hook and the unconfigured "mqtt" channel
    assert d.run_once() == 0
    [req] = receiver.requests
    body = req.json()
    assert body["event"] == "case.opened" and body["payload"]["case"]["id"] == cid
    assert req.header("Idempotency-Key") == f"case-{cid}-event-1-supervisors-hook"
    assert "华能示范电厂" in body["title"] and "限值 100 mg/m³" in body["text"]
    assert body["status"]["status"] == "alarm"
    states = {r.channel: (r.state, r.attempts) for r in rows(store)}
    assert states == {"supervisors-hook": ("delivered", 1), "mqtt": ("dead", 1)}
    with store.connect() as conn:
        notes = [e["note"] for e in book.events(conn, cid) if e["action"] == "notify"]
    assert notes[0] == "mqtt: dead (no channel named 'mqtt' is configured)"
    assert notes[1] == "supervisors-hook: delivered"
    assert (
        registry.get_sample_value(
            "nonsite_notifications_total", {"kind": "webhook", "outcome": "delivered"}
        )
        == 1
    )


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(store, book, clock, receiver):
    open_alarm(store, book)
    d, registry = dispatcher(store, receiver, clock, retry_base_s=10)
    receiver.respond(503, "busy")
    d.run_once()
    hook = next(r for r in rows(store) if r.channel == "supervisors-hook")
    assert (hook.state, hook.attempts) == ("pending", 1) and "503" in hook.last_error
    assert d.run_once() == 0  # not due yet
    clock.advance(seconds=13)  # 10 s ± 20 %
    receiver.respond(200)
    d.run_once()
    hook = next(r for r in rows(store) if r.channel == "supervisors-hook")
    assert (hook.state, hook.attempts) == ("delivered", 2)
    keys = {r.header("Idempotency-Key") for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(keys) == 1  # the same key on every attempt
    assert (
        registry.get_sample_value(
            "nonsite_notifications_total", {"kind": "webhook", "outcome": "retry"}
        )
        == 1
    )


def test_a_refusal_or_too_many_attempts_is_dead_and_counted(store, book, clock, receiver):
    open_alarm(store, book)
    d, registry = dispatcher(store, receiver, clock, max_attempts=2, retry_base_s=1)
    receiver.respond(500)
    d.run_once()
    clock.advance(seconds=5)
    d.run_once()
    hook = next(r for r in rows(store) if r.channel == "supervisors-hook")
    assert (hook.state, hook.attempts) == ("dead", 2)
    open_alarm_b = finding(source="DA002")
    with store.begin() as conn:
        book.apply(conn, [open_alarm_b])
    receiver.respond(400, "bad token")
    d.run_once()
    dead = [r for r in rows(store) if r.channel == "supervisors-hook" and r.state == "dead"]
    assert len(dead) == 2 and dead[1].attempts == 1  # not retried: retrying cannot help
    assert (
        registry.get_sample_value(
            "nonsite_notifications_total", {"kind": "webhook", "outcome": "dead"}
        )
        == 2
    )
    assert registry.get_sample_value("nonsite_outbox_pending") == 0


def test_backoff_grows_exponentially_to_a_cap(store, receiver, clock):
    d, _ = dispatcher(store, receiver, clock, retry_base_s=5, retry_max_s=60)
    assert [round(d.backoff(n) / b, 1) <= 1.2 for n, b in ((1, 5), (2, 10), (5, 60))] == [True] * 3
    assert 48 <= d.backoff(10) <= 72
