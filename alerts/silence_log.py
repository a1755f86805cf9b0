"""Silences changed after they were added: edited (its end, its reason, a start that has not
come yet) or ended early, each change kept with who made it, when and what it was before.

A silence that has ended stays as it was: what it silenced is history (``suppressed_findings``
names it). Ending one early sets its end to now; one that had not started yet then never
starts. The addition itself is in the silence's own row (created_by, created_at), so the whole
trail is that row followed by ``silence_events``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from alerts.schema import silence_events, silences
from ingest.china_time import stored_utc_or_none


class SilenceError(ValueError):
    """A change the silence's state does not allow, with a stable code (docs/api.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _row(conn: Connection, silence_id: int) -> dict[str, Any]:
    row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
    if row is None:
        raise SilenceError("not_found", f"no silence {silence_id}")
    out = dict(row._mapping)
    for key in ("starts_at", "ends_at", "created_at"):
        out[key] = stored_utc_or_none(out[key])
    return out


def _record(
    conn: Connection,
    silence_id: int,
    actor: str,
    role: str,
    action: str,
    changes: dict[str, list[Any]],
    now: datetime,
) -> None:
    conn.execute(
        insert(silence_events).values(
            silence_id=silence_id,
            at=now,
            actor=actor,
            role=role,
            action=action,
            changes=json.dumps(changes, ensure_ascii=False, default=_iso),
        )
    )


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _open(row: dict[str, Any], now: datetime) -> None:
    if row["ends_at"] <= now:
        raise SilenceError("silence_ended", f"silence {row['id']} has ended; add a new one")


def edit_silence(
    conn: Connection,
    silence_id: int,
    *,
    actor: str,
    role: str,
    now: datetime,
    reason: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> dict[str, Any]:
    """Change a silence that has not ended; returns the silence as it is now."""
    row = _row(conn, silence_id)
    _open(row, now)
    wanted: dict[str, Any] = {}
    if reason is not None:
        if not reason.strip():
            raise SilenceError("bad_silence", "a silence needs a reason")
        wanted["reason"] = reason
    if starts_at is not None and starts_at != row["starts_at"]:
        if row["starts_at"] <= now:
            raise SilenceError("bad_silence", "a silence in force keeps its start")
        if starts_at < now:
            raise SilenceError("bad_silence", "a silence cannot start in the past")
        wanted["starts_at"] = starts_at
    if ends_at is not None:
        if ends_at <= now:
            raise SilenceError("bad_silence", "the new end has passed: end the silence instead")
        wanted["ends_at"] = ends_at
    start = wanted.get("starts_at", row["starts_at"])
    if wanted.get("ends_at", row["ends_at"]) <= start:
        raise SilenceError("bad_silence", "a silence must end after it starts")
    changes = {k: [row[k], v] for k, v in wanted.items() if row[k] != v}
    if changes:
        conn.execute(
            update(silences)
            .where(silences.c.id == silence_id)
            .values({k: after for k, (_, after) in changes.items()})
        )
        _record(conn, silence_id, actor, role, "edit", changes, now)
    return _row(conn, silence_id)


def end_silence(
    conn: Connection, silence_id: int, *, actor: str, role: str, now: datetime
) -> dict[str, Any]:
    """End a silence now (one that has not started yet never will)."""
    row = _row(conn, silence_id)
    _open(row, now)
    values: dict[str, Any] = {"ends_at": now}
    if row["starts_at"] > now:
        values["starts_at"] = now
    conn.execute(update(silences).where(silences.c.id == silence_id).values(values))
    _record(conn, silence_id, actor, role, "end", {k: [row[k], v] for k, v in values.items()}, now)
    return _row(conn, silence_id)


def get_silence(conn: Connection, silence_id: int) -> dict[str, Any]:
    return _row(conn, silence_id)


def silence_trail(conn: Connection, silence_id: int) -> list[dict[str, Any]]:
    """The silence's whole record, oldest first: its addition, then each change."""
    row = _row(conn, silence_id)
    out: list[dict[str, Any]] = [
        {
            "at": row["created_at"],
            "actor": row["created_by"],
            "role": None,
            "action": "create",
            "changes": {},
        }
    ]
    events = conn.execute(
        select(silence_events)
        .where(silence_events.c.silence_id == silence_id)
        .order_by(silence_events.c.id)
    ).all()
    for e in events:
        out.append(
            {
                "at": stored_utc_or_none(e.at),
                "actor": e.actor,
                "role": e.role,
                "action": e.action,
                "changes": json.loads(e.changes),
            }
        )
    return out


def last_changes(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Per silence, who last edited it (``edit``) and who ended it (``end``)."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = conn.execute(
        select(silence_events.c.silence_id, silence_events.c.action, silence_events.c.actor)
        .where(silence_events.c.silence_id.in_(wanted))
        .order_by(silence_events.c.id)
    ).all()
    out: dict[int, dict[str, str]] = {}
    for silence_id, action, actor in rows:
        out.setdefault(silence_id, {})[action] = actor
    return out
