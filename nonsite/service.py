"""``nonsite serve``: the running service.

Two processes, so that receiving and decoding each get a core:

- this one: paho's network loop (receives), the archiver (group commit, then PUBACK), and an
  asyncio loop for the HTTP endpoints, the embedded broker when there is one, housekeeping
  and the shutdown sequence;
- the pipeline process (nonsite/pipeline_worker.py): tails the raw archive, decodes, records
  dead letters, hands readings on; it is restarted with backoff if it dies.

Shutdown (SIGTERM/SIGINT) loses nothing: archive and acknowledge what has arrived, disconnect
(the broker keeps our session and queues meanwhile), archive anything that arrived during the
disconnect without acknowledging it (the broker re-delivers it; the archive stores it once),
then let the pipeline decode everything archived and checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from ingest.archive import RawArchive
from ingest.archiver import Archiver
from ingest.commands.metrics import CommandMetrics
from ingest.commands.sender import CommandSender
from ingest.metrics import ArchiveMetrics
from ingest.mqtt.source import Delivery, MqttSource
from ingest.store import load_checkpoint
from ingest.tcp.handoff import ArchiveHandoff
from ingest.tcp.runtime import GatewayRuntime
from nonsite.collector import expose_frozen, pace_for_live_stream
from nonsite.config.model import Config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.db import make_engine, migrate, sqlite_path
from nonsite.db_health import archive_retrying, describe, is_unavailable, one_line
from nonsite.embedded_broker import EmbeddedBroker
from nonsite.errors import ListenError, StartupError
from nonsite.http import bind, build_app, make_server
from nonsite.pipeline_process import PipelineProcess, Replies
from nonsite.positive_list_review import review_if_due
from nonsite.retention import prune_database
from nonsite.risk_rating import rate_if_due
from nonsite.web.context import WebContext
from nonsite.wiring import (
    build_gateway_mqtt_settings,
    build_gateway_settings,
    build_mqtt_settings,
    build_registry,
)

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0
COMMANDS_EVERY_S = 1.0


@dataclass
class ServiceStatus:
    broker_url: str = ""
    http_url: str = ""
    tcp_address: str = ""  # the HJ 212 TCP gateway's, when it runs
    started: asyncio.Event = field(default_factory=asyncio.Event)


class Service:
    def __init__(self, config: Config, *, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.metrics = ArchiveMetrics(self.registry)
        expose_frozen(self.registry, "service")
        self.status = ServiceStatus()
        data_dir = config.service.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(config.database_url())
        self.archive = RawArchive(
            config.service.archive_path,
            durability=config.archive.durability,
            max_payload_bytes=config.ingest.max_payload_bytes,
        )
        self.embedded: EmbeddedBroker | None = None
        self.source: MqttSource | None = None
        self.archiver: Archiver | None = None
        self.pipeline: PipelineProcess | None = None
        self.gateway: GatewayRuntime | None = None  # the HJ 212 TCP gateway ([tcp] listen)
        self.commands: CommandSender | None = None  # commands to loggers (ingest.commands)
        self._handoff: ArchiveHandoff | None = None  # the gateway's packets to the archiver
        self.replies_dropped = 0
        # How to choose another HTTP address, for the error when this one is taken.
        self.listen_hint = (
            "choose another with http_listen in the [service] section of the configuration"
        )

    def _check_archive(self) -> None:
        """Refuse an archive older than the database's checkpoint: its sequence numbers
        restarted (a new data directory, a restore of one but not the other), and the pipeline
        would skip every message numbered up to the checkpoint without a word."""
        checkpoint = load_checkpoint(self.engine, "ingest")
        last = self.archive.last_assigned_seq()
        if checkpoint > last:
            raise StartupError(
                f"the database has decoded the archive up to message {checkpoint}, but this "
                f"archive ({self.archive.path}) has only ever numbered {last}: it is not the "
                "archive this database was fed from (a new data directory, or a restore of "
                "one without the other). Restore both from the same backup, or see "
                "docs/operations.md (If the archive is lost) to start a new archive deliberately."
            )

    def readiness(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if self.source is None or not self.source.connected:
            problems["broker"] = (
                self.source.last_error if self.source else None
            ) or "not connected"
        if self.archiver is not None and self.archiver.failed is not None:
            problems["archive"] = self._archive_problem(self.archiver.failed)
        if self.pipeline is None or not self.pipeline.alive:
            problems["pipeline"] = (self.pipeline.error if self.pipeline else None) or "not running"
        elif self.pipeline.error is not None:
            problems["pipeline"] = self.pipeline.error
        if self.pipeline is not None and self.pipeline.database is not None:
            problems["database"] = self.pipeline.database
        gateway_problem = self.gateway.readiness() if self.gateway is not None else None
        if gateway_problem is not None:
            problems["gateway"] = gateway_problem
        return problems

    def _archive_problem(self, exc: BaseException) -> str:
        """What stops the archive, in one line: "disk full" and where, or the error; and how
        many received messages wait for it (unacknowledged: the broker keeps them)."""
        waiting = self.archiver.pending if self.archiver is not None else 0
        return (
            f"{describe(exc, self.archive.path)}; {waiting} received messages wait, "
            "unacknowledged (the broker keeps them until they are archived)"
        )

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        try:
            http_socket = bind(config.service.http_listen)  # fails fast, before anything starts
        except ListenError as exc:
            raise ListenError(f"{exc}; {self.listen_hint}") from None
        tcp_socket = None
        if config.tcp.listen:
            try:
                tcp_socket = bind(config.tcp.listen, "tcp.listen")
            except ListenError as exc:
                http_socket.close()
                raise ListenError(
                    f"{exc}; choose another with listen in the [tcp] section of the configuration"
                ) from None
        try:
            await asyncio.to_thread(migrate, self.engine)
            await asyncio.to_thread(self._check_archive)
        except StartupError:
            _close(http_socket, tcp_socket)
            raise
        except Exception as exc:
            _close(http_socket, tcp_socket)
            if not is_unavailable(exc):
                raise
            # One line, not a traceback: the service manager starts it again (systemd:
            # Restart=on-failure); once running, the service rides out an outage itself.
            where = sqlite_path(config.database_url())
            raise StartupError(
                f"the database is unavailable ({describe(exc, where)}); nonsite serve needs it "
                "to start: check that it runs and [database] url"
            ) from None
        broker_url = None
        if not config.mqtt.url:
            self.embedded = EmbeddedBroker(port=config.mqtt.embedded_port)
            await self.embedded.start()
            broker_url = parse_broker_url(self.embedded.url)
            log.warning(
                "no broker URL configured: running an embedded MQTT broker at %s "
                "(for trials only; use Mosquitto in production)",
                self.embedded.url,
            )
        settings = build_mqtt_settings(config, broker_url)
        self.status.broker_url = (broker_url or parse_broker_url(config.mqtt.url)).redacted()

        if self.embedded is not None:  # the pipeline's MQTT channel publishes to it too
            mqtt = config.mqtt.model_copy(update={"url": self.embedded.url})
            config = config.model_copy(update={"mqtt": mqtt})
        self.pipeline = PipelineProcess(config, on_replies=self._publish_replies)
        self.pipeline.start()
        # The web side first: its imports and context take a few hundred ms of this process,
        # better spent before messages arrive than taken from the network loop; and /metrics
        # and /readyz answer from the first message on.
        web = WebContext.build(config, self.engine)
        app = build_app(self.registry, self.readiness, self._pipeline_metrics, web)
        server = make_server(app, http_socket)
        http_task = asyncio.create_task(server.serve(sockets=[http_socket]), name="http")
        self.archiver = Archiver(
            self.archive,
            ack=self._ack,
            on_commit=self.pipeline.notify,
            metrics=self.metrics,
            batch_max=config.archive.batch_max_messages,
            retry=archive_retrying(self.archive.path),  # injected: see ingest/archiver.py
        )
        # Read at each scrape: while the archive cannot be written (a full disk), what waits
        # is counted, not the figure of the last commit that succeeded.
        archiver = self.archiver
        self.metrics.pending_ack.set_function(lambda: archiver.pending)
        self.source = MqttSource(settings, self.archiver.submit, self.metrics)
        pace_for_live_stream()  # the web app is built, messages come next: see the module
        self.archiver.start()
        self.source.start()
        if tcp_socket is not None:
            # After the source: what the gateway publishes is received from the first packet.
            # Packets straight to the archiver; the broker brings the gateway commands only.
            self._handoff = ArchiveHandoff(self.archiver.submit, asyncio.get_running_loop())
            self.gateway = GatewayRuntime(
                build_gateway_settings(config),
                build_gateway_mqtt_settings(config, broker_url),
                build_registry(config),
                self.registry,
                store=self._handoff.store,
            )
            await self.gateway.start(tcp_socket)
            self.status.tcp_address = f"{config.tcp.listen.rpartition(':')[0]}:{self.gateway.port}"

        housekeeping = asyncio.create_task(self._housekeeping(), name="housekeeping")
        self.commands = CommandSender(
            self.engine,
            build_registry(config),
            self._publish_command,
            reply_topic=config.mqtt.reply_topic,
            answer_timeout_s=config.commands.answer_timeout_s,
            metrics=CommandMetrics(self.registry),
        )
        commands = asyncio.create_task(self._send_commands(), name="commands")
        host, _, port = config.service.http_listen.rpartition(":")
        self.status.http_url = f"http://{host}:{port}"
        self.status.started.set()
        log.info(
            "nonsite serving: broker %s, http %s", self.status.broker_url, self.status.http_url
        )
        try:
            await stop.wait()
        finally:
            housekeeping.cancel()
            commands.cancel()
            await self._shutdown()
            server.should_exit = True
            await http_task

    def _ack(self, batch: Sequence[Delivery]) -> None:
        if self.source is not None:
            self.source.ack(batch)  # the gateway's deliveries are QoS 0 to it: skipped
        if self._handoff is not None:
            self._handoff.committed(batch)

    def _publish_replies(self, replies: Replies) -> None:
        source = self.source
        if source is None or not source.connected:
            self.replies_dropped += len(replies)  # the device resends; its data is safe
            return
        for topic, payload in replies:
            source.publish(topic, payload)

    def _publish_command(self, topic: str, packet: bytes) -> None:
        if self.source is not None:
            self.source.publish(topic, packet)

    async def _send_commands(self) -> None:
        """Send what people, the CLI and the rules asked loggers for, once a second."""
        failing: str | None = None
        while True:
            await asyncio.sleep(COMMANDS_EVERY_S)
            if self.commands is None or self.source is None or not self.source.connected:
                continue  # requested commands wait in the database
            try:
                await asyncio.to_thread(self.commands.round, datetime.now(UTC))
            except SQLAlchemyError as exc:
                if failing is None:
                    log.warning("commands to loggers wait: %s", one_line(exc))
                failing = one_line(exc)
            else:
                if failing is not None:
                    log.info("commands to loggers are sent again")
                failing = None

    def _pipeline_metrics(self) -> str:
        return self.pipeline.metrics_text if self.pipeline is not None else ""

    async def _shutdown(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stopping()
        if self.gateway is not None:
            # First: packets in flight reach the broker (and are answered), then loggers go.
            await self.gateway.stop()
        log.info("draining: archiving what has arrived, then disconnecting")
        assert self.archiver is not None
        assert self.source is not None
        assert self.pipeline is not None
        await asyncio.to_thread(self.archiver.flush, 30.0)
        await asyncio.to_thread(self.source.stop)
        await asyncio.to_thread(self.archiver.stop)
        self.pipeline.notify()
        drained = await asyncio.to_thread(self.pipeline.stop)
        if not drained:
            log.error("the pipeline did not finish decoding; it resumes from its checkpoint")
        if self.embedded is not None:
            await self.embedded.stop()
        self.archive.close()
        self.engine.dispose()
        log.info("stopped cleanly at archive position %d", self.pipeline.position)

    async def _housekeeping(self) -> None:
        retention = timedelta(days=self.config.archive.retention_days)
        while True:
            cutoff = datetime.now(UTC) - retention
            removed = await asyncio.to_thread(self._prune, cutoff)
            if removed:
                log.info(
                    "archive retention: removed %d messages received before %s", removed, cutoff
                )
            try:
                pruned = await asyncio.to_thread(
                    prune_database, self.engine, self.config, datetime.now(UTC)
                )
            except SQLAlchemyError as exc:  # the database is away: the next round prunes them
                log.warning("database retention skipped: %s", one_line(exc))
            else:
                if pruned.dead_letters:
                    log.info(
                        "dead-letter retention: removed %d received before %s",
                        pruned.dead_letters,
                        cutoff,
                    )
            try:  # the day's risk ratings and positive-list proposals, once a China day
                await asyncio.to_thread(rate_if_due, self.engine, self.config, datetime.now(UTC))
                await asyncio.to_thread(review_if_due, self.engine, self.config, datetime.now(UTC))
            except SQLAlchemyError as exc:  # the database is away: the next round rates
                log.warning("risk ratings not made: %s", one_line(exc))
            await asyncio.sleep(RETENTION_EVERY_S)

    def _prune(self, cutoff: datetime) -> int:
        if self.pipeline is None:
            return 0
        # Never prune what the pipeline has not processed yet.
        return self.archive.prune(cutoff, up_to_seq=self.pipeline.position)


def _close(*sockets: socket.socket | None) -> None:
    for sock in sockets:
        if sock is not None:
            sock.close()
