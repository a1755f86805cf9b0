"""Data quality per enterprise over the last whole hours (nonsite/web/quality.py computes it):
the 运行 page's table, for the monitoring centre, the supervisors and operators."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from nonsite.auth import User
from nonsite.web.context import WebContext
from nonsite.web.models import ApiModel
from nonsite.web.quality import QualityBook
from nonsite.web.security import ERRORS, Context, grant

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=ERRORS)

_BOOK_LOCK = threading.Lock()


class EnterpriseQualityOut(ApiModel):
    enterprise_id: str
    enterprise_name: str
    outlets: int = Field(description="outlets with factors the rules judge")
    expected_records: int = Field(description="records due (stopped periods are not)")
    received_records: int
    valid_records: int = Field(description="valid flag, a value, not in a marked period")
    due_hours: int = Field(description="factor-hours due")
    valid_hours: int = Field(description="factor-hours with a valid hourly value")
    transmission_rate: float | None = Field(description="传输率: received ÷ expected")
    effective_rate: float | None = Field(description="有效传输率 (B10's): valid ÷ expected")
    valid_hour_rate: float | None = Field(description="有效小时率: valid ÷ due hours")
    dead_letters: int = Field(description="refused messages of its loggers and meters")
    clock_drift_s: float | None = Field(
        description="its loggers' clock drift as last read in the window (the largest, signed "
        "seconds: + ahead); None: not read"
    )


class QualityOut(ApiModel):
    window: Literal["24h", "7d"]
    since: datetime = Field(description="China time: the window's first whole hour")
    until: datetime = Field(description="China time: the end of the last whole hour")
    computed_at: datetime
    enterprises: list[EnterpriseQualityOut] = Field(
        description="worst first: by effective transmission rate, transmission rate, dead letters"
    )
    unattributed_dead_letters: int = Field(description="from loggers nobody configured")
    clock_tolerance_s: float = Field(
        description="[commands] clock_tolerance_s: a drift beyond it is set right (1012)"
    )


def quality_book(request: Request, ctx: WebContext) -> QualityBook:
    """The application's book, built on first use and again for a new configuration."""
    state = request.app.state
    with _BOOK_LOCK:
        book: QualityBook | None = getattr(state, "quality_book", None)
        if book is None or book.config is not ctx.config:
            book = QualityBook(ctx.config, ctx.config.service.archive_path)
            state.quality_book = book
    return book


@router.get(
    "/quality",
    response_model=QualityOut,
    summary="Data quality per enterprise: transmission, effective transmission and valid-hour "
    "rates, dead letters, over the last 24 hours or 7 days",
)
def quality(
    request: Request,
    ctx: Context,
    _user: Annotated[User, Depends(grant("quality"))],
    window: Annotated[Literal["24h", "7d"], Query(description="the last whole hours")] = "24h",
) -> QualityOut:
    q = quality_book(request, ctx).quality(ctx.db, window)
    return QualityOut(
        window=window,
        since=q.since,
        until=q.until,
        computed_at=q.computed_at,
        enterprises=[
            EnterpriseQualityOut(
                enterprise_id=f.enterprise_id,
                enterprise_name=f.enterprise_name,
                outlets=f.outlets,
                expected_records=f.counts.expected,
                received_records=f.counts.received,
                valid_records=f.counts.valid,
                due_hours=f.counts.due_hours,
                valid_hours=f.counts.valid_hours,
                transmission_rate=f.transmission_rate,
                effective_rate=f.effective_rate,
                valid_hour_rate=f.valid_hour_rate,
                dead_letters=f.dead_letters,
                clock_drift_s=f.clock_drift_s,
            )
            for f in q.enterprises
        ],
        unattributed_dead_letters=q.unattributed_dead_letters,
        clock_tolerance_s=ctx.config.commands.clock_tolerance_s,
    )
