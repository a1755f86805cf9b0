"""The stream read by topic: on a cluster's web node, which has no archive file, what
``ingest.archive_topics`` reads from the SQLite archive in one machine (the charts, the
data-quality figures) and which sources were ever heard (the fleet's 未上线).

Which subjects: a message's partition is its topic's sender's (``ingest.jetstream.partitions``),
and a gateway is in one enterprise group with every source it carries, so the wanted sources
name the partitions to read: a chart of one outlet reads one partition's subject, the fleet's
data quality all of them.

Which messages: an ordered consumer (ephemeral, in memory, no acknowledgements) starts at the
range's beginning by the stream's own clock (``DeliverPolicy.BY_START_TIME``), ``CLOCK_MARGIN_S``
early for an ingest node's clock ahead of the NATS servers'. It stops at the first message the
stream stored more than ``LATE_STORE_S`` after the range's end (a message received in the range
may be stored that late, after a NATS outage the ingest node rode out), or at the subject's last
sequence when the read began. Each stream message is a pack (``ingest.jetstream.pack``); each
of its members is then checked as the archive's query checks a row: its receive time (the
ingest node's clock) in the range, its topic one that may carry the wanted sources' data, not
an oversized message stored as its first bytes. Positions follow the stream's sequences, so
the messages come in the order the stream stored them, as the archive's do.

Cost: every message of the subjects in the range crosses the network (no index by topic or by
event time), so a long range of a partition reads all of it; acceptable for now.

Sources heard: a scan of each partition from its first message, stopping as soon as every
configured source of the partition was heard; later looks read only what the stream stored
since, and a partition whose sources were all heard is not read again. Not the stream's
per-subject state, which counts a partition's messages but cannot say which of its loggers
sent them; not a scan of a recent range only, which would call a logger silent for longer than
that range 未上线 (never reported) rather than offline. The cost is one full read of each
partition that has a source never heard, in looks of at most ``HEARD_BUDGET_S`` each; until
it is done the answer is *unknown* (the web then calls nobody 未上线), as for a machine without
an archive file.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from ingest.archive import ArchivedMessage
from ingest.archive_topics import Wanted, decode_messages, keep_all, select_topics
from ingest.jetstream.errors import StreamUnavailableError
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.partitions import Partitioner
from ingest.jetstream.publisher import connect, describe_nats_error
from ingest.jetstream.stream import StreamSettings, stored
from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy
from ingest.readings import Measurement, PowerSample
from ingest.registry import Registry

log = logging.getLogger(__name__)

CLOCK_MARGIN_S = 60.0  # start this much before the range: clocks of ingest node and NATS differ
LATE_STORE_S = 600.0  # a message received in the range may be stored this long after its end
READ_TIMEOUT_S = 300.0  # one read of the stream, at most
HEARTBEAT_S = 2.0  # an ordered consumer silent for two of these is re-created
HEARD_BUDGET_S = 2.0  # a look for the sources heard reads this long; the next goes on


@dataclass(slots=True)
class _Sources:
    """The configured sources whose data is published on one partition."""

    mns: set[str] = field(default_factory=set)  # outlets' loggers
    meters: set[tuple[str, str | None]] = field(default_factory=set)  # (meter, its logger's MN)
    gateways: bool = False  # a gateway publishes here: payloads name the sources
    after: int = 0  # the partition's messages up to this stream sequence were looked at
    caught_up: bool = False  # a look read to the partition's end (its end then)


@dataclass(frozen=True, slots=True)
class _Last:
    seq: int
    time: datetime


class StreamTopics:
    """The stream read by topic (see the module). Thread-safe: queries run on one asyncio loop
    of its own (``LoopThread``), each with its own consumer; decoding in the caller's thread."""

    def __init__(
        self,
        servers: Sequence[str],
        settings: StreamSettings,
        partitioner: Partitioner,
        registry: Registry,
        new_router: Callable[[], TopicRouter],
        policy: IngestPolicy,
        *,
        name: str = "nonsite-web",
        read_timeout_s: float = READ_TIMEOUT_S,
        clock_margin_s: float = CLOCK_MARGIN_S,
        late_store_s: float = LATE_STORE_S,
        user: str = "",
        password: str = "",
    ) -> None:
        self.settings = settings
        self.partitioner = partitioner
        self.registry = registry
        self.new_router = new_router
        self.policy = replace(policy, reply_topic="")  # a reader answers nobody
        self.read_timeout_s = read_timeout_s
        self.clock_margin = timedelta(seconds=clock_margin_s)
        self.late_store = timedelta(seconds=late_store_s)
        self._servers = list(servers)
        self._login = {"user": user, "password": password}
        self._name = name
        self._loop = LoopThread("nats-topics")
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._heard_lock = threading.Lock()  # one look at a time
        self._sets_lock = threading.Lock()  # the sets, written on the loop, read by callers
        self._heard_failing = False
        self._heard_mns: set[str] = set()
        self._heard_meters: set[str] = set()
        self._sources = self._sources_by_partition()

    # -- the connection ------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Connect (reconnecting for ever afterwards, as every node's connection does)."""
        self._nc = self._loop.run(connect(self._servers, self._name, **self._login), timeout)
        self._js = self._nc.jetstream()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def close(self) -> None:
        # A look for the sources heard under way (at most its budget) ends first.
        looking = self._heard_lock.acquire(timeout=HEARD_BUDGET_S + 5.0)
        nc, self._nc, self._js = self._nc, None, None
        if looking:
            self._heard_lock.release()
        if nc is not None:
            try:
                self._loop.run(nc.close(), 5.0)
            except Exception:  # closing a connection that is already gone
                log.debug("closing the NATS connection", exc_info=True)
        self._loop.stop()

    def _context(self) -> JetStreamContext:
        if self._js is None or not self.connected:
            raise StreamUnavailableError("not connected to NATS")
        return self._js

    # -- reading by topic (ingest.archive_topics.TopicReader) -----------------------------

    def ensure_topic_index(self, *, wait: bool = False) -> bool:
        """Nothing to build: the partitions' subjects are the stream's index."""
        return True

    def partitions_of(self, wanted: Wanted) -> set[int]:
        """The partitions the wanted sources' data is published on: theirs, and those of the
        gateways carrying them (the same, unless the registry does not know a source)."""
        p = self.partitioner.partition
        found = {p(mn) for mn in wanted.mns} | {p(m) for m in wanted.meters}
        for g in self.registry.gateways:
            if not (g.mns.isdisjoint(wanted.mns) and g.meters.isdisjoint(wanted.meters)):
                found.add(p(g.gateway_id))
        return found

    def messages(
        self,
        wanted: Wanted,
        received_from_us: int,
        received_until_us: int,
        keep: Callable[[bytes], bool] = keep_all,
    ) -> list[ArchivedMessage]:
        """The messages that may carry the wanted sources' data, received in [from, until],
        in stream order."""
        partitions = self.partitions_of(wanted)
        if not partitions:
            return []
        try:
            found = self._loop.run(
                self._range(self._subjects(partitions), received_from_us, received_until_us),
                self.read_timeout_s,
            )
        except StreamUnavailableError:
            raise
        except (NatsError, TimeoutError, ConnectionError) as exc:
            raise StreamUnavailableError(describe_nats_error(exc)) from exc
        router = self.new_router()
        needles_of: dict[str, list[bytes] | None] = {}
        out: list[ArchivedMessage] = []
        for m in found:
            if m.topic not in needles_of:
                needles_of[m.topic] = select_topics(router, self.registry, [m.topic], wanted).get(
                    m.topic
                )
            needles = needles_of[m.topic]
            if needles is None or (needles and not any(n in m.payload for n in needles)):
                continue
            if keep(m.payload):
                out.append(m)
        return out

    def decode(
        self, messages: Sequence[ArchivedMessage]
    ) -> tuple[list[Measurement], list[PowerSample]]:
        """The messages' readings, decoded and attributed as the pipeline does."""
        return decode_messages(self.registry, self.new_router(), self.policy, messages)

    def _subjects(self, partitions: Iterable[int]) -> list[str]:
        chosen = sorted(set(partitions))
        if len(chosen) == self.settings.partitions:
            return [self.settings.subjects]  # all of them: one filter
        return [self.settings.subject(p) for p in chosen]

    async def _range(
        self, subjects: list[str], from_us: int, until_us: int
    ) -> list[ArchivedMessage]:
        # A consumer per subject, merged by stream sequence: one consumer with several
        # filter subjects that starts by time skips the first message (nats-server 2.15.1,
        # as in nats-server#6076), one filter subject (a wildcard too) does not.
        found = await asyncio.gather(*(self._range_of(s, from_us, until_us) for s in subjects))
        return list(heapq.merge(*found, key=lambda m: m.seq))

    async def _range_of(self, subject: str, from_us: int, until_us: int) -> list[ArchivedMessage]:
        start = _at_us(from_us) - self.clock_margin
        stop = _at_us(until_us) + self.late_store
        last = await self._last(subject)
        if last is None or last.time < start:
            return []  # nothing stored from the range's beginning on
        out: list[ArchivedMessage] = []

        def take(msg: Msg) -> bool:
            meta = msg.metadata
            if meta.timestamp > stop:
                return False
            for member in stored(meta.sequence.stream, msg.data, msg.headers):
                m = member.message
                if from_us <= m.received_us <= until_us and m.full_size is None:
                    out.append(m)
            return True

        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_TIME, opt_start_time=start
        )
        await self._scan(subject, config, last.seq, take)
        return out

    # -- the sources ever heard -----------------------------------------------------------

    def heard(
        self, budget_s: float = HEARD_BUDGET_S
    ) -> tuple[frozenset[str], frozenset[str]] | None:
        """(MNs, meter ids) of the configured sources that sent anything the stream holds or
        held since this reader first looked (see the module): a logger on its own topic by
        the topic, one behind a gateway by ``MN=…;`` in a payload, a meter by its topic or
        its quoted id; a meter of an HJ 212 logger is heard when its logger is.

        None (unknown) until the first look has read every partition with a source not yet
        heard to its end. A look reads for at most ``budget_s`` and the next goes on from
        there; a caller that finds another looking answers at once with what is known. A
        failure to read (NATS away) is logged and answers what is known too."""
        if self._heard_lock.acquire(blocking=False):
            try:
                todo = [p for p, s in self._sources.items() if not self._all_heard(s)]
                if todo:
                    self._loop.run(self._look(todo, budget_s), budget_s + 30.0)
                if self._heard_failing:
                    log.info("the sources heard are read from the stream again")
                    self._heard_failing = False
            except Exception as exc:  # noqa: BLE001 - advisory: what is known is answered
                if not self._heard_failing:
                    log.warning("cannot read the sources heard from the stream: %r", exc)
                    self._heard_failing = True
            finally:
                self._heard_lock.release()
        with self._sets_lock:
            if any(not s.caught_up and not self._all_heard(s) for s in self._sources.values()):
                return None
            return frozenset(self._heard_mns), frozenset(self._heard_meters)

    def _sources_by_partition(self) -> dict[int, _Sources]:
        p = self.partitioner.partition
        out: dict[int, _Sources] = {}
        for outlet in self.registry.outlets:
            out.setdefault(p(outlet.mn), _Sources()).mns.add(outlet.mn)
        for meter in self.registry.meters:
            out.setdefault(p(meter.meter_id), _Sources()).meters.add((meter.meter_id, meter.mn))
        for gateway in self.registry.gateways:
            if gateway.mns or gateway.meters:
                out.setdefault(p(gateway.gateway_id), _Sources()).gateways = True
        return out

    def _all_heard(self, s: _Sources) -> bool:
        mns, meters = self._heard_mns, self._heard_meters
        return s.mns <= mns and all(
            m in meters or (mn is not None and mn in mns) for m, mn in s.meters
        )

    async def _look(self, partitions: list[int], budget_s: float) -> None:
        with contextlib.suppress(TimeoutError):  # each partition goes on from there next time
            await asyncio.wait_for(
                asyncio.gather(*(self._look_at(p) for p in partitions)), budget_s
            )

    async def _look_at(self, partition: int) -> None:
        sources = self._sources[partition]
        subject = self.settings.subject(partition)
        last = await self._last(subject)
        if last is None or last.seq <= sources.after:
            sources.caught_up = True
            return
        router = self.new_router()
        mns, meters, lock = self._heard_mns, self._heard_meters, self._sets_lock

        def note(msg: Msg) -> bool:
            sources.after = msg.metadata.sequence.stream
            for member in stored(sources.after, msg.data, msg.headers):
                route = router.route(member.message.topic)
                if route is None:
                    continue
                gateway = self.registry.gateway(route.sender)
                with lock:
                    if gateway is None:
                        (mns if route.kind == "hj212" else meters).add(route.sender)
                    else:
                        payload = member.message.payload
                        mns.update(
                            mn for mn in gateway.mns - mns if f"MN={mn};".encode() in payload
                        )
                        meters.update(
                            m for m in gateway.meters - meters if f'"{m}"'.encode() in payload
                        )
            return not self._all_heard(sources)

        if sources.after:
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=sources.after + 1
            )
        else:
            config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
        await self._scan(subject, config, last.seq, note)
        sources.caught_up = True

    # -- the consumer ----------------------------------------------------------------------

    async def _last(self, subject: str) -> _Last | None:
        """The newest message of the subject (a partition's, or the wildcard of all), or None
        when it has none."""
        js = self._context()
        if subject == self.settings.subjects:
            state = (await js.stream_info(self.settings.name)).state
            if not state.messages:
                return None
            newest = await js.get_msg(self.settings.name, state.last_seq)
        else:
            try:
                newest = await js.get_last_msg(self.settings.name, subject)
            except NotFoundError:
                return None
        if newest.seq is None or newest.time is None:
            return None
        return _Last(newest.seq, newest.time)

    async def _scan(
        self,
        subject: str,
        config: api.ConsumerConfig,
        last_seq: int,
        on_message: Callable[[Msg], bool],
    ) -> None:
        """Hand the subject's messages, from where ``config`` starts, to ``on_message`` until
        it answers False, the message is the ``last_seq`` (the newest when the scan began)
        or no other is pending."""
        js = self._context()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def deliver(msg: Msg) -> None:
            if done.done():
                return
            meta = msg.metadata
            if not on_message(msg) or meta.sequence.stream >= last_seq or meta.num_pending == 0:
                done.set_result(None)

        sub = await js.subscribe(
            subject,
            stream=self.settings.name,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S,
            config=config,
            cb=deliver,
        )
        try:
            info = await sub.consumer_info()
            delivered = info.delivered.consumer_seq if info.delivered is not None else 0
            if info.num_pending == 0 and delivered == 0 and not done.done():
                return  # nothing from where it starts (stored before the range's beginning)
            await done
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may be gone: the consumer is ephemeral
                log.debug("ending a stream read", exc_info=True)


def _at_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


__all__ = ["StreamTopics"]
