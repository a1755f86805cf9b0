"""The positive list (正面清单, alerts.positive_list): its members, the changes waiting for a
supervisor's decision and those decided; a supervisor proposes and decides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from alerts.positive_list import ListChange, changes, decide, members, pending, propose
from alerts.workflow import WorkflowError
from ingest.china_time import CHINA_TZ
from nonsite.auth import User
from nonsite.web.models import ApiModel
from nonsite.web.refusals import refusal_responses, refused
from nonsite.web.security import ERRORS, Context, grant, not_found

router = APIRouter(prefix="/api/v1", tags=["positive list"], responses=ERRORS)
REFUSED = refusal_responses(403, 404, 409, 422)


class ChangeOut(ApiModel):
    id: int
    enterprise_id: str
    enterprise_name: str
    change: Literal["enter", "exit"]
    change_name: str
    reason: str
    criteria: dict[str, Any] = Field(description="what the daily check found")
    proposed_by: str
    proposed_at: datetime
    state: Literal["proposed", "approved", "rejected"]
    state_name: str
    decided_by: str | None
    decided_at: datetime | None
    note: str


class MemberOut(ApiModel):
    enterprise_id: str
    enterprise_name: str
    since: datetime | None = Field(description="the approval that put it on; None: configured")


class PositiveListOut(ApiModel):
    members: list[MemberOut]
    pending: list[ChangeOut] = Field(description="waiting for a supervisor, oldest first")
    changes: list[ChangeOut] = Field(description="the latest changes, newest first")


class ProposalIn(ApiModel):
    enterprise_id: str = Field(min_length=1, max_length=64)
    change: Literal["enter", "exit"]
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(ApiModel):
    approve: bool
    note: str = Field(default="", max_length=2000, description="a rejection's reason")


def _out(c: ListChange, names: dict[str, str]) -> ChangeOut:
    return ChangeOut.model_validate(
        c.to_json() | {"enterprise_name": names.get(c.enterprise_id, "")}
    )


def _names(ctx: Context) -> dict[str, str]:
    return {e.id: e.name for e in ctx.config.enterprises}


@router.get(
    "/positive-list",
    response_model=PositiveListOut,
    summary="The positive list (正面清单): members, proposals waiting, the latest changes",
)
def positive_list(ctx: Context, user: Annotated[User, Depends(grant("risk"))]) -> PositiveListOut:
    names = _names(ctx)
    configured = {e.id: e.positive_list for e in ctx.config.enterprises}
    with ctx.db.connect() as conn:
        member = members(conn, configured)
        recent = changes(conn, 200)
        waiting = pending(conn)
    approved = {}
    for c in reversed(recent):  # oldest first: the last entry approved is when it came on
        if c.state == "approved" and c.change == "enter":
            approved[c.enterprise_id] = c.decided_at
    return PositiveListOut(
        members=[
            MemberOut(enterprise_id=e, enterprise_name=names[e], since=approved.get(e))
            for e in names
            if member.get(e)
        ],
        pending=[_out(c, names) for c in waiting],
        changes=[_out(c, names) for c in recent[:100]],
    )


@router.post(
    "/positive-list/proposals",
    response_model=ChangeOut,
    status_code=201,
    responses=REFUSED,
    summary="Propose an entry or an exit (a supervisor); another supervisor may decide it",
)
def propose_change(
    body: ProposalIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("positive_list.decide"))],
) -> ChangeOut:
    names = _names(ctx)
    if body.enterprise_id not in names:
        raise not_found(f"enterprise {body.enterprise_id}")
    configured = next(e.positive_list for e in ctx.config.enterprises if e.id == body.enterprise_id)
    now = datetime.now(CHINA_TZ)
    try:
        with ctx.db.begin() as conn:
            member = members(conn, {body.enterprise_id: configured})[body.enterprise_id]
            made = propose(
                conn, body.enterprise_id, body.change, body.reason, user.actor(), now,
                member=member,
            )  # fmt: skip
    except WorkflowError as err:
        raise refused(err) from None
    if made is None:
        raise refused(
            WorkflowError(
                "nothing_to_change",
                "nothing to change: already on the list, not on it, or the same change waits",
            )
        )
    return _out(made, names)


@router.post(
    "/positive-list/proposals/{change_id}/decide",
    response_model=ChangeOut,
    responses=REFUSED,
    summary="Approve (it takes effect now) or reject (with the reason) a proposed change",
)
def decide_change(
    change_id: Annotated[int, Path(ge=1, le=2**62)],
    body: DecisionIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("positive_list.decide"))],
) -> ChangeOut:
    try:
        with ctx.db.begin() as conn:
            done = decide(
                conn, change_id, user.actor(), body.approve, body.note, datetime.now(CHINA_TZ)
            )
    except WorkflowError as err:
        raise refused(err) from None
    return _out(done, _names(ctx))


__all__ = ["router"]
