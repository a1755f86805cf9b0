"""Retrying what the database (or a full disk) refuses: backoff with jitter, one log line per
state change, and the state for ``/readyz`` and ``/metrics``.

One home for the policy, so that every loop that writes to the database behaves the same
during an outage: it does not retry at once (the pipeline is woken by every archive commit,
dozens of times a second), it does not log a traceback per attempt (an outage is an expected
condition with a one-line cause, not a bug), and it says when the outage began and ended.

    health = DatabaseHealth(log, registry)
    ...
    try:
        work()
    except Exception as exc:
        health.failed(exc)  # logs once per outage; the next attempt is health.due()
    else:
        health.succeeded()  # logs "available again" once

Errors that are not the database being away (a bug) go through a :class:`Retrying` of their
own with ``traceback=True``: retried with the same backoff, the traceback logged once per
distinct error rather than once per attempt.

One :class:`DatabaseHealth` is shared by the pipeline process's loops (thread-safe): the
worker's batches, which keep trying on its schedule and so say when the database is back, and
the outbox dispatcher's threads, which report what they meet and leave the database alone
while it is away. The log has one line when it goes and one when it is back, whoever saw it.

The stage packages (ingest/, alerts/) do not import this module: they declare the few methods
they call as a Protocol and the service injects these objects (:func:`archive_retrying` for
the archiver, ``Worker`` in nonsite/pipeline_worker.py for the dispatcher). The policy and its
wording stay here, in one place, with the /readyz and /metrics state they feed.
"""

from __future__ import annotations

import errno
import logging
import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import exc as sa_exc

T = TypeVar("T")

SQLITE_FULL = 13  # sqlite3.SQLITE_FULL: "database or disk is full"
PG_DISK_FULL = "53100"  # SQLSTATE disk_full (on the database server)
# A failover under way: the host was demoted or is shutting down or starting up. Some come
# as errors other than OperationalError (a write on a demoted host: InternalError).
PG_FAILING_OVER = frozenset({"25006", "57P01", "57P02", "57P03"})


# -- classifying errors ------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the driver's exception inside SQLAlchemy's, and their causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo += [e.__cause__, e.__context__, orig if isinstance(orig, BaseException) else None]


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain: SQLite's "database or disk is full" (also when it is hidden
    behind a failed ROLLBACK's "no transaction is active"), an OSError, or PostgreSQL's
    disk_full on the server."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, sqlite3.Error) and (
            getattr(e, "sqlite_errorcode", None) == SQLITE_FULL
            or "database or disk is full" in str(e)
        ):
            return True
        if getattr(e, "sqlstate", None) == PG_DISK_FULL:
            return True
    return False


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or written just now (refused or lost connection, server
    shutting down, pool exhausted, disk full), as opposed to a bug in what we asked of it."""
    if is_disk_full(exc):
        return True
    if any(getattr(e, "sqlstate", None) in PG_FAILING_OVER for e in _chain(exc)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | ConnectionError
        | TimeoutError,
    )


def one_line(exc: BaseException) -> str:
    """The error's type and the first line of its message: no SQL, no traceback, no link."""
    for e in _chain(exc):
        if is_disk_full(e) and not isinstance(e, sa_exc.SQLAlchemyError):
            inner = e
            break
    else:
        orig = getattr(exc, "orig", None)
        inner = orig if isinstance(orig, BaseException) else exc
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    name = type(inner).__name__
    if len(text) > 240:
        text = text[:237] + "..."
    return f"{name}: {text}" if text else name


def free_bytes(path: Path) -> int | None:
    """Free space on the file system holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def describe(exc: BaseException, path: Path | None = None) -> str:
    """One line for /readyz and the log: "disk full: ..." naming the file and its directory
    when the disk is full, the error's one-line summary otherwise."""
    if not is_disk_full(exc):
        return one_line(exc)
    if path is None:
        return f"disk full: {one_line(exc)}"
    free = free_bytes(path.parent)
    room = f"{free:,} bytes free in {path.parent}" if free is not None else f"in {path.parent}"
    return f"disk full: cannot write {path} ({room})"


# -- backoff and state -------------------------------------------------------------------------


class Backoff:
    """Exponential backoff with jitter: the n-th delay is drawn from [½, 1] × min(max_s,
    base_s × 2ⁿ), so that processes retrying the same database do not do it in step."""

    def __init__(
        self, base_s: float = 0.5, max_s: float = 5.0, rng: random.Random | None = None
    ) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float:
        cap = min(self.max_s, self.base_s * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return cap * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._attempt = 0


def through_outage(
    call: Callable[[], T],
    within_s: float,
    *,
    retry_if: Callable[[BaseException], bool] = is_unavailable,
) -> T:
    """``call()`` again while the database is away, for up to ``within_s`` (a failover: the
    primary gone, a standby not yet promoted, the connection lost mid-transaction or at its
    commit), then its error. Only for calls that are safe to repeat: reads, and writes whose
    effect is keyed so that a repeat after a commit whose reply was lost finds it done (a
    person's action by its request key)."""
    deadline = time.monotonic() + within_s
    backoff = Backoff(base_s=0.1, max_s=2.0)
    while True:
        try:
            return call()
        except Exception as exc:
            delay = backoff.next()
            if not retry_if(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)


class Retrying:
    """Something that fails and is retried: the backoff, the log lines, the state.

    :meth:`failed` logs ``"<lost>: <one line>"`` when it starts failing (and when the error
    changes while failing), :meth:`succeeded` logs ``"<back> after N s (M failed attempts)"``
    once; attempts in between log nothing. With ``traceback=True`` (errors that are bugs) the
    first line of each distinct error carries its traceback; ``traceback`` may also be a
    predicate on the error (a traceback for a bug, none for a full disk). Thread-safe.
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        lost: str,
        back: str,
        consequence: str = "",
        traceback: bool | Callable[[BaseException], bool] = False,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        describe_error: Callable[[BaseException], str] = one_line,
        kind_of: Callable[[BaseException], str] = one_line,
    ) -> None:
        """``kind_of``: what tells a new error while failing (logged again) from the same one
        said differently (not logged); by default its type and message."""
        self._log = log
        self._kind_of = kind_of
        self._lost = lost
        self._back = back
        self._consequence = consequence
        self._traceback = traceback
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._describe = describe_error
        self._lock = threading.Lock()
        self.ok = True
        self.error: str | None = None  # the last error's one line, while failing
        self._kind: str | None = None  # its kind_of, to tell a new error
        self.attempts = 0  # failed attempts in this outage
        self._since = 0.0
        self._next_at = 0.0

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt; the delay until the next one is :meth:`due`."""
        summary = self._describe(exc)
        # Told apart by kind, not by the description: "N bytes free" changes while the disk
        # stays full, and is no new state to log.
        kind = self._kind_of(exc)
        with self._lock:
            now = self._clock()
            began, changed = self.ok, kind != self._kind
            if began:
                self.ok, self._since, self.attempts = False, now, 0
            self.attempts += 1
            self.error, self._kind = summary, kind
            delay = self.backoff.next()
            self._next_at = now + delay
        if not (began or changed):
            return delay
        trace = self._traceback(exc) if callable(self._traceback) else self._traceback
        if began:
            tail = f"; {self._consequence}" if self._consequence else ""
            self._log.warning(
                "%s: %s%s (retrying with backoff)",
                self._lost,
                summary,
                tail,
                exc_info=exc if trace else None,
            )
        else:
            self._log.warning("%s, now: %s", self._lost, summary, exc_info=exc if trace else None)
        return delay

    def succeeded(self) -> None:
        with self._lock:
            if self.ok:
                return
            self.ok, self.error, self._kind = True, None, None
            lasted, attempts = self._clock() - self._since, self.attempts
            self.attempts = 0
            self.backoff.reset()
            self._next_at = 0.0
        self._log.warning(
            "%s after %.1f s (%d failed attempt%s)",
            self._back,
            lasted,
            attempts,
            "" if attempts == 1 else "s",
        )

    def due(self) -> bool:
        """Whether the next attempt may be made now."""
        return self.ok or self._clock() >= self._next_at

    def wait_s(self) -> float:
        """Seconds until the next attempt is due (0 when not failing)."""
        return 0.0 if self.ok else max(0.0, self._next_at - self._clock())

    @property
    def problem(self) -> str | None:
        """For /readyz: what fails, since when, how often; None while it works."""
        with self._lock:
            if self.ok:
                return None
            lasted = self._clock() - self._since
            return (
                f"{self._lost} for {lasted:.0f} s ({self.attempts} failed attempt"
                f"{'' if self.attempts == 1 else 's'}): {self.error}"
            )


class DatabaseMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "nonsite_database_up",
            "1 while the service database answers, 0 during an outage (the pipeline retries "
            "with backoff; received messages wait in the raw archive)",
            registry=registry,
        )
        self.up.set(1)
        self.failures = Counter(
            "nonsite_database_failures",
            "Database attempts that failed because it was unavailable (refused or lost "
            "connection, disk full), each followed by a backoff",
            registry=registry,
        )


def _database_state(exc: BaseException) -> str:
    """The states of an unavailable database worth a log line each: its disk full, or not
    reached (a connection cut, then refused, is one outage, not two)."""
    return "disk full" if is_disk_full(exc) else "unavailable"


class DatabaseHealth(Retrying):
    """:class:`Retrying` for the service database, with its two metrics. While it is away,
    another line is logged only when a full disk becomes a lost connection or back."""

    def __init__(
        self,
        log: logging.Logger,
        registry: CollectorRegistry | None = None,
        *,
        consequence: str = "received messages wait in the raw archive",
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        path: Path | None = None,
    ) -> None:
        super().__init__(
            log,
            lost="database unavailable",
            back="database available again",
            consequence=consequence,
            backoff=backoff,
            clock=clock,
            describe_error=lambda exc: describe(exc, path),
            kind_of=_database_state,
        )
        self.metrics = DatabaseMetrics(registry) if registry is not None else None

    def failed(self, exc: BaseException) -> float:
        delay = super().failed(exc)
        if self.metrics is not None:
            self.metrics.up.set(0)
            self.metrics.failures.inc()
        return delay

    def succeeded(self) -> None:
        super().succeeded()
        if self.metrics is not None:
            self.metrics.up.set(1)


# -- the raw archive -----------------------------------------------------------------------------

# The archive is a local file on the acknowledgement path: a retry costs one failed local
# write, and every second of delay after the disk has room again is a second longer that the
# broker holds the messages back. So retries are at most 2 s apart (jittered, as ever).
ARCHIVE_BACKOFF_BASE_S = 0.25
ARCHIVE_BACKOFF_MAX_S = 2.0


def _archive_bug(exc: BaseException) -> bool:
    """A traceback only for what the file system or SQLite does not explain in one line."""
    return not (is_disk_full(exc) or isinstance(exc, OSError | sqlite3.OperationalError))


def archive_retrying(path: Path, log: logging.Logger | None = None) -> Retrying:
    """The policy :class:`ingest.archiver.Archiver` retries a failed group commit with (it is
    injected by the service: ingest does not import nonsite): one line when writing starts
    failing ("disk full: cannot write <path> (N bytes free in <dir>)" on a full disk), one
    when it works again, a traceback only for a bug, and retries at most
    ``ARCHIVE_BACKOFF_MAX_S`` apart."""
    return Retrying(
        log or logging.getLogger("ingest.archiver"),
        lost="archive write failed",
        back="archive writes again",
        consequence="received messages wait, unacknowledged (the broker keeps them)",
        traceback=_archive_bug,
        backoff=Backoff(ARCHIVE_BACKOFF_BASE_S, ARCHIVE_BACKOFF_MAX_S),
        describe_error=lambda exc: describe(exc, path),
    )
