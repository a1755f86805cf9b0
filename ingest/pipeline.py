"""Tail the raw archive from a checkpoint: decode, record dead letters, hand readings on.

The archive is the log; this consumer's position is a checkpoint in the service database,
moved in the same transaction as the batch's dead letters. On start it catches up from the
checkpoint (messages archived while it was down, or before a crash), then follows new
commits. A batch is handed to the reading sink before its checkpoint commits, so after a
crash a batch may be handed on twice but never skipped; the rule stage is idempotent on
(key, event time) for exactly that reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine

from ingest.archive import RawArchive
from ingest.metrics import PipelineMetrics
from ingest.processor import MessageProcessor, ProcessedBatch
from ingest.readings import ReadingBatch
from ingest.store import load_checkpoint, record_batch

log = logging.getLogger(__name__)


class ReadingSink(Protocol):
    def __call__(self, batch: ReadingBatch) -> None: ...


class TransactionalSink(ReadingSink, Protocol):
    """A sink whose effects of a batch are written in the batch's checkpoint transaction."""

    def commit(self, conn: Connection, position: int) -> None: ...


class IngestPipeline:
    def __init__(
        self,
        archive: RawArchive,
        engine: Engine,
        processor: MessageProcessor,
        sink: ReadingSink,
        *,
        publish: Callable[[str, bytes], None] | None = None,
        on_committed: Callable[[], None] | None = None,
        metrics: PipelineMetrics | None = None,
        consumer: str = "ingest",
        batch_size: int = 1000,
        also_record: Callable[[Connection, ProcessedBatch], None] | None = None,
    ) -> None:
        """``also_record``: more of a batch to store in its checkpoint transaction (the
        loggers' answers to commands, ingest.commands)."""
        self._archive = archive
        self._engine = engine
        self._processor = processor
        self._sink = sink
        self._publish = publish
        self._on_committed = on_committed  # the batch's effects are visible to others now
        self._metrics = metrics
        self._consumer = consumer
        self._batch_size = batch_size
        self._also_record = also_record
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self.position = load_checkpoint(engine, consumer)
        self.failed: BaseException | None = None

    def notify(self) -> None:
        """New messages were archived (called by the archiver after each commit)."""
        self._wake.set()

    def run_once(self) -> int:
        """Process one batch after the checkpoint; returns the number of messages done."""
        messages = self._archive.read_after(self.position, self._batch_size)
        if not messages:
            return 0
        started = time.perf_counter()
        done = self._processor.process(messages)
        self._sink(done.readings)
        begun = time.perf_counter()
        with self._engine.begin() as conn:
            record_batch(conn, self._consumer, messages[-1].seq, done.dead_letters)
            if self._also_record is not None:
                self._also_record(conn, done)
            commit = getattr(self._sink, "commit", None)
            if commit is not None:
                commit(conn, messages[-1].seq)
        if self._metrics:
            self._metrics.db_commit_seconds.labels("checkpoint").observe(
                time.perf_counter() - begun
            )
        self.position = messages[-1].seq
        self._after_commit(done)
        if self._metrics:
            self._metrics.batch_seconds.observe(time.perf_counter() - started)
        return len(messages)

    def _after_commit(self, done: ProcessedBatch) -> None:
        if self._on_committed is not None:
            self._on_committed()
        if self._publish is not None:
            for topic, payload in done.replies:
                self._publish(topic, payload)
        m = self._metrics
        if m is None:
            return
        for outcome, n in done.outcomes.items():
            m.decoded.labels(outcome).inc(n)
        m.frames.labels("accepted").inc(done.frames_accepted)
        m.frames.labels("dead_letter").inc(len(done.dead_letters))
        for letter in done.dead_letters:
            m.dead_letters.labels(letter.reason).inc()
        r = done.readings
        m.readings.labels("measurement").inc(len(r.measurements))
        m.readings.labels("device_state").inc(len(r.device_states))
        m.readings.labels("power").inc(len(r.power))
        for reason, n in done.unused_power_values.items():
            m.unused_power_values.labels(reason).inc(n)
        m.replies.inc(len(done.replies) if self._publish else 0)

    def drain(self) -> int:
        """Process everything archived so far."""
        total = 0
        while n := self.run_once():
            total += n
        return total

    # -- background thread -----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-pipeline", daemon=True)
        self._thread.start()

    def stop(self, *, drain: bool = True, timeout: float = 60.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if drain and self.failed is None:
            self.drain()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the pipeline has caught up with the archive (for tests and shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            self._wake.clear()
            try:
                n = self.run_once()
            except Exception as exc:  # database down: keep the position, retry with backoff
                self.failed = exc
                log.exception("ingest pipeline batch failed; retrying in %.1f s", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.failed = None
            delay = 0.5
            if self._metrics:
                self._metrics.pipeline_lag.set(max(0, self._archive.head_seq() - self.position))
            if n:
                self._idle.clear()
                continue
            self._idle.set()
            self._wake.wait(1.0)
