"""The outbox dispatcher against a real local HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time

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


def webhook_notifications(registry: CollectorRegistry, outcome: str) -> float | None:
    """``nonsite_notifications_total`` of the webhook channels with ``outcome``."""
    labels = {"kind": "webhook", "outcome": outcome}
    return registry.get_sample_value("nonsite_notifications_total", labels)


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
        notified = [e for e in book.events(conn, cid) if e["action"] == "notify"]
    # the note in Chinese (the trail is read on Chinese pages), the channel and error in refs
    assert [(e["note"], e["refs"]["channel"]) for e in notified] == [
        ("多次发送失败，已停止重试", "mqtt"),
        ("已送达", "supervisors-hook"),
    ]
    assert notified[0]["refs"]["detail"] == "no channel named 'mqtt' is configured"
    assert webhook_notifications(registry, "delivered") == 1


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
    assert webhook_notifications(registry, "retry") == 1


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
    assert webhook_notifications(registry, "dead") == 2
    assert registry.get_sample_value("nonsite_outbox_pending") == 0


def test_backoff_grows_exponentially_to_a_cap(store, receiver, clock):
    d, _ = dispatcher(store, receiver, clock, retry_base_s=5, retry_max_s=60)
    assert [round(d.backoff(n) / b, 1) <= 1.2 for n, b in ((1, 5), (2, 10), (5, 60))] == [True] * 3
    assert 48 <= d.backoff(10) <= 72


def run_in_thread(d):
    """The dispatcher as the service runs it: ``run(stop)`` in a thread of its own."""
    stop = threading.Event()
    thread = threading.Thread(target=d.run, args=(stop,), kwargs={"idle_s": 0.1}, daemon=True)
    thread.start()

    def halt():
        stop.set()
        d.wake.set()
        thread.join(10)
        assert not thread.is_alive()

    return halt


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_run_sends_each_channel_on_its_own_and_an_unconfigured_one_goes_dead(
    store, book, clock, receiver
):
    d, registry = dispatcher(store, receiver, clock)
    halt = run_in_thread(d)
    try:
        cid = open_alarm(store, book)
        d.wake.set()
        assert wait_until(lambda: {r.state for r in rows(store)} == {"delivered", "dead"})
        assert wait_until(lambda: registry.get_sample_value("nonsite_outbox_pending") == 0)
    finally:
        halt()
    states = {r.channel: (r.state, r.attempts) for r in rows(store)}
    assert states == {"supervisors-hook": ("delivered", 1), "mqtt": ("dead", 1)}
    assert len(receiver.requests) == 1
    with store.connect() as conn:
        notes = sorted(
            (e["refs"]["channel"], e["note"])
            for e in book.events(conn, cid)
            if e["action"] == "notify"
        )
    assert notes == [("mqtt", "多次发送失败，已停止重试"), ("supervisors-hook", "已送达")]


class Broken:
    """A channel with a bug: it raises something other than DeliveryError."""

    name, kind = "supervisors-hook", "webhook"

    def send(self, notification):
        raise KeyError("oops")

    def close(self):
        pass


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_channel_that_raises_unexpectedly_is_retried_with_backoff_not_in_a_loop(
    store, book, clock
):
    open_alarm(store, book)
    d = Dispatcher(store, {"supervisors-hook": Broken()}, clock=clock, retry_base_s=60)
    halt = run_in_thread(d)
    try:
        d.wake.set()
        assert wait_until(lambda: any(r.attempts for r in rows(store) if r.channel != "mqtt"))
        time.sleep(0.5)  # several survey rounds: the row is not due again
    finally:
        halt()
    hook = next(r for r in rows(store) if r.channel == "supervisors-hook")
    assert (hook.state, hook.attempts) == ("pending", 1)
    assert "KeyError" in hook.last_error


def test_a_stop_waits_for_a_send_under_way_at_most_its_channels_timeout(store, book, clock):
    with Receiver() as slow:
        slow.respond(200, delay_s=30)  # answers long after the channel's timeout
        hook = WebhookChannel("supervisors-hook", slow.url, timeout_s=1)
        d = Dispatcher(store, {"supervisors-hook": hook}, clock=clock)
        assert d.stop_grace_s == 2.0  # the slowest timeout and a second to record the outcome
        open_alarm(store, book)
        halt = run_in_thread(d)
        d.wake.set()
        assert slow.wait_for(1)
        started = time.monotonic()
        halt()
        assert time.monotonic() - started <= d.stop_grace_s
        hook.close()
    row = next(r for r in rows(store) if r.channel == "supervisors-hook")
    assert (row.state, row.attempts) == ("pending", 1) and "timed out" in row.last_error


# -- the database away, a bug (issue 16: one line per state change, not a traceback a second) --


class Health:
    """A stand-in for the pipeline's DatabaseHealth (nonsite/db_health.py), which the service
    shares with the dispatcher: it records what it is told."""

    def __init__(self) -> None:
        self.ok = True
        self.failures: list[str] = []
        self.successes = 0
        self.lock = threading.Lock()

    def failed(self, exc):
        with self.lock:
            self.ok = False
            self.failures.append(type(exc).__name__)
        return 0.05

    def succeeded(self):
        with self.lock:
            self.ok = True
            self.successes += 1

    def wait_s(self):
        return 0.0


class Retry:
    """A loop's own retry for bugs: records them, then holds the loop back for a minute."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.next_at = 0.0

    def failed(self, exc):
        self.failures.append(type(exc).__name__)
        self.next_at = time.monotonic() + 60
        return 60.0

    def succeeded(self):
        self.next_at = 0.0

    def wait_s(self):
        return max(0.0, self.next_at - time.monotonic())


def unavailable(exc):
    return isinstance(exc, sa.exc.OperationalError)


def refused():
    return sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))


def loud(records):
    """Records with a traceback, or about the survey or a sender failing."""
    return [r for r in records if r.exc_info or "outbox survey" in r.getMessage()]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_database_outage_is_said_once_to_the_health_and_waited_out(
    store, book, clock, receiver, monkeypatch, caplog
):
    health = Health()
    d, _ = dispatcher(store, receiver, clock, health=health, is_unavailable=unavailable)
    down = threading.Event()
    down.set()
    survey, surveys = d._survey, []

    def refusing():
        surveys.append(time.monotonic())
        if down.is_set():
            raise refused()
        return survey()

    monkeypatch.setattr(d, "_survey", refusing)
    with caplog.at_level(logging.DEBUG, logger="alerts.outbox"):
        halt = run_in_thread(d)  # a round every 0.1 s
        try:
            time.sleep(1.0)
            assert health.failures == ["OperationalError"]  # said once, to the health
            assert len(surveys) == 1  # then the database is left alone while it is away
            down.clear()
            health.succeeded()  # the pipeline's batches, which keep trying, find it back
            open_alarm(store, book)
            d.wake.set()
            assert wait_until(lambda: len(receiver.requests) == 1)
            assert wait_until(lambda: {r.state for r in rows(store)} == {"delivered", "dead"})
        finally:
            halt()
    assert not loud(caplog.records), caplog.text
    assert health.failures == ["OperationalError"]
    assert health.successes >= 2  # the outcomes' writes say the database takes writes


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_bug_in_the_survey_is_logged_once_with_its_traceback_and_retried_with_backoff(
    store, clock, receiver, monkeypatch, caplog
):
    d, _ = dispatcher(store, receiver, clock)  # nothing injected: the plain fallback
    calls = []

    def broken():
        calls.append(time.monotonic())
        raise ValueError("a bug")

    monkeypatch.setattr(d, "_survey", broken)
    with caplog.at_level(logging.DEBUG, logger="alerts.outbox"):
        halt = run_in_thread(d)
        time.sleep(1.7)
        halt()
    assert len([r for r in caplog.records if r.exc_info]) == 1, caplog.text
    assert 2 <= len(calls) <= 4, calls  # 0.5 s, then 1 s: not a round every 0.1 s (17)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_bug_in_a_sender_goes_to_its_own_retry_not_to_the_database_health(
    store, book, clock, receiver
):
    health = Health()
    made: dict[str, Retry] = {}

    def retrying(what):
        made[what] = Retry()
        return made[what]

    def broken_status(conn, enterprise_id):
        raise KeyError(enterprise_id)

    d, _ = dispatcher(
        store, receiver, clock, health=health, is_unavailable=unavailable, retrying=retrying
    )
    d.status_of = broken_status
    open_alarm(store, book)
    halt = run_in_thread(d)
    try:
        d.wake.set()
        sender = "outbox dispatch via supervisors-hook"
        assert wait_until(lambda: sender in made and made[sender].failures)
        time.sleep(0.5)  # survey rounds wake the sender; its backoff holds it back
    finally:
        halt()
    assert set(made) == {"outbox survey", sender}
    assert made[sender].failures == ["KeyError"]
    assert made["outbox survey"].failures == []
    assert health.failures == [] and health.ok
    assert receiver.requests == []


def test_a_health_needs_its_classifier(store, receiver, clock):
    with pytest.raises(ValueError, match="go together"):
        dispatcher(store, receiver, clock, health=Health())
