"""A case's whole record (执法全过程记录) for export: the case, every audit event (state
changes, human actions, notifications), its work orders and its notifications, as JSON or as
CSV of the audit events; and the commands to the data logger made for the case (a 补遗 that
rule B7 asked for, or one a person asked for), each with its outcome.

Both are in China time: every instant as ISO 8601 with +08:00 (the store keeps UTC; a record
handed to another office or a court is read in China time). The CSV is for people: Chinese
headers, actions, roles and states by their Chinese names, the system as 系统; the stable codes
follow in their own columns for machines. The JSON keeps the codes and adds the names."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select

from alerts.cases import CaseBook
from alerts.schema import outbox, work_orders
from alerts.workflow import EVENT_NAMES, STATE_NAMES
from ingest.china_time import CHINA_TZ, stored_utc_or_none
from ingest.commands.packets import without_pw
from ingest.commands.store import listing as command_listing

ROLE_NAMES: Final = {
    "monitor": "监测中心",
    "supervisor": "监管",
    "enforcer": "执法",
    "enterprise": "企业",
    "admin": "运维",
    "township": "镇街",
    "intake": "线索报送系统",
    "legal": "法制审核",
    "system": "系统",
}
SYSTEM_NAME: Final = "系统"  # the service itself, as people read the trail
# Commands to loggers by their Chinese names: the words of ``nonsite logger commands`` and the
# dashboard (nonsite/cli/logger.py; tests/nonsite/web/test_commands_page.py keeps them equal).
COMMAND_KIND_NAMES: Final = {
    "recall": "补遗",
    "time_get": "校时(读)",
    "time_set": "校时(设)",
    "command": "命令",
}
COMMAND_STATUS_NAMES: Final = {
    "requested": "待发送",
    "sent": "已发送",
    "accepted": "已受理",
    "done": "执行成功",
    "no_data": "无数据",
    "failed": "执行失败",
    "refused": "被拒绝",
    "no_answer": "无应答",
    "rate_limited": "超出频次未发",
    "unsendable": "无法发送",
}
RECALL_DATA_NAMES: Final = {"2051": "分钟数据", "2061": "小时数据", "2031": "日数据"}
PLATFORM_NAME: Final = "平台自动"  # a command the platform asked for itself (auto:B7, ...)

# (CSV header, event key, how the value is shown): the people's columns, then the codes.
CSV_COLUMNS: Final = (
    ("序号", "id"),
    ("时间", "at"),
    ("操作人", "actor_zh"),
    ("角色", "role_zh"),
    ("操作", "action_zh"),
    ("原状态", "from_state_zh"),
    ("新状态", "to_state_zh"),
    ("说明", "note"),
    ("关联", "refs"),
    ("action", "action"),
    ("role", "role"),
    ("from_state", "from_state"),
    ("to_state", "to_state"),
)
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


def china_time(value: Any) -> Any:
    """``value`` with every instant in it (a datetime, or an ISO 8601 string with an offset)
    as ISO 8601 in China time."""
    if isinstance(value, datetime):
        when = stored_utc_or_none(value)
        assert when is not None
        return when.astimezone(CHINA_TZ).isoformat()
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        return datetime.fromisoformat(value).astimezone(CHINA_TZ).isoformat()
    if isinstance(value, dict):
        return {k: china_time(v) for k, v in value.items()}
    if isinstance(value, list):
        return [china_time(v) for v in value]
    return value


def named(event: dict[str, Any]) -> dict[str, Any]:
    """An audit event with its action, role and states also by their Chinese names."""
    system = event["role"] == "system"
    return {
        **event,
        "actor_zh": SYSTEM_NAME if system else event["actor"],
        "role_zh": ROLE_NAMES.get(event["role"], event["role"]),
        "action_zh": EVENT_NAMES.get(event["action"], event["action"]),
        "from_state_zh": STATE_NAMES.get(event["from_state"] or "", event["from_state"]),
        "to_state_zh": STATE_NAMES.get(event["to_state"] or "", event["to_state"]),
    }


def case_record(
    conn: Connection, book: CaseBook, case_id: int, *, commands: bool = True
) -> dict[str, Any]:
    """The case's record; ``commands``: with the commands to its logger (``commands``, oldest
    first), for those who may read them."""
    case = book.get(conn, case_id)
    orders = conn.execute(
        select(work_orders).where(work_orders.c.case_id == case_id).order_by(work_orders.c.id)
    ).all()
    sent = conn.execute(
        select(
            outbox.c.key,
            outbox.c.channel,
            outbox.c.event,
            outbox.c.state,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.delivered_at,
            outbox.c.last_error,
        )
        .where(outbox.c.case_id == case_id)
        .order_by(outbox.c.id)
    ).all()
    record: dict[str, Any] = china_time(
        {
            "case": case.to_json(),
            "events": [named(e) for e in book.events(conn, case_id)],
            "work_orders": [dict(r._mapping) for r in orders],
            "notifications": [dict(r._mapping) for r in sent],
        }
    )
    if commands:
        rows = command_listing(conn, case_id=case_id, limit=10_000)
        record["commands"] = china_time([command_named(r._mapping) for r in reversed(rows)])
    return record


def command_named(row: Any) -> dict[str, Any]:
    """A command to a logger (a row of ``logger_commands``) with its parameters read and its
    kind, status and requester also by their Chinese names."""
    command = dict(row)
    command["packet"] = without_pw(command.get("packet"))
    if isinstance(command.get("params"), str):
        command["params"] = json.loads(command["params"])
    by = command["requested_by"]
    return {
        **command,
        "kind_zh": COMMAND_KIND_NAMES.get(command["kind"], command["kind"]),
        "status_zh": COMMAND_STATUS_NAMES.get(command["status"], command["status"]),
        "requested_by_zh": PLATFORM_NAME if by.startswith("auto:") else by,
    }


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, indent=2, default=str)


def events_csv(record: dict[str, Any]) -> str:
    """The audit events as CSV (UTF-8 with a BOM, so that spreadsheet software opens it), and
    among them, at the time each was asked for, the commands to the logger (no 序号: they are
    not audit events; ``action`` ``command_<kind>``, the command's id in 关联)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([header for header, _ in CSV_COLUMNS])
    rows = []
    for event in record["events"]:
        row = named(event) if "action_zh" not in event else dict(event)
        row["refs"] = json.dumps(row["refs"], ensure_ascii=False, sort_keys=True)
        rows.append(row)
    rows.extend(command_row(c) for c in record.get("commands", ()))
    rows.sort(key=lambda r: _instant(r["at"]))  # stable: an event before a command at a tie
    for row in rows:
        writer.writerow([_cell(row.get(key)) for _, key in CSV_COLUMNS])
    return out.getvalue()


def command_row(command: dict[str, Any]) -> dict[str, Any]:
    """A command to the logger as a row of the CSV's trail: who asked, what, why, the
    outcome."""
    auto = command["requested_by"].startswith("auto:")
    params = command.get("params") or {}
    what = [command["reason"]]
    if command["kind"] == "recall" and "BeginTime" in params:
        data = RECALL_DATA_NAMES.get(command["cn"], command["cn"])
        what.append(f"{data} {_local(params['BeginTime'])} 至 {_local(params['EndTime'])}")
    what.append(COMMAND_STATUS_NAMES.get(command["status"], command["status"]))
    if command["kind"] == "recall" and command.get("sent_at"):
        what.append(f"收到 {command['filled']} 条")
    if command.get("drift_s") is not None:
        what.append(f"时钟偏差 {command['drift_s']:+.0f} 秒")
    if command.get("detail"):
        what.append(command["detail"])
    refs = {"command_id": command["id"], "mn": command["mn"], "cn": command["cn"]}
    refs |= {"status": command["status"], **params}
    if command["kind"] == "recall":
        refs["filled"] = command["filled"]
    return {
        "id": "",
        "at": command["requested_at"],
        "actor_zh": PLATFORM_NAME if auto else command["requested_by"],
        "role_zh": SYSTEM_NAME if auto else "",
        "action_zh": COMMAND_KIND_NAMES.get(command["kind"], command["kind"]),
        "note": "；".join(w for w in what if w),
        "refs": json.dumps(china_time(refs), ensure_ascii=False, sort_keys=True),
        "action": f"command_{command['kind']}",
        "role": "system" if auto else "",
    }


def _instant(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    aware_when = stored_utc_or_none(when)
    assert aware_when is not None
    return aware_when


def _local(value: str) -> str:
    """An instant as people read it in the CSV: 2026-12-05 08:00:00 (China time)."""
    return _instant(value).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a note people typed must not run as a spreadsheet formula
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
