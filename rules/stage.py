"""The rule stage inside the pipeline process: readings → findings, stored with the checkpoint.

Findings of a batch are stored in the batch's checkpoint transaction (idempotent by id). The
engine's state is snapshotted there too, at most every ``snapshot_every_s``; on start the
last snapshot is restored and the archive replayed from its position up to the checkpoint,
so open windows, runs, counters and learned baselines survive restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Connection, Engine

from ingest.readings import ReadingBatch
from nonsite.db_health import is_unavailable
from rules.findings import Finding
from rules.store import load_snapshot, record_findings, record_production, save_snapshot
from rules.stream import STATE_FORMAT, StreamEngine

log = logging.getLogger(__name__)

CONSUMER = "rules"

# Finding latency: the receipt clock spans 1 ms (found in the batch that was received) to a
# minute; the event clock 10 ms to 2 h (an hour's window closes after its grace, an hour by
# default). Buckets belong to a whole family in Prometheus, so both clocks get the union.
RECEIPT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
EVENT_BUCKETS = (0.01, 0.1, 1, 10, 60, 300, 900, 1800, 2700, 3600, 4500, 5400, 7200)
LATENCY_BUCKETS = tuple(sorted(set(RECEIPT_BUCKETS) | set(EVENT_BUCKETS)))


class RuleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.findings = Counter(
            "nonsite_findings",
            "Findings by rule and state (fire / clear)",
            ["rule", "state"],
            registry=registry,
        )
        self.readings = Counter(
            "nonsite_rule_readings",
            "Readings the rule engine saw, by outcome: judged, late, duplicate, future, "
            "unconfigured",
            ["outcome"],
            registry=registry,
        )
        # One family, two clocks, so that the two are compared on one panel.
        self.finding_latency = Histogram(
            "nonsite_finding_latency_seconds",
            "From a new finding's cause to its storing: clock=receipt from the receipt of the "
            "reading that closed its window, clock=event from its window's end (DataTime)",
            ["clock"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


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


class RulesSink:
    def __init__(
        self,
        engine: StreamEngine,
        metrics: RuleMetrics | None = None,
        *,
        snapshot_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_new: Callable[[Connection, list[Finding]], object] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        # Called with the findings that were new to the store, in the same transaction (the
        # case book): a finding judged again after a restart is not applied twice.
        self.on_new = on_new
        self.metrics = metrics
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

    def __call__(self, batch: ReadingBatch) -> None:
        found = self.engine.process(batch)
        if found and self.metrics is not None:
            receipt = closing_receipt(batch)
            if receipt is not None:
                at = receipt.timestamp()
                self._receipts.update((f.id, at) for f in found)
        self._pending += found

    def tick(self, now: int) -> list[Finding]:
        """Absence rules at wall-clock ``now``; the findings wait for the next commit."""
        found = self.engine.tick(now)
        self._pending += found
        return found

    def commit(self, conn: Connection, position: int) -> None:
        """Store this batch's findings (and, now and then, a snapshot) in ``conn``'s transaction."""
        found, self._pending = self._pending, []
        self._record(conn, found)
        self._snapshot_if_due(conn, position)
        self._count(found)

    def snapshot_if_due(self, db: Engine, position: int) -> None:
        """Called when idle: snapshot the state if it changed and the interval has passed."""
        if position == self._snapshot_position or not self._due():
            return
        with db.begin() as conn:
            self._snapshot_if_due(conn, position)

    def _due(self) -> bool:
        return self._clock() - self._last_snapshot >= self._snapshot_every

    def _snapshot_if_due(self, conn: Connection, position: int) -> None:
        if self._due():
            save_snapshot(conn, CONSUMER, position, self.engine)
            self._last_snapshot = self._clock()
            self._snapshot_position = position

    def store_pending(self, conn: Connection) -> None:
        """Store findings produced outside a batch (clock ticks)."""
        found, self._pending = self._pending, []
        self._record(conn, found)
        self._count(found)

    def _record(self, conn: Connection, found: list[Finding]) -> None:
        changed = self.engine.production_changes()
        if changed:
            record_production(conn, changed)
        new = record_findings(conn, found)
        if new and self.on_new is not None:
            self.on_new(conn, new)
        self._observe_latency(new)

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


def restore(engine_factory: Callable[[], StreamEngine], db: Engine) -> tuple[StreamEngine, int]:
    """The last snapshot's engine (reconfigured by the factory's parameters) and its archive
    position; a fresh engine and position 0 when there is none."""
    fresh = engine_factory()
    try:
        loaded = load_snapshot(db, CONSUMER)
    except Exception as exc:  # a snapshot from other code: rebuild the state from the archive
        if is_unavailable(exc):
            # Not the snapshot's fault: starting from nothing would replay the whole archive
            # (or what retention left of it) once the database is back. The caller retries.
            raise
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
