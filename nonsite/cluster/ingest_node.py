"""``nonsite serve --role ingest``: MQTT → JetStream, then the PUBACK. Stateless.

Any number of ingest nodes share the broker's subscriptions (MQTT 5 shared subscription,
``$share/<group>/hj212/+``, each node with its own client id and a persistent session) and
publish every message to the stream on its enterprise's partition
(``ingest.jetstream.publisher``). The archiver's group commit is the one a single machine
uses, over the stream instead of the SQLite archive: the broker's PUBACK goes out only after
JetStream acknowledged, so a node killed at any moment loses nothing it acknowledged, and what
it had not acknowledged the broker sends again (to it when it is back: a shared
subscription's session keeps its messages; docs/operations.md says what an operator does).

A node checks nothing beyond what routing needs: the frames are judged, and dead letters
recorded with their reason, by the worker that owns the partition, in the transaction that
moves its checkpoint, so the stream is the complete raw record, rejected frames included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from ingest.archiver import Archiver
from ingest.jetstream.publisher import JetStreamLog, describe_nats_error
from ingest.metrics import ArchiveMetrics
from ingest.mqtt.source import Delivery, MqttSource
from ingest.mqtt.topics import TopicRouter
from nonsite.cluster.scope import nats_login, partitioner, stream_settings
from nonsite.collector import pace_for_live_stream
from nonsite.config.model import Config
from nonsite.http import bind, build_app, make_server
from nonsite.wiring import build_mqtt_settings

log = logging.getLogger("nonsite.ingest_node")

DEFAULT_GROUP = "nonsite"


def node_client_id(config: Config) -> str:
    """The configured client id, else one per host: stable across restarts, so the broker
    keeps this node's session (and its messages) while it restarts."""
    if config.mqtt.client_id != "nonsite-ingest":
        return config.mqtt.client_id
    return f"nonsite-ingest-{socket.gethostname()}"[:64]


class IngestNode:
    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        client_id: str | None = None,
    ) -> None:
        if not config.cluster.nats:
            raise ValueError("[cluster] nats lists no NATS server: an ingest node publishes there")
        if not config.mqtt.url:
            raise ValueError("[mqtt] url is empty: an ingest node subscribes to a broker")
        if config.mqtt.shared_group is None:
            mqtt = config.mqtt.model_copy(update={"shared_group": DEFAULT_GROUP})
            config = config.model_copy(update={"mqtt": mqtt})
        self.config = config
        self.client_id = client_id or node_client_id(config)
        self.registry = registry or CollectorRegistry()
        self.metrics = ArchiveMetrics(self.registry)
        router = TopicRouter([(s.kind, s.filter) for s in config.mqtt.subscriptions])

        def sender_of(topic: str) -> str:
            route = router.route(topic)
            return topic if route is None else route.sender

        self.log = JetStreamLog(
            config.cluster.nats,
            stream_settings(config),
            partitioner(config),
            sender_of,
            name=self.client_id,
            ack_timeout_s=config.cluster.ack_timeout_s,
            **nats_login(config),
        )
        self.archiver = Archiver(
            self.log,
            ack=self._ack,
            metrics=self.metrics,
            batch_max=config.archive.batch_max_messages,
        )
        self.source = MqttSource(
            build_mqtt_settings(config, client_id=self.client_id),
            self.archiver.submit,
            self.metrics,
        )
        self.started = asyncio.Event()

    def _ack(self, batch: Sequence[Delivery]) -> None:
        self.source.ack(batch)

    def readiness(self) -> dict[str, str]:
        problems = {}
        if not self.source.connected:
            problems["broker"] = self.source.last_error or "not connected"
        if self.archiver.failed is not None:
            problems["stream"] = (
                f"{describe_nats_error(self.archiver.failed)}; "
                f"{self.archiver.pending} received messages wait, unacknowledged"
            )
        return problems

    async def _stream_answers(self, stop: asyncio.Event) -> bool:
        """Wait until the stream answers (NATS restarting, a leader being elected), saying so
        once; False if told to stop meanwhile."""
        said = None
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.log.start, 10.0)
                if said is not None:
                    log.info("the stream answers")
                return True
            except Exception as exc:  # noqa: BLE001 - any failure to reach it is waited out
                problem = describe_nats_error(exc)
                if problem != said:
                    log.warning("the stream does not answer yet (%s); trying again", problem)
                said = problem
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        http_socket = bind(self.config.service.http_listen)
        app = build_app(self.registry, self.readiness)
        server = make_server(app, http_socket)
        http_task = asyncio.create_task(server.serve(sockets=[http_socket]), name="http")
        try:
            # The stream first: messages are not taken from the broker before it answers.
            if not await self._stream_answers(stop):
                return
            pace_for_live_stream()
            self.archiver.start()
            self.source.start()
            self.started.set()
            log.info("ingest node %s: broker to stream %s", self.client_id, self.log.settings.name)
            await stop.wait()
        finally:
            await asyncio.to_thread(self.archiver.flush, 30.0)
            await asyncio.to_thread(self.source.stop)
            await asyncio.to_thread(self.archiver.stop)
            await asyncio.to_thread(self.log.close)
            server.should_exit = True
            await http_task


__all__ = ["IngestNode", "node_client_id"]
