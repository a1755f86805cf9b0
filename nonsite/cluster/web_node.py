"""``nonsite serve --role web``: the HTTP API and the dashboard of a cluster. Stateless.

Any number of web nodes serve ``service.http_listen`` against the cluster's PostgreSQL (cases,
work orders, users and sessions, the audit trail, dead letters: what workers and people write
there) behind a load balancer; no MQTT, no pipeline, no archive file. Live updates need
nothing of their own: every browser's event stream polls the database's audit trail
(``nonsite.web.api.events``), so a case changed through one node, or by a worker, reaches the
browsers of every node.

The raw data (the charts, data quality, the sources never heard) is read from the JetStream
stream: one :class:`ingest.jetstream.topics.StreamTopics` (one NATS connection) is handed to
the application's series reader, quality book and reported sources, which the API otherwise
builds on first use over the archive file of one machine (the ``app.state`` attributes of
``nonsite.web.api.series``, ``.quality`` and ``.fleet``). ``nonsite serve`` (every role on one
machine) is unchanged: it reads its archive file, whatever ``[cluster]`` says.

A web node may start before any worker: it brings the schema up to date first, as a worker
does. ``/readyz`` says whether the database answers and NATS is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from functools import partial

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from ingest.jetstream.topics import StreamTopics
from nonsite.cluster.scope import nats_login, partitioner, stream_settings
from nonsite.config.model import Config
from nonsite.db import make_engine, migrate
from nonsite.db_health import DatabaseHealth
from nonsite.http import bind, build_app, make_server
from nonsite.web.context import WebContext
from nonsite.web.quality import QualityBook
from nonsite.web.reported import ReportedSources
from nonsite.web.series import SeriesReader
from nonsite.wiring import build_policy, build_registry, build_router

log = logging.getLogger("nonsite.web_node")

PROBE_EVERY_S = 5.0  # the database's state for /metrics between readiness checks
MIGRATE_ATTEMPTS = 3  # nodes started together race to create the schema: the loser retries


def stream_topics(config: Config, name: str) -> StreamTopics:
    """The stream read by topic, decoding and attributing as ingest does."""
    return StreamTopics(
        config.cluster.nats,
        stream_settings(config),
        partitioner(config),
        build_registry(config),
        partial(build_router, config),
        build_policy(config),
        name=name,
        **nats_login(config),
    )


def migrate_at_start(engine: Engine) -> None:
    """``migrate``, tried again after a failure: two nodes starting together on an empty
    database both create the schema, and one of them fails; its next try finds it made."""
    for attempt in range(1, MIGRATE_ATTEMPTS + 1):
        try:
            migrate(engine)
            return
        except Exception:
            if attempt == MIGRATE_ATTEMPTS:
                raise
            log.warning("bringing the schema up to date failed; trying again", exc_info=True)
            time.sleep(1.0)


class WebNode:
    """See the module. ``run(stop)`` serves until ``stop`` is set."""

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        engine: Engine | None = None,
    ) -> None:
        if not config.cluster.nats:
            raise ValueError("[cluster] nats lists no NATS server: a web node reads the stream")
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.engine = engine or make_engine(config.database_url())
        self.health = DatabaseHealth(
            log, self.registry, consequence="the pages that read it answer with errors"
        )
        self.name = f"nonsite-web-{socket.gethostname()}-{os.getpid()}"[:64]
        self.topics = stream_topics(config, self.name)
        self.started = asyncio.Event()

    def probe(self) -> None:
        """Ask the database; its state goes to /readyz, /metrics and the log."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure is the database's state
            self.health.failed(exc)
        else:
            self.health.succeeded()

    def readiness(self) -> dict[str, str]:
        self.probe()
        problems = {}
        if self.health.problem:
            problems["database"] = self.health.problem
        if not self.topics.connected:
            problems["nats"] = "not connected to NATS ([cluster] nats)"
        return problems

    def app(self) -> FastAPI:
        """The service's application (``nonsite.http.build_app``), its raw data from the
        stream."""
        web = WebContext.build(self.config, self.engine)
        app = build_app(self.registry, self.readiness, web=web)
        path = self.config.service.archive_path  # none on a web node: never opened
        state = app.state
        state.series_reader = SeriesReader(
            self.config, path, db=self.engine, archive=self.topics, raw_from_detail=True
        )
        state.quality_book = QualityBook(self.config, path, archive=self.topics)
        state.reported_sources = ReportedSources(self.config, path, stream=self.topics)
        return app

    async def _probe_every(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.probe)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_EVERY_S)

    async def _learn_heard(self, stop: asyncio.Event) -> None:
        """The first look for the sources ever heard (a read of the stream in looks of a few
        seconds), done before the fleet page asks; until then it calls nobody 未上线."""
        while not stop.is_set():
            started = time.monotonic()
            if await asyncio.to_thread(self.topics.heard) is not None:
                return
            if time.monotonic() - started < 1.0:  # NATS away: said once, tried again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def run(self, stop: asyncio.Event) -> None:
        http_socket = bind(self.config.service.http_listen)
        try:
            await asyncio.to_thread(migrate_at_start, self.engine)
            await asyncio.to_thread(self.topics.start, 60.0)
            app = await asyncio.to_thread(self.app)
        except BaseException:
            http_socket.close()
            await asyncio.to_thread(self.topics.close)
            raise
        server = make_server(app, http_socket)
        http_task = asyncio.create_task(server.serve(sockets=[http_socket]), name="http")
        probing = asyncio.create_task(self._probe_every(stop), name="database-probe")
        learning = asyncio.create_task(self._learn_heard(stop), name="sources-heard")
        self.started.set()
        log.info("web node %s: http %s", self.name, self.config.service.http_listen)
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({http_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            server.should_exit = True
            await http_task
            probing.cancel()
            learning.cancel()
            await asyncio.to_thread(self.topics.close)
            self.engine.dispose()


__all__ = ["WebNode", "migrate_at_start", "stream_topics"]
