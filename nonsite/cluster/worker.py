"""``nonsite serve --role worker``: owns partitions of the stream and runs their stages.

A worker holds leases on some partitions (``nonsite.cluster.leases``: a fair share of them,
taken over from a worker that died once its lease expires). For each partition it owns it
builds the stages from the partition's enterprises (``nonsite.cluster.scope``), restores the
partition's rule snapshot, reads the stream from the partition's checkpoint
(``ingest.jetstream.reader``) and runs the same pipeline as one machine does
(``ingest.pipeline``), each transaction fenced by the lease: once another worker has taken the
partition, this one's next commit fails and it lets the partition go. The absence rules' clock
ticks per partition, here at its owner.

One thread runs the partitions in turn, one batch each, so that one busy partition does not
starve the others; it waits on one event that any partition's arrival sets. The outbox
dispatcher runs beside it (any number of dispatchers may share the database).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from ingest.commands.metrics import CommandMetrics
from ingest.commands.sender import CommandSender
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.publisher import connect, describe_nats_error
from ingest.jetstream.reader import PartitionReader
from ingest.jetstream.stream import StreamSettings
from ingest.metrics import PipelineMetrics
from ingest.mqtt.source import MqttSource
from ingest.pipeline import IngestPipeline
from ingest.processor import MessageProcessor
from nonsite.alert_wiring import build_dispatcher
from nonsite.cluster.leases import Lease, LeaseLost, PartitionLeases
from nonsite.cluster.scope import config_for_partition, nats_login, stream_settings
from nonsite.config.model import Config
from nonsite.db import make_engine, migrate
from nonsite.db_health import DatabaseHealth, Retrying, is_unavailable
from nonsite.http import bind, build_app, make_server
from nonsite.positive_list_review import review_if_due
from nonsite.retention import prune_database
from nonsite.risk_rating import rate_if_due
from nonsite.stages import StageMetrics, build_stages
from nonsite.wiring import build_mqtt_settings, build_policy, build_registry, build_router

log = logging.getLogger("nonsite.worker")

TICK_EVERY_S = 30.0  # the absence rules' and deadlines' clock, as in one machine
RETENTION_EVERY_S = 3600.0  # the database's retention (nonsite.retention), as in one machine


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def checkpoint_name(partition: int) -> str:
    return f"ingest.p{partition}"


@dataclass
class Owned:
    """A partition this worker runs: its lease, reader and pipeline."""

    lease: Lease
    reader: PartitionReader
    pipeline: IngestPipeline
    last_tick: float = field(default=0.0)


class ClusterWorker:
    """See the module. ``run(stop)`` until ``stop`` is set; ``leave()`` hands everything back."""

    def __init__(
        self,
        config: Config,
        *,
        worker_id: str | None = None,
        registry: CollectorRegistry | None = None,
        engine: Engine | None = None,
    ) -> None:
        if not config.cluster.nats:
            raise ValueError("[cluster] nats lists no NATS server: a worker reads the stream")
        self.worker_id = worker_id or config.cluster.worker_id or default_worker_id()
        # The alert channels' MQTT clients are named after the client id: one per worker, or
        # workers sharing a configuration file would throw each other off the broker.
        mqtt = config.mqtt.model_copy(update={"client_id": f"nonsite-{self.worker_id}"[:64]})
        config = config.model_copy(update={"mqtt": mqtt})
        self.config = config
        self.settings: StreamSettings = stream_settings(config)
        self.registry = registry or CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.stage_metrics = StageMetrics(self.registry)
        self.engine = engine or make_engine(config.database_url())
        self.health = DatabaseHealth(
            log, self.registry, consequence="the partitions wait in the stream"
        )
        self.failing = Retrying(
            log, lost="partition batch failed", back="partition batches succeed", traceback=True
        )
        self.stream = Retrying(
            log,
            lost="the stream does not answer",
            back="the stream answers again",
            consequence="the partitions wait in the stream",
            describe_error=describe_nats_error,
        )
        self.leases = PartitionLeases(
            self.engine,
            self.worker_id,
            self.settings.partitions,
            ttl_s=config.cluster.lease_ttl_s,
        )
        self.dispatcher = build_dispatcher(config, self.engine, self.registry, self.health)
        # Replies to loggers (9014) and commands to them (recall, clock) go out through the
        # broker, as from one machine: a client that only publishes, named after the worker.
        outbound = dataclasses.replace(
            build_mqtt_settings(config, client_id=f"nonsite-{self.worker_id}-out"[:64]),
            subscriptions=(),
        )
        self.outbound = MqttSource(outbound, lambda delivery: None)
        self.replies: list[tuple[str, bytes]] = []
        self.commands = CommandSender(
            self.engine,
            build_registry(config),
            self.outbound.publish,
            reply_topic=config.mqtt.reply_topic,
            answer_timeout_s=config.commands.answer_timeout_s,
            metrics=CommandMetrics(self.registry),
            mns=frozenset(),  # those of the partitions owned, as they are taken
        )
        self._last_commands = 0.0
        self.ready = threading.Event()  # a partition received messages
        self.owned: dict[int, Owned] = {}
        self.judging = threading.Event()  # set once the first partition is open (takeover)
        self._loop = LoopThread("nats")
        self._nc = self._loop.run(
            connect(config.cluster.nats, self.worker_id, **nats_login(config)), 30.0
        )
        self._js = self._nc.jetstream()
        self._leases_every = max(0.5, config.cluster.lease_ttl_s / 3)
        self._last_leases = -float("inf")
        self._last_retention = -float("inf")
        self._lost: set[int] = set()  # found lost by the lease keeper, closed by the loop
        self._lost_lock = threading.Lock()

    # -- partitions ---------------------------------------------------------------------------

    def _open(self, lease: Lease) -> None:
        p = lease.partition
        config = config_for_partition(self.config, p)
        reader = PartitionReader(self._js, self._loop, self.settings, p, ready=self.ready)
        processor = MessageProcessor(
            build_registry(config), build_router(config), build_policy(config)
        )
        stages = build_stages(
            config, self.engine, self.stage_metrics, self._wake_dispatcher, partition=p
        )
        pipeline = IngestPipeline(
            reader,
            self.engine,
            processor,
            stages,
            publish=lambda topic, payload: self.replies.append((topic, payload)),
            metrics=self.metrics,
            consumer=checkpoint_name(p),
            fence=lambda conn: self.leases.fence(conn, lease),
        )
        replayed = pipeline.catch_up()
        self.owned[p] = Owned(lease, reader, pipeline, last_tick=time.monotonic())
        self._command_scope()
        log.info(
            "partition %d taken (epoch %d) at position %d, %d replayed since its snapshot",
            p,
            lease.epoch,
            pipeline.position,
            replayed,
        )
        self.judging.set()

    def _close(self, partition: int, why: str) -> None:
        owned = self.owned.pop(partition, None)
        if owned is None:
            return
        self._command_scope()
        try:
            owned.reader.close()
        except Exception:  # the connection may be gone; the lease decides
            log.debug("closing partition %d's reader", partition, exc_info=True)
        log.info("partition %d let go: %s", partition, why)

    def _command_scope(self) -> None:
        """Commands go to the loggers of the partitions owned, by their owner only."""
        mns: set[str] = set()
        for p in self.owned:
            config = config_for_partition(self.config, p)
            mns.update(o.mn for e in config.enterprises for o in e.outlets)
            mns.update(m.mn for e in config.enterprises for m in e.meters if m.mn)
        self.commands.mns = frozenset(mns)

    def send_outbound(self) -> None:
        """The replies of the batches just committed, and once a second the commands due."""
        replies, self.replies = self.replies, []
        if self.outbound.connected:
            for topic, payload in replies:
                self.outbound.publish(topic, payload)
        now = time.monotonic()
        if self.owned and self.outbound.connected and now - self._last_commands >= 1.0:
            self._last_commands = now
            self.commands.round(datetime.now(UTC))

    def _wake_dispatcher(self) -> None:
        self.dispatcher.wake.set()

    def keep_leases(self, stop: threading.Event) -> None:
        """On a thread of its own, every third of the lease's life: the heartbeat and the
        renewal, so that a long catch-up or a slow batch does not let the leases lapse."""
        while not stop.wait(self._leases_every):
            try:
                self.leases.heartbeat()
                lost = self.leases.renew()
            except Exception as exc:  # noqa: BLE001 - said once; the next round tries again
                self._failed(exc)
                continue
            if lost:
                with self._lost_lock:
                    self._lost.update(lost)

    def manage_leases(self) -> None:
        """Take or hand back partitions towards a fair share; stop the ones lost."""
        with self._lost_lock:
            lost, self._lost = self._lost, set()
        plan = self.leases.rebalance()
        for p in sorted(lost | set(plan.lost)):
            self._close(p, "its lease was lost")
        for lease in plan.release:
            self._close(lease.partition, "handed to a worker with fewer")
            self.leases.release(lease)
        # Every lease held is run: the new ones, and any whose opening failed before (the
        # stream not answering during an election) and is still ours.
        failed: Exception | None = None
        for lease in self.leases.owned():
            if lease.partition in self.owned:
                continue
            try:
                self._open(lease)
            except Exception as exc:  # noqa: BLE001 - handed back; said by the caller
                self.leases.release(lease)  # another worker (or this one, later) takes it
                failed = failed or exc
        if failed is not None:
            raise failed

    # -- the loop -----------------------------------------------------------------------------

    def step(self) -> int:
        """One batch of every owned partition; the messages done."""
        done = 0
        now = time.monotonic()
        for p, owned in list(self.owned.items()):
            try:
                done += owned.pipeline.run_once()
                owned.pipeline.between_batches()
                if now - owned.last_tick >= TICK_EVERY_S:
                    owned.last_tick = now
                    owned.pipeline.tick(time.time())
            except LeaseLost:
                self._close(p, "another worker took it")
            except Exception as exc:  # noqa: BLE001 - rebuilt from its checkpoint next round
                # A failed transaction leaves the stages ahead of what was stored: rebuilt.
                self._close(p, f"a batch failed ({type(exc).__name__})")
                if owned.lease in self.leases.owned():
                    self.leases.release(owned.lease)
                self._failed(exc)
                break  # the others wait for the backoff too: the cause is likely shared
        return done

    def _due(self) -> bool:
        return self.health.due() and self.failing.due() and self.stream.due()

    def _wait_s(self) -> float:
        return max(self.health.wait_s(), self.failing.wait_s(), self.stream.wait_s())

    def _failed(self, exc: BaseException) -> None:
        if type(exc).__module__.startswith("nats."):  # NATS's own timeouts are not the database's
            self.stream.failed(exc)
        elif is_unavailable(exc):
            self.health.failed(exc)
        else:
            self.failing.failed(exc)

    def run(self, stop: threading.Event) -> None:
        dispatcher = threading.Thread(
            target=self.dispatcher.run, args=(stop,), name="outbox", daemon=True
        )
        dispatcher.start()
        self.outbound.start()
        keeper = threading.Thread(target=self.keep_leases, args=(stop,), name="leases", daemon=True)
        keeper.start()
        self.leases.ensure_partitions()
        while not stop.is_set():
            due = self._due()
            now = time.monotonic()
            if due and now - self._last_leases >= self._leases_every:
                self._last_leases = now
                try:
                    self.manage_leases()
                except Exception as exc:  # noqa: BLE001 - said once; tried again next round
                    self._failed(exc)
                    continue
                self.health.succeeded()
                self.stream.succeeded()
            self.ready.clear()
            n = self.step() if due else 0
            if due and 0 in self.owned and now - self._last_retention >= RETENTION_EVERY_S:
                self._last_retention = now  # partition 0's owner: one worker at a time
                try:
                    prune_database(self.engine, self.config, datetime.now(UTC))
                    rate_if_due(self.engine, self.config, datetime.now(UTC))  # once a China day
                    review_if_due(self.engine, self.config, datetime.now(UTC))  # 正面清单
                except Exception as exc:  # noqa: BLE001 - the next round prunes it, rates them
                    self._failed(exc)
            if due:
                try:
                    self.send_outbound()
                except Exception as exc:  # noqa: BLE001 - the commands wait in the database
                    self._failed(exc)
            if n > 0:
                self.failing.succeeded()
            else:
                # Idle: until a partition receives; failing: until the backoff has passed.
                wait = min(self._leases_every, 1.0)
                self.ready.wait(wait if due else max(0.05, min(self._wait_s(), wait)))
        self._wake_dispatcher()
        dispatcher.join(self.dispatcher.stop_grace_s + 1)

    def leave(self) -> None:
        """Clean shutdown: hand every partition back at once (no wait for the lease)."""
        for p in list(self.owned):
            self._close(p, "shutting down")
        self.outbound.stop()
        try:
            self.leases.leave()
        except Exception:  # noqa: BLE001 - the leases expire by themselves
            log.warning("could not hand back the leases; they expire by themselves")
        try:
            self._loop.run(self._nc.close(), 5.0)
        finally:
            self._loop.stop()
        for channel in self.dispatcher.channels.values():
            channel.close()


async def run_worker_role(config: Config, stop: asyncio.Event, started: asyncio.Event) -> None:
    """``nonsite serve --role worker``: the worker on a thread, /metrics, /healthz and
    /readyz over HTTP on ``service.http_listen``."""
    http_socket = bind(config.service.http_listen)
    await asyncio.to_thread(migrate, make_engine(config.database_url()))
    worker = await asyncio.to_thread(ClusterWorker, config)

    def readiness() -> dict[str, str]:
        problems = {}
        if worker.health.problem:
            problems["database"] = worker.health.problem
        if worker.failing.problem:
            problems["pipeline"] = worker.failing.problem
        if worker.stream.problem:
            problems["stream"] = worker.stream.problem
        return problems

    server = make_server(build_app(worker.registry, readiness), http_socket)
    http_task = asyncio.create_task(server.serve(sockets=[http_socket]), name="http")
    halt = threading.Event()
    runner = asyncio.create_task(asyncio.to_thread(worker.run, halt), name="worker")
    started.set()
    log.info("worker %s running", worker.worker_id)
    try:
        await asyncio.wait(
            {runner, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        halt.set()
        await runner
        await asyncio.to_thread(worker.leave)
        server.should_exit = True
        await http_task


__all__ = ["ClusterWorker", "checkpoint_name", "default_worker_id", "run_worker_role"]
