"""Commands to data loggers: 补遗 (recall of missing data), 校时 (the clock), an operator's
command, and the audit of every one with its outcome (ingest.commands). The service sends
what is requested here within a second, on the logger's reply topic or TCP connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import Field
from sqlalchemy import Connection

from ingest.commands import manual
from ingest.commands.packets import without_pw
from ingest.commands.store import by_id, listing
from nonsite.auth import User
from nonsite.web.models import ApiModel, Instant
from nonsite.web.refusals import refusal_responses
from nonsite.web.security import ERRORS, Context, grant

router = APIRouter(prefix="/api/v1", tags=["loggers"], responses=ERRORS)

Mn = Annotated[str, Path(min_length=1, max_length=64, description="the logger's MN")]
REFUSED = refusal_responses(404, 422, 429)


class CommandOut(ApiModel):
    id: int
    mn: str
    kind: Literal["recall", "time_get", "time_set", "command"]
    cn: str
    params: dict[str, Any] = Field(description="recall: BeginTime/EndTime; command: cp")
    requested_by: str = Field(description="a user, 'cli', or 'auto:…' for the platform itself")
    requested_at: datetime
    reason: str
    case_id: int | None
    status: str = Field(
        description="requested, sent, accepted, done, no_data, failed, refused, no_answer, "
        "rate_limited, unsendable"
    )
    qn: str | None
    topic: str | None = Field(description="where it was published (the logger's reply topic)")
    packet: str | None = Field(
        description="the packet as sent, its PW masked (the database keeps it exactly)"
    )
    sent_at: datetime | None
    answered_at: datetime | None
    qn_rtn: int | None = Field(description="9011 QnRtn (1: ready to execute)")
    exe_rtn: int | None = Field(description="9012 ExeRtn (1: done, 100: no data)")
    filled: int = Field(description="recall: data packets of the interval received since sent")
    logger_time: datetime | None = Field(description="time_get: the clock the logger reported")
    drift_s: float | None = Field(description="time_get: its clock minus the receipt time")
    detail: str


class RecallIn(ApiModel):
    cn: Literal["2051", "2061", "2031"] = Field(description="minute, hour or day data")
    begin: Instant
    end: Instant
    reason: str = Field(default="", max_length=500)


class CommandIn(ApiModel):
    cn: str = Field(min_length=4, max_length=4, pattern=r"^\d{4}$")
    cp: str = Field(default="", max_length=950, description="the CP area without its &&")
    reason: str = Field(min_length=1, max_length=500)


def _out(row: Any) -> CommandOut:
    values = dict(row._mapping)
    values["params"] = json.loads(values["params"])
    values["packet"] = without_pw(values["packet"])
    return CommandOut(**values)


@router.get(
    "/commands",
    response_model=list[CommandOut],
    summary="Commands to loggers and their outcomes, newest first (the audit)",
)
def commands(
    ctx: Context,
    _user: Annotated[User, Depends(grant("commands"))],
    mn: Annotated[str | None, Query(max_length=64)] = None,
    case_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CommandOut]:
    with ctx.db.connect() as conn:
        return [_out(r) for r in listing(conn, mn=mn, case_id=case_id, limit=limit)]


@router.post(
    "/loggers/{mn}/recall",
    response_model=CommandOut,
    status_code=202,
    summary="补遗: ask a logger for its data of an interval (2051/2061/2031)",
    responses=REFUSED,
)
def recall(
    mn: Mn, body: RecallIn, ctx: Context, user: Annotated[User, Depends(grant("commands.recall"))]
) -> CommandOut:
    return _recorded(
        ctx,
        lambda conn: manual.recall(
            conn,
            ctx.registry,
            mn=mn,
            cn=body.cn,
            begin=body.begin,
            end=body.end,
            by=_who(user),
            reason=body.reason,
            now=datetime.now(UTC),
            per_hour=ctx.config.commands.recall_per_hour,
        ),
    )


@router.post(
    "/loggers/{mn}/time-check",
    response_model=CommandOut,
    status_code=202,
    summary="校时: read a logger's clock (1011); beyond the tolerance it is set (1012)",
    responses=REFUSED,
)
def time_check(
    mn: Mn, ctx: Context, user: Annotated[User, Depends(grant("commands.recall"))]
) -> CommandOut:
    return _recorded(
        ctx,
        lambda conn: manual.time_check(
            conn, ctx.registry, mn=mn, by=_who(user), now=datetime.now(UTC)
        ),
    )


@router.post(
    "/loggers/{mn}/commands",
    response_model=CommandOut,
    status_code=202,
    summary="Send a logger any command (CN and CP text), with the reason for the audit",
    responses=REFUSED,
)
def send(
    mn: Mn, body: CommandIn, ctx: Context, user: Annotated[User, Depends(grant("commands.send"))]
) -> CommandOut:
    return _recorded(
        ctx,
        lambda conn: manual.send(
            conn,
            ctx.registry,
            mn=mn,
            cn=body.cn,
            cp=body.cp,
            by=_who(user),
            reason=body.reason,
            now=datetime.now(UTC),
        ),
    )


def _who(user: User) -> str:
    return user.display_name or user.username


def _recorded(ctx: Context, record: Callable[[Connection], int]) -> CommandOut:
    """Record a command in its own transaction; a refusal answers with its code and reason."""
    try:
        with ctx.db.begin() as conn:
            command_id = record(conn)
    except manual.CommandRefusedError as err:
        status = {"unknown_mn": 404, "rate_limited": 429}.get(err.code, 422)
        raise HTTPException(status, {"code": err.code, "message": str(err)}) from None
    with ctx.db.connect() as conn:
        row = by_id(conn, command_id)
    assert row is not None  # committed just before
    return _out(row)
