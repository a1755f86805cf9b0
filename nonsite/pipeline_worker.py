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
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

import sqlalchemy
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import func, select, update

from alerts.metrics import CaseMetrics
from alerts.outbox import Dispatcher, OutboxMetrics
from alerts.status import enterprise_status
from ingest.archive import RawArchive
from ingest.commands.auto import MissingHour
from ingest.latest import LatestValues
from ingest.metrics import PipelineMetrics
from ingest.pipeline import IngestPipeline
from ingest.processor import MessageProcessor
from ingest.readings import ReadingBatch
from ingest.store import checkpoints, load_checkpoint
from nonsite.alert_wiring import build_case_book, build_channels
from nonsite.config.model import Config
from nonsite.db import make_engine, sqlite_path
from nonsite.db_health import DatabaseHealth, Retrying, is_unavailable, one_line
from nonsite.rule_wiring import build_markings, build_outlet_params, build_power_params
from nonsite.rules_sink import RuleMetrics, RulesSink, restore
from nonsite.wiring import build_auto_commands, build_policy, build_registry, build_router
from rules.findings import Finding
from rules.store import declared_as_markings, declared_markings, list_declared_markings
from rules.stream import StreamEngine

log = logging.getLogger("nonsite.pipeline")

STATUS_EVERY_S = 0.5
TICK_EVERY_S = 30.0
METRICS_EVERY_S = 1.0
CASE_GAUGES_EVERY_S = 5.0  # a GROUP BY over the cases: cheap, but not once a batch


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


class _Both:
    """Readings go to the latest values and to the rule engine; the engine commits."""

    def __init__(self, latest: LatestValues, rules: RulesSink) -> None:
        self._latest, self._rules = latest, rules

    def __call__(self, batch: ReadingBatch) -> None:
        self._latest(batch)
        self._rules(batch)

    def commit(self, conn: sqlalchemy.Connection, position: int) -> None:
        self._rules.commit(conn, position)


class Worker:
    """The decode pipeline and the rule stage over it, kept going through database outages.

    The stage (the rule engine and the archive tail) is built from the database: the engine
    from its snapshot, caught up to the checkpoint. A failed transaction throws it away: the
    engine had judged readings whose findings were not stored, and judging them again after a
    restore is how they are not lost (the path a crash takes). While the database is away
    (:mod:`nonsite.db_health`) nothing is attempted before the backoff has passed, however often
    the service wakes the pipeline; messages keep being archived by the service meanwhile.
    """

    def __init__(self, config: Config, inbox: Connection, outbox: Connection) -> None:
        self.config = config
        self.inbox = inbox
        self.outbox = outbox
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.case_metrics = CaseMetrics(self.registry)
        self.rule_metrics = RuleMetrics(self.registry)
        url = config.database_url()
        self.health = DatabaseHealth(log, self.registry, path=sqlite_path(url))
        # Anything else a batch may raise (a bug): retried the same way, its traceback once.
        self.failing = Retrying(
            log, lost="pipeline batch failed", back="pipeline batches succeed again", traceback=True
        )
        self.replies: list[tuple[str, bytes]] = []
        data_dir = config.service.data_dir
        self.archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
        self.engine = make_engine(url)
        self.processor = MessageProcessor(
            build_registry(config), build_router(config), build_policy(config)
        )
        self.cases = build_case_book(config)
        self.commands = build_auto_commands(config)
        # (enterprise, outlet) → the MN of its logger: a B7 finding names the outlet.
        self._mn_of = {(e.id, o.id): o.mn for e in config.enterprises for o in e.outlets}
        self.dispatcher = Dispatcher(
            self.engine,
            build_channels(config),
            max_attempts=config.alerts.max_attempts,
            retry_base_s=config.alerts.retry_base_s,
            retry_max_s=config.alerts.retry_max_s,
            status_of=enterprise_status,
            metrics=OutboxMetrics(self.registry),
            # The dispatcher's threads share this process's view of the database (thread-
            # safe): what they meet is said once, and they wait while the batches (which keep
            # trying) find it away. A bug in one of its loops: its traceback once per error.
            health=self.health,
            is_unavailable=is_unavailable,
            retrying=lambda what: Retrying(
                logging.getLogger("alerts.outbox"),
                lost=f"{what} failed",
                back=f"{what} works again",
                traceback=True,
            ),
        )
        self._declared = 0  # declared markings the rule engine has taken up
        self._cases_changed = False  # since the dispatcher was last woken
        self._fresh_engine: Callable[[], StreamEngine] = lambda: StreamEngine({})
        self.rules: RulesSink | None = None  # the stage: None until built, and after a failure
        self.pipeline: IngestPipeline | None = None
        self.position = 0  # the checkpoint, as last known
        self._last_status = 0.0
        self._last_metrics = 0.0
        self._last_tick = 0.0
        self._last_case_gauges = -float("inf")
        self._gauge_error: str | None = None
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001 - logged by _failed; built again after the backoff
            self._failed(exc)

    def _open(self) -> IngestPipeline:
        """Build the stage from the database (see the class)."""
        self.rules = self.pipeline = None
        rules = self._rules()
        pipeline = IngestPipeline(
            self.archive,
            self.engine,
            self.processor,
            _Both(LatestValues(), rules),
            publish=lambda topic, payload: self.replies.append((topic, payload)),
            on_committed=self._wake_dispatcher,
            metrics=self.metrics,
            also_record=self.commands.record,
        )
        self.rules, self.pipeline = rules, pipeline
        self.position = pipeline.position
        return pipeline

    def _rules(self) -> RulesSink:
        """The rule engine, restored from its snapshot and caught up to the checkpoint."""
        config = self.config
        r = config.rules

        def fresh() -> StreamEngine:
            with self.engine.connect() as conn:
                declared = list_declared_markings(conn)
            self._declared = len(declared)
            return StreamEngine(
                build_outlet_params(config),
                power=build_power_params(config),
                markings=build_markings(config) + declared_as_markings(declared),
                grace_s=r.grace_s,
                max_future_s=r.max_future_s,
            )

        self._fresh_engine = fresh

        engine, position = restore(fresh, self.engine)
        sink = RulesSink(
            engine,
            self.rule_metrics,
            snapshot_every_s=r.snapshot_every_s,
            on_new=self._apply_findings,
        )
        checkpoint = load_checkpoint(self.engine, "ingest")
        replayed = 0
        while position < checkpoint:  # judged before the crash, after the snapshot: again
            messages = [m for m in self.archive.read_after(position, 1000) if m.seq <= checkpoint]
            if not messages:
                break
            sink(self.processor.process(messages).readings)
            with self.engine.begin() as conn:
                sink.store_pending(conn)  # findings are stored once: their ids are stable
            position = messages[-1].seq
            replayed += len(messages)
        if replayed:
            log.info(
                "rule engine caught up: %d archived messages replayed since its snapshot", replayed
            )
        return sink

    def _apply_findings(self, conn: sqlalchemy.Connection, found: list[Finding]) -> None:
        """New findings become cases in the checkpoint's transaction; the dispatcher is woken
        once that commits (see :meth:`_wake_dispatcher`)."""
        self.cases.apply(conn, found)
        self._cases_changed = True
        b7 = (self._missing_hour(conn, f) for f in found if f.rule == "B7" and f.state == "fire")
        hours = [h for h in b7 if h is not None]
        if hours:
            self.commands.recall_missing(conn, hours, datetime.now(UTC))

    def _missing_hour(self, conn: sqlalchemy.Connection, f: Finding) -> MissingHour | None:
        """A B7 finding as the hour to recall, with the case it opened (its evidence)."""
        mn = self._mn_of.get((f.enterprise_id, f.source_id))
        if mn is None:
            return None
        case_id = self.cases.latest_case_id(conn, f.enterprise_id, f.source_id, f.rule)
        return MissingHour(
            mn=mn,
            start=datetime.fromtimestamp(f.window_start, UTC),
            minute_data=f.evidence.get("data") in ("minute", "realtime"),
            case_id=case_id,
            factor=f.factor,
        )

    def _wake_dispatcher(self) -> None:
        """After a commit that changed cases (each batch's, by the pipeline, and the tick's).
        Woken inside the transaction, the dispatcher would look before the commit, find no
        rows and sleep until its next wake-up."""
        if self._cases_changed:
            self._cases_changed = False
            self.dispatcher.wake.set()

    def refresh_markings(self) -> bool:
        """Take up markings declared online since the engine was built (they excuse the data
        judged from now on); True when there were new ones."""
        rules = self.rules
        if rules is None:
            return False
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(declared_markings)).scalar_one()
        if count == self._declared:
            return False
        rules.engine.reconfigure(self._fresh_engine())
        log.info("rule engine: %d declared markings", self._declared)
        return True

    # -- failures -----------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        """A failed attempt: the stage is rebuilt at the next one (see the class), after the
        backoff; the log says so once per outage or distinct error."""
        if self.pipeline is not None:
            self.position = self.pipeline.position
        self.rules = self.pipeline = None
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
        """The clock of the absence rules (offline loggers, missing hours, silent meters) and
        of the case deadlines, and a snapshot of the rule engine when one is due."""
        rules = self.rules
        if rules is None:
            return
        try:
            self._tick(rules)
        except Exception as exc:  # noqa: BLE001 - logged once per outage or error by _failed
            self._failed(exc)

    def _tick(self, rules: RulesSink) -> None:
        rules.snapshot_if_due(self.engine, self.position)
        now = time.monotonic()
        self._refresh_case_gauges(now)
        if now - self._last_tick < TICK_EVERY_S:
            return
        self._last_tick = now
        self.refresh_markings()
        rules.tick(int(time.time()))
        begun = time.perf_counter()
        with self.engine.begin() as conn:
            rules.store_pending(conn)
            if self.cases.tick(conn):
                self._cases_changed = True
        self._wake_dispatcher()
        self.metrics.db_commit_seconds.labels("tick").observe(time.perf_counter() - begun)

    def _refresh_case_gauges(self, now: float) -> None:
        """Cases by state and tier and overdue work orders, at most every few seconds; a
        failed read keeps the last values and is tried again next time."""
        if now - self._last_case_gauges < CASE_GAUGES_EVERY_S:
            return
        self._last_case_gauges = now
        try:
            with self.engine.connect() as conn:
                self.case_metrics.refresh(conn, datetime.now(UTC))
        except Exception as exc:
            if is_unavailable(exc):
                raise
            summary = one_line(exc)
            if summary != self._gauge_error:  # a bug: its traceback once, not every 5 s
                log.warning("case gauges not refreshed: %s", summary, exc_info=True)
            self._gauge_error = summary
        else:
            self._gauge_error = None

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
