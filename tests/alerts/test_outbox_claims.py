"""Cluster mode: any number of dispatchers on one PostgreSQL database, each row sent once per
attempt (a row is claimed with ``FOR UPDATE SKIP LOCKED`` before it is sent).

Real PostgreSQL (a fresh schema per test) and real local HTTP receivers. Rows are queued the
way the service queues them: cases opened through ``CaseBook.apply`` in a transaction, the
outbox rows written in it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from alerts.cases import CaseBook
from alerts.channels.webhook import WebhookChannel
from alerts.notify import Notifier, Routes
from alerts.outbox import Dispatcher, OutboxMetrics
from alerts.schema import case_events, outbox
from alerts.status import enterprise_status
from tests.alerts.channels.receiver import Receiver, Request
from tests.alerts.conftest import POLICY, Clock, finding

pytestmark = pytest.mark.integration

HOOK_A, HOOK_B = "hook-a", "hook-b"
CASES = 150  # two channels each: 300 rows


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx


def open_cases(store: Engine, book: CaseBook, n: int, first: int = 0) -> list[int]:
    with store.begin() as conn:
        findings = [finding(source=f"DA{first + i:04d}") for i in range(n)]
        return list(book.apply(conn, findings).opened)


def outbox_rows(store: Engine) -> list[sa.Row[Any]]:
    with store.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).all())


def notify_audit(store: Engine) -> Counter[tuple[str, str]]:
    """(key, outcome) of every notify row on the cases' trails, counted."""
    with store.connect() as conn:
        refs = conn.execute(
            sa.select(case_events.c.refs).where(case_events.c.action == "notify")
        ).scalars()
        return Counter((r["key"], r["outcome"]) for r in map(json.loads, refs))


def key_of(request: Request) -> str:
    return request.header("Idempotency-Key") or ""


def wait_until(predicate: Callable[[], bool], timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def cluster(
    store: Engine, url: str, n: int, **kw: Any
) -> list[tuple[Dispatcher, CollectorRegistry]]:
    """``n`` dispatchers on one database, as on ``n`` machines: channels of their own (the
    same names and URL), each signing its requests with its name in ``X-Dispatcher``."""
    made = []
    for i in range(n):
        channels = {
            name: WebhookChannel(name, url, timeout_s=2, headers={"X-Dispatcher": f"d{i}"})
            for name in (HOOK_A, HOOK_B)
        }
        registry = CollectorRegistry()
        d = Dispatcher(
            store,
            channels,
            status_of=enterprise_status,
            metrics=OutboxMetrics(registry),
            retry_base_s=1.0,
            **kw,
        )
        made.append((d, registry))
    return made


def close(*dispatchers: Dispatcher) -> None:
    for d in dispatchers:
        for channel in d.channels.values():
            channel.close()


def counted(registries: list[CollectorRegistry], outcome: str) -> float:
    labels = {"kind": "webhook", "outcome": outcome}
    return sum(r.get_sample_value("nonsite_notifications_total", labels) or 0 for r in registries)


def assert_each_row_sent_and_recorded_once(
    store: Engine, receiver: Receiver, registries: list[CollectorRegistry]
) -> None:
    rows = outbox_rows(store)
    assert len(rows) == 2 * CASES
    assert {(r.state, r.attempts) for r in rows} == {("delivered", 1)}
    keys = Counter(key_of(r) for r in receiver.requests)
    assert set(keys) == {r.key for r in rows}
    assert set(keys.values()) == {1}, keys.most_common(3)  # nothing sent twice
    assert notify_audit(store) == Counter((r.key, "delivered") for r in rows)
    assert counted(registries, "delivered") == len(rows)
    assert counted(registries, "superseded") == counted(registries, "retry") == 0
    # Within one dispatcher a channel's rows went out in id order.
    row_of = {r.key: r for r in rows}
    sent: dict[tuple[str, str], list[int]] = {}
    for request in receiver.requests:
        row = row_of[key_of(request)]
        sent.setdefault((request.header("X-Dispatcher") or "", row.channel), []).append(row.id)
    for ids in sent.values():
        assert ids == sorted(ids)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_dispatchers_running_on_one_database_send_each_row_exactly_once(
    store: Engine, receiver: Receiver
) -> None:
    book = CaseBook(POLICY, Notifier(Routes(supervisors=(HOOK_A, HOOK_B)), POLICY), clock=now)
    dispatchers = cluster(store, receiver.url, 3)
    stop = threading.Event()
    threads = [
        threading.Thread(target=d.run, args=(stop,), kwargs={"idle_s": 0.2}, daemon=True)
        for d, _ in dispatchers
    ]
    for thread in threads:
        thread.start()
    try:
        for first in range(0, CASES, 30):  # cases arrive in batches while the cluster runs
            open_cases(store, book, 30, first)
            for d, _ in dispatchers:
                d.wake.set()  # after the commit, as each machine's pipeline worker does
        assert wait_until(lambda: {r.state for r in outbox_rows(store)} == {"delivered"})
        receiver.wait_for(2 * CASES, timeout=1)
        time.sleep(0.3)  # more survey rounds: nothing is sent again
    finally:
        stop.set()
        for d, _ in dispatchers:
            d.wake.set()
        for thread in threads:
            thread.join(5)
        close(*(d for d, _ in dispatchers))
    assert not any(t.is_alive() for t in threads)
    assert_each_row_sent_and_recorded_once(store, receiver, [r for _, r in dispatchers])
    by = Counter(r.header("X-Dispatcher") for r in receiver.requests)
    print(f"\nrequests by dispatcher: {dict(sorted(by.items()))}")
    assert len(by) >= 2  # the dispatchers did share the work


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_racing_sends_of_three_dispatchers_claim_each_row_once(
    store: Engine, receiver: Receiver
) -> None:
    book = CaseBook(POLICY, Notifier(Routes(supervisors=(HOOK_A, HOOK_B)), POLICY), clock=now)
    open_cases(store, book, CASES)
    dispatchers = cluster(store, receiver.url, 3)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def race(d: Dispatcher, name: str) -> None:
        # One thread per (dispatcher, channel), as the senders are: small batches, so that
        # every claim races the other dispatchers' claims for the channel's oldest rows.
        try:
            start.wait(5)
            while d._send_due(name, d.channels[name], 3):
                pass
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [
        threading.Thread(target=race, args=(d, name), daemon=True)
        for d, _ in dispatchers
        for name in (HOOK_A, HOOK_B)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(8)
    close(*(d for d, _ in dispatchers))
    assert not errors and not any(t.is_alive() for t in threads)
    assert_each_row_sent_and_recorded_once(store, receiver, [r for _, r in dispatchers])
    by = Counter(r.header("X-Dispatcher") for r in receiver.requests)
    print(f"\nrequests by dispatcher: {dict(sorted(by.items()))}")
    assert len(by) == 3


class GatedReceiver:
    """A real HTTP receiver that holds the requests arriving while ``hold`` is set until
    ``release(status)``; the others it answers 200 at once. Records every idempotency key."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.hold = threading.Event()
        self._released = threading.Event()
        self._status = 200
        self._arrived = threading.Semaphore(0)
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gate.keys.append(self.headers.get("Idempotency-Key") or "")
                held = gate.hold.is_set()
                gate._arrived.release()
                if held:
                    gate._released.wait(10)
                self.send_response(gate._status if held else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def arrived(self, timeout: float = 5.0) -> bool:
        return self._arrived.acquire(timeout=timeout)

    def release(self, status: int) -> None:
        self._status = status
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def gated() -> Iterator[GatedReceiver]:
    rx = GatedReceiver()
    yield rx
    rx.close()


def two_dispatchers(
    store: Engine, gated: GatedReceiver, clock: Clock
) -> list[tuple[Dispatcher, CollectorRegistry]]:
    made = []
    for _ in range(2):
        hook = WebhookChannel(HOOK_A, gated.url, timeout_s=5)  # claim: 2 × 5 s + 1 s
        registry = CollectorRegistry()
        d = Dispatcher(
            store, {HOOK_A: hook}, clock=clock, claim_grace_s=1, metrics=OutboxMetrics(registry)
        )
        made.append((d, registry))
    return made


def sending(d: Dispatcher) -> tuple[threading.Thread, list[int]]:
    """``d`` sending its channel's due rows in a thread (its sender's batch)."""
    attempted: list[int] = []
    thread = threading.Thread(
        target=lambda: attempted.append(d._send_due(HOOK_A, d.channels[HOOK_A], 100)),
        daemon=True,
    )
    thread.start()
    return thread, attempted


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("late", [200, 503], ids=["late-delivery", "late-failure"])
def test_a_claimed_row_is_not_taken_until_its_claim_passes_and_a_stale_outcome_is_dropped(
    store: Engine, gated: GatedReceiver, late: int
) -> None:
    clock = Clock()
    book = CaseBook(POLICY, Notifier(Routes(supervisors=(HOOK_A,)), POLICY), clock=clock)
    [cid] = open_cases(store, book, 1)
    (a, a_metrics), (b, b_metrics) = two_dispatchers(store, gated, clock)
    assert a.claim_s(a.channels[HOOK_A]) == 11.0

    gated.hold.set()  # A's receiver hangs
    thread, attempted = sending(a)
    try:
        assert gated.arrived()
        gated.hold.clear()
        [row] = outbox_rows(store)
        claimed_until = clock.now + timedelta(seconds=11)
        assert (row.state, row.next_attempt_at) == ("pending", claimed_until)
        assert b.run_once() == 0  # claimed by A: not due for anyone
        clock.advance(seconds=10.9)
        assert b.run_once() == 0  # still within A's claim
        clock.advance(seconds=0.2)
        assert b.run_once() == 1  # A's claim has passed: B takes the row and delivers it
        assert gated.keys == [row.key, row.key]  # the same idempotency key
        [row] = outbox_rows(store)
        assert (row.state, row.attempts, row.last_error) == ("delivered", 1, None)
    finally:
        gated.release(late)  # A's send ends at last: its outcome is not recorded over B's
        thread.join(5)
        close(a, b)
    assert attempted == [1]
    [after] = outbox_rows(store)
    assert after == row
    assert notify_audit(store) == Counter({(row.key, "delivered"): 1})
    labels = {"kind": "webhook", "outcome": "superseded"}
    assert a_metrics.get_sample_value("nonsite_notifications_total", labels) == 1
    assert b_metrics.get_sample_value("nonsite_notifications_total", labels) is None
    with store.connect() as conn:
        assert len([e for e in book.events(conn, cid) if e["action"] == "notify"]) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_outlived_claim_nobody_took_is_still_the_senders_and_recorded(
    store: Engine, gated: GatedReceiver
) -> None:
    clock = Clock()
    book = CaseBook(POLICY, Notifier(Routes(supervisors=(HOOK_A,)), POLICY), clock=clock)
    open_cases(store, book, 1)
    (a, _), _ = two_dispatchers(store, gated, clock)
    gated.hold.set()
    thread, attempted = sending(a)
    try:
        assert gated.arrived()
        clock.advance(minutes=5)  # far past the claim, but nobody claimed the row again
    finally:
        gated.release(200)
        thread.join(5)
        close(a)
    [row] = outbox_rows(store)
    assert (attempted, row.state, row.attempts) == ([1], "delivered", 1)
    assert notify_audit(store) == Counter({(row.key, "delivered"): 1})


def test_a_crash_after_the_claim_leaves_the_row_for_after_the_claim_period(
    store: Engine, receiver: Receiver
) -> None:
    """On SQLite and PostgreSQL: A claims and dies before sending; B sends the row, with the
    same key, once A's claim period has passed."""
    clock = Clock()
    book = CaseBook(POLICY, Notifier(Routes(supervisors=(HOOK_A,)), POLICY), clock=clock)
    open_cases(store, book, 1)
    (a, _), (b, _) = cluster(store, receiver.url, 2, clock=clock, claim_grace_s=3)
    claimed = a._claim(HOOK_A, a.channels[HOOK_A])  # and then the machine is gone
    assert claimed is not None and a.claim_s(a.channels[HOOK_A]) == 7.0
    assert b.run_once() == 0
    clock.advance(seconds=6.9)
    assert b.run_once() == 0
    clock.advance(seconds=0.2)
    assert b.run_once() == 1
    [request] = receiver.requests
    assert key_of(request) == claimed["key"]
    [row] = outbox_rows(store)
    assert (row.state, row.attempts) == ("delivered", 1)
    close(a, b)


def test_the_claim_skips_locked_rows_on_postgresql_and_is_a_plain_select_on_sqlite(
    store: Engine, receiver: Receiver, db_url: str
) -> None:
    book = CaseBook(POLICY, Notifier(Routes(supervisors=(HOOK_A,)), POLICY), clock=now)
    open_cases(store, book, 1)
    [(d, _)] = cluster(store, receiver.url, 1)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statement: str = args[2]
        statements.append(" ".join(statement.split()))

    sa.event.listen(store, "before_cursor_execute", seen)
    try:
        assert d._claim(HOOK_A, d.channels[HOOK_A]) is not None
    finally:
        sa.event.remove(store, "before_cursor_execute", seen)
        close(d)
    [select] = [s for s in statements if s.startswith("SELECT")]
    if db_url.startswith("postgresql"):
        assert select.endswith("FOR UPDATE SKIP LOCKED")
    else:
        assert "FOR UPDATE" not in select  # SQLite has neither; one writer at a time anyway
