"""A partition of the stream, read as the pipeline reads the archive: ``read_after(position)``.

A worker that owns a partition tails it with an ordered consumer (ephemeral, no acks: the
position that matters is the checkpoint the worker commits in PostgreSQL with its results),
started just after that checkpoint. nats-py delivers to a callback on the connection's loop;
the callback fills a bounded buffer that the worker's thread empties. While the buffer is
full the callback waits, the consumer's flow control is not answered, and the server stops
sending: a slow worker holds back its own partitions, never the connection's memory.

A stream message is a pack of received messages (``ingest.jetstream.pack``); each member has
a position, the pack's stream sequence × 1024 + its index, and positions are what the
pipeline reads after and checkpoints.

Ordered consumers re-create themselves after a gap or a missed heartbeat (a server restart,
a change of the stream's leader) from the last stream sequence they delivered, so the
sequence a worker reads is the stream's, without holes, whatever the servers go through.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.client import JetStreamContext

from ingest.archive import ArchivedMessage
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.pack import position, split_position
from ingest.jetstream.stream import StreamSettings, last_position, stored

BUFFER_MAX = 4000  # stream messages buffered per partition before the server is held back
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
        self._buffer: deque[list[ArchivedMessage]] = deque()  # a stream message's members each
        self._space = asyncio.Event()  # set (on the loop) when the buffer has room again
        self._ready = ready or threading.Event()  # set when a message arrives
        self._sub: Subscription | None = None
        self._after = -1  # the position the buffer continues from; -1: not subscribed
        self._arrived = threading.Event()
        self.pending = 0  # the stream's messages of this partition not yet delivered
        self.known_last = 0  # the partition's last position in the stream, as last heard

    def read_after(
        self, position: int, limit: int = 1000, wait_s: float = 10.0
    ) -> list[ArchivedMessage]:
        """About ``limit`` messages after ``position`` (a stream message's members are handed
        out together, so a checkpoint falls at a pack's end), in order. A ``position`` other
        than the last one handed out (a replay from a snapshot's) starts the consumer again
        from there. Returns none when the partition has nothing after it; when it has (the
        partition's last position, asked at subscription, is beyond) it waits up to
        ``wait_s`` for them to arrive, so that a catch-up is not mistaken for the end."""
        if position != self._after:
            self._loop.run(self._subscribe(position), 30.0)
        buffer = self._buffer
        # An arrival may bring nothing new (the pack holding ``position`` comes again, its
        # members all behind): wait on until members come or the time is up.
        deadline = time.monotonic() + wait_s
        while not buffer and self._after < self.known_last:
            self._arrived.clear()
            left = deadline - time.monotonic()
            if buffer or left <= 0:
                break
            self._arrived.wait(left)
        batch: list[ArchivedMessage] = []
        while buffer and len(batch) < limit:
            batch += buffer.popleft()
        if batch:
            self._after = batch[-1].seq
            if len(buffer) < BUFFER_MAX:
                self._loop.loop.call_soon_threadsafe(self._space.set)
        return batch

    def lag(self) -> int:
        """Stream messages of the partition after the last one handed out (at most:
        sequences are the stream's, shared by all partitions, so this bounds the count)."""
        return len(self._buffer) + self.pending

    async def _subscribe(self, position: int) -> None:
        await self._unsubscribe()
        self._buffer.clear()
        self.known_last = await last_position(self._js, self._settings, self.partition)
        # The stream message holding ``position`` again: the rest of its members follow.
        start, _ = split_position(position)
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start),
            ack_policy=api.AckPolicy.NONE,
            mem_storage=True,  # an ordered consumer's state is re-created, never recovered
        )
        self._after = position
        self._sub = await self._js.subscribe(
            self._settings.subject(self.partition),
            stream=self._settings.name,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S,
            config=config,
            cb=self._on_message,
        )

    async def _on_message(self, msg: Msg) -> None:
        while len(self._buffer) >= BUFFER_MAX:
            self._space.clear()
            await self._space.wait()
        meta = msg.metadata
        after = self._after
        members = [
            m.message
            for m in stored(meta.sequence.stream, msg.data, msg.headers)
            if m.message.seq > after
        ]
        if members:
            self._buffer.append(members)
            self.known_last = max(self.known_last, members[-1].seq)
        self.pending = meta.num_pending
        if meta.num_pending:  # more to come: the last position is at least the next message's
            self.known_last = max(
                self.known_last, position(meta.sequence.stream + meta.num_pending, 0)
            )
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
