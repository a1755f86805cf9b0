"""The outbox dispatcher: sends queued notifications, retries with backoff, gives up loudly.

Rows are written by the case changes' transactions (alerts/notify.py); this side claims the
due ones in order, hands each to its channel and records the outcome. A row is marked
delivered only after its channel returned, so a crash between the two sends it again later:
delivery is at least once, and the idempotency key (the same for every attempt) lets the
receiver keep it once. Each outcome is also an audit row on the case.

Any number of dispatchers may share one database (cluster mode: several machines on one
PostgreSQL); each row is sent once per attempt. Before sending, a sender claims the oldest due
row of its channel in a short transaction of its own: ``SELECT ... FOR UPDATE SKIP LOCKED``
(a row another dispatcher is claiming right now is skipped, not waited for) and its
``next_attempt_at`` pushed forward by the channel's claim period, twice its timeout plus
``claim_grace_s`` (a send may take its timeout to connect and again to answer; the grace
covers the status lookup, the record and the machines' clocks disagreeing). Committed, the
claim keeps the row from every survey and sender, this dispatcher's and the others', until
the period passes. The outcome is then recorded only if the row is still pending with the
claimed ``next_attempt_at`` (see :meth:`Dispatcher._record`). A crash after the claim leaves
the row to be sent again once its claim period has passed, with the same idempotency key. On
SQLite, which has one writer and no ``SKIP LOCKED`` (SQLAlchemy leaves the clause out there),
the claim's update is a compare-and-set on the ``next_attempt_at`` it read, which is what
makes it exclusive on every database.

One row is claimed at a time, not a batch: a batch's claim would have to cover every send
in it (a hung receiver costs its timeout per row), and a crash would hold its last rows back
for all of that.

Channels are independent. :meth:`Dispatcher.run` gives every configured channel a sender
thread of its own that sends only that channel's due rows, one at a time, in id order: a
receiver that hangs until its timeout delays its own rows and nothing else (one shared loop
made a hung webhook hold up every DingTalk alarm behind it, 10 s per row). One coordinating
loop (the caller's thread) looks at the outbox on every wake-up and at least every
``idle_s``, wakes the senders whose channels have due rows, sends rows for channels that are
not configured to ``dead`` (the one place that handles them) and sets the depth gauge.

Within one dispatcher a channel's rows go out in id order, as above. Across dispatchers
rows of one channel may go out in parallel and so arrive out of order: dispatcher A sends row
1 while B, skipping A's claim, sends row 2 (and a row retried after a failure arrives after
younger ones even with one dispatcher). That is acceptable because the order is not what a
receiver relies on: every notification carries its idempotency key (unique per case event
and channel) and its case and event ids in the payload, by which a receiver dedups and orders
them. The retained MQTT status is looked up at sending, not as it was when queued; two
dispatchers' lookups and publishes can still cross within one send, leaving the older status
retained until the enterprise's next change is published.

The database may go away (an outage, a full disk). The service injects its :class:`Health`
and a classifier (nonsite/pipeline_worker.py passes the pipeline's ``DatabaseHealth``, which
its batches keep trying): a loop that meets the database unavailable reports it there (one
log line per outage, whoever meets it) and then leaves the database alone until the health
says it is back; it does not log a traceback per attempt. Any other error is a bug: each loop
retries it with a backoff of its own (:class:`Retry`, also injected) and its traceback is
logged once per distinct error. They are injected because alerts/ is a stage package and
does not import nonsite/, where that policy lives; without them (tests, tools) each loop
falls back to a plain backoff of its own.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Connection, Engine, case, func, insert, select, update

from alerts.channels.base import DEFAULT_TIMEOUT_S, Channel, DeliveryError, Notification
from alerts.schema import case_events, outbox

log = logging.getLogger(__name__)

StatusOf = Callable[[Connection, str], dict[str, Any]]

# A notification's outcome as its audit row's note.
OUTCOME_NOTES = {"delivered": "已送达", "dead": "多次发送失败，已停止重试"}
STOP_GRACE_S = 1.0  # beyond the slowest channel's timeout, for a sender to record its outcome
CLAIM_TIMEOUTS = 2  # a claim covers this many of its channel's timeouts (connect, then answer)
CLAIM_GRACE_S = 20.0  # and this: the status lookup, the record, clocks of machines disagreeing
CLAIM_TRIES = 3  # compare-and-set claims lost in a row before a sender leaves the rest for now


class Retry(Protocol):
    """Something a loop retries with backoff, saying so once per state change
    (``nonsite.db_health.Retrying`` fits)."""

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt (logging as it sees fit); seconds until the next one."""
        ...

    def succeeded(self) -> None:
        """Record a successful attempt (after failures: log that it works again)."""
        ...

    def wait_s(self) -> float:
        """Seconds until the next attempt is due (0 when not failing)."""
        ...


class Health(Retry, Protocol):
    """The database's state, shared with the rest of the service, thread-safe
    (``nonsite.db_health.DatabaseHealth`` fits). It is also given to a loop that keeps trying
    the database and reports the outcome (the pipeline worker): that one says when it is back,
    so the dispatcher need not try it meanwhile (a read that works would prove nothing while a
    full disk refuses the writes)."""

    @property
    def ok(self) -> bool:
        """False from a failed attempt on an unavailable database until one succeeds."""
        ...


class _PlainRetry:
    """A loop's :class:`Retry` when none is injected: each distinct error once with its
    traceback, retries doubling from 0.5 s to 5 s."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._error: str | None = None
        self._delay = 0.5
        self._next_at = 0.0

    def failed(self, exc: BaseException) -> float:
        error = f"{type(exc).__name__}: {exc}"
        if error != self._error:
            log.warning("%s failed; retrying with backoff", self._what, exc_info=exc)
        self._error = error
        delay, self._delay = self._delay, min(self._delay * 2, 5.0)
        self._next_at = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        if self._error is not None:
            log.warning("%s works again", self._what)
        self._error, self._delay, self._next_at = None, 0.5, 0.0

    def wait_s(self) -> float:
        return max(0.0, self._next_at - time.monotonic())


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "nonsite_notifications",
            "Notification attempts by channel kind and outcome (delivered, retry, dead; "
            "superseded: the claim had been taken over, the outcome was not recorded)",
            ["kind", "outcome"],
            registry=registry,
        )
        # No channel label: metric labels never carry a channel name (cardinality); the
        # outbox table has the per-channel picture.
        self.depth = Gauge(
            "nonsite_outbox_pending", "Notifications waiting in the outbox", registry=registry
        )


class Dispatcher:
    def __init__(
        self,
        db: Engine,
        channels: Mapping[str, Channel],
        *,
        max_attempts: int = 8,
        retry_base_s: float = 5.0,
        retry_max_s: float = 3600.0,
        status_of: StatusOf | None = None,
        metrics: OutboxMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        health: Health | None = None,
        is_unavailable: Callable[[BaseException], bool] | None = None,
        retrying: Callable[[str], Retry] | None = None,
        claim_grace_s: float = CLAIM_GRACE_S,
    ) -> None:
        """``health`` and ``is_unavailable`` (both or neither): the database's shared state
        and which errors mean it is unavailable (see the module); ``retrying``: a loop's own
        :class:`Retry` for other errors (bugs), given the loop's name; ``claim_grace_s``: a
        claim's period beyond its channel's timeouts (see :meth:`claim_s`)."""
        if (health is None) != (is_unavailable is None):
            raise ValueError("health and is_unavailable go together")
        self.db = db
        self.channels = channels
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.status_of = status_of
        self.metrics = metrics
        self.clock = clock
        self.wake = threading.Event()  # set after committing rows: :meth:`run` looks at once
        self.health = health
        self._is_unavailable = is_unavailable or (lambda exc: False)
        self._retrying: Callable[[str], Retry] = retrying or _PlainRetry
        self.claim_grace_s = claim_grace_s

    @property
    def stop_grace_s(self) -> float:
        """How long :meth:`run` waits, after ``stop``, for its senders: a send under way
        ends within its channel's timeout (the channels bound connect and read alike)."""
        slowest = max(
            (float(getattr(c, "timeout_s", DEFAULT_TIMEOUT_S)) for c in self.channels.values()),
            default=0.0,
        )
        return slowest + STOP_GRACE_S

    def claim_s(self, channel: Channel) -> float:
        """How long a claimed row of ``channel`` is left to this dispatcher: longer than a
        send can take (its timeout to connect, again to answer), plus the grace."""
        timeout = float(getattr(channel, "timeout_s", DEFAULT_TIMEOUT_S))
        return CLAIM_TIMEOUTS * timeout + self.claim_grace_s

    # -- synchronous (tests, tools) ------------------------------------------------------

    def run_once(self, limit: int = 100) -> int:
        """Send the due rows (up to ``limit`` per channel), one channel after the other; the
        number attempted. For tests and tools: here a hung channel does delay the others,
        which :meth:`run` does not let happen."""
        attempted = self._unconfigured(limit)
        for name, channel in self.channels.items():
            attempted += self._send_due(name, channel, limit)
        self._gauge()
        return attempted

    # -- the service's loop ---------------------------------------------------------------

    def run(self, stop: threading.Event, idle_s: float = 1.0) -> None:
        """Until ``stop``: a sender thread per channel; this thread wakes them (on
        :attr:`wake` or every ``idle_s``) when their channels have due rows. After ``stop``
        it waits at most :attr:`stop_grace_s` for the senders (they are daemon threads)."""
        senders = {
            name: _Sender(self, name, channel, stop, idle_s)
            for name, channel in self.channels.items()
        }
        for sender in senders.values():
            sender.start()
        survey = self._retrying("outbox survey")
        try:
            while not stop.is_set():
                if self._may_try(survey):
                    try:
                        due = self._survey()
                        for name in due:
                            if name in senders:
                                senders[name].wake.set()
                        if any(name not in senders for name in due):
                            self._unconfigured(100)
                    except Exception as exc:  # noqa: BLE001 - said once by the health or retry
                        self._report(exc, survey)
                    else:
                        survey.succeeded()
                self.wake.wait(self._pause_s(survey, idle_s))
                self.wake.clear()
        finally:
            for sender in senders.values():
                sender.wake.set()
            deadline = time.monotonic() + self.stop_grace_s
            for sender in senders.values():
                sender.thread.join(max(0.0, deadline - time.monotonic()))
            hung = [s.name for s in senders.values() if s.thread.is_alive()]
            if hung:
                log.warning("outbox: channel(s) %s still sending at shutdown", ", ".join(hung))

    # -- the database away, a bug ---------------------------------------------------------

    def _may_try(self, own: Retry) -> bool:
        """Whether a loop may use the database now: its own backoff after a bug has passed
        and the database is not known to be away (its health's other user tries it)."""
        return own.wait_s() <= 0 and (self.health is None or self.health.ok)

    def _report(self, exc: BaseException, own: Retry) -> None:
        """A loop's attempt failed: the database unavailable goes to the shared health (one
        line per outage), anything else to the loop's own retry (a traceback per error)."""
        if self.health is not None and self._is_unavailable(exc):
            self.health.failed(exc)
        else:
            own.failed(exc)

    def _wrote(self) -> None:
        """A write committed: the database takes writes (it says "available again" if it was
        thought away; a read would not prove it while a full disk refuses writes)."""
        if self.health is not None:
            self.health.succeeded()

    @staticmethod
    def _pause_s(own: Retry, idle_s: float) -> float:
        """Until the survey looks again: ``idle_s``, or sooner when its backoff ends."""
        wait = own.wait_s()
        return min(idle_s, wait) if wait > 0 else idle_s

    def _survey(self) -> list[str]:
        """The channels with due rows; sets the depth gauge on the way (one query)."""
        now = self.clock()
        due_now = case((outbox.c.next_attempt_at <= now, 1), else_=0)
        with self.db.connect() as conn:
            rows = conn.execute(
                select(outbox.c.channel, func.count(), func.sum(due_now))
                .where(outbox.c.state == "pending")
                .group_by(outbox.c.channel)
            ).all()
        if self.metrics is not None:
            self.metrics.depth.set(sum(int(pending) for _, pending, _ in rows))
        return [channel for channel, _, due in rows if due]

    def _send_due(
        self,
        name: str,
        channel: Channel,
        limit: int,
        stop: threading.Event | None = None,
    ) -> int:
        """Up to ``limit`` of ``name``'s due rows, oldest first, each claimed before it is
        sent; the number attempted. With ``stop`` (a sender's batch) it ends at ``stop`` and
        after a failure to be retried: the next batch then starts again from the channel's
        oldest due row, so a row whose backoff has passed is retried before younger rows, not
        after the whole batch (each of which may cost a hung receiver's timeout)."""
        attempted = 0
        while attempted < limit and not (stop is not None and stop.is_set()):
            row = self._claim(name, channel)
            if row is None:
                break
            attempted += 1
            if not self._attempt(row, channel) and stop is not None:
                break
        return attempted

    def _claim(self, name: str, channel: Channel) -> dict[str, Any] | None:
        """The oldest due row of ``name`` not claimed by anyone, now claimed by this
        dispatcher (committed), its ``next_attempt_at`` the claim's end; None when none is
        due. The row lock (PostgreSQL) keeps two dispatchers from claiming one row at once,
        ``SKIP LOCKED`` lets the second take the next row instead of waiting; the update's
        compare-and-set does the same where there is no row lock (SQLite)."""
        for _ in range(CLAIM_TRIES):
            now = self.clock()
            with self.db.begin() as conn:
                found = conn.execute(
                    select(outbox)
                    .where(
                        outbox.c.state == "pending",
                        outbox.c.channel == name,
                        outbox.c.next_attempt_at <= now,
                    )
                    .order_by(outbox.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if found is None:
                    return None
                row = dict(found._mapping)
                until = now + timedelta(seconds=self.claim_s(channel))
                claimed = conn.execute(
                    update(outbox).where(*self._as_seen(row)).values(next_attempt_at=until)
                ).rowcount
            if claimed:
                self._wrote()
                return row | {"next_attempt_at": until}
        return None  # lost every race: the survey wakes the sender again

    @staticmethod
    def _as_seen(row: dict[str, Any]) -> tuple[Any, ...]:
        """The row as this dispatcher last saw (or claimed) it: still pending, with the same
        ``next_attempt_at``, which every claim and every recorded retry moves on."""
        return (
            outbox.c.id == row["id"],
            outbox.c.state == "pending",
            outbox.c.next_attempt_at == row["next_attempt_at"],
        )

    def _unconfigured(self, limit: int) -> int:
        """Due rows for a channel name no longer (or never) configured: dead at once (no
        claim: nothing is sent, and the record's compare-and-set lets one dispatcher only
        mark a row dead and audit it)."""
        now = self.clock()
        with self.db.connect() as conn:
            query = (
                select(outbox)
                .where(
                    outbox.c.state == "pending",
                    outbox.c.channel.not_in(list(self.channels)),
                    outbox.c.next_attempt_at <= now,
                )
                .order_by(outbox.c.id)
                .limit(limit)
            )
            rows = [dict(r._mapping) for r in conn.execute(query).all()]
        for row in rows:
            self._attempt(row, None)
        return len(rows)

    # -- one attempt --------------------------------------------------------------------

    def _attempt(self, row: dict[str, Any], channel: Channel | None) -> bool:
        """Send one row and record the outcome; False when it is to be retried."""
        kind = channel.kind if channel is not None else "unknown"
        try:
            if channel is None:
                raise DeliveryError(
                    f"no channel named {row['channel']!r} is configured", retryable=False
                )
            notification = self._notification(row)
            try:
                channel.send(notification)
            except DeliveryError:
                raise
            except Exception as exc:  # a channel's bug: retried and counted, not a hot loop
                log.exception("channel %s raised unexpectedly", row["channel"])
                raise DeliveryError(f"unexpected {exc!r}") from exc
        except DeliveryError as err:
            return self._failed(row, kind, err)
        now = self.clock()
        values = {
            "state": "delivered",
            "attempts": row["attempts"] + 1,
            "delivered_at": now,
            "last_error": None,
        }
        if self._record(row, kind, values, now, "delivered", ""):
            self._count(kind, "delivered")
        return True

    def _failed(self, row: dict[str, Any], kind: str, err: DeliveryError) -> bool:
        """Record a failed attempt: dead (True) or due again after the backoff (False)."""
        attempts = row["attempts"] + 1
        now = self.clock()
        dead = not err.retryable or attempts >= self.max_attempts
        values: dict[str, Any] = {"attempts": attempts, "last_error": err.detail[:2000]}
        if dead:
            values["state"] = "dead"
        else:
            values["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempts))
        outcome = "dead" if dead else "retry"
        if not self._record(row, kind, values, now, outcome, err.detail):
            return True  # the row is another dispatcher's now: on to the next
        log.warning(
            "notification %s via %s failed (attempt %d%s): %s",
            row["key"],
            row["channel"],
            attempts,
            ", giving up" if dead else "",
            err.detail,
        )
        self._count(kind, outcome)
        return dead

    def _record(
        self,
        row: dict[str, Any],
        kind: str,
        values: dict[str, Any],
        now: datetime,
        outcome: str,
        detail: str,
    ) -> bool:
        """Record an attempt's ``outcome`` (``values`` in the row; delivered and dead also on
        the case's trail) if the row is still as claimed; False when it is not.

        A claim outlived (this dispatcher hung past the claim period) does not make the
        outcome void by itself: if nobody claimed the row since, it is still ours and is
        recorded. But once another dispatcher has claimed it (``next_attempt_at`` moved on) or
        recorded it, the row is that one's: it sends (or sent) the row itself and records
        that outcome, one per claim, so ours would be a second delivery or a stale retry in
        the row and its audit. Ours is dropped, even a delivery: the receiver saw the key
        twice, which it dedups, and the trail shows the attempt that holds the row."""
        with self.db.begin() as conn:
            updated = conn.execute(
                update(outbox).where(*self._as_seen(row)).values(**values)
            ).rowcount
            if updated and outcome != "retry":
                self._audit(conn, row, now, outcome, detail)
        self._wrote()
        if not updated:
            log.warning(
                "notification %s via %s: %s not recorded, another dispatcher claimed or "
                "recorded the row meanwhile (this one's claim had run out)",
                row["key"],
                row["channel"],
                outcome,
            )
            self._count(kind, "superseded")
        return bool(updated)

    def backoff(self, attempts: int) -> float:
        """Exponential with ±20 % jitter (so a receiver coming back is not hit all at once)."""
        base = min(self.retry_max_s, self.retry_base_s * 2 ** (attempts - 1))
        return float(base * random.uniform(0.8, 1.2))

    def _notification(self, row: dict[str, Any]) -> Notification:
        status = None
        if self.status_of is not None:
            # The status as it is now, not as it was when queued: a retried old row must not
            # overwrite a newer retained status with a stale one.
            with self.db.connect() as conn:
                status = self.status_of(conn, row["enterprise_id"])
        return Notification(
            key=row["key"],
            channel=row["channel"],
            event=row["event"],
            enterprise_id=row["enterprise_id"],
            title=row["title"],
            text=row["text"],
            payload=json.loads(row["payload"]),
            status=status,
        )

    def _audit(
        self, conn: Connection, row: dict[str, Any], now: datetime, outcome: str, detail: str
    ) -> None:
        if row["case_id"] is None:
            return
        conn.execute(
            insert(case_events).values(
                case_id=row["case_id"],
                at=now,
                actor="nonsite",
                role="system",
                action="notify",
                from_state=None,
                to_state=None,
                # the trail is read on Chinese pages: the channel and the error in refs
                note=OUTCOME_NOTES.get(outcome, outcome),
                refs=json.dumps(
                    {
                        "key": row["key"],
                        "event": row["event"],
                        "outcome": outcome,
                        "channel": row["channel"],
                        **({"detail": detail[:500]} if detail else {}),
                    },
                    ensure_ascii=False,
                ),
            )
        )

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.sent.labels(kind, outcome).inc()

    def _gauge(self) -> None:
        if self.metrics is None:
            return
        with self.db.connect() as conn:
            pending = conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.state == "pending")
            ).scalar_one()
        self.metrics.depth.set(pending)


class _Sender:
    """One channel's thread: woken when the channel has due rows, sends them in id order
    until none is due, then sleeps until the next wake-up (or ``stop``)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        name: str,
        channel: Channel,
        stop: threading.Event,
        idle_s: float,
    ) -> None:
        self.dispatcher = dispatcher
        self.name = name
        self.channel = channel
        self.stop = stop
        self.idle_s = idle_s
        self.wake = threading.Event()
        # Daemon: a receiver slower than its timeout cannot keep the process from exiting.
        self.thread = threading.Thread(target=self._run, name=f"outbox-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        dispatcher = self.dispatcher
        own = dispatcher._retrying(f"outbox dispatch via {self.name}")
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stop.is_set():
                return
            if not dispatcher._may_try(own):
                continue  # the database away or a bug's backoff: the survey wakes us again
            try:
                while not self.stop.is_set():
                    if not dispatcher._send_due(self.name, self.channel, 100, self.stop):
                        break
            except Exception as exc:  # noqa: BLE001 - said once by the health or retry
                dispatcher._report(exc, own)
            else:
                own.succeeded()
