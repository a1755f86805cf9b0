"""Which loggers (MN) and meters have ever sent anything, read from the raw archive: the fleet's
未上线 (never reported) state and its 从未上报 sources.

A source counts as heard once a message from it is in the archive, whether or not its frames
could be used (a logger whose frames are all refused is online and shows up among the dead
letters, not here). A logger publishing on its own topic is heard from the topic alone; one
behind a gateway when a message on the gateway's topic names it (``MN=…;`` in an HJ 212 frame,
the quoted meter id in power JSON); a meter reported by an HJ 212 logger when that logger is.

Cost: the first look lists the archive's topics (one index seek per topic when the series
reader's (topic, received_us) index exists, else one pass over the archive) and reads the
gateways' messages until each of their sources is found; later looks read only the messages
archived since, at most every ``refresh_s``. What was heard stays heard for the life of the
process, also after the archive's retention removes it.

No archive file where the configuration puts it (a web node without the service's data
directory) means *unknown*: :meth:`ReportedSources.heard` answers None and no enterprise is
called 未上线. A cluster's web node reads the stream instead (``stream``:
``ingest.jetstream.topics.StreamTopics.heard``, which says how and why).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingest.archive import reading
from ingest.archive_topics import distinct_topics, has_topic_index
from nonsite.config.model import Config, EnterpriseConfig
from nonsite.wiring import build_registry, build_router


@dataclass(frozen=True, slots=True)
class Heard:
    mns: frozenset[str]
    meters: frozenset[str]

    def unheard(self, e: EnterpriseConfig) -> list[str]:
        """The enterprise's outlets and meters (by id) never heard from, in configuration order."""
        out = [o.id for o in e.outlets if o.mn not in self.mns]
        return out + [
            m.id
            for m in e.meters
            if m.id not in self.meters and (m.mn is None or m.mn not in self.mns)
        ]


class HeardSources(Protocol):
    def heard(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """(MNs, meter ids) heard so far; None: not known yet."""
        ...


@dataclass(slots=True)
class _State:
    seq: int = 0  # the archive's messages up to this one have been looked at
    topics: set[str] = field(default_factory=set)
    mns: set[str] = field(default_factory=set)
    meters: set[str] = field(default_factory=set)


class ReportedSources:
    """Thread-safe; one per application and configuration."""

    def __init__(
        self,
        config: Config,
        archive_path: Path,
        *,
        refresh_s: float = 10.0,
        stream: HeardSources | None = None,
    ) -> None:
        self.config = config
        self.path = archive_path
        self.refresh_s = refresh_s
        self.stream = stream  # instead of the archive file
        self._router = build_router(config)
        self._registry = build_registry(config)
        self._lock = threading.Lock()
        self._state = _State()
        self._checked_at = -float("inf")
        self._heard: Heard | None = None

    def heard(self) -> Heard | None:
        with self._lock:
            if time.monotonic() - self._checked_at >= self.refresh_s or self._heard is None:
                if self.stream is not None:
                    found = self.stream.heard()
                    if found is None:
                        return None  # not known yet: asked again next time
                    self._heard = Heard(*found)
                else:
                    if not self.path.exists():
                        return None
                    self._look()
                    s = self._state
                    self._heard = Heard(frozenset(s.mns), frozenset(s.meters))
                self._checked_at = time.monotonic()
            return self._heard

    def _look(self) -> None:
        s = self._state
        with reading(self.path) as conn:
            head = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
            if head <= s.seq:
                return
            if s.seq == 0 and has_topic_index(conn):
                new = distinct_topics(conn)
            else:
                new = {
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT topic FROM messages WHERE seq > ? AND seq <= ?",
                        (s.seq, head),
                    )
                }
            s.topics |= new
            gateways: list[str] = []
            for topic in s.topics:
                route = self._router.route(topic)
                if route is None:
                    continue
                gateway = self._registry.gateway(route.sender)
                if gateway is None:
                    (s.mns if route.kind == "hj212" else s.meters).add(route.sender)
                elif not (gateway.mns <= s.mns and gateway.meters <= s.meters):
                    gateways.append(topic)
            for topic in gateways:
                self._read_gateway(conn, topic, head)
            s.seq = head

    def _read_gateway(self, conn: sqlite3.Connection, topic: str, head: int) -> None:
        """The sources a gateway's messages up to ``head`` name, until all of its are found."""
        s = self._state
        route = self._router.route(topic)
        assert route is not None
        gateway = self._registry.gateway(route.sender)
        assert gateway is not None
        wanted = {f"MN={mn};".encode(): ("mn", mn) for mn in gateway.mns - s.mns}
        wanted |= {f'"{m}"'.encode(): ("meter", m) for m in gateway.meters - s.meters}
        rows = conn.execute(
            "SELECT payload FROM messages WHERE topic = ? AND seq > ? AND seq <= ?",
            (topic, s.seq, head),
        )
        for (payload,) in rows:
            for needle in [n for n in wanted if n in payload]:
                kind, name = wanted.pop(needle)
                (s.mns if kind == "mn" else s.meters).add(name)
            if not wanted:
                break
