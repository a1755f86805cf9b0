"""A partition of the stream, read as the pipeline reads the archive: ``read_after(seq)``.

A worker that owns a partition tails it with an ordered consumer (ephemeral, no acks: the
position that matters is the checkpoint the worker commits in PostgreSQL with its results),
started just after that checkpoint. nats-py delivers to a callback on the connection's loop;
the callback fills a bounded buffer that the worker's thread empties. While the buffer is
full the callback waits, the consumer's flow control is not answered, and the server stops
sending: a slow worker holds back its own partitions, never the connection's memory.

Ordered consumers re-create themselves after a gap or a missed heartbeat (a server restart,
a change of the stream's leader) from the last stream sequence they delivered, so the
sequence a worker reads is the stream's, without holes, whatever the servers go through.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from ingest.archive import ArchivedMessage
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.stream import StreamSettings, archived

BUFFER_MAX = 4000  # messages buffered per partition before the server is held back
HEARTBEAT_S = 2.0  # a consumer silent for two of these is re-created (ordered consumer)


class PartitionReader:
    """One partition from a position on (see the module). ``read_after`` is called from the
    worker's thread; the subscription lives on ``loop``."""

    def __init__(
        self,
        js: JetStreamContext,
        loop: LoopThread,
        settings: StreamSettings,
        partition: int,
        *,
        ready: threading.Event | None = None,
    ) -> None:
        self.partition = partition
        self._js = js
        self._loop = loop
        self._settings = settings
        self._buffer: deque[ArchivedMessage] = deque()
        self._space = asyncio.Event()  # set (on the loop) when the buffer has room again
        self._ready = ready or threading.Event()  # set when a message arrives
        self._sub: Subscription | None = None
        self._after = -1  # the sequence the buffer continues from; -1: not subscribed
        self._arrived = threading.Event()
        self.pending = 0  # the stream's messages of this partition not yet delivered
        self.known_last = 0  # the partition's last sequence in the stream, as last heard

    def read_after(
        self, seq: int, limit: int = 1000, wait_s: float = 10.0
    ) -> list[ArchivedMessage]:
        """Up to ``limit`` messages after ``seq``, in order. A ``seq`` other than the last
        one handed out (a replay from a snapshot's position) starts the consumer again from
        there. Returns none when the partition has nothing after ``seq``; when it has (the
        stream's last sequence, asked at subscription, is beyond) it waits up to ``wait_s``
        for them to arrive, so that a catch-up is not mistaken for the end of the stream."""
        if seq != self._after:
            self._loop.run(self._subscribe(seq), 30.0)
        buffer = self._buffer
        if not buffer and self._after < self.known_last:
            self._arrived.clear()
            if not buffer:
                self._arrived.wait(wait_s)
        n = min(limit, len(buffer))
        batch = [buffer.popleft() for _ in range(n)]
        if batch:
            self._after = batch[-1].seq
            if len(buffer) + n >= BUFFER_MAX > len(buffer):
                self._loop.loop.call_soon_threadsafe(self._space.set)
        return batch

    def lag(self) -> int:
        """Messages of the partition in the stream after the last one handed out (at most:
        sequences are the stream's, shared by all partitions, so this bounds the count)."""
        return len(self._buffer) + self.pending

    async def _subscribe(self, seq: int) -> None:
        await self._unsubscribe()
        self._buffer.clear()
        subject = self._settings.subject(self.partition)
        try:
            last = await self._js.get_last_msg(self._settings.name, subject)
            self.known_last = last.seq or 0
        except NotFoundError:
            self.known_last = 0
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=seq + 1,
            ack_policy=api.AckPolicy.NONE,
            mem_storage=True,  # an ordered consumer's state is re-created, never recovered
        )
        self._sub = await self._js.subscribe(
            self._settings.subject(self.partition),
            stream=self._settings.name,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S,
            config=config,
            cb=self._on_message,
        )
        self._after = seq

    async def _on_message(self, msg: Msg) -> None:
        while len(self._buffer) >= BUFFER_MAX:
            self._space.clear()
            await self._space.wait()
        meta = msg.metadata
        self._buffer.append(archived(meta.sequence.stream, msg.data, msg.headers))
        self.pending = meta.num_pending
        self.known_last = max(self.known_last, meta.sequence.stream + meta.num_pending)
        self._arrived.set()
        self._ready.set()

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            self._space.set()  # a callback waiting for room ends
            with contextlib.suppress(Exception):  # the connection may be gone: nothing to undo
                await sub.unsubscribe()

    def close(self) -> None:
        """Stop reading (the partition was handed to another worker)."""
        self._loop.run(self._unsubscribe(), 10.0)
        self._buffer.clear()
        self._after = -1


__all__ = ["BUFFER_MAX", "PartitionReader"]
