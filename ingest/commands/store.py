"""The commands' table: every request to a logger, who asked and why, and what came of it.

A row is the audit of one command: requested (by a person, the CLI or a rule) → sent (the
exact packet, on the logger's reply topic) → the logger's answers (9011 QnRtn, 9012 ExeRtn,
the clock it reported) and, for a recall, how many data packets of the interval arrived after
it was sent. Answers are matched by the request's QN (the standard's echo), else to the
logger's latest command of that kind still waiting.

Status: ``requested`` → ``sent`` → ``accepted`` (9011 QnRtn=1) → ``done`` (9012 ExeRtn=1) or
``no_data`` (ExeRtn=100) or ``failed`` (another ExeRtn); ``refused`` (QnRtn≠1); ``no_answer``
(nothing within the answer timeout); ``rate_limited`` (an automatic request over the limit:
recorded, not sent); ``unsendable`` (the MN is not a configured logger any more).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from ingest.readings import LoggerSeen
from ingest.sqltypes import UTCDateTime

metadata = MetaData()

ID = BigInteger().with_variant(Integer(), "sqlite")

logger_commands = Table(
    "logger_commands",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("mn", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # recall, time_get, time_set, command
    Column("cn", String(4), nullable=False),
    Column("params", Text, nullable=False),  # JSON: BeginTime/EndTime, fields of a command
    Column("requested_by", String(128), nullable=False),  # a user, "cli", "auto:B7", ...
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("case_id", ID, nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("qn", String(20), nullable=True, index=True),
    Column("topic", String(256), nullable=True),
    Column("packet", Text, nullable=True),  # exactly what was sent
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("answered_at", UTCDateTime(), nullable=True),
    Column("qn_rtn", Integer, nullable=True),
    Column("exe_rtn", Integer, nullable=True),
    Column("filled", Integer, nullable=False, default=0),  # recall: data packets received
    Column("logger_time", UTCDateTime(), nullable=True),  # time_get: the clock it reported
    Column("drift_s", Float, nullable=True),  # logger_time − receipt, seconds
    Column("detail", Text, nullable=False, default=""),
)

KINDS = ("recall", "time_get", "time_set", "command")
WAITING = ("sent", "accepted")  # sent and not finished
FINAL = ("done", "no_data", "failed", "refused", "no_answer", "rate_limited", "unsendable")


@dataclass(frozen=True, slots=True)
class LoggerAnswer:
    """A logger's answer to a request, or its data while a recall is open (from the ingest
    stage's decoded, attributed frames)."""

    mn: str
    cn: str  # 9011, 9012, 1011 (the clock), or a data CN (2051/2061/2031)
    qn: str | None
    received_at: datetime
    qn_rtn: int | None = None
    exe_rtn: int | None = None
    system_time: datetime | None = None  # 1011: the logger's clock
    data_time: datetime | None = None  # a data upload's DataTime


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    tolerance_s: float = 60.0  # drift beyond this: the clock is set (1012)


def request(
    conn: Connection,
    *,
    mn: str,
    kind: str,
    cn: str,
    params: dict[str, Any] | None = None,
    requested_by: str,
    reason: str,
    now: datetime,
    case_id: int | None = None,
    status: str = "requested",
    detail: str = "",
) -> int:
    """Record a request; the service sends it (``status`` other than requested: recorded
    only, e.g. rate_limited)."""
    result = conn.execute(
        insert(logger_commands).values(
            mn=mn,
            kind=kind,
            cn=cn,
            params=json.dumps(params or {}, ensure_ascii=False, sort_keys=True),
            requested_by=requested_by,
            requested_at=now,
            reason=reason,
            case_id=case_id,
            status=status,
            filled=0,
            detail=detail,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def count_since(conn: Connection, mn: str, kind: str, since: datetime) -> int:
    """Requests of ``kind`` for ``mn`` since ``since`` that went (or will go) out."""
    c = logger_commands.c
    query = select(func.count()).where(
        c.mn == mn, c.kind == kind, c.requested_at >= since, c.status != "rate_limited"
    )
    return int(conn.execute(query).scalar_one())


def already_requested(
    conn: Connection, mn: str, cn: str, begin: datetime, end: datetime, since: datetime
) -> bool:
    """Whether a recall of this interval is waiting or was made since ``since``."""
    c = logger_commands.c
    params = json.dumps(recall_params(begin, end), sort_keys=True)
    query = select(func.count()).where(
        c.mn == mn,
        c.kind == "recall",
        c.cn == cn,
        c.params == params,
        or_(c.status.in_(("requested", *WAITING)), c.requested_at >= since),
    )
    return int(conn.execute(query).scalar_one()) > 0


def _interval(begin: datetime, end: datetime) -> dict[str, str]:
    return {
        "BeginTime": begin.astimezone(UTC).isoformat(),
        "EndTime": end.astimezone(UTC).isoformat(),
    }


def recall_params(begin: datetime, end: datetime) -> dict[str, str]:
    """A recall's params (its interval as UTC ISO text: the one form compared and shown)."""
    return _interval(begin, end)


def due(conn: Connection, limit: int = 200, mns: Collection[str] | None = None) -> list[Row[Any]]:
    """Requested commands whose logger has nothing in flight, oldest first: a logger answers
    one request at a time. ``mns``: only those loggers' (a cluster worker's partitions)."""
    c = logger_commands.c
    busy = select(c.mn).where(c.status.in_(WAITING))
    scope = [] if mns is None else [c.mn.in_(sorted(mns))]
    query = (
        select(logger_commands)
        .where(c.status == "requested", c.mn.not_in(busy), *scope)
        .order_by(c.id)
        .limit(limit)
    )
    rows = conn.execute(query).all()
    seen: set[str] = set()
    out = []
    for row in rows:  # one per logger per round
        if row.mn not in seen:
            seen.add(row.mn)
            out.append(row)
    return out


def mark_sent(
    conn: Connection, command_id: int, *, qn: str, topic: str, packet: bytes, now: datetime
) -> None:
    conn.execute(
        update(logger_commands)
        .where(logger_commands.c.id == command_id)
        .values(
            status="sent",
            qn=qn,
            topic=topic,
            packet=packet.decode("utf-8", "replace").rstrip("\r\n"),
            sent_at=now,
        )
    )


def mark(conn: Connection, command_id: int, status: str, detail: str) -> None:
    conn.execute(
        update(logger_commands)
        .where(logger_commands.c.id == command_id)
        .values(status=status, detail=detail)
    )


def expire(
    conn: Connection, now: datetime, answer_timeout_s: float, mns: Collection[str] | None = None
) -> int:
    """Commands sent longer ago than the timeout and not finished: no_answer (of ``mns``'
    loggers only, when given)."""
    c = logger_commands.c
    cutoff = now - timedelta(seconds=answer_timeout_s)
    scope = [] if mns is None else [c.mn.in_(sorted(mns))]
    result = conn.execute(
        update(logger_commands)
        .where(c.status.in_(WAITING), c.sent_at < cutoff, *scope)
        .values(
            status="no_answer",
            detail=func.coalesce(c.detail, "") + f"{answer_timeout_s:g} 秒内未收到执行结果",
        )
    )
    return int(result.rowcount or 0)


def record_answers(
    conn: Connection,
    answers: Sequence[LoggerAnswer],
    seen: Sequence[LoggerSeen],
    clock: ClockPolicy,
    now: datetime,
) -> list[int]:
    """Apply a batch's answers (and, while a recall is open, its data packets ``seen``) to
    the commands they answer; returns the ids of time_set commands this requested (a clock
    that drifted beyond the tolerance, a logger asking to be set)."""
    c = logger_commands.c
    if seen:
        recalling = set(
            conn.execute(
                select(c.mn).where(c.kind == "recall", c.status.in_(WAITING)).distinct()
            ).scalars()
        )
        if recalling:
            answers = [
                *answers,
                *(
                    LoggerAnswer(s.mn, s.cn, None, s.received_at, data_time=s.data_time)
                    for s in seen
                    if s.mn in recalling and s.data_time is not None
                ),
            ]
    if not answers:
        return []
    requested = [
        request(
            conn,
            mn=a.mn,
            kind="time_set",
            cn="1012",
            requested_by="auto:1013",
            reason="数采仪请求校时 (1013)",
            now=now,
        )
        for a in answers
        if a.cn == "1013" and not _time_set_waiting(conn, a.mn)
    ]
    mns = {a.mn for a in answers}
    open_rows = conn.execute(
        select(logger_commands).where(c.mn.in_(mns), c.status.in_(WAITING)).order_by(c.id)
    ).all()
    if not open_rows:
        return requested
    by_qn = {(r.mn, r.qn): r for r in open_rows}
    latest: dict[tuple[str, str], Row[Any]] = {}
    for r in open_rows:
        latest[(r.mn, r.kind)] = r
    changes: dict[int, dict[str, Any]] = {}

    def state(row: Row[Any]) -> dict[str, Any]:
        return changes.setdefault(row.id, {})

    for a in answers:
        row = by_qn.get((a.mn, a.qn or ""))
        if a.cn == "9011" and row is not None:
            ch = state(row)
            ch.update(qn_rtn=a.qn_rtn, answered_at=a.received_at)
            ch["status"] = "accepted" if a.qn_rtn == 1 else "refused"
        elif a.cn == "9012" and row is not None:
            ch = state(row)
            ch.update(exe_rtn=a.exe_rtn, answered_at=a.received_at)
            ch["status"] = {1: "done", 100: "no_data"}.get(a.exe_rtn or 0, "failed")
        elif a.cn == "1011" and a.system_time is not None:
            row = row or latest.get((a.mn, "time_get"))
            if row is None:
                continue
            # The logger's time has whole seconds: compare it with the receipt's second.
            drift = (a.system_time - a.received_at.replace(microsecond=0)).total_seconds()
            ch = state(row)
            ch.update(logger_time=a.system_time, drift_s=drift, answered_at=a.received_at)
            if abs(drift) > clock.tolerance_s:
                requested.append(
                    request(
                        conn,
                        mn=a.mn,
                        kind="time_set",
                        cn="1012",
                        requested_by="auto:clock",
                        reason=(
                            f"数采仪时钟偏差 {drift:+.0f} 秒，超过允许的 {clock.tolerance_s:g} 秒："
                            "校准时间"
                        ),
                        now=now,
                    )
                )
        elif a.data_time is not None:
            for r in open_rows:
                if r.kind == "recall" and r.mn == a.mn and r.cn == a.cn and _covers(r, a):
                    ch = state(r)
                    ch["filled"] = ch.get("filled", r.filled) + 1
    for command_id, values in changes.items():
        conn.execute(update(logger_commands).where(c.id == command_id).values(**values))
    return requested


def _time_set_waiting(conn: Connection, mn: str) -> bool:
    c = logger_commands.c
    query = select(func.count()).where(
        c.mn == mn, c.kind == "time_set", c.status.in_(("requested", *WAITING))
    )
    return int(conn.execute(query).scalar_one()) > 0


def _covers(row: Row[Any], answer: LoggerAnswer) -> bool:
    params = json.loads(row.params)
    if answer.data_time is None or row.sent_at is None or answer.received_at < row.sent_at:
        return False
    begin = datetime.fromisoformat(params["BeginTime"])
    end = datetime.fromisoformat(params["EndTime"])
    return begin <= answer.data_time <= end


def clock_drifts(conn: Connection, since: datetime, until: datetime) -> dict[str, float]:
    """The drift of each logger's clock as last read in [since, until): MN → seconds."""
    c = logger_commands.c
    query = (
        select(c.mn, c.drift_s)
        .where(
            c.kind == "time_get",
            c.drift_s.is_not(None),
            c.answered_at >= since,
            c.answered_at < until,
        )
        .order_by(c.id)
    )
    return {mn: float(drift) for mn, drift in conn.execute(query)}  # the latest wins


def by_id(conn: Connection, command_id: int) -> Row[Any] | None:
    query = select(logger_commands).where(logger_commands.c.id == command_id)
    return conn.execute(query).first()


def listing(
    conn: Connection,
    *,
    mn: str | None = None,
    case_id: int | None = None,
    mns: Iterable[str] | None = None,
    limit: int = 100,
) -> list[Row[Any]]:
    c = logger_commands.c
    query = select(logger_commands).order_by(c.id.desc()).limit(limit)
    conditions = []
    if mn is not None:
        conditions.append(c.mn == mn)
    if mns is not None:
        conditions.append(c.mn.in_(list(mns)))
    if case_id is not None:
        conditions.append(c.case_id == case_id)
    if conditions:
        query = query.where(and_(*conditions))
    return list(conn.execute(query).all())
