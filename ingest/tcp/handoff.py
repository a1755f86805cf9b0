"""The gateway inside ``nonsite serve``: packets go straight to the service's archiver, not
round through the broker and back.

The archive row is the same (topic ``hj212/{sender}``, the packet as published), so the rest
of nonsite is unchanged; the 9014 follows the group commit that stored the packet (fsync'd):
a stronger promise than a broker's PUBACK, and one hop fewer on a machine where the gateway
shares the cores with the service (bench/gateway.py measured the broker round trip as most
of the gateway's cost). A standalone ``nonsite gateway`` publishes to the broker instead.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Sequence

from ingest.mqtt.source import Delivery

# A delivery from the gateway carries this generation: no PUBACK is owed for it (QoS 0 to the
# MQTT source's acknowledgement), a future is.
GATEWAY_GENERATION = -1


class ArchiveHandoff:
    def __init__(self, submit: Callable[[Delivery], None], loop: asyncio.AbstractEventLoop) -> None:
        self._submit = submit
        self._loop = loop
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def store(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        """Queue a packet for the archive; the future resolves once it is committed."""
        future: asyncio.Future[None] = self._loop.create_future()
        key = next(self._ids)
        with self._lock:
            self._waiting[key] = future
        self._submit(Delivery(time.time_ns() // 1000, topic, payload, key, 0, GATEWAY_GENERATION))
        return future

    def committed(self, batch: Sequence[Delivery]) -> None:
        """The archiver committed ``batch`` (its thread): resolve the gateway's, at one wake-up
        of the event loop."""
        with self._lock:
            done = [
                self._waiting.pop(d.mid)
                for d in batch
                if d.generation == GATEWAY_GENERATION and d.mid in self._waiting
            ]
        if done:
            self._loop.call_soon_threadsafe(_resolve_all, done)


def _resolve_all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
