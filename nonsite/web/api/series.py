"""Data series: an outlet's values against its limits (raw, valid hourly and daily averages,
flags, marked periods), a meter's samples, and an enterprise's latest values.

Read from the raw archive (nonsite/web/series.py). Any logged-in role may read; an enterprise
user only its own enterprise (another's answers 404, as if it did not exist).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from starlette.responses import Response

from nonsite.web.context import WebContext
from nonsite.web.models import ErrorOut
from nonsite.web.security import ERRORS, Context, CurrentUser, may_see_enterprise, not_found
from nonsite.web.series import RangeError, SeriesReader, UnknownSourceError
from nonsite.web.series_models import (
    EnterpriseLatestOut,
    MeterSeriesOut,
    OutletSeriesOut,
    RequestErrorOut,
)

router = APIRouter(prefix="/api/v1", tags=["series"], responses=ERRORS)

ARCHIVE_FILE = "archive.sqlite3"  # in the service's data directory (nonsite/service.py)
_READER_LOCK = threading.Lock()

Id = Annotated[str, Path(min_length=1, max_length=64)]
Since = Annotated[
    datetime | None,
    Query(
        description="start of the range (event time, inclusive); default: 48 h before until. "
        "Without a UTC offset: China time"
    ),
]
Until = Annotated[
    datetime | None,
    Query(description="end of the range (exclusive); default: now. At most 31 days after since"),
]
NOT_FOUND_OR_RANGE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such enterprise (or not yours), outlet or meter"},
    422: {
        "model": ErrorOut | RequestErrorOut,
        "description": "bad_range or range_too_long; or a parameter that cannot be read",
    },
}


def series_reader(request: Request, ctx: WebContext) -> SeriesReader:
    """The application's reader, built on first use (and again if the configuration object
    changes). It reads the markings declared online on the service's database."""
    state = request.app.state
    with _READER_LOCK:
        reader: SeriesReader | None = getattr(state, "series_reader", None)
        if reader is None or reader.config is not ctx.config:
            path = ctx.config.service.data_dir / ARCHIVE_FILE
            reader = SeriesReader(ctx.config, path, db=ctx.db)  # with the declared markings
            state.series_reader = reader
    return reader


def _visible(user: CurrentUser, enterprise_id: str) -> None:
    if not may_see_enterprise(user, enterprise_id):
        raise not_found(f"enterprise {enterprise_id}")


def _json(body: OutletSeriesOut | MeterSeriesOut | EnterpriseLatestOut) -> Response:
    # Already a validated response model: serialise it once (a series holds thousands of
    # points, and FastAPI would validate them all over again).
    return Response(body.model_dump_json(), media_type="application/json")


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A source not configured (or not the caller's): 404; a range refused: 422."""
    try:
        yield
    except UnknownSourceError as exc:
        raise not_found(str(exc)) from None
    except RangeError as exc:
        raise HTTPException(422, {"code": exc.code, "message": exc.message}) from None


@router.get(
    "/enterprises/{enterprise_id}/outlets/{outlet_id}/series",
    response_model=OutletSeriesOut,
    summary="An outlet's values against its limits: raw, valid hourly and daily averages",
    responses=NOT_FOUND_OR_RANGE,
)
def outlet_series(
    request: Request,
    enterprise_id: Id,
    outlet_id: Id,
    ctx: Context,
    user: CurrentUser,
    since: Since = None,
    until: Until = None,
    raw: Annotated[bool, Query(description="include the raw readings")] = True,
) -> Response:
    _visible(user, enterprise_id)
    reader = series_reader(request, ctx)
    with _refusals():
        body = reader.outlet_series_json(enterprise_id, outlet_id, since, until, raw=raw)
    return Response(body, media_type="application/json")


@router.get(
    "/enterprises/{enterprise_id}/outlets/{outlet_id}/hours.csv",
    response_class=Response,
    summary="An outlet's hour values as CSV (up to a year; Chinese headers, China time)",
    responses={
        **NOT_FOUND_OR_RANGE,
        200: {"content": {"text/csv": {}}, "description": "one row per factor-hour"},
    },
)
def outlet_hours_csv(
    request: Request,
    enterprise_id: Id,
    outlet_id: Id,
    ctx: Context,
    user: CurrentUser,
    since: Since = None,
    until: Until = None,
) -> Response:
    _visible(user, enterprise_id)
    reader = series_reader(request, ctx)
    with _refusals():
        text = reader.outlet_hours_csv(enterprise_id, outlet_id, since, until)
    name = f"nonsite-{enterprise_id}-{outlet_id}-hours.csv"
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/enterprises/{enterprise_id}/meters/{meter_id}/series",
    response_model=MeterSeriesOut,
    summary="A power meter's samples with its rated power and on/off thresholds",
    responses=NOT_FOUND_OR_RANGE,
)
def meter_series(
    request: Request,
    enterprise_id: Id,
    meter_id: Id,
    ctx: Context,
    user: CurrentUser,
    since: Since = None,
    until: Until = None,
) -> Response:
    _visible(user, enterprise_id)
    reader = series_reader(request, ctx)
    with _refusals():
        body = reader.meter_series(enterprise_id, meter_id, since, until)
    return _json(body)


@router.get(
    "/enterprises/{enterprise_id}/latest",
    response_model=EnterpriseLatestOut,
    summary="The latest value per outlet × factor and per meter",
    responses={
        404: {"model": ErrorOut, "description": "no such enterprise (or not yours)"},
        422: {"model": RequestErrorOut, "description": "hours out of bounds"},
    },
)
def enterprise_latest(
    request: Request,
    enterprise_id: Id,
    ctx: Context,
    user: CurrentUser,
    hours: Annotated[
        int, Query(ge=1, le=48, description="look at what was received in the last hours")
    ] = 6,
) -> Response:
    _visible(user, enterprise_id)
    reader = series_reader(request, ctx)
    with _refusals():
        body = reader.latest(enterprise_id, hours=hours)
    return _json(body)
