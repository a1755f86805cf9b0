"""Commands the platform asks for by itself: the recall of an hour the rules found missing
(B7), and a daily look at each logger's clock (§6.7 puts time calibration first).

Rate-limited per logger: at most ``recall_per_hour`` recalls in any hour (one over the
limit is recorded as rate_limited, not sent), and an interval already asked for in the last
``recall_repeat_h`` hours is not asked for again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from ingest.china_time import CHINA_TZ
from ingest.commands.store import (
    ClockPolicy,
    already_requested,
    count_since,
    logger_commands,
    recall_params,
    record_answers,
    request,
)
from ingest.processor import ProcessedBatch
from ingest.readings import LoggerSeen

NO_ANSWER_BACKOFF = 7  # a clock check unanswered: the next in 7 periods (a week by default)


@dataclass(frozen=True, slots=True)
class AutoPolicy:
    recall: bool = True
    recall_per_hour: int = 6
    recall_repeat_h: float = 24.0
    time_check_every_h: float = 24.0  # 0: never


@dataclass(frozen=True, slots=True)
class MissingHour:
    """A B7 finding: the hour ``start`` of the logger ``mn`` is missing or incomplete."""

    mn: str
    start: datetime
    minute_data: bool  # the logger sends minute data but no hour packets: recall 2051
    case_id: int | None
    factor: str | None


class AutoCommands:
    def __init__(self, policy: AutoPolicy, clock: ClockPolicy) -> None:
        self.policy = policy
        self.clock = clock
        self._clock_due: dict[str, datetime] = {}  # MN → when its clock is next looked at

    def record(self, conn: Connection, done: ProcessedBatch) -> None:
        """In a batch's checkpoint transaction: the loggers' answers to commands, and the
        clock checks due for the loggers heard from."""
        now = datetime.now(UTC)
        record_answers(conn, done.answers, done.readings.loggers, self.clock, now)
        self.check_clocks(conn, done.readings.loggers, now)

    def recall_missing(
        self, conn: Connection, hours: Sequence[MissingHour], now: datetime
    ) -> list[int]:
        """Ask each logger for the hours the rules found missing; returns the command ids."""
        if not self.policy.recall:
            return []
        ids = []
        for h in hours:
            cn = "2051" if h.minute_data else "2061"
            begin = h.start
            end = h.start + timedelta(minutes=59, seconds=59)
            repeat_since = now - timedelta(hours=self.policy.recall_repeat_h)
            if already_requested(conn, h.mn, cn, begin, end, repeat_since):
                continue
            over = count_since(conn, h.mn, "recall", now - timedelta(hours=1))
            local = begin.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
            what = "分钟数据" if h.minute_data else "小时数据"
            factor = f"（{h.factor} 不完整）" if h.factor else ""
            ids.append(
                request(
                    conn,
                    mn=h.mn,
                    kind="recall",
                    cn=cn,
                    params=recall_params(begin, end),
                    requested_by="auto:B7",
                    reason=f"B7 小时数据缺失{factor}：补遗 {local} 时段的{what}",
                    now=now,
                    case_id=h.case_id,
                    status="rate_limited" if over >= self.policy.recall_per_hour else "requested",
                    detail=(
                        f"本小时已召回 {over} 次，超过上限 {self.policy.recall_per_hour} 次：未发送"
                        if over >= self.policy.recall_per_hour
                        else ""
                    ),
                )
            )
        return ids

    def check_clocks(
        self, conn: Connection, seen: Iterable[LoggerSeen], now: datetime
    ) -> list[int]:
        """A time check (1011) for each logger heard from whose clock was not looked at for
        ``time_check_every_h`` hours; one that did not answer the last is asked again only
        after ``NO_ANSWER_BACKOFF`` times that (a logger that reads no commands, e.g. on MQTT
        without its reply topic, is not asked every day in vain)."""
        every = self.policy.time_check_every_h
        if every <= 0:
            return []
        ids = []
        for mn in {s.mn for s in seen}:
            due = self._clock_due.get(mn)
            if due is None:
                due = self._clock_due[mn] = self._next_check_in_db(conn, mn, every)
            if due > now:
                continue
            ids.append(
                request(
                    conn,
                    mn=mn,
                    kind="time_get",
                    cn="1011",
                    requested_by="auto:clock",
                    reason=f"每 {every:g} 小时核对一次数采仪时钟",
                    now=now,
                )
            )
            # Until its answer is known, as if it will not come (recomputed from the database
            # once the cache entry is dropped: on restart).
            self._clock_due[mn] = now + timedelta(hours=every)
        return ids

    @staticmethod
    def _next_check_in_db(conn: Connection, mn: str, every_h: float) -> datetime:
        c = logger_commands.c
        query = (
            select(c.requested_at, c.status)
            .where(c.mn == mn, c.kind == "time_get")
            .order_by(c.id.desc())
            .limit(1)
        )
        last = conn.execute(query).first()
        if last is None:
            return datetime.min.replace(tzinfo=UTC)
        backoff = NO_ANSWER_BACKOFF if last.status in ("no_answer", "unsendable") else 1
        asked: datetime = last.requested_at.astimezone(UTC)
        return asked + timedelta(hours=every_h * backoff)
