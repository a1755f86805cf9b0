"""Decisions (处理决定, alerts.decisions) recorded on a case by a supervisor, and the legal review
(法制审核) of the major ones by the legal reviewer before they take effect: its queue, its
approval or rejection. Each once per request key, on the case's trail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field
from sqlalchemy import Connection, select

from alerts.decisions import TYPES, Decision, case_decisions, decision_of, pending_review
from alerts.schema import decisions
from alerts.workflow import WorkflowError
from nonsite.auth import User
from nonsite.web.models import ApiModel, ErrorOut
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

router = APIRouter(prefix="/api/v1", tags=["decisions"], responses=ERRORS)

Kind = Literal[
    "no_penalty",
    "order_correction",
    "fine",
    "seizure",
    "police_detention",
    "police_crime",
    "transfer",
]
REFUSED = refusal_responses(403, 404, 409, 422)


class DecisionIn(ApiModel):
    kind: Kind = Field(description=", ".join(f"{k} {v}" for k, v in TYPES.items()))
    legal_ground: str = Field(default="", max_length=2000, description="不予处罚: required")
    amount_yuan: float | None = Field(default=None, gt=0, le=1e10, description="a fine's")
    department: str = Field(default="", max_length=100, description="transfer: to whom")
    document_number: str = Field(min_length=1, max_length=100, description="决定书文号")
    decided_on: date | None = None
    note: str = Field(default="", max_length=4000)


class ReviewIn(ApiModel):
    approve: bool
    note: str = Field(default="", max_length=4000, description="a rejection's reasons")


class DecisionOut(ApiModel):
    id: int
    case_id: int
    type: Kind
    type_name: str
    legal_ground: str
    amount_yuan: float | None
    department: str
    document_number: str
    decided_on: date | None
    note: str
    major: bool = Field(description="needs the legal review before it takes effect")
    state: Literal["pending_review", "effective", "rejected"]
    state_name: str
    proposed_by: str
    proposed_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str


def decision_out(d: Decision) -> DecisionOut:
    return DecisionOut.model_validate(d.to_json())


@router.get(
    "/cases/{case_id}/decisions",
    response_model=list[DecisionOut],
    responses={404: {"model": ErrorOut}},
    summary="A case's decisions, oldest first",
)
def read_decisions(
    case_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Context, user: CurrentUser
) -> list[DecisionOut]:
    with ctx.db.connect() as conn:
        require_visible_case(conn, user, case_id)
        return [decision_out(d) for d in case_decisions(conn, case_id)]


@router.post(
    "/cases/{case_id}/decisions",
    response_model=DecisionOut,
    status_code=201,
    responses=REFUSED,
    summary="Record a decision: in effect at once, or awaiting the legal review when major",
)
def record_decision(
    case_id: Annotated[int, Path(ge=1, le=2**62)],
    body: DecisionIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("decisions.record"))],
    idempotency_key: RequestKey = None,
) -> DecisionOut:
    def visible_case(conn: Connection) -> int:
        require_visible_case(conn, user, case_id)
        return case_id

    def decide(conn: Connection, _case_id: int) -> Decision:
        return ctx.book.decide(conn, case_id, user.actor(), **body.model_dump())

    def decided(conn: Connection, _case_id: int) -> Decision:
        return case_decisions(conn, case_id)[-1]

    try:
        step = keyed_step(
            ctx, idempotency_key, user, "decide", case_of=visible_case, take=decide, taken=decided
        )
    except WorkflowError as err:
        raise refused(err) from None
    return decision_out(step)


@router.get(
    "/decisions",
    response_model=list[DecisionOut],
    summary="Decisions by state (the legal reviewer's queue: pending_review), oldest first",
)
def list_decisions(
    ctx: Context,
    user: Annotated[User, Depends(grant("decisions.queue"))],
    state: Annotated[Literal["pending_review", "effective", "rejected"], Query()] = (
        "pending_review"
    ),
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[DecisionOut]:
    with ctx.db.connect() as conn:
        if state == "pending_review":
            return [decision_out(d) for d in pending_review(conn, limit)]
        rows = conn.execute(
            select(decisions)
            .where(decisions.c.state == state)
            .order_by(decisions.c.id)
            .limit(limit)
        )
        return [decision_out(decision_of(r._mapping)) for r in rows]


@router.post(
    "/decisions/{decision_id}/review",
    response_model=DecisionOut,
    responses=REFUSED,
    summary="The legal review of a major decision (法制审核): approved, it takes effect",
)
def review_decision(
    decision_id: Annotated[int, Path(ge=1, le=2**62)],
    body: ReviewIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("decisions.review"))],
    idempotency_key: RequestKey = None,
) -> DecisionOut:
    def decisions_case(conn: Connection) -> int:
        row = conn.execute(select(decisions.c.case_id).where(decisions.c.id == decision_id)).first()
        if row is None:
            raise not_found(f"decision {decision_id}")
        return int(row.case_id)

    def review(conn: Connection, _case_id: int) -> Decision:
        return ctx.book.review_decision(
            conn, decision_id, user.actor(), approve=body.approve, note=body.note
        )

    def reviewed(conn: Connection, case_id: int) -> Decision:
        return next(d for d in case_decisions(conn, case_id) if d.id == decision_id)

    try:
        step = keyed_step(
            ctx, idempotency_key, user, "legal_review",
            case_of=decisions_case, take=review, taken=reviewed,
        )  # fmt: skip
    except WorkflowError as err:
        raise refused(err) from None
    return decision_out(step)
