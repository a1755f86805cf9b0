"""Commands people ask for (the API, the CLI): checked here once for both, then recorded for
the service to send. A refusal says why in Chinese, for the page and the terminal alike."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from ingest.commands.packets import GET_TIME, RECALL_CNS, check_cp_text
from ingest.commands.store import count_since, recall_params, request
from ingest.registry import Registry

MAX_RECALL = timedelta(days=31)


class CommandRefusedError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _known(registry: Registry, mn: str) -> None:
    if registry.logger(mn) is None:
        raise CommandRefusedError("unknown_mn", f"MN {mn} 不是已配置的数采仪")


def recall(
    conn: Connection,
    registry: Registry,
    *,
    mn: str,
    cn: str,
    begin: datetime,
    end: datetime,
    by: str,
    reason: str,
    now: datetime,
    per_hour: int,
) -> int:
    """补遗: ask the logger for its data of [begin, end]; returns the command's id."""
    _known(registry, mn)
    if cn not in RECALL_CNS:
        raise CommandRefusedError("bad_cn", f"补遗只能召回 {'、'.join(RECALL_CNS)}，不是 {cn}")
    if begin.tzinfo is None or end.tzinfo is None:
        raise CommandRefusedError("bad_time", "起止时间须带时区（中国时间 +08:00）")
    if not begin < end:
        raise CommandRefusedError("bad_time", "开始时间须早于结束时间")
    if end - begin > MAX_RECALL:
        raise CommandRefusedError("bad_time", "一次补遗最多 31 天")
    if count_since(conn, mn, "recall", now - timedelta(hours=1)) >= per_hour:
        raise CommandRefusedError(
            "rate_limited", f"该数采仪一小时内已召回 {per_hour} 次，请稍后再试"
        )
    return request(
        conn,
        mn=mn,
        kind="recall",
        cn=cn,
        params=recall_params(begin, end),
        requested_by=by,
        reason=reason or "人工补遗",
        now=now,
    )


def time_check(conn: Connection, registry: Registry, *, mn: str, by: str, now: datetime) -> int:
    """校时: read the logger's clock (1011); one beyond the tolerance is then set (1012)."""
    _known(registry, mn)
    return request(
        conn,
        mn=mn,
        kind="time_get",
        cn=GET_TIME,
        requested_by=by,
        reason="人工核对时钟（偏差超限自动校时）",
        now=now,
    )


def send(
    conn: Connection,
    registry: Registry,
    *,
    mn: str,
    cn: str,
    cp: str,
    by: str,
    reason: str,
    now: datetime,
) -> int:
    """An operator's command: any CN with the CP text given (the packet's head is the
    platform's), e.g. 3020 to read device information."""
    _known(registry, mn)
    if len(cn) != 4 or not cn.isdigit():
        raise CommandRefusedError("bad_cn", f"CN 须为 4 位数字，不是 {cn!r}")
    problem = check_cp_text(cp)
    if problem is not None:
        raise CommandRefusedError("bad_cp", problem)
    if not reason.strip():
        raise CommandRefusedError("no_reason", "请写明下发命令的原因（记入审计）")
    return request(
        conn,
        mn=mn,
        kind="command",
        cn=cn,
        params={"cp": cp},
        requested_by=by,
        reason=reason,
        now=now,
    )
