"""Send requested commands to their loggers, one at a time per logger, and expire the ones
nobody answered. Runs in the service's main process, which holds the broker connection.

The packet is built when it is sent, not when it is requested: a clock setting carries the
time of sending, and a command queued while the broker was away is not stale on arrival.
The row is marked sent in a committed transaction before the packet is published, so a
crash between the two leaves a command that expires as no_answer, never one sent twice.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Row

from ingest.commands.metrics import CommandMetrics
from ingest.commands.packets import ST_OF_KIND, request_packet
from ingest.commands.store import due, expire, mark, mark_sent
from ingest.hj212.model import CpValue
from ingest.registry import Registry

log = logging.getLogger(__name__)


class CommandSender:
    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        publish: Callable[[str, bytes], None],
        *,
        reply_topic: str,
        answer_timeout_s: float = 300.0,
        metrics: CommandMetrics | None = None,
        mns: Collection[str] | None = None,
    ) -> None:
        """``mns``: send (and expire) only these loggers' commands (a cluster worker sends
        those of the partitions it owns); None: all."""
        self.engine = engine
        self.mns = mns
        self.registry = registry
        self._publish = publish
        self.reply_topic = reply_topic
        self.answer_timeout_s = answer_timeout_s
        self.sent = 0
        self.metrics = metrics

    def round(self, now: datetime) -> int:
        """Expire what timed out, then send what is due; returns how many were sent."""
        outgoing: list[tuple[str, bytes]] = []
        kinds: Counter[str] = Counter()
        with self.engine.begin() as conn:
            expired = expire(conn, now, self.answer_timeout_s, self.mns)
            if expired:
                log.info("%d command(s) to loggers got no answer in time", expired)
                if self.metrics:
                    self.metrics.unanswered.inc(expired)
            for row in due(conn, mns=self.mns):
                problem = self._unsendable(row)
                if problem is not None:
                    mark(conn, row.id, "unsendable", problem)
                    continue
                topic, qn, packet = self._build(row, now)
                mark_sent(conn, row.id, qn=qn, topic=topic, packet=packet, now=now)
                outgoing.append((topic, packet))
                if self.metrics:
                    self.metrics.sent.labels(row.kind).inc()
                log.debug(
                    "command %d (%s, CN %s) sent to logger %s, QN %s",
                    row.id,
                    row.kind,
                    row.cn,
                    row.mn,
                    qn,
                )
                kinds[row.kind] += 1
        for topic, packet in outgoing:
            self._publish(topic, packet)
        if kinds:  # one line a round: the audit of each is in the database
            log.info(
                "sent %s to loggers (nonsite logger commands lists them)",
                ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())),
            )
        self.sent += len(outgoing)
        return len(outgoing)

    def _unsendable(self, row: Row[Any]) -> str | None:
        if not self.reply_topic:
            return "[mqtt] reply_topic 为空：没有发往数采仪的主题"
        if self.registry.outlet(row.mn) is None and self.registry.meter_logger(row.mn) is None:
            return f"MN {row.mn} 不是已配置的数采仪"
        return None

    def _build(self, row: Row[Any], now: datetime) -> tuple[str, str, bytes]:
        outlet = self.registry.outlet(row.mn)
        st = ST_OF_KIND.get(outlet.kind, "31") if outlet is not None else "31"
        pw = (outlet.pw if outlet is not None else None) or ""
        params = json.loads(row.params)
        cp: dict[str, CpValue] | str
        if row.kind == "recall":
            cp = {
                "BeginTime": datetime.fromisoformat(params["BeginTime"]),
                "EndTime": datetime.fromisoformat(params["EndTime"]),
            }
        elif row.kind == "time_set":
            cp = {"SystemTime": now}
        elif row.kind == "command":
            cp = str(params.get("cp", ""))
        else:
            cp = {}
        qn, packet = request_packet(st=st, cn=row.cn, pw=pw, mn=row.mn, cp=cp, now=now)
        topic = self.reply_topic.replace("{mn}", self.registry.carrier_of(row.mn))
        return topic, qn, packet
