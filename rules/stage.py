"""The rule stage (:mod:`ingest.stage`): readings → findings, stored with the checkpoint.

Findings of a batch are stored in the batch's checkpoint transaction (idempotent by id), and
the findings new to the store are handed to the next stage (the alert stage's cases). The
engine's state is snapshotted there too, at most every ``snapshot_every_s``; on start the
last snapshot is restored (:func:`restore`) and the pipeline replays the archive from its
position up to the checkpoint, so open windows, runs, counters and learned baselines survive
restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ingest.processor import ProcessedBatch
from ingest.readings import ReadingBatch
from ingest.stage import Handed
from rules.findings import Finding
from rules.history_store import Partitions, record_history
from rules.metrics import RuleMetrics
from rules.store import load_snapshot, record_findings, record_production, save_snapshot
from rules.stream import STATE_FORMAT, StreamEngine

log = logging.getLogger(__name__)

CONSUMER = "rules"


def closing_receipt(batch: ReadingBatch) -> datetime | None:
    """The latest receipt time in a batch: the receipt of the reading that closed a window.

    The engine judges a batch as a whole and does not say which reading moved the watermark
    past a window's end; every reading of the batch was received by the latest receipt, so the
    closing one was too. Latency from it is a lower bound, short by at most the spread of the
    batch's receipts: under a second when following live traffic (a batch is what arrived since
    the previous one), more while catching up on a backlog.
    """
    latest: datetime | None = None
    for readings in (batch.measurements, batch.device_states, batch.loggers, batch.power):
        if readings:
            last = max(r.received_at for r in readings)
            latest = last if latest is None or last > latest else latest
    return latest


class RuleStage:
    """The stream engine as a stage of the pipeline; hands on the findings new to the store."""

    def __init__(
        self,
        engine: StreamEngine,
        metrics: RuleMetrics | None = None,
        *,
        snapshot_every_s: float = 60.0,
        restored_at: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        refresh: Callable[[Connection], StreamEngine | None] | None = None,
        consumer: str = CONSUMER,
    ) -> None:
        """``restored_at``: the archive position of the snapshot the engine was restored from
        (0 for a fresh engine); ``refresh``: at each tick, a reconfigured engine when its
        parameters changed (markings declared online), None when they did not;
        ``consumer``: the snapshot's name (a cluster worker's partition has its own)."""
        self.engine = engine
        self.consumer = consumer
        self.metrics = metrics
        self.restored_at = restored_at
        self._refresh = refresh
        self._pending: list[Finding] = []
        self._snapshot_every = snapshot_every_s
        self._clock = clock
        self._last_snapshot = -float("inf")  # the first commit takes one
        self._snapshot_position = -1
        self._seen = (0, 0, 0, 0, 0)
        self._wall = wall_clock
        # Receipt (epoch seconds) of the batch that produced each pending finding, by id; the
        # clock's findings (absence rules) have none: no reading closed them.
        self._receipts: dict[str, float] = {}
        self._partitions = Partitions()  # of the kept values' tables (PostgreSQL)

    # -- the stage protocol ------------------------------------------------------------------

    def process(self, batch: ProcessedBatch) -> None:
        self.judge(batch.readings)

    def commit(self, conn: Connection, position: int, handed: Handed) -> list[Finding]:
        """Store this batch's findings (and, now and then, a snapshot) in ``conn``'s
        transaction; the ones new to the store go on."""
        new = self.store_pending(conn)
        if self._due():
            self._snapshot(conn, position)
        return new

    def tick(self, conn: Connection, now: float, handed: Handed) -> list[Finding]:
        """The absence rules at wall-clock ``now`` (after taking up changed parameters)."""
        if self._refresh is not None:
            fresh = self._refresh(conn)
            if fresh is not None:
                self.engine.reconfigure(fresh)
        self._pending += self.engine.tick(int(now))
        return self.store_pending(conn)

    def committed(self) -> None:
        self._partitions.committed()

    def between_batches(self, db: Engine, position: int) -> None:
        """Snapshot the state if it changed and the interval has passed."""
        if position == self._snapshot_position or not self._due():
            return
        with db.begin() as conn:
            self._snapshot(conn, position)

    # -- the parts ----------------------------------------------------------------------------

    def judge(self, batch: ReadingBatch) -> None:
        """Readings → pending findings (stored by the next commit)."""
        found = self.engine.process(batch)
        if found and self.metrics is not None:
            receipt = closing_receipt(batch)
            if receipt is not None:
                at = receipt.timestamp()
                self._receipts.update((f.id, at) for f in found)
        self._pending += found

    def store_pending(self, conn: Connection) -> list[Finding]:
        """Store the pending findings; returns those new to the store."""
        found, self._pending = self._pending, []
        changed = self.engine.production_changes()
        if changed:
            record_production(conn, changed)
        kept = self.engine.take_history()
        if kept.hours or kept.days or kept.detail or kept.meters:
            self._partitions.rolled_back()  # a partition made by a failed attempt is gone
            record_history(conn, kept, self._partitions)
        new = record_findings(conn, found)
        self._observe_latency(new)
        self._count(found)
        return new

    def _due(self) -> bool:
        return self._clock() - self._last_snapshot >= self._snapshot_every

    def _snapshot(self, conn: Connection, position: int) -> None:
        save_snapshot(conn, self.consumer, position, self.engine)
        self._last_snapshot = self._clock()
        self._snapshot_position = position

    def _observe_latency(self, new: list[Finding]) -> None:
        """Latency of the findings new to the store, at the moment they are stored (in the
        transaction, just before its commit; a finding stored before is not observed again)."""
        receipts, self._receipts = self._receipts, {}
        if self.metrics is None or not new:
            return
        now = self._wall()
        latency = self.metrics.finding_latency
        for f in new:
            received = receipts.get(f.id)
            if received is not None:
                latency.labels("receipt").observe(max(0.0, now - received))
            # Clamped: a device clock running ahead (within max_future_s) is not negative time.
            latency.labels("event").observe(max(0.0, now - f.window_end))

    def _count(self, found: list[Finding]) -> None:
        m = self.metrics
        if m is None:
            return
        for f in found:
            m.findings.labels(f.rule, f.state).inc()
        s = self.engine.stats
        now = (s.readings, s.late, s.duplicates, s.future, s.unconfigured)
        judged = (now[0] - sum(now[1:])) - (self._seen[0] - sum(self._seen[1:]))
        m.readings.labels("judged").inc(max(judged, 0))
        for label, new, old in zip(
            ("late", "duplicate", "future", "unconfigured"), now[1:], self._seen[1:], strict=True
        ):
            m.readings.labels(label).inc(new - old)
        self._seen = now


def restore(
    engine_factory: Callable[[], StreamEngine], db: Engine, consumer: str = CONSUMER
) -> tuple[StreamEngine, int]:
    """The last snapshot's engine (reconfigured by the factory's parameters) and its archive
    position; a fresh engine and position 0 when there is none."""
    fresh = engine_factory()
    try:
        loaded = load_snapshot(db, consumer)
    except (SQLAlchemyError, ConnectionError, TimeoutError):
        # Not the snapshot's fault: starting from nothing would replay the whole archive (or
        # what retention left of it) once the database is back. The caller retries.
        raise
    except Exception:  # a snapshot from other code: rebuild the state from the archive
        log.warning("rule snapshot unreadable; replaying the archive", exc_info=True)
        return fresh, 0
    if loaded is None:
        return fresh, 0
    position, state = loaded
    if not isinstance(state, StreamEngine):
        log.warning("rule snapshot is not an engine; starting fresh")
        return fresh, 0
    if getattr(state, "state_format", None) != STATE_FORMAT:
        log.warning("rule snapshot has another state layout; replaying the archive")
        return fresh, 0
    state.reconfigure(fresh)
    return state, position


__all__ = ["CONSUMER", "RuleStage", "closing_receipt", "restore"]
