"""The gateway's runtime: its MQTT publisher and TCP server on one event loop, started and
stopped together (by ``nonsite gateway``, or inside ``nonsite serve`` and ``nonsite demo``)."""

from __future__ import annotations

import asyncio
import resource
import socket
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from ingest.mqtt.settings import MqttSettings
from ingest.registry import Registry
from ingest.tcp.gateway import TcpGateway, is_data_reply
from ingest.tcp.metrics import GatewayMetrics
from ingest.tcp.publisher import GatewayPublisher
from ingest.tcp.settings import GatewaySettings


class GatewayRuntime:
    def __init__(
        self,
        settings: GatewaySettings,
        mqtt: MqttSettings,
        registry: Registry,
        metrics_registry: CollectorRegistry | None = None,
        *,
        store: Callable[[str, bytes], asyncio.Future[None]] | None = None,
    ) -> None:
        """``store``: where packets go instead of the broker (inside nonsite serve: its
        archiver, ``ingest.tcp.handoff``); the broker then brings commands only."""
        self.settings = settings
        self.mqtt = mqtt
        self.registry = registry
        self._store = store
        self.metrics = GatewayMetrics(metrics_registry or CollectorRegistry())
        self.publisher: GatewayPublisher | None = None
        self.gateway: TcpGateway | None = None

    async def start(self, sock: socket.socket | None = None) -> None:
        raise_open_file_limit()
        metrics = self.metrics
        self.gateway = TcpGateway(
            self.settings,
            self.registry,
            self._publish,
            metrics,
            batching=self._store is None,  # to the broker; the archive needs none of it
            connected=self._broker_connected,
        )
        self.publisher = GatewayPublisher(
            self.mqtt,
            asyncio.get_running_loop(),
            on_command=self.gateway.deliver_command,
            command_filter=self.settings.command_filter,
            on_connection=lambda up: metrics.broker_connected.set(1 if up else 0),
            ignore=is_data_reply,
        )
        self.publisher.start()
        if self._store is None:
            await asyncio.to_thread(self.publisher.wait_connected, self.settings.broker_wait_s)
        await self.gateway.start(sock)

    def _broker_connected(self) -> bool:
        return self._store is not None or (self.publisher is not None and self.publisher.connected)

    def _publish(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        if self._store is not None:
            return self._store(topic, payload)
        assert self.publisher is not None
        return self.publisher.publish(topic, payload)

    @property
    def port(self) -> int:
        return self.gateway.port if self.gateway is not None else self.settings.port

    def readiness(self) -> str | None:
        """What keeps the gateway from storing packets, or None."""
        if self._store is not None:
            return None  # the service's archive: its own readiness says
        if self.publisher is None or not self.publisher.connected:
            last = self.publisher.last_error if self.publisher else None
            return f"the gateway is not connected to the broker ({last or 'connecting'})"
        return None

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.publisher is not None:
            await asyncio.to_thread(self.publisher.stop)


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit: every logger holds a
    socket, and the usual soft limit (1024) would refuse the 1,025th logger."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft
