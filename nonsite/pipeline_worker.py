"""The decode pipeline's own process (the child side of ``nonsite serve``).

Receiving (paho, the archive writer) and decoding are both CPU-bound Python; in one process
they share one core through the GIL. Here the pipeline tails the raw archive in a process of
its own, so ``nonsite serve`` uses two cores. It talks to the parent over two one-way pipes:

  parent → child   ("wake",) after archive commits, ("drain",) at shutdown
  child → parent   ("status", position, head, error, database), ("metrics", exposition text),
                   ("replies", [(topic, payload), ...]), ("drained", position)

An exclusive lock on ``<data_dir>/pipeline.lock`` makes sure that only one pipeline works on
an archive: when the parent is killed, its orphaned child finishes its batch, sees the pipe
close and exits, and the next child waits for the lock instead of decoding beside it.

The database may go away (an outage, a full disk): the worker then retries with backoff and
jitter, logs one line when it goes and one when it is back (nonsite/db_health.py), and
reports it in its status (``database``: the problem, None while it answers) for ``/readyz``.
The service keeps archiving and acknowledging meanwhile; the pipeline catches up afterwards.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import update

from ingest.archive import RawArchive
from ingest.metrics import PipelineMetrics
from ingest.pipeline import IngestPipeline
from ingest.processor import MessageProcessor
from ingest.store import checkpoints
from nonsite.alert_wiring import build_dispatcher
from nonsite.collector import expose_frozen, pace_for_live_stream
from nonsite.config.model import Config
from nonsite.db import make_engine, sqlite_path
from nonsite.db_health import DatabaseHealth, Retrying, is_unavailable
from nonsite.stages import StageMetrics, build_stages
from nonsite.wiring import build_policy, build_registry, build_router

log = logging.getLogger("nonsite.pipeline")

STATUS_EVERY_S = 0.5
TICK_EVERY_S = 30.0
METRICS_EVERY_S = 1.0


def acquire_lock(path: Path, inbox: Connection) -> IO[str] | None:
    """Wait for the archive's pipeline lock; None if the parent went away meanwhile."""
    handle = path.open("w")
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            log.info("another pipeline still holds %s; waiting", path)
            if inbox.poll(0.2):
                try:
                    inbox.recv()
                except EOFError:
                    return None


class Worker:
    """The decode pipeline and its stages (nonsite/stages.py), kept going through database
    outages.

    The stages are built from the database: the rule engine from its snapshot, caught up to
    the checkpoint. A failed transaction throws them away: the engine had judged readings
    whose findings were not stored, and judging them again after a restore is how they are
    not lost (the path a crash takes). While the database is away (:mod:`nonsite.db_health`)
    nothing is attempted before the backoff has passed, however often the service wakes the
    pipeline; messages keep being archived by the service meanwhile.
    """

    def __init__(self, config: Config, inbox: Connection, outbox: Connection) -> None:
        self.config = config
        self.inbox = inbox
        self.outbox = outbox
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.stage_metrics = StageMetrics(self.registry)
        expose_frozen(self.registry, "pipeline")
        url = config.database_url()
        self.health = DatabaseHealth(log, self.registry, path=sqlite_path(url))
        # Anything else a batch may raise (a bug): retried the same way, its traceback once.
        self.failing = Retrying(
            log, lost="pipeline batch failed", back="pipeline batches succeed again", traceback=True
        )
        self.replies: list[tuple[str, bytes]] = []
        self.archive = RawArchive(config.service.archive_path, readonly=True)
        self.engine = make_engine(url)
        self.processor = MessageProcessor(
            build_registry(config), build_router(config), build_policy(config)
        )
        self.dispatcher = build_dispatcher(config, self.engine, self.registry, self.health)
        self.pipeline: IngestPipeline | None = None  # None until built, and after a failure
        self.position = 0  # the checkpoint, as last known
        self._last_status = 0.0
        self._last_metrics = 0.0
        self._last_tick = 0.0
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001 - logged by _failed; built again after the backoff
            self._failed(exc)

    def _open(self) -> IngestPipeline:
        """Build the stages from the database and catch them up (see the class)."""
        self.pipeline = None
        stages = build_stages(
            self.config,
            self.engine,
            self.stage_metrics,
            wake_dispatcher=self._wake_dispatcher,
        )
        pipeline = IngestPipeline(
            self.archive,
            self.engine,
            self.processor,
            stages,
            publish=lambda topic, payload: self.replies.append((topic, payload)),
            metrics=self.metrics,
        )
        replayed = pipeline.catch_up()
        if replayed:
            log.info(
                "rule engine caught up: %d archived messages replayed since its snapshot", replayed
            )
        self.pipeline = pipeline
        self.position = pipeline.position
        return pipeline

    def _wake_dispatcher(self) -> None:
        self.dispatcher.wake.set()  # looked up at each call: the event is the dispatcher's

    # -- failures -----------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        """A failed attempt: the stage is rebuilt at the next one (see the class), after the
        backoff; the log says so once per outage or distinct error."""
        if self.pipeline is not None:
            self.position = self.pipeline.position
        self.pipeline = None
        if is_unavailable(exc):
            self.health.failed(exc)
        else:
            self.failing.failed(exc)

    def _succeeded(self) -> None:
        self.health.succeeded()
        self.failing.succeeded()

    def _due(self) -> bool:
        return self.health.due() and self.failing.due()

    def _wait_s(self) -> float:
        return max(self.health.wait_s(), self.failing.wait_s())

    def _probe(self) -> None:
        """During an outage a batch may find nothing to do without touching the database:
        ask it first, so that "available again" means it answered. A committed write, not a
        read: a full disk still answers reads, and declaring it back would let the outbox send
        a notification it cannot record, again at every round (a DingTalk robot would show
        each one)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(checkpoints)
                .where(checkpoints.c.consumer == "ingest")
                .values(updated_at=datetime.now(UTC))
            )

    # -- the loop -----------------------------------------------------------------------------

    def step(self) -> int:
        """One batch; -1 when it failed (to be retried after the backoff), never fatal."""
        try:
            if not self.health.ok:
                self._probe()
            pipeline = self.pipeline or self._open()
            n = pipeline.run_once()
        except Exception as exc:  # noqa: BLE001 - logged once per outage or error by _failed
            self._failed(exc)
            return -1
        self.position = pipeline.position
        self._succeeded()
        return n

    def tick(self) -> None:
        """Between batches: the stages' housekeeping (a snapshot of the rule engine when one
        is due, the case gauges), and every ``TICK_EVERY_S`` the clock of the absence rules
        (offline loggers, missing hours, silent meters) and of the case deadlines."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        try:
            pipeline.between_batches()
            now = time.monotonic()
            if now - self._last_tick >= TICK_EVERY_S:
                self._last_tick = now
                pipeline.tick(time.time())
        except Exception as exc:  # noqa: BLE001 - logged once per outage or error by _failed
            self._failed(exc)

    def report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.replies:
            self.outbox.send(("replies", self.replies))
            self.replies = []
        if force or now - self._last_status >= STATUS_EVERY_S:
            head = self.archive.head_seq()
            self.metrics.pipeline_lag.set(max(0, head - self.position))
            status = ("status", self.position, head, self.failing.problem, self.health.problem)
            self.outbox.send(status)
            self._last_status = now
        if force or now - self._last_metrics >= METRICS_EVERY_S:
            self.outbox.send(("metrics", generate_latest(self.registry).decode()))
            self._last_metrics = now

    def _receive(self, timeout: float) -> set[str] | None:
        """The kinds of message the service sent within ``timeout`` (wake-ups coalesce);
        None when it is gone."""
        if not self.inbox.poll(timeout):
            return set()
        kinds = set()
        try:
            while self.inbox.poll(0):
                kinds.add(self.inbox.recv()[0])
        except EOFError:
            return None
        return kinds

    def run(self) -> None:
        while True:
            due = self._due()
            n = self.step() if due else -1
            if n >= 0:
                self.tick()
            self.report()
            if n > 0 and self._due():
                continue
            # Idle: wait for a wake-up. Failing: wait out the backoff, whatever wakes us
            # meanwhile (every archive commit does), reporting status as we go.
            wait = 1.0 if self._due() else min(self._wait_s(), STATUS_EVERY_S)
            kinds = self._receive(wait)
            if kinds is None:
                log.warning("the service process is gone; pipeline exits")
                return
            if "drain" in kinds:
                self.drain()
                return

    def drain(self) -> None:
        """At shutdown: decode everything archived. The database gets a few quick attempts;
        what it does not take waits in the archive for the next start, and one line says so."""
        for attempt in range(3):
            if attempt:
                time.sleep(0.5)
            try:
                if not self.health.ok:
                    self._probe()
                pipeline = self.pipeline or self._open()
                pipeline.drain()
            except Exception as exc:  # noqa: BLE001 - logged once per outage or error by _failed
                self._failed(exc)
                continue
            self.position = pipeline.position
            self._succeeded()
            break
        else:
            left = self.archive.head_seq() - self.position
            log.warning(
                "stopping with %d archived messages not decoded (%s); they are decoded at the "
                "next start",
                left,
                self.health.problem or self.failing.problem,
            )
        self.report(force=True)
        self.outbox.send(("drained", self.position))


def run_worker(config_json: str, inbox: Connection, outbox: Connection) -> None:
    """Entry point of the pipeline process (multiprocessing spawn target)."""
    # Ctrl-C in a terminal signals the whole process group: the parent stops this process in
    # order (drain), where a KeyboardInterrupt here cut it short with a traceback and an ERROR.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=os.environ.get("NONSITE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s[pipeline]: %(message)s",
    )
    config = Config.model_validate_json(config_json)
    lock = acquire_lock(config.service.data_dir / "pipeline.lock", inbox)
    if lock is None:
        return
    stop = threading.Event()
    dispatcher: threading.Thread | None = None
    worker: Worker | None = None
    try:
        worker = Worker(config, inbox, outbox)
        pace_for_live_stream()  # the rule engine is restored and caught up: see the module
        # Notifications are network waits: a thread beside the CPU-bound pipeline suffices.
        dispatcher = threading.Thread(
            target=worker.dispatcher.run, args=(stop,), name="outbox", daemon=True
        )
        dispatcher.start()
        worker.run()
    except (BrokenPipeError, EOFError, OSError) as exc:
        log.warning("lost the service process (%s); pipeline exits", exc)
    finally:
        stop.set()
        if worker is not None:
            worker.dispatcher.wake.set()
        if worker is not None and dispatcher is not None:
            # It waits for its senders up to the slowest channel's timeout (up to 120 s).
            dispatcher.join(timeout=worker.dispatcher.stop_grace_s + 1)
        if worker is not None:
            for channel in worker.dispatcher.channels.values():
                channel.close()
        lock.close()
