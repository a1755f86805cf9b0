"""The period's statistics (统计, alerts.statistics) per region or brigade and in total."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field
from starlette.responses import Response

from alerts.statistics import FAMILY_NAMES, TOTAL, Figures, period_statistics
from nonsite.auth import User
from nonsite.periods import PATTERN, bounds
from nonsite.report.figures import group_of, period_report
from nonsite.report.pdf import write_pdf
from nonsite.report.workbook import write_workbook
from nonsite.web.models import ApiModel
from nonsite.web.security import ERRORS, Context, grant

router = APIRouter(prefix="/api/v1", tags=["statistics"], responses=ERRORS)


class FiguresOut(ApiModel):
    group: str = Field(description="the region, the brigade's name, or 合计")
    reminders: int
    explanations: int
    explained_on_time: int
    non_site_checks: int
    on_site_checks: int
    opened: int
    by_family: dict[str, int]
    by_tier: dict[str, int]
    closed: int
    by_outcome: dict[str, int]
    closure_rate: float | None = Field(description="of the cases opened, those closed by the end")
    mean_hours_to_close: float | None
    violations_confirmed: int
    rectifications_ordered: int
    struck_off: int
    recurrences: int


class StatisticsOut(ApiModel):
    period: str
    since: datetime
    until: datetime
    by: Literal["region", "brigade"]
    family_names: dict[str, str]
    groups: list[FiguresOut] = Field(description="each group, then 合计 last")


def _out(group: str, f: Figures) -> FiguresOut:
    return FiguresOut(
        group=group,
        reminders=f.reminders,
        explanations=f.explanations,
        explained_on_time=f.explained_on_time,
        non_site_checks=f.non_site_checks,
        on_site_checks=f.on_site_checks,
        opened=f.opened,
        by_family=f.by_family,
        by_tier=f.by_tier,
        closed=f.closed,
        by_outcome=f.by_outcome,
        closure_rate=f.closure_rate,
        mean_hours_to_close=f.mean_hours_to_close,
        violations_confirmed=f.violations_confirmed,
        rectifications_ordered=f.rectifications_ordered,
        struck_off=f.struck_off,
        recurrences=f.recurrences,
    )


@router.get(
    "/statistics",
    response_model=StatisticsOut,
    summary="A period's statistics (统计) per region or brigade, and in total",
)
def statistics(
    ctx: Context,
    user: Annotated[User, Depends(grant("statistics"))],
    period: Annotated[str, Query(max_length=7, pattern=PATTERN)],
    by: Annotated[Literal["region", "brigade"], Query()] = "region",
) -> StatisticsOut:
    try:
        since, until = bounds(period)
    except ValueError as err:
        raise HTTPException(422, {"code": "bad_period", "message": str(err)}) from None
    with ctx.db.connect() as conn:
        figures = period_statistics(conn, since, until, group_of(ctx.config, by))
    groups = [_out(g, f) for g, f in sorted(figures.items()) if g != TOTAL]
    groups.append(_out(TOTAL, figures.get(TOTAL, Figures())))
    return StatisticsOut(
        period=period, since=since, until=until, by=by, family_names=FAMILY_NAMES, groups=groups
    )


REPORT_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get(
    "/statistics/report",
    summary="The period's report (统计报表) as a PDF or an Excel workbook with charts",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in REPORT_TYPES.values()}, "description": "the file"},
        422: {"description": "bad_period"},
    },
)
def report(
    ctx: Context,
    user: Annotated[User, Depends(grant("statistics"))],
    period: Annotated[str, Query(max_length=7, pattern=PATTERN)],
    by: Annotated[Literal["region", "brigade"], Query()] = "region",
    format: Annotated[Literal["pdf", "xlsx"], Query()] = "pdf",
) -> Response:
    """What ``nonsite report`` writes (nonsite/report), made on request: a year's takes a
    few seconds on a large fleet, the figures being those of the statistics and the kept days."""
    try:
        figures = period_report(ctx.db, ctx.config, period, by, datetime.now(UTC))
    except ValueError as err:
        raise HTTPException(422, {"code": "bad_period", "message": str(err)}) from None
    with tempfile.TemporaryDirectory(prefix="nonsite-report-") as tmp:
        path = Path(tmp) / f"report.{format}"
        if format == "pdf":
            write_pdf(figures, path)
        else:
            write_workbook(figures, path)
        body = path.read_bytes()
    name = f"report-{period}-{by}.{format}"
    return Response(
        body,
        media_type=REPORT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


__all__ = ["router"]
