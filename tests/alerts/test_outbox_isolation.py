"""A hung receiver delays only its own notifications (issue 16, defect 2).

Three real local receivers: a webhook that accepts connections, reads the request and never
answers (a raw socket server), a healthy webhook and a fake DingTalk robot, both recording
when each request arrived. Two dozen alarm cases are opened through the real alert path
(``CaseBook.apply`` in a transaction, the outbox rows queued in it, the dispatcher woken after
the commit as the pipeline worker does), each telling all three channels. The dispatcher runs
as the service runs it: ``Dispatcher.run(stop)`` in a thread of its own.

Before the fix one loop sent every channel's rows in turn, each hung row costing its channel's
whole timeout: the healthy receivers' rows queued behind them (29 of 110 delivered in 7.8
minutes in the issue). Now the healthy ones must see every row within seconds of its commit
(p95 <= 5 s), in the order queued, while the hung channel's rows time out and wait for their
retries; and a stop must not wait for the hung receiver longer than its timeout.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from alerts.cases import CaseBook
from alerts.channels.base import DEFAULT_TIMEOUT_S, Channel
from alerts.channels.dingtalk import DingTalkChannel
from alerts.channels.webhook import WebhookChannel
from alerts.notify import Notifier, Routes
from alerts.outbox import Dispatcher
from alerts.schema import outbox
from alerts.status import enterprise_status
from tests.alerts.channels.receiver import HungReceiver, Receiver, Request
from tests.alerts.conftest import POLICY, finding

pytestmark = pytest.mark.integration

CASES = 24
OPEN_EVERY_S = 0.125  # the cases arrive over three seconds, as from a batch of loggers
HUNG, HOOK, DING = "hung-hook", "healthy-hook", "dingtalk-robot"
P95_BOUND_S = 5.0
STOP_SLACK_S = 1.5  # beyond the hung channel's timeout: recording the outcome, joining


@pytest.fixture
def hung() -> Iterator[HungReceiver]:
    server = HungReceiver()
    yield server
    server.close()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx


@pytest.fixture
def robot() -> Iterator[Receiver]:
    with Receiver("/robot/send") as rx:
        rx.respond(200, {"errcode": 0, "errmsg": "ok"})
        yield rx


def now() -> datetime:
    return datetime.now(UTC)


def open_cases(store, book: CaseBook, dispatcher: Dispatcher) -> None:
    for i in range(CASES):
        with store.begin() as conn:
            [_] = book.apply(conn, [finding(source=f"DA{i + 100:03d}")]).opened
        dispatcher.wake.set()  # after the commit, as the pipeline worker does
        time.sleep(OPEN_EVERY_S)


def outbox_rows(store, channel: str) -> list[sa.Row]:
    with store.connect() as conn:
        return conn.execute(
            sa.select(outbox).where(outbox.c.channel == channel).order_by(outbox.c.id)
        ).all()


def aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite returns naive UTC


def delays(store, channel: str, arrived: list[Request], key_of) -> list[float]:
    """Seconds from each row's commit (``created_at``) to its arrival; inf if it never came."""
    first = {}
    for request in arrived:
        first.setdefault(key_of(request), request.received)
    return [
        first.get(r.key, math.inf) - aware(r.created_at).timestamp()
        for r in outbox_rows(store, channel)
    ]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def ding_key(request: Request) -> str:
    return request.json()["markdown"]["text"].rsplit("编号 ", 1)[1]


def hook_key(request: Request) -> str:
    return request.header("Idempotency-Key") or ""


@pytest.mark.parametrize(
    ("db_url", "hung_timeout_s"),
    [("sqlite", 2.0), ("postgresql", 2.0), ("sqlite", DEFAULT_TIMEOUT_S)],
    indirect=["db_url"],
    ids=["sqlite-2s", "postgresql-2s", "sqlite-default-10s"],
)
def test_a_hung_receiver_delays_only_its_own_rows(store, hung, hook, robot, hung_timeout_s):
    routes = Routes(supervisors=(HUNG, HOOK, DING))  # the hung channel's row first, each case
    book = CaseBook(POLICY, Notifier(routes, POLICY), clock=now)
    channels: dict[str, Channel] = {
        HUNG: WebhookChannel(HUNG, hung.url, timeout_s=hung_timeout_s),
        HOOK: WebhookChannel(HOOK, hook.url, secret="s3cret", timeout_s=2),
        DING: DingTalkChannel(DING, robot.url + "?access_token=t0ken", secret="SEC-x"),
    }
    # The service's settings (pipeline_worker.Worker), a quicker first retry than the default.
    dispatcher = Dispatcher(
        store, channels, retry_base_s=1.0, status_of=enterprise_status, clock=now
    )
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="outbox", daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        open_cases(store, book, dispatcher)
        hook.wait_for(CASES, timeout=15)
        robot.wait_for(CASES, timeout=5)
        hook_delays = delays(store, HOOK, hook.requests, hook_key)
        ding_delays = delays(store, DING, robot.requests, ding_key)
        print(
            f"\nhung timeout {hung_timeout_s:g} s: webhook p95 {p95(hook_delays):.3f} s "
            f"(max {max(hook_delays):.3f}), DingTalk p95 {p95(ding_delays):.3f} s "
            f"(max {max(ding_delays):.3f}), all in after {time.monotonic() - started:.1f} s"
        )
        assert len(hook_delays) == len(ding_delays) == CASES
        assert p95(hook_delays) <= P95_BOUND_S, sorted(hook_delays)
        assert p95(ding_delays) <= P95_BOUND_S, sorted(ding_delays)
        # Each arrived once and in the order queued (one sender per channel, rows by id).
        assert [hook_key(r) for r in hook.requests] == [r.key for r in outbox_rows(store, HOOK)]
        assert [ding_key(r) for r in robot.requests] == [r.key for r in outbox_rows(store, DING)]
        assert {r.state for r in outbox_rows(store, HOOK) + outbox_rows(store, DING)} == {
            "delivered"
        }

        # The hung channel: attempted, timed out, kept for a retry (short timeout: retried).
        def hung_attempts() -> list[int]:
            return [r.attempts for r in outbox_rows(store, HUNG)]

        wanted = 2 if hung_timeout_s < DEFAULT_TIMEOUT_S else 1
        assert wait_until(lambda: max(hung_attempts()) >= wanted, timeout=hung_timeout_s * 4)
        rows = outbox_rows(store, HUNG)
        assert {r.state for r in rows} == {"pending"}  # never delivered, not given up
        failed = [r for r in rows if r.attempts]
        assert failed and all("timed out" in r.last_error for r in failed)
        assert hung.requests >= sum(r.attempts for r in rows)
        print(
            f"hung channel: {sum(r.attempts for r in rows)} attempts on {len(failed)} of "
            f"{len(rows)} rows, {hung.connections} connections, none delivered"
        )
    finally:
        # A stop waits for the hung send at most its timeout, not for the rows behind it.
        stopped = time.monotonic()
        stop.set()
        dispatcher.wake.set()
        thread.join(hung_timeout_s + 5)
        took = time.monotonic() - stopped
        for channel in channels.values():
            channel.close()
    print(f"stopped in {took:.2f} s")
    assert not thread.is_alive()
    assert took <= hung_timeout_s + STOP_SLACK_S
