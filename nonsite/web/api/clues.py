"""Clues (线索, alerts.clues): submitted by the monitoring centre, the supervisors, a township of
its area and the systems that send them (the 12345/12369 hotlines' platforms, drone and
remote-sensing systems, with an API token of the ``intake`` role), one by one or as a CSV
file; each merged into the open case it belongs to or opening a case of its own.

Read in each role's scope: the centre, the supervisors and the operator all; a township the
clues of its area, with the state of the case each went to (it follows them); a sending
system its own. An enterprise reads none: a complaint is not shown to the enterprise it is
about.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Path, Query, UploadFile
from pydantic import Field, ValidationError
from sqlalchemy import Connection, select

from alerts.clues import (
    CLUE_SOURCES,
    Clue,
    ClueIn,
    case_clues,
    get_clue,
    list_clues,
    may_read_clue,
)
from alerts.schema import cases
from alerts.workflow import STATE_NAMES, WorkflowError
from nonsite.auth import User
from nonsite.web.context import WebContext
from nonsite.web.models import ApiModel, ErrorOut, Instant
from nonsite.web.refusals import refused
from nonsite.web.request_keys import RequestKey, keyed_transaction
from nonsite.web.security import ERRORS, Context, grant, not_found, visible_cases

router = APIRouter(prefix="/api/v1", tags=["clues"], responses=ERRORS)

ClueId = Annotated[int, Path(ge=1, le=2**62, description="the clue's number")]
Source = Literal[
    "hotline_12345",
    "hotline_12369",
    "petition",
    "drone",
    "satellite",
    "voc_survey",
    "video",
    "township",
    "department",
    "other",
]
OUTCOME_NAMES = {"merged": "并入在办案件", "opened": "新立线索案件"}
MAX_IMPORT_ROWS = 2000
MAX_IMPORT_BYTES = 2 * 1024 * 1024


class ClueBody(ApiModel):
    """A clue as a sending system or a person submits it."""

    source: Source = Field(description=", ".join(f"{k} {v}" for k, v in CLUE_SOURCES.items()))
    occurred_at: Instant = Field(description="when the problem was seen or complained of")
    description: str = Field(min_length=1, max_length=4000)
    enterprise_id: str | None = Field(default=None, max_length=64)
    longitude: float | None = Field(default=None, ge=-180, le=180, description="WGS-84")
    latitude: float | None = Field(default=None, ge=-90, le=90)
    address: str = Field(default="", max_length=200)
    area: str | None = Field(
        default=None, max_length=64, description="the township (镇街); a township user's own"
    )
    factor: str | None = Field(
        default=None, max_length=16, description="a related pollutant's HJ 212 code"
    )
    external_ref: str | None = Field(
        default=None,
        max_length=100,
        description="the sending system's own reference (a hotline's 工单号): a clue sent "
        "again with the same source and reference is the clue recorded the first time",
    )
    urgent: bool = Field(default=False, description="at alarm tier: dispatched unverified")


class ClueOut(ApiModel):
    id: int
    source: str
    source_name: str
    external_ref: str | None
    received_at: datetime
    occurred_at: datetime
    enterprise_id: str | None
    enterprise_name: str | None
    located: Literal["given", "coordinates", "none"] = Field(
        description="how its enterprise was found: named, nearest to its coordinates, none"
    )
    longitude: float | None
    latitude: float | None
    address: str
    area: str | None
    factor: str | None
    description: str
    submitted_by: str
    submitter_role: str
    outcome: Literal["merged", "opened"]
    outcome_name: str
    case_id: int
    case_state: str
    case_state_name: str
    match: dict[str, Any] = Field(description="how it was located and matched")
    surroundings: dict[str, Any] | None = Field(
        default=None,
        description="the monitoring data around its time, as recorded with it (one clue "
        "only): per outlet and factor the hour values, per meter its hours, the findings",
    )


class ImportRefusal(ApiModel):
    row: int = Field(description="the row of the file, the header being row 1")
    code: str
    message: str


class ImportOut(ApiModel):
    taken: list[ClueOut]
    refused: list[ImportRefusal]


def _states(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(select(cases.c.id, cases.c.state).where(cases.c.id.in_(sorted(ids))))
    return {int(r.id): r.state for r in rows}


def clue_out(ctx: WebContext, clue: Clue, state: str, *, detail: bool = False) -> ClueOut:
    names = ctx.book.policy.enterprises
    info = names.get(clue.enterprise_id) if clue.enterprise_id else None
    return ClueOut(
        id=clue.id,
        source=clue.source,
        source_name=CLUE_SOURCES.get(clue.source, clue.source),
        external_ref=clue.external_ref,
        received_at=clue.received_at,
        occurred_at=clue.occurred_at,
        enterprise_id=clue.enterprise_id,
        enterprise_name=info.name if info else None,
        located=clue.located,  # type: ignore[arg-type]
        longitude=clue.longitude,
        latitude=clue.latitude,
        address=clue.address,
        area=clue.area,
        factor=clue.factor,
        description=clue.description,
        submitted_by=clue.submitted_by,
        submitter_role=clue.submitter_role,
        outcome=clue.outcome,  # type: ignore[arg-type]
        outcome_name=OUTCOME_NAMES.get(clue.outcome, clue.outcome),
        case_id=clue.case_id,
        case_state=state,
        case_state_name=STATE_NAMES.get(state, state),
        match=clue.match,
        surroundings=clue.surroundings if detail else None,
    )


def _clue_in(body: ClueBody, key: str | None) -> ClueIn:
    return ClueIn(
        source=body.source,
        occurred_at=body.occurred_at,
        description=body.description,
        enterprise_id=body.enterprise_id or None,
        longitude=body.longitude,
        latitude=body.latitude,
        address=body.address,
        area=body.area or None,
        factor=body.factor or None,
        # A form's request key stands for the reference a sending system gives: the same
        # submission retried (its reply lost) is one clue.
        external_ref=body.external_ref or (f"key:{key}" if key else None),
        urgent=body.urgent,
    )


def _take(ctx: WebContext, user: User, clue: ClueIn) -> ClueOut:
    """The clue taken in its own transaction (run again through a failover: its reference
    makes that safe); WorkflowError when refused."""

    def work(conn: Connection) -> ClueOut:
        taken = ctx.book.take_clue(conn, clue, user.actor())
        return clue_out(ctx, taken, _states(conn, {taken.case_id})[taken.case_id], detail=True)

    return keyed_transaction(ctx, work)


@router.post(
    "/clues",
    response_model=ClueOut,
    status_code=201,
    responses={403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    summary="Submit a clue (线索): merged into the open case it belongs to, or opening one",
)
def submit_clue(
    body: ClueBody,
    ctx: Context,
    user: Annotated[User, Depends(grant("clues.submit"))],
    idempotency_key: RequestKey = None,
) -> ClueOut:
    try:
        return _take(ctx, user, _clue_in(body, idempotency_key))
    except WorkflowError as err:
        raise refused(err) from None


@router.get(
    "/clues",
    response_model=list[ClueOut],
    summary="Clues, newest first, in the caller's scope (a township: its area's)",
)
def read_clues(
    ctx: Context,
    user: Annotated[User, Depends(grant("clues"))],
    area: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ClueOut]:
    if user.role == "township":
        if area not in (None, user.area):
            raise HTTPException(
                403, {"code": "out_of_scope", "message": f"your area is {user.area}"}
            )
        area = user.area
    by = user.actor().name if user.role == "intake" else None
    with ctx.db.connect() as conn:
        found = list_clues(conn, area=area, submitted_by=by, since=since, limit=limit)
        states = _states(conn, {c.case_id for c in found})
    return [clue_out(ctx, c, states.get(c.case_id, "")) for c in found]


@router.get(
    "/clues/{clue_id}",
    response_model=ClueOut,
    responses={404: {"model": ErrorOut}},
    summary="One clue, with the monitoring data recorded with it",
)
def read_clue(
    clue_id: ClueId, ctx: Context, user: Annotated[User, Depends(grant("clues"))]
) -> ClueOut:
    with ctx.db.connect() as conn:
        try:
            clue = get_clue(conn, clue_id)
        except WorkflowError:
            raise not_found(f"clue {clue_id}") from None
        if not may_read_clue(user.actor(), clue):
            raise not_found(f"clue {clue_id}")
        state = _states(conn, {clue.case_id}).get(clue.case_id, "")
    return clue_out(ctx, clue, state, detail=True)


@router.get(
    "/cases/{case_id}/clues",
    response_model=list[ClueOut],
    responses={404: {"model": ErrorOut}},
    summary="The clues merged into a case or opening it, oldest first",
)
def read_case_clues(
    case_id: Annotated[int, Path(ge=1, le=2**62)],
    ctx: Context,
    user: Annotated[User, Depends(grant("cases.clues"))],
) -> list[ClueOut]:
    with ctx.db.connect() as conn:
        row = conn.execute(
            select(cases.c.state).where(cases.c.id == case_id, visible_cases(user))
        ).first()
        if row is None:
            raise not_found(f"case {case_id}")
        return [clue_out(ctx, c, row.state, detail=True) for c in case_clues(conn, case_id)]


# The columns of an import file: the API's field names, or the Chinese headings of the
# template people fill in.
IMPORT_COLUMNS = {
    "source": ("source", "来源"),
    "occurred_at": ("occurred_at", "发生时间"),
    "description": ("description", "问题描述"),
    "enterprise_id": ("enterprise_id", "企业编号"),
    "longitude": ("longitude", "经度"),
    "latitude": ("latitude", "纬度"),
    "address": ("address", "地址"),
    "area": ("area", "镇街"),
    "factor": ("factor", "因子"),
    "external_ref": ("external_ref", "来源编号"),
    "urgent": ("urgent", "紧急"),
}
SOURCE_BY_NAME = {name: code for code, name in CLUE_SOURCES.items()}


def _table(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    """The header and the rows of a clue file: Excel (.xlsx, its first sheet) or CSV
    (UTF-8); every cell as text, a date cell as China time (the API's reading of a time
    without its offset)."""
    if data.startswith(b"PK\x03\x04"):  # a ZIP: an .xlsx workbook
        from openpyxl import load_workbook  # noqa: PLC0415 - only for an import: not at start

        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
            cells = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is refused the same way
            raise HTTPException(
                422, {"code": "bad_workbook", "message": f"the Excel file cannot be read ({exc})"}
            ) from None
        return (cells[0] if cells else []), iter(cells[1:])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(
            422, {"code": "bad_encoding", "message": "the file is not UTF-8 text (CSV) or .xlsx"}
        ) from None
    reader = csv.reader(io.StringIO(text))
    return next(reader, []), reader


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rows(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    header, body = _table(data)
    heading = {h.strip(): n for n, h in enumerate(header) if h.strip()}
    unknown = [h for h in heading if not any(h in names for names in IMPORT_COLUMNS.values())]
    if unknown:
        raise HTTPException(
            422,
            {
                "code": "bad_columns",
                "message": f"unknown column(s) {', '.join(unknown)}; columns: "
                + ", ".join(f"{a}/{b}" for a, b in IMPORT_COLUMNS.values()),
            },
        )
    for number, raw in enumerate(body, start=2):
        row: dict[str, str] = {}
        for field, names in IMPORT_COLUMNS.items():
            for name in names:
                at = heading.get(name)
                if at is not None and at < len(raw) and raw[at].strip():
                    row[field] = raw[at].strip()
        if row:
            yield number, row


@router.post(
    "/clues/import",
    response_model=ImportOut,
    summary="Import clues from an Excel (.xlsx) or CSV (UTF-8) file with a header row: every "
    "good row taken, every other refused with its row number and reason",
)
def import_clues(
    ctx: Context,
    user: Annotated[User, Depends(grant("clues.submit"))],
    file: Annotated[
        UploadFile, File(description="Excel (.xlsx: its first sheet) or CSV (UTF-8, BOM or not)")
    ],
) -> ImportOut:
    data = file.file.read(MAX_IMPORT_BYTES + 1)  # a plain def: the database work is blocking
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(
            413, {"code": "too_large", "message": f"at most {MAX_IMPORT_BYTES} bytes a file"}
        )
    rows = list(_rows(data))
    if len(rows) > MAX_IMPORT_ROWS:
        raise HTTPException(
            422, {"code": "too_many_rows", "message": f"at most {MAX_IMPORT_ROWS} rows a file"}
        )
    taken: list[ClueOut] = []
    refusals: list[ImportRefusal] = []
    for number, row in rows:
        row["source"] = SOURCE_BY_NAME.get(row.get("source", ""), row.get("source", ""))
        if "urgent" in row:
            row["urgent"] = str(row["urgent"].lower() in ("1", "true", "yes", "是"))
        try:
            body = ClueBody.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            refusals.append(
                ImportRefusal(row=number, code="invalid", message=f"{where}: {first['msg']}")
            )
            continue
        try:
            taken.append(_take(ctx, user, _clue_in(body, None)))
        except WorkflowError as err:
            refusals.append(ImportRefusal(row=number, code=err.code, message=str(err)))
    return ImportOut(taken=taken, refused=refusals)
