"""Part of a simulated fleet on TCP, as real loggers connect: each its own connection to the
gateway (``nonsite.simulator.tcp_logger``), the rest on MQTT.

The loggers live on an asyncio loop in a thread of their own; the simulator's thread hands
them each minute's packets and waits until every packet asking for a reply has its 9014 (or
was given up after the resends), so the TCP part keeps pace with the MQTT part. A packet the
link lost (``LOST_PREFIX``) goes into its logger's history only: a recall gets it back.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable

from nonsite.simulator.publisher import Publisher
from nonsite.simulator.tcp_logger import TcpLogger
from nonsite.simulator.traffic import LOST_PREFIX, Message

HJ212_PREFIX = "hj212/"


def tcp_share(mns: Iterable[str], every: int = 4) -> frozenset[str]:
    """Which loggers connect over TCP: every ``every``-th, in configuration order."""
    return frozenset(mn for i, mn in enumerate(mns) if i % every == 0)


class TcpFleet:
    def __init__(
        self, host: str, port: int, mns: Iterable[str], clocks: dict[str, float] | None = None
    ) -> None:
        """``clocks``: how far some loggers' clocks are off, in seconds (the platform sets them)."""
        self.mns = frozenset(mns)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-loggers")
        self._thread.daemon = True
        self._thread.start()
        offsets = clocks or {}
        self.loggers = {
            mn: TcpLogger(host, port, mn=mn, clock_offset_s=offsets.get(mn, 0.0))
            for mn in sorted(self.mns)
        }

    def connect(self, timeout: float = 30.0) -> None:
        async def all_connected() -> None:
            await asyncio.gather(*(logger.connect(timeout) for logger in self.loggers.values()))

        asyncio.run_coroutine_threadsafe(all_connected(), self._loop).result(timeout + 5)

    def upload(self, packets: dict[str, list[bytes]], timeout: float = 120.0) -> int:
        """Send each logger its packets (in order, each answered or given up); returns how
        many were sent."""

        async def send() -> None:
            await asyncio.gather(*(self.loggers[mn].upload(ps) for mn, ps in packets.items()))

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(timeout)
        return sum(len(ps) for ps in packets.values())

    def remember(self, mn: str, packet: bytes) -> None:
        self._loop.call_soon_threadsafe(self.loggers[mn].remember, packet)

    def close(self) -> None:
        async def close_all() -> None:
            await asyncio.gather(*(logger.close() for logger in self.loggers.values()))

        try:
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


class MixedPublisher:
    """Publishes a minute's messages: the TCP loggers' over their connections, the rest (and
    every power reading) over MQTT."""

    def __init__(self, mqtt: Publisher, tcp: TcpFleet) -> None:
        self.mqtt = mqtt
        self.tcp = tcp

    def publish(self, messages: Iterable[Message]) -> int:
        by_mqtt: list[Message] = []
        by_tcp: dict[str, list[bytes]] = defaultdict(list)
        for topic, payload in messages:
            if topic.startswith(LOST_PREFIX):
                mn = topic[len(LOST_PREFIX) + len(HJ212_PREFIX) :]
                if mn in self.tcp.mns:
                    self.tcp.remember(mn, payload)
                continue
            mn = topic[len(HJ212_PREFIX) :] if topic.startswith(HJ212_PREFIX) else ""
            if mn in self.tcp.mns:
                by_tcp[mn].append(payload)
            else:
                by_mqtt.append((topic, payload))
        sent = self.mqtt.publish(by_mqtt)
        if by_tcp:
            sent += self.tcp.upload(by_tcp)
        return sent

    def close(self) -> None:
        self.tcp.close()
        self.mqtt.close()
