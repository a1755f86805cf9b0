"""The alert stage (:mod:`ingest.stage`): findings → cases, in the checkpoint's transaction.

The rule stage hands on the findings new to the store; they become cases here in the same
transaction (a finding judged again after a restart is not new, so it is not applied twice).
The cases' deadline clock runs at the pipeline's tick. Once a transaction that changed cases
has committed, the outbox dispatcher is woken: woken inside it, the dispatcher would look
before the commit, find no rows and sleep until its next wake-up. Between batches the case
gauges are refreshed every few seconds (a GROUP BY over the cases: cheap, but not once a
batch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from alerts.cases import CaseBook
from alerts.metrics import CaseMetrics
from ingest.processor import ProcessedBatch
from ingest.stage import Handed
from rules.findings import Finding

log = logging.getLogger(__name__)

CASE_GAUGES_EVERY_S = 5.0


class AlertStage:
    restored_at: int | None = None  # its state is the database's: nothing to replay

    def __init__(
        self,
        cases: CaseBook,
        *,
        wake: Callable[[], None] | None = None,
        metrics: CaseMetrics | None = None,
        is_unavailable: Callable[[BaseException], bool] = lambda exc: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``wake``: wakes the outbox dispatcher; ``is_unavailable``: tells a database
        outage (raised, for the runner's backoff) from a bug in the gauges' query (logged)."""
        self.cases = cases
        self._wake = wake
        self._metrics = metrics
        self._is_unavailable = is_unavailable
        self._clock = clock
        self._changed = False  # since the dispatcher was last woken
        self._last_gauges = -float("inf")
        self._gauge_error: str | None = None

    def process(self, batch: ProcessedBatch) -> None:
        return None

    def commit(self, conn: Connection, position: int, handed: Handed) -> Sequence[Finding]:
        """The findings new to the store become cases; they go on to the reactions."""
        found: Sequence[Finding] = handed
        if found:
            self.cases.apply(conn, found)
            self._changed = True
        return found

    def tick(self, conn: Connection, now: float, handed: Handed) -> Sequence[Finding]:
        """The clock's findings (absence rules), then the deadlines of cases."""
        found = self.commit(conn, -1, handed)
        if self.cases.tick(conn):
            self._changed = True
        return found

    def committed(self) -> None:
        if self._changed:
            self._changed = False
            if self._wake is not None:
                self._wake()

    def between_batches(self, db: Engine, position: int) -> None:
        """Cases by state and tier and overdue work orders, at most every few seconds; a
        failed read keeps the last values and is tried again next time."""
        now = self._clock()
        if self._metrics is None or now - self._last_gauges < CASE_GAUGES_EVERY_S:
            return
        self._last_gauges = now
        try:
            with db.connect() as conn:
                self._metrics.refresh(conn, datetime.now(UTC))
        except Exception as exc:
            if self._is_unavailable(exc):
                raise
            summary = f"{type(exc).__name__}: {exc}".splitlines()[0][:240]
            if summary != self._gauge_error:  # a bug: its traceback once, not every 5 s
                log.warning("case gauges not refreshed: %s", summary, exc_info=True)
            self._gauge_error = summary
        else:
            self._gauge_error = None


__all__ = ["CASE_GAUGES_EVERY_S", "AlertStage"]
