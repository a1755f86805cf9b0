"""What follows a case's decision: rectification to 销号 (alerts.rectification) and the active
回头看 (alerts.rechecks). Each step is a person's action on the case: taken once per request
key, through a failover, written on the case's trail.

Steps of a rectification: ``order`` (责令整改: a supervisor, or the brigade's officer on site),
``report`` (整改完成报告: the enterprise of its own case, or the brigade for it), ``verify``
(整改核查: on site with its outcome, or off site decided from the data), ``close`` (销号: a
supervisor). A re-check on site is decided by the brigade (or the centre, a supervisor); one
off site is decided by the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import Field
from sqlalchemy import Connection, select

from alerts.rechecks import Recheck, case_rechecks, recheck_of
from alerts.rectification import Rectification, case_rectifications, current
from alerts.schema import rechecks
from alerts.workflow import WorkflowError
from nonsite.auth import User
from nonsite.web.models import ApiModel, ErrorOut, Instant
from nonsite.web.refusals import refusal_responses, refused
from nonsite.web.request_keys import RequestKey, keyed_step
from nonsite.web.security import (
    ERRORS,
    Context,
    CurrentUser,
    grant,
    not_found,
    require_visible_case,
)

router = APIRouter(prefix="/api/v1", tags=["follow-up"], responses=ERRORS)

CaseId = Annotated[int, Path(ge=1, le=2**62)]
Step = Literal["order", "report", "verify", "close"]
REFUSED = refusal_responses(403, 404, 409, 422)


class RectificationOut(ApiModel):
    id: int
    case_id: int
    round: int = Field(description="1, then one more after each failed verification")
    state: Literal["ordered", "reported", "verified", "failed", "closed"]
    state_name: str
    requirement: str
    ordered_by: str
    ordered_at: datetime
    due_at: datetime
    overdue_at: datetime | None
    reported_at: datetime | None
    report: str
    verified_at: datetime | None
    verified_by: str | None
    method: str | None
    outcome: str | None
    verify_note: str
    closed_at: datetime | None
    closed_by: str | None


class RecheckOut(ApiModel):
    id: int
    case_id: int
    reason: str
    reason_name: str
    method: Literal["off_site", "on_site"]
    method_name: str
    brigade: str | None
    scheduled_at: datetime
    due_at: datetime
    state: Literal["scheduled", "passed", "failed"]
    state_name: str
    decided_at: datetime | None
    decided_by: str | None
    note: str


class FollowUpOut(ApiModel):
    rectifications: list[RectificationOut]
    rechecks: list[RecheckOut]


class StepIn(ApiModel):
    note: str = Field(default="", max_length=4000)
    requirement: str = Field(default="", max_length=4000, description="order: what to put right")
    working_days: int | None = Field(default=None, ge=1, le=365, description="order: deadline")
    method: Literal["on_site", "off_site"] | None = Field(default=None, description="verify")
    outcome: Literal["passed", "failed"] | None = Field(
        default=None, description="verify on site (off site the data decide)"
    )
    days: int | None = Field(
        default=None, ge=1, le=90, description="verify off site: days without recurrence"
    )


class PlanIn(ApiModel):
    due_at: Instant | None = Field(default=None, description="the date it is made by")
    method: Literal["on_site", "off_site"] | None = None
    brigade: str | None = Field(default=None, max_length=64, description="a configured brigade")


class DecideIn(ApiModel):
    outcome: Literal["passed", "failed"]
    note: str = Field(min_length=1, max_length=4000)


def rectification_out(r: Rectification) -> RectificationOut:
    return RectificationOut.model_validate(r.to_json())


def recheck_out(r: Recheck) -> RecheckOut:
    return RecheckOut.model_validate(r.to_json())


def recheck_case(conn: Connection, recheck_id: int) -> int:
    row = conn.execute(select(rechecks.c.case_id).where(rechecks.c.id == recheck_id)).first()
    if row is None:
        raise not_found(f"re-check {recheck_id}")
    return int(row.case_id)


def rechecked(recheck_id: int) -> Callable[[Connection, int], Recheck]:
    """A re-check as a repeat of the request that changed it finds it."""
    return lambda conn, case_id: next(r for r in case_rechecks(conn, case_id) if r.id == recheck_id)


@router.get(
    "/cases/{case_id}/follow-up",
    response_model=FollowUpOut,
    responses={404: {"model": ErrorOut}},
    summary="A case's rectification rounds (整改) and its re-checks (回头看)",
)
def follow_up(case_id: CaseId, ctx: Context, user: CurrentUser) -> FollowUpOut:
    with ctx.db.connect() as conn:
        require_visible_case(conn, user, case_id)
        return FollowUpOut(
            rectifications=[rectification_out(r) for r in case_rectifications(conn, case_id)],
            rechecks=[recheck_out(r) for r in case_rechecks(conn, case_id)],
        )


@router.post(
    "/cases/{case_id}/rectification/{step}",
    response_model=RectificationOut,
    responses=REFUSED,
    summary="A rectification step: order (责令整改), report (整改完成报告), verify (整改核查), "
    "close (销号)",
)
def rectification_step(
    case_id: CaseId,
    step: Step,
    body: StepIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("rectification"))],
    idempotency_key: RequestKey = None,
) -> RectificationOut:
    def visible_case(conn: Connection) -> int:
        require_visible_case(conn, user, case_id)
        return case_id

    def rectify(conn: Connection, _case_id: int) -> Rectification:
        return ctx.book.rectify(conn, case_id, step, user.actor(), **body.model_dump())

    def rectified(conn: Connection, _case_id: int) -> Rectification:
        done = current(conn, case_id)
        assert done is not None  # the step recorded under this key made it
        return done

    try:
        taken = keyed_step(
            ctx, idempotency_key, user, f"rectify_{step}",
            case_of=visible_case, take=rectify, taken=rectified,
        )  # fmt: skip
    except WorkflowError as err:
        raise refused(err) from None
    return rectification_out(taken)


@router.get(
    "/rechecks",
    response_model=list[RecheckOut],
    summary="回头看 tasks, the soonest due first: a brigade's officer sees its brigade's",
)
def list_rechecks(
    ctx: Context,
    user: Annotated[User, Depends(grant("work_orders"))],
    state: Annotated[Literal["scheduled", "passed", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RecheckOut]:
    q = select(rechecks).order_by(rechecks.c.due_at, rechecks.c.id).limit(limit)
    if state is not None:
        q = q.where(rechecks.c.state == state)
    if user.role == "enforcer":
        q = q.where(rechecks.c.brigade == (user.brigade or ""))
    with ctx.db.connect() as conn:
        return [recheck_out(recheck_of(r._mapping)) for r in conn.execute(q)]


@router.patch(
    "/rechecks/{recheck_id}",
    response_model=RecheckOut,
    responses=REFUSED,
    summary="Plan a 回头看: its date, how (on site, or from the data) and which brigade makes it",
)
def plan_recheck(
    recheck_id: Annotated[int, Path(ge=1, le=2**62)],
    body: PlanIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("rechecks.plan"))],
    idempotency_key: RequestKey = None,
) -> RecheckOut:
    if body.brigade is not None and body.brigade not in {b.id for b in ctx.config.brigades}:
        raise HTTPException(
            422, {"code": "unknown_brigade", "message": f"no brigade {body.brigade!r}"}
        )

    def visible_case(conn: Connection) -> int:
        case_id = recheck_case(conn, recheck_id)
        require_visible_case(conn, user, case_id)
        return case_id

    def plan(conn: Connection, _case_id: int) -> Recheck:
        return ctx.book.reschedule_recheck(
            conn, recheck_id, user.actor(), due_at=body.due_at, method=body.method,
            brigade=body.brigade,
        )  # fmt: skip

    try:
        planned = keyed_step(
            ctx, idempotency_key, user, "recheck_plan",
            case_of=visible_case, take=plan, taken=rechecked(recheck_id),
        )  # fmt: skip
    except WorkflowError as err:
        raise refused(err) from None
    return recheck_out(planned)


@router.post(
    "/rechecks/{recheck_id}/decide",
    response_model=RecheckOut,
    responses=REFUSED,
    summary="Decide a 回头看 (on site): passed, or failed, which reopens its case",
)
def decide_recheck(
    recheck_id: Annotated[int, Path(ge=1, le=2**62)],
    body: DecideIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("rectification"))],
    idempotency_key: RequestKey = None,
) -> RecheckOut:
    def visible_case(conn: Connection) -> int:
        case_id = recheck_case(conn, recheck_id)
        require_visible_case(conn, user, case_id)
        return case_id

    def decide(conn: Connection, _case_id: int) -> Recheck:
        return ctx.book.decide_recheck(conn, recheck_id, user.actor(), body.outcome, body.note)

    try:
        decided = keyed_step(
            ctx, idempotency_key, user, "recheck",
            case_of=visible_case, take=decide, taken=rechecked(recheck_id),
        )  # fmt: skip
    except WorkflowError as err:
        raise refused(err) from None
    return recheck_out(decided)


__all__ = ["router"]
