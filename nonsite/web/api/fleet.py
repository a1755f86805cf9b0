"""Enterprises with their live status, silences (maintenance windows) and dead letters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import select

from alerts.case import aware
from alerts.noise import active_silences, add_silence
from alerts.schema import silences
from alerts.status import FLEET_ORDER, enterprise_status
from ingest.store import list_dead_letters
from nonsite.auth.users import User
from nonsite.config.model import EnterpriseConfig, MarkingConfig
from nonsite.web.context import WebContext
from nonsite.web.models import (
    DeadLetterOut,
    EnterpriseOut,
    ErrorOut,
    MarkingIn,
    MarkingOut,
    MarkingWithEnterpriseOut,
    MeterOut,
    OutletOut,
    SilenceIn,
    SilenceOut,
)
from nonsite.web.reported import Heard, ReportedSources
from nonsite.web.security import (
    ERRORS,
    Context,
    CurrentUser,
    may_see_enterprise,
    not_found,
    require,
)
from rules.markings import MARKING_TYPES
from rules.store import declare_marking, list_declared_markings

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=ERRORS)
MAX_MARKING = timedelta(days=31)
ARCHIVE_FILE = "archive.sqlite3"  # in the service's data directory (nonsite/service.py)
_REPORTED_LOCK = threading.Lock()


def reported_sources(request: Request, ctx: WebContext) -> Heard | None:
    """Which loggers and meters have ever sent anything (None: unknown here), from the
    application's reader, built on first use and again for a new configuration."""
    state = request.app.state
    with _REPORTED_LOCK:
        reader: ReportedSources | None = getattr(state, "reported_sources", None)
        if reader is None or reader.config is not ctx.config:
            reader = ReportedSources(ctx.config, ctx.config.service.data_dir / ARCHIVE_FILE)
            state.reported_sources = reader
    return reader.heard()


def enterprise_out(ctx: WebContext, e: EnterpriseConfig, heard: Heard | None) -> EnterpriseOut:
    unheard = heard.unheard(e) if heard is not None else []
    sources = len(e.outlets) + len(e.meters)
    with ctx.db.connect() as conn:
        status = enterprise_status(
            conn, e.id, never_reported=sources > 0 and len(unheard) == sources
        )
        declared = [d for d in list_declared_markings(conn) if d["enterprise_id"] == e.id]
    return EnterpriseOut(
        id=e.id,
        name=e.name,
        region=e.region,
        industry=e.industry,
        positive_list=e.positive_list,
        brigade=e.brigade,
        status=status["status"],
        status_zh=status["status_zh"],
        open_alarms=status["open_alarms"],
        open_warnings=status["open_warnings"],
        unreported_sources=unheard,
        outlets=[OutletOut(id=o.id, name=o.name, kind=o.kind, mn=o.mn) for o in e.outlets],
        meters=[MeterOut(id=m.id, name=m.name, role=m.role, rated_kw=m.rated_kw) for m in e.meters],
        markings=[MarkingOut(**_marking(m)) for m in e.markings]
        + [
            MarkingOut(**_declared_out(d).model_dump(include=set(MarkingOut.model_fields)))
            for d in declared
        ],
    )


def _marking(m: MarkingConfig) -> dict[str, Any]:
    return {k: getattr(m, k) for k in MarkingOut.model_fields}


@router.get(
    "/enterprises",
    response_model=list[EnterpriseOut],
    summary="The fleet and its status, what is red now first: 报警, 预警, 离线, 未上线, 停产, "
    "正常, then by name",
)
def list_enterprises(
    request: Request,
    ctx: Context,
    user: CurrentUser,
    region: Annotated[str | None, Query(max_length=100)] = None,
    industry: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[
        str | None,
        Query(pattern="^(alarm|offline|warning|never_reported|stopped|normal)$", max_length=16),
    ] = None,
) -> list[EnterpriseOut]:
    heard = reported_sources(request, ctx)
    out = []
    for e in ctx.config.enterprises:
        if not may_see_enterprise(user, e.id):
            continue
        if (region and e.region != region) or (industry and e.industry != industry):
            continue
        item = enterprise_out(ctx, e, heard)
        if status is None or item.status == status:
            out.append(item)
    return sorted(out, key=lambda item: (FLEET_ORDER.index(item.status), item.name, item.id))


@router.get(
    "/enterprises/{enterprise_id}",
    response_model=EnterpriseOut,
    responses={404: {"model": ErrorOut}},
)
def get_enterprise(
    request: Request,
    enterprise_id: Annotated[str, Path(max_length=64)],
    ctx: Context,
    user: CurrentUser,
) -> EnterpriseOut:
    for e in ctx.config.enterprises:
        if e.id == enterprise_id and may_see_enterprise(user, e.id):
            return enterprise_out(ctx, e, reported_sources(request, ctx))
    raise not_found(f"enterprise {enterprise_id}")


@router.get(
    "/markings",
    response_model=list[MarkingWithEnterpriseOut],
    summary="Declared markings (标记): periods excluded from exceedance judgement",
)
def list_markings(
    ctx: Context,
    user: CurrentUser,
    enterprise_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[MarkingWithEnterpriseOut]:
    out = []
    for e in ctx.config.enterprises:
        if not may_see_enterprise(user, e.id) or (enterprise_id and e.id != enterprise_id):
            continue
        out += [MarkingWithEnterpriseOut(enterprise_id=e.id, **_marking(m)) for m in e.markings]
    with ctx.db.connect() as conn:
        declared = list_declared_markings(conn)
    for d in declared:
        if not may_see_enterprise(user, d["enterprise_id"]):
            continue
        if enterprise_id and d["enterprise_id"] != enterprise_id:
            continue
        out.append(_declared_out(d))
    return out


def _declared_out(d: dict[str, Any]) -> MarkingWithEnterpriseOut:
    return MarkingWithEnterpriseOut(
        enterprise_id=d["enterprise_id"],
        outlet=d["outlet_id"],
        type=d["type"],
        start=d["start"],
        end=d["end"],
        factor=d["factor"],
        reason=d["reason"],
        source="declared",
        declared_by=d["declared_by"],
    )


@router.post(
    "/markings",
    response_model=MarkingWithEnterpriseOut,
    status_code=201,
    summary="Declare a marking (标记): the rules excuse the outlet's data in the period from "
    "the next clock tick on",
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def declare(
    body: MarkingIn,
    ctx: Context,
    user: Annotated[User, Depends(require("enterprise", "monitor"))],
) -> MarkingWithEnterpriseOut:
    enterprise_id = body.enterprise_id or user.enterprise_id
    enterprise = next((e for e in ctx.config.enterprises if e.id == enterprise_id), None)
    if enterprise is None or not may_see_enterprise(user, enterprise.id):
        raise not_found(f"enterprise {enterprise_id}")
    problem = None
    if body.outlet not in {o.id for o in enterprise.outlets}:
        problem = f"{body.outlet!r} is not an outlet of {enterprise.id}"
    elif body.type not in MARKING_TYPES:
        problem = f"unknown marking type {body.type!r}; known: {', '.join(MARKING_TYPES)}"
    elif body.end <= body.start:
        problem = "a marking must end after it starts"
    elif body.end - body.start > MAX_MARKING:
        problem = "a marking may last at most 31 days; declare another one after it"
    if problem:
        raise HTTPException(422, {"code": "bad_marking", "message": problem})
    with ctx.db.begin() as conn:
        marking_id = declare_marking(
            conn,
            enterprise_id=enterprise.id,
            outlet_id=body.outlet,
            type=body.type,
            start=body.start,
            end=body.end,
            factor=body.factor,
            reason=body.reason,
            declared_by=user.display_name or user.username,
        )
        [row] = [d for d in list_declared_markings(conn) if d["id"] == marking_id]
    return _declared_out(row)


def _silence(row: dict[str, Any]) -> SilenceOut:
    fields = {k: row[k] for k in SilenceOut.model_fields}
    for k in ("starts_at", "ends_at"):
        fields[k] = aware(fields[k])
    return SilenceOut(**fields)


@router.get("/silences", response_model=list[SilenceOut], summary="Maintenance windows")
def list_silences(
    ctx: Context,
    _user: Annotated[User, Depends(require("monitor", "supervisor", "admin"))],
    include_ended: bool = False,
) -> list[SilenceOut]:
    with ctx.db.connect() as conn:
        if include_ended:
            rows = conn.execute(select(silences).order_by(silences.c.id.desc()).limit(500)).all()
            return [_silence(dict(r._mapping)) for r in rows]
        return [_silence(s.__dict__) for s in active_silences(conn, datetime.now(UTC))]


@router.post(
    "/silences",
    response_model=SilenceOut,
    status_code=201,
    summary="Add a maintenance window (silence) by enterprise, outlet or rule",
    responses={422: {"model": ErrorOut}},
)
def create_silence(
    body: SilenceIn,
    ctx: Context,
    user: Annotated[User, Depends(require("monitor", "supervisor"))],
) -> SilenceOut:
    now = datetime.now(UTC)
    starts = body.starts_at or now
    try:
        with ctx.db.begin() as conn:
            sid = add_silence(
                conn,
                reason=body.reason,
                created_by=user.display_name or user.username,
                starts_at=starts,
                ends_at=body.ends_at,
                enterprise_id=body.enterprise_id,
                source_id=body.source_id,
                rule=body.rule,
                now=now,
            )
    except ValueError as exc:
        raise HTTPException(422, {"code": "bad_silence", "message": str(exc)}) from None
    return SilenceOut(
        id=sid,
        enterprise_id=body.enterprise_id,
        source_id=body.source_id,
        rule=body.rule,
        reason=body.reason,
        created_by=user.display_name or user.username,
        starts_at=starts,
        ends_at=body.ends_at,
    )


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterOut],
    summary="Frames that could not be used, and why",
)
def dead_letters(
    ctx: Context,
    _user: Annotated[User, Depends(require("monitor", "admin"))],
    reason: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    rows = list_dead_letters(ctx.db, reason=reason, limit=limit)
    return [
        DeadLetterOut(
            id=r.id,
            archive_seq=r.archive_seq,
            received_at=r.received_at,
            topic=r.topic,
            reason=r.reason,
            detail=r.detail,
            mn=r.mn,
        )
        for r in rows
    ]
