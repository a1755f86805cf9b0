"""双随机 draws (alerts.draws, nonsite.inspection_draws): the inspection object library, a
period's draw made once by a supervisor with its published seed (its inspections dispatched
as cases), and any draw read back with whether it re-runs to the same result."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field
from sqlalchemy import select

from alerts.risk import CLASS_NAMES
from alerts.schema import inspection_draws
from alerts.workflow import WorkflowError
from ingest.china_time import CHINA_TZ
from nonsite.auth import User
from nonsite.inspection_draws import drawn, library, make_draw, rules_of, verified
from nonsite.periods import PATTERN
from nonsite.web.models import ApiModel
from nonsite.web.refusals import refusal_responses, refused
from nonsite.web.security import ERRORS, Context, grant, not_found

router = APIRouter(prefix="/api/v1", tags=["draws"], responses=ERRORS)
Period = Annotated[str, Path(max_length=7, pattern=PATTERN)]


class DrawIn(ApiModel):
    period: str = Field(
        max_length=7,
        pattern=PATTERN,
        description="2026, 2026-11, 2026Q4 or 2026H2",
    )
    seed: str = Field(min_length=1, max_length=200, description="the published seed")


class DrawOut(ApiModel):
    period: str
    seed: str
    quotas: dict[str, Any] = Field(description="per class: members, share, quota, eligible, drawn")
    drawn: list[dict[str, Any]] = Field(description="each enterprise drawn, its inspectors")
    short: list[str] = Field(description="what could not be met")
    inputs: dict[str, Any] = Field(description="the library, inspectors and rules drawn from")
    created_by: str
    created_at: datetime
    cases: dict[str, int] = Field(default_factory=dict, description="enterprise → its case")
    verified: bool = Field(default=True, description="re-run from its seed and inputs: the same")


def _named(ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
    """The drawn enterprises with their names, as people read a draw."""
    names = {e.id: e.name for e in ctx.config.enterprises}
    drawn = [d | {"enterprise_name": names.get(d["enterprise_id"], "")} for d in doc["drawn"]]
    return doc | {"drawn": drawn}


class LibraryOut(ApiModel):
    candidates: list[dict[str, Any]] = Field(description="the inspection object library (名录库)")
    class_names: dict[str, str]
    rules: dict[str, Any]


@router.get(
    "/draws/library",
    response_model=LibraryOut,
    summary="The inspection object library (名录库) a draw would be made from now",
)
def read_library(ctx: Context, user: Annotated[User, Depends(grant("draws"))]) -> LibraryOut:
    with ctx.db.connect() as conn:
        candidates = library(conn, ctx.config)
    rules = rules_of(ctx.config)
    return LibraryOut(
        candidates=[asdict(c) for c in candidates],
        class_names=dict(CLASS_NAMES),
        rules={
            "shares": dict(rules.shares),
            "color_weights": dict(rules.color_weights),
            "exclude_positive_list": rules.exclude_positive_list,
            "inspectors_each": rules.inspectors_each,
        },
    )


@router.get("/draws", response_model=list[DrawOut], summary="The draws made, newest period first")
def list_draws(ctx: Context, user: Annotated[User, Depends(grant("draws"))]) -> list[DrawOut]:
    with ctx.db.connect() as conn:
        periods = [
            r[0]
            for r in conn.execute(
                select(inspection_draws.c.period).order_by(inspection_draws.c.period.desc())
            )
        ]
        docs = [drawn(conn, p) for p in periods]
    return [DrawOut.model_validate(_named(ctx, d) | {"verified": verified(d)}) for d in docs if d]


@router.get(
    "/draws/{period}",
    response_model=DrawOut,
    responses=refusal_responses(404),
    summary="A period's draw with what it was made from, and whether it re-runs the same",
)
def read_draw(
    period: Period, ctx: Context, user: Annotated[User, Depends(grant("draws"))]
) -> DrawOut:
    with ctx.db.connect() as conn:
        doc = drawn(conn, period)
    if doc is None:
        raise not_found(f"draw of {period}")
    return DrawOut.model_validate(_named(ctx, doc) | {"verified": verified(doc)})


@router.post(
    "/draws",
    response_model=DrawOut,
    status_code=201,
    responses=refusal_responses(403, 409, 422),
    summary="Draw a period (a supervisor, once per period): its inspections are dispatched",
)
def new_draw(
    body: DrawIn, ctx: Context, user: Annotated[User, Depends(grant("draws.make"))]
) -> DrawOut:
    try:
        doc = make_draw(
            ctx.db, ctx.config, ctx.book, body.period, body.seed, user.actor().name,
            datetime.now(CHINA_TZ),
        )  # fmt: skip
    except WorkflowError as err:
        raise refused(err) from None
    return DrawOut.model_validate(_named(ctx, doc))


__all__ = ["router"]
