"""The outbox dispatcher: sends queued notifications, retries with backoff, gives up loudly.

Rows are written by the case changes' transactions (alerts/notify.py); this side reads the
due ones in order, hands each to its channel and records the outcome. A row is marked
delivered only after its channel returned, so a crash between the two sends it again after
the restart: delivery is at least once, and the idempotency key (the same for every attempt)
lets the receiver keep it once. Each outcome is also an audit row on the case.

One dispatcher per database is assumed: the service runs exactly one (two would send a row
twice, which the idempotency key would still absorb, but to no purpose).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Connection, Engine, func, insert, select, update

from alerts.channels.base import Channel, DeliveryError, Notification
from alerts.schema import case_events, outbox

log = logging.getLogger(__name__)

StatusOf = Callable[[Connection, str], dict[str, Any]]


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "nonsite_notifications",
            "Notification attempts by channel kind and outcome (delivered, retry, dead)",
            ["kind", "outcome"],
            registry=registry,
        )
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
    ) -> None:
        self.db = db
        self.channels = channels
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.status_of = status_of
        self.metrics = metrics
        self.clock = clock
        self.wake = threading.Event()

    def run_once(self, limit: int = 100) -> int:
        """Send the due rows (up to ``limit``); the number attempted."""
        now = self.clock()
        with self.db.connect() as conn:
            query = (
                select(outbox)
                .where(outbox.c.state == "pending", outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.id)
                .limit(limit)
            )
            rows = [dict(r._mapping) for r in conn.execute(query).all()]
        for row in rows:
            self._attempt(row)
        self._gauge()
        return len(rows)

    def run(self, stop: threading.Event, idle_s: float = 1.0) -> None:
        """Until ``stop``: send what is due, then wait for a wake-up or ``idle_s``."""
        while not stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception:  # the database may be briefly unavailable: try again
                log.exception("outbox dispatch failed; retrying")
            self.wake.wait(idle_s)
            self.wake.clear()

    def _attempt(self, row: dict[str, Any]) -> None:
        channel = self.channels.get(row["channel"])
        kind = channel.kind if channel is not None else "unknown"
        try:
            if channel is None:
                raise DeliveryError(
                    f"no channel named {row['channel']!r} is configured", retryable=False
                )
            channel.send(self._notification(row))
        except DeliveryError as err:
            self._failed(row, kind, err)
            return
        now = self.clock()
        with self.db.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row["id"])
                .values(
                    state="delivered",
                    attempts=row["attempts"] + 1,
                    delivered_at=now,
                    last_error=None,
                )
            )
            self._audit(conn, row, now, "delivered", "")
        self._count(kind, "delivered")

    def _failed(self, row: dict[str, Any], kind: str, err: DeliveryError) -> None:
        attempts = row["attempts"] + 1
        now = self.clock()
        dead = not err.retryable or attempts >= self.max_attempts
        values: dict[str, Any] = {"attempts": attempts, "last_error": err.detail[:2000]}
        if dead:
            values["state"] = "dead"
        else:
            values["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempts))
        with self.db.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row["id"]).values(**values))
            if dead:
                self._audit(conn, row, now, "dead", err.detail)
        log.warning(
            "notification %s via %s failed (attempt %d%s): %s",
            row["key"],
            row["channel"],
            attempts,
            ", giving up" if dead else "",
            err.detail,
        )
        self._count(kind, "dead" if dead else "retry")

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
                note=f"{row['channel']}: {outcome}" + (f" ({detail[:500]})" if detail else ""),
                refs=json.dumps(
                    {"key": row["key"], "event": row["event"], "outcome": outcome},
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
