"""Group commit: received messages → raw archive → PUBACK, on one writer thread.

Whatever arrives while a commit is running forms the next batch, so batches grow with load
and a quiet system commits each message at once. A message is acknowledged only after the
transaction holding it has committed. The broker's inflight window (MQTT 5 receive maximum)
bounds how much can be waiting here, which is the back-pressure: when the archive is slow we
stop acknowledging and the broker stops sending.

A failed commit (a full disk, an I/O error) keeps its messages unacknowledged and is retried
with backoff, quietly: how is the :class:`RetryPolicy` the service injects
(``nonsite.db_health.archive_retrying``: one log line when writing fails, one when it works
again, "disk full" and where, retries at most 2 s apart). It is injected rather than imported
because ingest/ is a stage package beneath nonsite/, and the policy, its wording and the
state it feeds (/readyz) are the service's, kept in one place for the archive and the database
alike; moving them down here would make a stage package the home of a service-wide concern.
Without one (tools, benchmarks) a plain fallback logs each distinct error once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from ingest.archive import Storable
from ingest.metrics import ArchiveMetrics
from ingest.mqtt.source import Delivery

log = logging.getLogger(__name__)


class RetryPolicy(Protocol):
    """How a failed commit is retried and said (``nonsite.db_health.Retrying`` fits)."""

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt, logging as it sees fit; seconds until the next one."""
        ...

    def succeeded(self) -> None:
        """Record a successful attempt (after failures: log that it works again)."""
        ...


class _PlainRetry:
    """The fallback when none is injected: each distinct error once, with its traceback, and
    waits doubling from 0.25 s to 2 s."""

    def __init__(self) -> None:
        self._error: str | None = None
        self._delay = 0.25

    def failed(self, exc: BaseException) -> float:
        error = f"{type(exc).__name__}: {exc}"
        if error != self._error:
            log.warning("archive write failed; retrying with backoff", exc_info=exc)
        self._error = error
        delay, self._delay = self._delay, min(self._delay * 2, 2.0)
        return delay

    def succeeded(self) -> None:
        if self._error is not None:
            log.warning("archive writes again")
        self._error, self._delay = None, 0.25


class Log(Protocol):
    """Where received messages are stored before their PUBACK: the raw archive on one
    machine, the JetStream stream in a cluster (``ingest.jetstream.publisher``)."""

    def append(self, messages: Sequence[Storable]) -> int:
        """Store a batch durably; how many were new (not duplicates). Raises when not all
        were stored: the batch is then retried, and none of it acknowledged."""
        ...


class Archiver:
    def __init__(
        self,
        archive: Log,
        ack: Callable[[Sequence[Delivery]], object],
        *,
        on_commit: Callable[[], None] = lambda: None,
        metrics: ArchiveMetrics | None = None,
        batch_max: int = 2000,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._archive = archive
        self._retry: RetryPolicy = retry or _PlainRetry()
        self._ack = ack
        self._on_commit = on_commit
        self._metrics = metrics
        self._batch_max = batch_max
        # The network thread appends without a lock (deque.append is atomic) and wakes the
        # writer only when it sleeps: a lock per message took 2-4 % of the receiving
        # process's time in its profile, and each contended one handed the GIL back and forth.
        self._pending: deque[Delivery] = deque()
        self._wake = threading.Event()
        self._writer_idle = False
        self._cond = threading.Condition()  # commits, for flush() and stop()
        self._stopping = False
        self._in_flight = 0  # taken from _pending, not yet committed
        self._thread: threading.Thread | None = None
        self.archived = 0
        self.duplicates = 0
        self.failed: BaseException | None = None

    def submit(self, delivery: Delivery) -> None:
        """Queue a received message (called on paho's network thread)."""
        self._pending.append(delivery)
        if self._writer_idle:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="archiver", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is archived (and acknowledged)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Archive what is pending, then end the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def _take(self) -> list[Delivery] | None:
        pending = self._pending
        while not pending:
            if self._stopping:
                return None
            self._wake.clear()
            self._writer_idle = True
            if not pending and not self._stopping:  # a submit between check and flag
                self._wake.wait()
            self._writer_idle = False
        with self._cond:
            n = min(len(pending), self._batch_max)
            batch = [pending.popleft() for _ in range(n)]
            self._in_flight = n
        return batch

    def _store(self, batch: list[Delivery]) -> int | None:
        """Archive a batch, retrying with backoff; None if stopping before it succeeded."""
        while True:
            try:
                inserted = self._archive.append(batch)
            except Exception as exc:  # noqa: BLE001 - disk full, I/O error: said by the policy
                self.failed = exc  # for /readyz; the messages stay unacknowledged
                delay = self._retry.failed(exc)
                with self._cond:
                    if self._stopping:
                        return None  # not acknowledged: the broker re-delivers them later
                    self._cond.wait(delay)
                continue
            self.failed = None
            self._retry.succeeded()
            return inserted

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            started = time.perf_counter()
            inserted = self._store(batch)
            if inserted is None:
                with self._cond:
                    self._in_flight = 0
                    self._pending.clear()
                    self._cond.notify_all()
                return
            self._ack(batch)
            self.archived += inserted
            self.duplicates += len(batch) - inserted
            if self._metrics:
                self._metrics.archive_commit_seconds.observe(time.perf_counter() - started)
                self._metrics.archive_batch_messages.observe(len(batch))
                self._metrics.messages.labels("archived").inc(inserted)
                if len(batch) > inserted:
                    self._metrics.messages.labels("duplicate").inc(len(batch) - inserted)
            with self._cond:
                self._in_flight = 0
                if self._metrics:
                    self._metrics.pending_ack.set(len(self._pending))
                self._cond.notify_all()
            self._on_commit()
