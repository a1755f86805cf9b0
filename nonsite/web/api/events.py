"""Live updates for the dashboard: server-sent events, one per case change the caller may see.

The audit trail is the feed: every change to a case is an append-only ``case_events`` row with
an increasing id, so the stream polls for ids above the last one sent (once a second) and a
browser that reconnects resumes from ``Last-Event-ID`` without missing or repeating a change.
Polling the database rather than signalling in memory keeps this right when the changes are
made by another process (the pipeline) or another service instance.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from alerts.schema import case_events, cases
from nonsite.auth import User
from nonsite.web.context import WebContext
from nonsite.web.security import ERRORS, Context, CurrentUser, visible_cases

router = APIRouter(prefix="/api/v1", tags=["live"], responses=ERRORS)

POLL_S = 1.0
KEEPALIVE_S = 15.0


def _newer(ctx: WebContext, user: User, after: int) -> list[dict[str, Any]]:
    query = (
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
        .where(case_events.c.id > after, visible_cases(user))
        .order_by(case_events.c.id)
        .limit(200)
    )
    with ctx.db.connect() as conn:
        rows = conn.execute(query).all()
    return [
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

    async def stream() -> AsyncIterator[str]:
        nonlocal after
        yield "retry: 2000\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            items = await asyncio.to_thread(_newer, ctx, user, after)
            for item in items:
                after = item["id"]
                yield f"id: {after}\nevent: case\ndata: {json.dumps(item, ensure_ascii=False)}\n\n"
            if items:
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
