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

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import Field
from sqlalchemy import Connection, select

from alerts.action_requests import done_before, record
from alerts.rechecks import Recheck, case_rechecks, recheck_of
from alerts.rectification import Rectification, case_rectifications, current
from alerts.schema import rechecks
from alerts.workflow import WorkflowError
from nonsite.auth import User
from nonsite.web.api.cases import refused
from nonsite.web.models import ApiModel, ErrorOut, Instant
from nonsite.web.request_keys import RequestKey, keyed_transaction, own_request_key
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
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
    422: {"model": ErrorOut},
}
STATUS = {
    "rectification_open": 409,
    "no_rectification": 409,
    "no_data": 409,
    "requirement_required": 422,
    "bad_deadline": 422,
    "bad_method": 422,
    "bad_date": 422,
    "nothing_changed": 422,
}


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


def _refused(err: WorkflowError) -> HTTPException:
    if err.code in STATUS:
        return HTTPException(STATUS[err.code], {"code": err.code, "message": str(err)})
    return refused(err)


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
    key = idempotency_key or own_request_key()
    action = f"rectify_{step}"

    def work(conn: Connection) -> Rectification:
        require_visible_case(conn, user, case_id)
        if done_before(conn, key, case_id, action, user.actor()):
            done = current(conn, case_id)
            assert done is not None
            return done
        r = ctx.book.rectify(conn, case_id, step, user.actor(), **body.model_dump())
        record(conn, key, case_id, action, user.actor(), ctx.book.clock())
        return r

    try:
        return rectification_out(keyed_transaction(ctx, work))
    except WorkflowError as err:
        raise _refused(err) from None


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
    key = idempotency_key or own_request_key()
    if body.brigade is not None and body.brigade not in {b.id for b in ctx.config.brigades}:
        raise HTTPException(
            422, {"code": "unknown_brigade", "message": f"no brigade {body.brigade!r}"}
        )

    def work(conn: Connection) -> Recheck:
        row = conn.execute(select(rechecks.c.case_id).where(rechecks.c.id == recheck_id)).first()
        if row is None:
            raise not_found(f"re-check {recheck_id}")
        case_id = int(row.case_id)
        require_visible_case(conn, user, case_id)
        if done_before(conn, key, case_id, "recheck_plan", user.actor()):
            return next(r for r in case_rechecks(conn, case_id) if r.id == recheck_id)
        planned = ctx.book.reschedule_recheck(
            conn, recheck_id, user.actor(), due_at=body.due_at, method=body.method,
            brigade=body.brigade,
        )  # fmt: skip
        record(conn, key, case_id, "recheck_plan", user.actor(), ctx.book.clock())
        return planned

    try:
        return recheck_out(keyed_transaction(ctx, work))
    except WorkflowError as err:
        raise _refused(err) from None


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
    key = idempotency_key or own_request_key()

    def work(conn: Connection) -> Recheck:
        row = conn.execute(select(rechecks.c.case_id).where(rechecks.c.id == recheck_id)).first()
        if row is None:
            raise not_found(f"re-check {recheck_id}")
        require_visible_case(conn, user, int(row.case_id))
        if done_before(conn, key, int(row.case_id), "recheck", user.actor()):
            return next(r for r in case_rechecks(conn, int(row.case_id)) if r.id == recheck_id)
        done = ctx.book.decide_recheck(conn, recheck_id, user.actor(), body.outcome, body.note)
        record(conn, key, int(row.case_id), "recheck", user.actor(), ctx.book.clock())
        return done

    try:
        return recheck_out(keyed_transaction(ctx, work))
    except WorkflowError as err:
        raise _refused(err) from None


__all__ = ["router"]
