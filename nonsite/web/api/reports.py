"""The fleet's month report (月度报表, nonsite/web/month_report.py computes it): for the
monitoring centre, the supervisors and operators, as JSON or as a CSV for a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field
from starlette.responses import Response

from nonsite.auth import User
from nonsite.rule_wiring import rule_setup
from nonsite.web.context import WebContext
from nonsite.web.models import ApiModel
from nonsite.web.month_report import MonthFigures, MonthReport, month_report
from nonsite.web.security import ERRORS, Context, grant
from rules.store import list_declared_markings

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=ERRORS)

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
CSV_HEADERS = (
    "企业编号", "企业名称", "排口数", "超标小时", "预警小时", "日均超标天数",
    "应传记录", "实传记录", "有效记录", "传输率", "有效传输率", "有效小时率",
)  # fmt: skip


class EnterpriseMonthOut(ApiModel):
    enterprise_id: str
    enterprise_name: str
    outlets: int = Field(description="outlets with factors the rules judge")
    alarm_hours: int = Field(description="超标小时: factor-hours A3 fired for at alarm")
    warning_hours: int = Field(description="预警小时: factor-hours A3 fired for at warning")
    exceeded_days: int = Field(description="日均超标天: factor-days a daily rule fired for")
    expected_records: int = Field(description="records due (stopped periods are not)")
    received_records: int
    valid_records: int
    due_hours: int
    valid_hours: int
    transmission_rate: float | None = Field(description="传输率: received ÷ expected")
    effective_rate: float | None = Field(description="有效传输率: valid ÷ expected")
    valid_hour_rate: float | None = Field(description="有效小时率: valid ÷ due hours")


class MonthReportOut(ApiModel):
    month: str = Field(description="YYYY-MM, a China calendar month")
    since: datetime
    until: datetime
    enterprises: list[EnterpriseMonthOut] = Field(
        description="most exceedance hours first, then most exceeded days"
    )


def parse_month(text: str) -> date:
    m = MONTH.match(text)
    if m is None or not 1 <= int(m[2]) <= 12 or not 2000 <= int(m[1]) < 2100:
        raise HTTPException(
            422, {"code": "bad_month", "message": "month must be YYYY-MM, e.g. 2026-11"}
        )
    return date(int(m[1]), int(m[2]), 1)


def _out(m: MonthFigures) -> EnterpriseMonthOut:
    f, c = m.figures, m.figures.counts
    return EnterpriseMonthOut(
        enterprise_id=f.enterprise_id,
        enterprise_name=f.enterprise_name,
        outlets=f.outlets,
        alarm_hours=m.alarm_hours,
        warning_hours=m.warning_hours,
        exceeded_days=m.exceeded_days,
        expected_records=c.expected,
        received_records=c.received,
        valid_records=c.valid,
        due_hours=c.due_hours,
        valid_hours=c.valid_hours,
        transmission_rate=f.transmission_rate,
        effective_rate=f.effective_rate,
        valid_hour_rate=f.valid_hour_rate,
    )


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.2f}%"


def _csv(report: MonthReport) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADERS)
    for m in report.enterprises:
        f, c = m.figures, m.figures.counts
        writer.writerow(
            [
                f.enterprise_id,
                f.enterprise_name,
                f.outlets,
                m.alarm_hours,
                m.warning_hours,
                m.exceeded_days,
                c.expected,
                c.received,
                c.valid,
                _percent(f.transmission_rate),
                _percent(f.effective_rate),
                _percent(f.valid_hour_rate),
            ]
        )
    name = f"nonsite-month-{report.month:%Y-%m}.csv"
    return Response(
        ("\ufeff" + out.getvalue()).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def build_report(ctx: WebContext, month: date) -> MonthReport:
    with ctx.db.connect() as conn:
        rules = rule_setup(ctx.config).with_declared(list_declared_markings(conn))
    return month_report(ctx.db, ctx.config, rules, month)


@router.get(
    "/reports/month",
    response_model=MonthReportOut,
    summary="The fleet's month: exceedance hours and days, transmission rates per enterprise",
    responses={422: {"description": "bad_month"}},
)
def month(
    ctx: Context,
    _user: Annotated[User, Depends(grant("quality"))],
    month: Annotated[str, Query(max_length=7, description="YYYY-MM (China calendar month)")],
    format: Annotated[Literal["json", "csv"], Query(description="csv: for a spreadsheet")] = "json",
) -> Response | MonthReportOut:
    report = build_report(ctx, parse_month(month))
    if format == "csv":
        return _csv(report)
    return MonthReportOut(
        month=f"{report.month:%Y-%m}",
        since=report.since,
        until=report.until,
        enterprises=[_out(m) for m in report.enterprises],
    )
