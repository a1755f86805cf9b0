"""A case's whole record (执法全过程记录) for export: the case, every audit event (state
changes, human actions, notifications), its work orders and its notifications, as JSON or as
CSV of the audit events.

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

from alerts.case import aware
from alerts.cases import CaseBook
from alerts.schema import outbox, work_orders
from alerts.workflow import ACTION_NAMES, STATE_NAMES
from ingest.hj212.timefmt import CHINA_TZ

# Every action the audit trail holds, by its Chinese name: the workflow's, and the system's
# own entries (a case sensed, its condition cleared, a notification sent).
EVENT_NAMES: Final = {
    **ACTION_NAMES,
    "sense": "感知",
    "condition_cleared": "条件消除",
    "notify": "通知",
}
ROLE_NAMES: Final = {
    "monitor": "监测中心",
    "supervisor": "监管",
    "enforcer": "执法",
    "enterprise": "企业",
    "admin": "运维",
    "system": "系统",
}
SYSTEM_NAME: Final = "系统"  # the service itself, as people read the trail

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
        when = aware(value)
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


def case_record(conn: Connection, book: CaseBook, case_id: int) -> dict[str, Any]:
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
    return record


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, indent=2, default=str)


def events_csv(record: dict[str, Any]) -> str:
    """The audit events as CSV (UTF-8 with a BOM, so that spreadsheet software opens it)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([header for header, _ in CSV_COLUMNS])
    for event in record["events"]:
        row = named(event) if "action_zh" not in event else dict(event)
        row["refs"] = json.dumps(row["refs"], ensure_ascii=False, sort_keys=True)
        writer.writerow([_cell(row.get(key)) for _, key in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a note people typed must not run as a spreadsheet formula
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
