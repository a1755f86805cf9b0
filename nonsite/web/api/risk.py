"""Risk ratings (环保码, alerts.risk): the fleet's latest, an enterprise's with its explanation
and history (an enterprise reads its own), and a recomputation on demand."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from alerts.risk_record import history, latest
from ingest.china_time import CHINA_TZ
from nonsite.auth import User
from nonsite.risk_rating import rate_fleet, weights_of
from nonsite.web.models import ApiModel, ErrorOut
from nonsite.web.security import (
    ERRORS,
    Context,
    CurrentUser,
    grant,
    may_see_enterprise,
    not_found,
)

router = APIRouter(prefix="/api/v1", tags=["risk"], responses=ERRORS)

Color = Literal["green", "yellow", "red"]


class ContributionOut(ApiModel):
    kind: str
    name: str = Field(description="what it is, in Chinese")
    count: float = Field(description="items, or percentage points short (transmission)")
    each: float = Field(description="points per item")
    points: float
    refs: list[str] = Field(description="the items: case:N, clue:N, rectification:N")


class NextChangeOut(ApiModel):
    falls_on: date | None = Field(description="the first day the colour falls by itself")
    falls_to: Color | None
    falls_to_name: str | None
    released: list[str] = Field(description="the items whose leaving the window makes it fall")
    rise_in: float | None = Field(description="points that raise it to the next colour")
    rise_to: Color | None
    rise_to_name: str | None


class RatingOut(ApiModel):
    enterprise_id: str
    enterprise_name: str
    day: date
    score: float
    color: Color
    color_name: str
    computed_at: datetime
    contributions: list[ContributionOut] = Field(description="they sum to the score")
    next_change: NextChangeOut
    inputs: dict[str, Any] = Field(description="what it was made from (alerts.risk.RiskInputs)")
    weights: dict[str, Any] = Field(description="the weights it was made with")


class RatingsOut(ApiModel):
    counts: dict[Color, int]
    ratings: list[RatingOut] = Field(description="the highest score first")
    weights: dict[str, Any] = Field(description="the configured weights and thresholds")


class HistoryPointOut(ApiModel):
    day: date
    score: float
    color: Color


class EnterpriseRiskOut(ApiModel):
    rating: RatingOut | None = Field(description="None: not rated yet")
    history: list[HistoryPointOut] = Field(description="the window's daily ratings, oldest first")


class RecomputeIn(ApiModel):
    enterprise_id: str | None = Field(
        default=None, max_length=64, description="one enterprise; all when not given"
    )


class RecomputeOut(ApiModel):
    rated: int
    counts: dict[Color, int]


def _names(ctx: Context) -> dict[str, str]:
    return {e.id: e.name for e in ctx.config.enterprises}


def _rating_out(doc: dict[str, Any], names: dict[str, str]) -> RatingOut:
    return RatingOut.model_validate(doc | {"enterprise_name": names.get(doc["enterprise_id"], "")})


def _without_clues(doc: dict[str, Any]) -> dict[str, Any]:
    """The rating as its enterprise reads it: how many clues count and their points, not
    which clues (a complaint is not shown to the enterprise it is about)."""
    contributions = [c | {"refs": []} if c["kind"] == "clue" else c for c in doc["contributions"]]
    items = [
        i | {"ref": "clue", "note": ""} if i["kind"] == "clue" else i
        for i in doc["inputs"]["items"]
    ]
    released = [r for r in doc["next_change"]["released"] if not r.startswith("clue:")]
    return doc | {
        "contributions": contributions,
        "inputs": doc["inputs"] | {"items": items},
        "next_change": doc["next_change"] | {"released": released},
    }


def _counts(colors: list[str]) -> dict[Color, int]:
    out: dict[Color, int] = {"red": 0, "yellow": 0, "green": 0}
    for c in colors:
        out[c] += 1  # type: ignore[index]
    return out


@router.get(
    "/risk",
    response_model=RatingsOut,
    summary="The fleet's latest risk ratings (环保码), the highest score first",
)
def fleet_risk(
    ctx: Context,
    user: Annotated[User, Depends(grant("risk"))],
    color: Annotated[Color | None, Query()] = None,
) -> RatingsOut:
    names = _names(ctx)
    with ctx.db.connect() as conn:
        kept = latest(conn, list(names))
    ratings = [_rating_out(doc, names) for doc in kept.values()]
    counts = _counts([r.color for r in ratings])
    if color is not None:
        ratings = [r for r in ratings if r.color == color]
    ratings.sort(key=lambda r: (-r.score, r.enterprise_id))
    return RatingsOut(counts=counts, ratings=ratings, weights=weights_of(ctx.config).to_json())


@router.get(
    "/enterprises/{enterprise_id}/risk",
    response_model=EnterpriseRiskOut,
    responses={404: {"model": ErrorOut}},
    summary="An enterprise's risk rating, why, when it would change, and its history",
)
def enterprise_risk(
    enterprise_id: Annotated[str, Path(max_length=64)], ctx: Context, user: CurrentUser
) -> EnterpriseRiskOut:
    found = next((e for e in ctx.config.enterprises if e.id == enterprise_id), None)
    readers = ("monitor", "supervisor", "enforcer", "admin", "enterprise")
    if found is None or user.role not in readers or not may_see_enterprise(user, found.id):
        raise not_found(f"enterprise {enterprise_id}")
    names = _names(ctx)
    window = weights_of(ctx.config).window_days
    since = datetime.now(CHINA_TZ).date() - timedelta(days=window)
    with ctx.db.connect() as conn:
        doc = latest(conn, [found.id]).get(found.id)
        days = history(conn, found.id, since)
    if doc is not None and user.role == "enterprise":
        doc = _without_clues(doc)
    return EnterpriseRiskOut(
        rating=_rating_out(doc, names) if doc else None,
        history=[HistoryPointOut.model_validate(d) for d in days],
    )


@router.post(
    "/risk/recompute",
    response_model=RecomputeOut,
    responses={404: {"model": ErrorOut}},
    summary="Rate again now (all enterprises, or one): today's rating is replaced",
)
def recompute(
    body: RecomputeIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("risk.recompute"))],
) -> RecomputeOut:
    wanted = None
    if body.enterprise_id is not None:
        if body.enterprise_id not in _names(ctx):
            raise not_found(f"enterprise {body.enterprise_id}")
        wanted = [body.enterprise_id]
    ratings = rate_fleet(
        ctx.db, ctx.config, datetime.now(CHINA_TZ), trigger="on_demand", enterprises=wanted
    )
    return RecomputeOut(rated=len(ratings), counts=_counts([r.color for r in ratings]))


__all__ = ["router"]
