"""A case's whole record (执法全过程记录) as a file, in China time: the same export as
``nonsite cases export`` (alerts/audit.py), for whoever may see the case; with the commands
to its logger (补遗, 校时) for the roles that may read commands (GRANTS["commands"])."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from alerts.audit import case_record, events_csv, to_json
from alerts.schema import cases
from nonsite.web.models import ErrorOut
from nonsite.web.security import (
    ERRORS,
    GRANTS,
    Context,
    CurrentUser,
    not_found,
    visible_cases,
)

router = APIRouter(prefix="/api/v1", tags=["cases"], responses=ERRORS)


@router.get(
    "/cases/{case_id}/record",
    summary="A case's whole record: JSON (the case, its audit trail with Chinese names, work "
    "orders, notifications, and for monitor, supervisor and admin the commands to its logger) "
    "or CSV of its audit trail (with those commands' rows), every instant in China time (+08:00)",
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}},
        404: {"model": ErrorOut},
    },
)
def case_record_file(
    case_id: Annotated[int, Path(ge=1, le=2**62)],
    ctx: Context,
    user: CurrentUser,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    with ctx.db.connect() as conn:
        found = conn.execute(
            select(cases.c.id).where(cases.c.id == case_id, visible_cases(user))
        ).first()
        if found is None:
            raise not_found(f"case {case_id}")
        may_read_commands = user.role in GRANTS["commands"]
        record = case_record(conn, ctx.book, case_id, commands=may_read_commands)
    name = f"case-{case_id}.{format}"
    if format == "csv":
        body, media = events_csv(record), "text/csv; charset=utf-8"
    else:
        body, media = to_json(record), "application/json"
    return Response(
        body.encode("utf-8"),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
