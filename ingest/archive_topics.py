"""The raw archive read by topic: the messages that may carry some loggers' or meters' data,
received within a time window, decoded as the pipeline decodes them (the series and the data
quality figures are computed from these).

Which topics carry a source's frames is decided with the configured subscriptions (the
``TopicRouter``) and the registry, not a hard-coded pattern: a topic the router gives the
``hj212`` kind is read for MN X when its sender is X (a logger publishing on its own topic) or
a gateway whose entry lists X (those payloads are kept only when they contain X). Meters
likewise with the ``power`` kind. The pipeline's ``MessageProcessor`` then applies the same
attribution checks as ingest, so a frame that ingest refused (another sender's MN) is read by
nobody here either.

Speed: reading by topic needs an index on (topic, received_us), which the archive's own
schema does not have. The reader adds it (``CREATE INDEX IF NOT EXISTS``): a purely additive
index that the archive's writer, its retention and the pipeline ignore, built once in a
background thread on a writable connection of its own (the reads use read-only connections
like the pipeline's). Building it holds the archive's write lock for its duration (about a
second per million messages); the archiver waits for it (busy timeout) and retries without
acknowledging meanwhile, so nothing is lost. Until it exists, or when the archive is read-only,
the same queries run on the receive-time index, only slower.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from ingest.archive import ArchivedMessage, reading
from ingest.hj212.timefmt import parse_hj212_time
from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy, MessageProcessor
from ingest.readings import Measurement, PowerSample
from ingest.registry import Registry

log = logging.getLogger(__name__)

TOPIC_INDEX = "messages_topic_received"
CREATE_TOPIC_INDEX = f"CREATE INDEX IF NOT EXISTS {TOPIC_INDEX} ON messages (topic, received_us)"
INDEX_BUSY_S = 30.0  # wait this long for the archiver's transaction before building
INDEX_RETRY_S = 600.0  # after a failed build (read-only archive, busy), try again this late
# The topics of the archive, from the (topic, received_us) index: one seek per distinct topic.
DISTINCT_TOPICS = """
WITH RECURSIVE t(topic) AS (
    SELECT MIN(topic) FROM messages
    UNION ALL
    SELECT (SELECT MIN(topic) FROM messages WHERE topic > t.topic) FROM t WHERE t.topic IS NOT NULL
)
SELECT topic FROM t WHERE topic IS NOT NULL
"""

_DATATIME = re.compile(rb"DataTime=(\d{14})")
_CHUNK = 500  # topics per query (SQLite's variable limit is far higher)
_DECODE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Wanted:
    """The sources whose data is read: loggers by MN, meters by id."""

    mns: frozenset[str] = frozenset()
    meters: frozenset[str] = frozenset()


def _datatime_epoch(text: bytes) -> int | None:
    try:
        return int(parse_hj212_time(text.decode("ascii")).timestamp())
    except ValueError:
        return None


def event_filter(need: tuple[int, int], windows: tuple[int, int]) -> Callable[[bytes], bool]:
    """Keep an HJ 212 payload when one of its DataTimes lies in ``need`` (every reading is
    wanted), or in ``windows`` and not all its frames are real-time data (only minute and
    hour data feed the hour and day values). A payload whose DataTimes cannot all be read
    here is kept: the decoder decides."""

    def keep(payload: bytes) -> bool:
        found = _DATATIME.findall(payload)
        if not found or len(found) != payload.count(b"DataTime"):
            return True
        times = [_datatime_epoch(f) for f in found]
        if None in times:
            return True
        if any(need[0] <= t < need[1] for t in times if t is not None):
            return True
        if not any(windows[0] <= t < windows[1] for t in times if t is not None):
            return False
        return payload.count(b"CN=2011") != payload.count(b"CN=")

    return keep


def has_topic_index(conn: sqlite3.Connection) -> bool:
    """The archive has the (topic, received_us) index."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (TOPIC_INDEX,)
    ).fetchone()
    return row is not None


def distinct_topics(conn: sqlite3.Connection) -> set[str]:
    """Every topic of the archive, one index seek per topic (with the topic index)."""
    return {r[0] for r in conn.execute(DISTINCT_TOPICS)}


def keep_all(_payload: bytes) -> bool:
    return True


class TopicArchive:
    """One archive file read by topic. Thread-safe: every query opens its own read-only
    connection, router and processor (a router's cache is not shared between threads)."""

    def __init__(
        self,
        path: Path,
        registry: Registry,
        new_router: Callable[[], TopicRouter],
        policy: IngestPolicy,
        *,
        build_index: bool = True,
    ) -> None:
        self.path = path
        self.registry = registry
        self.new_router = new_router
        self.policy = replace(policy, reply_topic="")  # a reader answers nobody
        self._build_index = build_index
        self._index_lock = threading.Lock()
        self._index_state: Literal["unknown", "building", "ready", "unavailable"] = "unknown"
        self._index_thread: threading.Thread | None = None
        self._index_retry_at = 0.0

    # -- the topic index -----------------------------------------------------------------

    def ensure_topic_index(self, *, wait: bool = False) -> bool:
        """True when the archive has the (topic, received_us) index. Otherwise starts building
        it in the background (once; again ``INDEX_RETRY_S`` after a failure) and, with
        ``wait``, waits for the build."""
        with self._index_lock:
            if self._index_state == "ready":
                return True
            thread = self._index_thread if self._index_state == "building" else None
            if thread is None:
                if not self.path.exists():
                    return False
                if self._has_index():
                    self._index_state = "ready"
                    return True
                if not self._build_index or time.monotonic() < self._index_retry_at:
                    return False
                self._index_state = "building"
                thread = threading.Thread(
                    target=self._create_index, name="series-topic-index", daemon=True
                )
                self._index_thread = thread
                thread.start()
        if wait:
            thread.join()
            return self.topic_index_ready
        return False

    @property
    def topic_index_ready(self) -> bool:
        return self._index_state == "ready"

    def _has_index(self) -> bool:
        with reading(self.path) as conn:
            return has_topic_index(conn)

    def _create_index(self) -> None:
        started = time.perf_counter()
        try:
            conn = sqlite3.connect(self.path, timeout=INDEX_BUSY_S, isolation_level=None)
            try:
                conn.execute(CREATE_TOPIC_INDEX)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning(
                "cannot add the index %s to %s (%s): series read by receive time only",
                TOPIC_INDEX,
                self.path,
                exc,
            )
            with self._index_lock:
                self._index_state = "unavailable"
                self._index_retry_at = time.monotonic() + INDEX_RETRY_S
            return
        log.info(
            "added the index %s to %s in %.1f s",
            TOPIC_INDEX,
            self.path,
            time.perf_counter() - started,
        )
        with self._index_lock:
            self._index_state = "ready"

    # -- reading -------------------------------------------------------------------------

    def messages(
        self,
        wanted: Wanted,
        received_from_us: int,
        received_until_us: int,
        keep: Callable[[bytes], bool] = keep_all,
    ) -> list[ArchivedMessage]:
        """The archived messages that may carry the wanted sources' data, received in
        [from, until], in archive order."""
        if not self.path.exists():
            return []
        indexed = self.ensure_topic_index()
        out: list[ArchivedMessage] = []
        with reading(self.path) as conn:
            if indexed:
                topics = [r[0] for r in conn.execute(DISTINCT_TOPICS)]
            else:
                topics = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT topic FROM messages WHERE received_us BETWEEN ? AND ?",
                        (received_from_us, received_until_us),
                    )
                ]
            selected = self.select_topics(topics, wanted)
            names = sorted(selected)
            for i in range(0, len(names), _CHUNK):
                chunk = names[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                # full_size NULL: not an oversized message whose start alone is archived
                rows = conn.execute(
                    "SELECT seq, received_us, topic, payload FROM messages "
                    f"WHERE topic IN ({marks}) AND received_us BETWEEN ? AND ? "
                    "AND full_size IS NULL",
                    (*chunk, received_from_us, received_until_us),
                )
                for seq, received_us, topic, payload in rows:
                    needles = selected[topic]
                    if needles and not any(n in payload for n in needles):
                        continue
                    if keep(payload):
                        out.append(ArchivedMessage(seq, received_us, topic, payload))
        out.sort(key=lambda m: m.seq)
        return out

    def select_topics(self, topics: Iterable[str], wanted: Wanted) -> dict[str, list[bytes]]:
        """Topic → byte strings one of which a payload must contain (empty: take all)."""
        return select_topics(self.new_router(), self.registry, topics, wanted)

    def decode(
        self, messages: Sequence[ArchivedMessage]
    ) -> tuple[list[Measurement], list[PowerSample]]:
        """The messages' readings, decoded and attributed as the pipeline does."""
        return decode_messages(self.registry, self.new_router(), self.policy, messages)


class TopicReader(Protocol):
    """What the charts and the data-quality figures read: the raw messages by topic (this
    module's :class:`TopicArchive`, or the stream of a cluster: ``ingest.jetstream.topics``)."""

    def ensure_topic_index(self, *, wait: bool = False) -> bool: ...

    def messages(
        self,
        wanted: Wanted,
        received_from_us: int,
        received_until_us: int,
        keep: Callable[[bytes], bool] = keep_all,
    ) -> list[ArchivedMessage]: ...

    def decode(
        self, messages: Sequence[ArchivedMessage]
    ) -> tuple[list[Measurement], list[PowerSample]]: ...


def select_topics(
    router: TopicRouter, registry: Registry, topics: Iterable[str], wanted: Wanted
) -> dict[str, list[bytes]]:
    """Topic → byte strings one of which a payload must contain (empty: take all); topics
    that cannot carry the wanted sources' data are left out."""
    mn_needles = [mn.encode() for mn in sorted(wanted.mns)]
    meter_needles = [m.encode() for m in sorted(wanted.meters)]
    out: dict[str, list[bytes]] = {}
    for topic in topics:
        route = router.route(topic)
        if route is None:
            continue
        sender = route.sender
        gateway = registry.gateway(sender)
        if route.kind == "hj212" and wanted.mns:
            if sender in wanted.mns:
                out[topic] = [] if len(wanted.mns) == 1 else [sender.encode()]
            elif gateway is not None and not gateway.mns.isdisjoint(wanted.mns):
                out[topic] = mn_needles
        elif route.kind == "power" and wanted.meters:
            if sender in wanted.meters:
                out[topic] = []  # the topic names the meter: readings may omit it
            elif gateway is not None and not gateway.meters.isdisjoint(wanted.meters):
                out[topic] = meter_needles  # a gateway: each reading names its meter
    return out


def decode_messages(
    registry: Registry,
    router: TopicRouter,
    policy: IngestPolicy,
    messages: Sequence[ArchivedMessage],
) -> tuple[list[Measurement], list[PowerSample]]:
    """The messages' readings, decoded and attributed as the pipeline does."""
    processor = MessageProcessor(registry, router, policy)
    measurements: list[Measurement] = []
    power: list[PowerSample] = []
    for i in range(0, len(messages), _DECODE_BATCH):
        done = processor.process(messages[i : i + _DECODE_BATCH])
        measurements += done.readings.measurements
        power += done.readings.power
    return measurements, power
