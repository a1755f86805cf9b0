"""Received messages → the JetStream stream, acknowledged once JetStream has them.

:class:`JetStreamLog` is what an ingest node's archiver appends to instead of the raw archive
(``ingest.archiver.Log``): a batch is published to the subjects of its messages' partitions,
all at once (``publish_async``), and ``append`` returns when JetStream has acknowledged every
one, so the archiver sends the MQTT PUBACKs only then. Anything short of that (a timeout
while the stream elects a leader, no responders while no server answers) raises, and the
archiver retries the whole batch with backoff: what JetStream already had comes back as a
duplicate (same ``Nats-Msg-Id``) and is not stored twice.

It publishes to JetStream explicitly rather than through the NATS server's MQTT listener,
which was measured (research for this project) to lose messages it had acknowledged when
the stream's leader died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TypedDict

import nats
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from ingest.archive import Storable, message_digest
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.pack import FORMAT as PACK_FORMAT
from ingest.jetstream.pack import MAX_MEMBERS, RECORD_OVERHEAD, pack
from ingest.jetstream.partitions import Partitioner
from ingest.jetstream.stream import MSG_ID, PACK, StreamSettings, ensure_stream, stored

log = logging.getLogger(__name__)


class NatsLogin(TypedDict):
    """A node's NATS user and password (empty user: no login)."""

    user: str
    password: str


async def connect(
    servers: Sequence[str], name: str, *, user: str = "", password: str = ""
) -> NatsClient:
    """A connection that reconnects for ever (a NATS node restarting is routine), logged in
    as ``user`` when one is given (deploy/nats/nats-common.conf's users)."""
    login = {"user": user, "password": password} if user else {}
    return await nats.connect(
        servers=list(servers),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=2,
        allow_reconnect=True,
        **login,  # user and password, nats.connect's keywords
    )


def describe_nats_error(exc: BaseException) -> str:
    """One line for a failure to reach the stream (nats-py's errors often have no text)."""
    text = str(exc)
    if not text or text in ("None", "None: None"):
        text = {
            "NoStreamResponseError": "no server answers for the stream (a leader election?)",
            "TimeoutError": "no answer within the timeout",
            "NoServersError": "no NATS server reachable",
        }.get(type(exc).__name__, "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class JetStreamLog:
    """The ingest node's log (see the module): ``append`` publishes and waits for the acks."""

    def __init__(
        self,
        servers: Sequence[str],
        settings: StreamSettings,
        partitioner: Partitioner,
        sender_of: Callable[[str], str],
        *,
        name: str = "nonsite-ingest",
        ack_timeout_s: float = 5.0,
        create_stream: bool = True,
        user: str = "",
        password: str = "",
    ) -> None:
        """``sender_of``: topic → its sender (the topic level at the filter's "+"); the
        partition is the sender's."""
        self.settings = settings
        self._servers = list(servers)
        self._partitioner = partitioner
        self._sender_of = sender_of
        self._name = name
        self._ack_timeout = ack_timeout_s
        self._create_stream = create_stream
        self._login = {"user": user, "password": password}
        self._loop = LoopThread("jetstream")
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self.published = 0
        self.duplicates = 0

    async def _context(self) -> JetStreamContext:
        if self._nc is None:
            self._nc = await connect(self._servers, self._name, **self._login)
        if self._js is None:
            js = self._nc.jetstream(timeout=self._ack_timeout)
            if self._create_stream:
                # While the servers elect a leader this fails; the next batch tries again.
                await ensure_stream(js, self.settings)
            self._js = js
        return self._js

    def start(self, timeout: float = 30.0) -> None:
        """Connect (and create the stream) now rather than at the first batch."""
        self._loop.run(self._context(), timeout)

    def append(self, messages: Sequence[Storable]) -> int:
        """Publish a batch; returns how many JetStream stored (not duplicates). Raises if
        any was not acknowledged within the timeout: the caller retries the batch."""
        if not messages:
            return 0
        stored = self._loop.run(self._publish(messages), self._ack_timeout + 5.0)
        self.published += stored
        self.duplicates += len(messages) - stored
        return stored

    async def _publish(self, messages: Sequence[Storable]) -> int:
        js = await self._context()
        by_partition = self._by_partition(messages)
        redelivered = {p for p, ms in by_partition.items() if any(_redelivered(m) for m, _ in ms)}
        for p in redelivered:
            # The broker sends again what this client (maybe in a life before a crash) had
            # not acknowledged; what it had stored is in its last pack of the partition (a
            # node appends one batch at a time, and acknowledges it before the next).
            stored = await self._last_pack_digests(js, p)
            by_partition[p] = [
                (m, d) for m, d in by_partition[p] if not (_redelivered(m) and d in stored)
            ]
        limit = self.settings.max_payload_bytes
        packs = [
            (p, pack([m for m, _ in chunk], limit, [d for _, d in chunk]))
            for p, ms in by_partition.items()
            for chunk in self._chunks(ms)
        ]
        futures = []
        try:
            for p, packed in packs:
                # No wait_stall: with a timeout nats-py waits for its window through a task,
                # a turn of the loop per message in which the flusher writes that message
                # alone; the server then replicates one message per Raft entry (measured:
                # 135 µs of NATS CPU a message instead of 21). The batch's own timeout
                # bounds a full window's wait.
                futures.append(
                    await js.publish_async(
                        self.settings.node_subject(p, self._name),
                        packed.payload,
                        headers={MSG_ID: packed.msg_id, PACK: PACK_FORMAT},
                    )
                )
            acks = await asyncio.wait_for(asyncio.gather(*futures), self._ack_timeout)
        except BaseException:
            # An unanswered publish would hold its slot of nats-py's pending window for
            # ever; cancelled, it lets go (the batch is published again, deduplicated).
            for future in futures:
                future.cancel()
            raise
        # A pack stored before (the same batch again, after a lost acknowledgement) is the
        # same pack: JetStream's duplicate window answers it as a duplicate.
        return sum(
            packed.members
            for (_, packed), ack in zip(packs, acks, strict=True)
            if not ack.duplicate
        )

    def _by_partition(
        self, messages: Sequence[Storable]
    ) -> dict[int, list[tuple[Storable, bytes]]]:
        """The batch's messages with their digests by partition, in order, a byte-identical
        resend in the same batch once (each digest computed once: the pack reuses it)."""
        out: dict[int, list[tuple[Storable, bytes]]] = {}
        seen: set[bytes] = set()
        for m in messages:
            digest = message_digest(m.topic, m.payload)
            if digest in seen:
                continue
            seen.add(digest)
            p = self._partitioner.partition(self._sender_of(m.topic))
            out.setdefault(p, []).append((m, digest))
        return out

    def _chunks(
        self, messages: list[tuple[Storable, bytes]]
    ) -> Iterator[list[tuple[Storable, bytes]]]:
        """Packs of at most MAX_MEMBERS messages and about max_payload_bytes (a NATS server
        refuses a message above its max_payload)."""
        limit = self.settings.max_payload_bytes
        chunk: list[tuple[Storable, bytes]] = []
        size = 0
        for m, digest in messages:
            kept = min(len(m.payload), limit)
            if chunk and (len(chunk) == MAX_MEMBERS or size + kept > limit):
                yield chunk
                chunk, size = [], 0
            chunk.append((m, digest))
            size += kept + RECORD_OVERHEAD + len(m.topic)
        if chunk:
            yield chunk

    async def _last_pack_digests(self, js: JetStreamContext, partition: int) -> set[bytes]:
        subject = self.settings.node_subject(partition, self._name)
        try:
            last = await js.get_last_msg(self.settings.name, subject)
        except NotFoundError:
            return set()
        return {m.digest for m in stored(last.seq or 0, last.data or b"", last.headers)}

    def close(self) -> None:
        nc = self._nc
        if nc is not None:
            try:
                self._loop.run(nc.close(), 5.0)
            except Exception:  # closing a connection that is already gone
                log.debug("closing the NATS connection", exc_info=True)
        self._loop.stop()


def _redelivered(message: Storable) -> bool:
    return bool(getattr(message, "redelivered", False))


__all__ = ["JetStreamLog", "connect", "describe_nats_error"]
