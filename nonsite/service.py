"""``nonsite serve``: the running service.

Threads: paho's network loop (receives), the archiver (group commit, then PUBACK), the
ingest pipeline (decode, dead letters, readings). The asyncio loop runs the HTTP endpoints,
the embedded broker when there is one, housekeeping, and the shutdown sequence.

Shutdown (SIGTERM/SIGINT) loses nothing: archive and acknowledge what has arrived, disconnect
(the broker keeps our session and queues meanwhile), archive anything that arrived during the
disconnect without acknowledging it (the broker re-delivers it; the archive stores it once),
then decode everything archived and checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from ingest.archive import RawArchive
from ingest.archiver import Archiver
from ingest.latest import LatestValues
from ingest.metrics import IngestMetrics
from ingest.mqtt.source import Delivery, MqttSource
from ingest.pipeline import IngestPipeline
from ingest.processor import MessageProcessor
from nonsite.config.model import Config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.db import make_engine, migrate
from nonsite.embedded_broker import EmbeddedBroker
from nonsite.http import build_app, make_server
from nonsite.wiring import build_mqtt_settings, build_policy, build_registry, build_router

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0


@dataclass
class ServiceStatus:
    broker_url: str = ""
    http_url: str = ""
    started: asyncio.Event = field(default_factory=asyncio.Event)


class Service:
    def __init__(self, config: Config, *, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.status = ServiceStatus()
        self.latest = LatestValues()
        data_dir = config.service.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(config.database_url())
        self.archive = RawArchive(
            data_dir / "archive.sqlite3", durability=config.archive.durability
        )
        self.embedded: EmbeddedBroker | None = None
        self.source: MqttSource | None = None
        self.archiver: Archiver | None = None
        self.pipeline: IngestPipeline | None = None

    def readiness(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if self.source is None or not self.source.connected:
            problems["broker"] = (
                self.source.last_error if self.source else None
            ) or "not connected"
        if self.archiver is not None and self.archiver.failed is not None:
            problems["archive"] = str(self.archiver.failed)
        if self.pipeline is not None and self.pipeline.failed is not None:
            problems["database"] = str(self.pipeline.failed)
        return problems

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        await asyncio.to_thread(migrate, self.engine)
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

        processor = MessageProcessor(
            build_registry(config), build_router(config), build_policy(config)
        )
        self.pipeline = IngestPipeline(
            self.archive,
            self.engine,
            processor,
            self.latest,
            metrics=self.metrics,
            publish=self._publish,
        )
        self.archiver = Archiver(
            self.archive,
            ack=self._ack,
            on_commit=self.pipeline.notify,
            metrics=self.metrics,
            batch_max=config.archive.batch_max_messages,
        )
        self.source = MqttSource(settings, self.archiver.submit, self.metrics)
        self.pipeline.start()
        self.archiver.start()
        self.source.start()

        server = make_server(build_app(self.registry, self.readiness), config.service.http_listen)
        http_task = asyncio.create_task(server.serve(), name="http")
        housekeeping = asyncio.create_task(self._housekeeping(), name="housekeeping")
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
            await self._shutdown()
            server.should_exit = True
            await http_task

    def _ack(self, batch: Sequence[Delivery]) -> None:
        if self.source is not None:
            self.source.ack(batch)

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.source is not None:
            self.source.publish(topic, payload)

    async def _shutdown(self) -> None:
        log.info("draining: archiving what has arrived, then disconnecting")
        assert self.archiver is not None
        assert self.source is not None
        assert self.pipeline is not None
        await asyncio.to_thread(self.archiver.flush, 30.0)
        await asyncio.to_thread(self.source.stop)
        await asyncio.to_thread(self.archiver.stop)
        await asyncio.to_thread(self.pipeline.stop)
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
            await asyncio.sleep(RETENTION_EVERY_S)

    def _prune(self, cutoff: datetime) -> int:
        if self.pipeline is None:
            return 0
        # Never prune what the pipeline has not processed yet.
        return self.archive.prune(cutoff, up_to_seq=self.pipeline.position)
