"""Live updates for the dashboard: server-sent events, one per case change the caller may see.

The audit trail is the feed: every change to a case is an append-only ``case_events`` row with
an increasing id, so the stream polls for ids above the last one sent (once a second) and a
browser that reconnects resumes from ``Last-Event-ID`` without missing or repeating a change.
Polling the database rather than signalling in memory keeps this right when the changes are
made by another process (the pipeline) or another service instance.

With several writers (a cluster's workers, people's actions beside them) ids become visible
out of order: a transaction that took an id may commit after one that took a later id. So the
stream keeps looking below the highest id it sent, from the lowest id it has not seen yet, for
:data:`GAP_WAIT_S` (longer than any writer's transaction; an id whose transaction rolled back
never comes and is given up then), and sends each id once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, or_, select

from alerts.schema import case_events, cases
from nonsite.auth import User
from nonsite.web.context import WebContext
from nonsite.web.security import ERRORS, Context, CurrentUser, visible_cases

router = APIRouter(prefix="/api/v1", tags=["live"], responses=ERRORS)

LIMIT = 200
POLL_S = 1.0
KEEPALIVE_S = 15.0
GAP_WAIT_S = 30.0  # how long an id below the highest sent may still be committed
GAP_MAX = 10_000  # ids below the highest sent watched at most (a burst of rollbacks)


class Cursor:
    """Where the stream is: the highest id seen, and the ids below it not seen yet (a writer's
    transaction still open), waited for up to :data:`GAP_WAIT_S`."""

    def __init__(self, after: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.top = after
        self.missing: dict[int, float] = {}  # id → when it was first found missing
        self._clock = clock

    def seen(self, ids: list[int]) -> None:
        now = self._clock()
        for i in sorted(ids):
            if i > self.top:
                # Ids skipped on the way up: taken by transactions not committed yet.
                for gap in range(max(self.top + 1, i - GAP_MAX), i):
                    self.missing.setdefault(gap, now)
                self.top = i
            self.missing.pop(i, None)
        self.missing = {i: t for i, t in self.missing.items() if now - t < GAP_WAIT_S}
        if len(self.missing) > GAP_MAX:  # a burst of rollbacks: keep the newest
            self.missing = dict(sorted(self.missing.items())[-GAP_MAX:])


def _newer(ctx: WebContext, user: User, cursor: Cursor) -> tuple[list[int], list[dict[str, Any]]]:
    """The ids committed since the cursor (above its top, or among its missing), and the
    events of those the user may see."""
    new = case_events.c.id > cursor.top
    if cursor.missing:
        new = or_(new, case_events.c.id.in_(sorted(cursor.missing)))
    with ctx.db.connect() as conn:
        ids = list(
            conn.execute(
                select(case_events.c.id).where(new).order_by(case_events.c.id).limit(LIMIT)
            ).scalars()
        )
        if not ids:
            return [], []
        rows = conn.execute(
            select(
                case_events.c.id,
                case_events.c.case_id,
                case_events.c.action,
                case_events.c.to_state,
                case_events.c.at,
                cases.c.enterprise_id,
                cases.c.tier,
                cases.c.state,
            )
            .join(cases, cases.c.id == case_events.c.case_id)
            .where(case_events.c.id.in_(ids), visible_cases(user))
            .order_by(case_events.c.id)
        ).all()
    return ids, [
        {
            "id": r.id,
            "case_id": r.case_id,
            "action": r.action,
            "to_state": r.to_state,
            "at": r.at.isoformat(),
            "enterprise_id": r.enterprise_id,
            "tier": r.tier,
            "state": r.state,
        }
        for r in rows
    ]


def _head(ctx: WebContext) -> int:
    with ctx.db.connect() as conn:
        return int(conn.execute(select(func.max(case_events.c.id))).scalar() or 0)


@router.get(
    "/events",
    summary="Server-sent events: each case change the caller may see",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(request: Request, ctx: Context, user: CurrentUser) -> StreamingResponse:
    resume = request.headers.get("last-event-id", "")
    if resume.isascii() and resume.isdigit() and len(resume) <= 18:  # an id (a 64-bit key)
        after = int(resume)
    else:  # none, or not one of ours: from now on
        after = await asyncio.to_thread(_head, ctx)

    cursor = Cursor(after)

    async def stream() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            ids, items = await asyncio.to_thread(_newer, ctx, user, cursor)
            cursor.seen(ids)
            for item in items:
                yield (
                    f"id: {item['id']}\nevent: case\n"
                    f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
                )
            if len(ids) == LIMIT:
                idle = 0.0
                continue
            await asyncio.sleep(POLL_S)
            idle += POLL_S
            if idle >= KEEPALIVE_S:  # a comment keeps proxies from closing a quiet stream
                idle = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
