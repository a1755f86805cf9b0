"""A case's whole record (执法全过程记录) for export: the case, every audit event (state
changes, human actions, notifications), its work orders and its notifications, as JSON or as
CSV of the audit events."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from alerts.case import aware
from alerts.cases import CaseBook
from alerts.schema import outbox, work_orders

CSV_FIELDS = ("id", "at", "actor", "role", "action", "from_state", "to_state", "note", "refs")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO 8601 with their offset (SQLite returns stored UTC without one)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        when = aware(value) if isinstance(value, datetime) else None
        out[key] = when.isoformat() if when is not None else value
    return out


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
    return {
        "case": case.to_json(),
        "events": book.events(conn, case_id),
        "work_orders": [_plain(dict(r._mapping)) for r in orders],
        "notifications": [_plain(dict(r._mapping)) for r in sent],
    }


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, indent=2, default=str)


def events_csv(record: dict[str, Any]) -> str:
    """The audit events as CSV (UTF-8 with a BOM, so that spreadsheet software opens it)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for event in record["events"]:
        row = dict(event)
        row["refs"] = json.dumps(row["refs"], ensure_ascii=False, sort_keys=True)
        writer.writerow({k: row.get(k) for k in CSV_FIELDS})
    return out.getvalue()
