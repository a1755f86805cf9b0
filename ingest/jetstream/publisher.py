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
from collections.abc import Callable, Sequence
from typing import TypedDict

import nats
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from ingest.archive import Storable
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.partitions import Partitioner
from ingest.jetstream.stream import MSG_ID, StreamSettings, ensure_stream, headers_of

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
        limit = self.settings.max_payload_bytes
        futures = []
        ids: set[str] = set()
        try:
            for message in messages:
                partition = self._partitioner.partition(self._sender_of(message.topic))
                payload, headers = headers_of(message, limit)
                # A byte-identical resend in the same batch: JetStream would answer its
                # second copy "duplicate message id is in process", an error nats-py never
                # hands to the future (it waits out the timeout). Stored once either way.
                if headers[MSG_ID] in ids:
                    continue
                ids.add(headers[MSG_ID])
                # No wait_stall: with a timeout nats-py waits for its window through a task,
                # a turn of the loop per message in which the flusher writes that message
                # alone; the server then replicates one message per Raft entry (measured:
                # 135 µs of NATS CPU a message instead of 21). Without it, a batch leaves in
                # a few writes. The batch's own timeout bounds a full window's wait.
                futures.append(
                    await js.publish_async(
                        self.settings.subject(partition), payload, headers=headers
                    )
                )
            acks = await asyncio.wait_for(asyncio.gather(*futures), self._ack_timeout)
        except BaseException:
            # An unanswered publish would hold its slot of nats-py's pending window for
            # ever; cancelled, it lets go (the batch is published again, deduplicated).
            for future in futures:
                future.cancel()
            raise
        return sum(1 for ack in acks if not ack.duplicate)

    def close(self) -> None:
        nc = self._nc
        if nc is not None:
            try:
                self._loop.run(nc.close(), 5.0)
            except Exception:  # closing a connection that is already gone
                log.debug("closing the NATS connection", exc_info=True)
        self._loop.stop()


__all__ = ["JetStreamLog", "connect", "describe_nats_error"]
