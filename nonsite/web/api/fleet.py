"""Enterprises with their live status, silences (maintenance windows) and dead letters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import select

from alerts.noise import add_silence
from alerts.schema import silences
from alerts.silence_log import (
    SilenceError,
    edit_silence,
    end_silence,
    get_silence,
    last_changes,
    silence_trail,
)
from alerts.status import FLEET_ORDER, enterprise_status
from ingest.china_time import stored_utc_or_none
from ingest.store import list_dead_letters
from nonsite.auth import User
from nonsite.config.model import EnterpriseConfig, MarkingConfig
from nonsite.web.context import WebContext
from nonsite.web.models import (
    BrigadeOut,
    DeadLetterOut,
    EnterpriseOut,
    ErrorOut,
    MarkingIn,
    MarkingOut,
    MarkingWithEnterpriseOut,
    MeterOut,
    OutletOut,
    SilenceDetailOut,
    SilenceEditIn,
    SilenceEventOut,
    SilenceIn,
    SilenceOut,
)
from nonsite.web.quality import SourceIndex
from nonsite.web.reported import Heard, ReportedSources
from nonsite.web.security import (
    ERRORS,
    Context,
    CurrentUser,
    grant,
    may_see_enterprise,
    not_found,
    require,
)
from rules.markings import MARKING_TYPES
from rules.store import declare_marking, list_declared_markings

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=ERRORS)
MAX_MARKING = timedelta(days=31)
SilenceId = Annotated[int, Path(ge=1, le=2**62, description="the silence's number")]
_REPORTED_LOCK = threading.Lock()


def reported_sources(request: Request, ctx: WebContext) -> Heard | None:
    """Which loggers and meters have ever sent anything (None: unknown here), from the
    application's reader, built on first use and again for a new configuration."""
    state = request.app.state
    with _REPORTED_LOCK:
        reader: ReportedSources | None = getattr(state, "reported_sources", None)
        if reader is None or reader.config is not ctx.config:
            reader = ReportedSources(ctx.config, ctx.config.service.archive_path)
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
        if not may_see_enterprise(user, e.id, e.region):
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
        if e.id == enterprise_id and may_see_enterprise(user, e.id, e.region):
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


# -- silences (maintenance windows) ------------------------------------------------------------

SILENCE_STATUS = {"not_found": 404, "silence_ended": 409, "bad_silence": 422}


def _silence(
    row: dict[str, Any], now: datetime, changed: dict[str, str] | None = None
) -> SilenceOut:
    starts, ends = stored_utc_or_none(row["starts_at"]), stored_utc_or_none(row["ends_at"])
    assert starts is not None
    assert ends is not None
    return SilenceOut(
        id=row["id"],
        enterprise_id=row["enterprise_id"],
        source_id=row["source_id"],
        rule=row["rule"],
        reason=row["reason"],
        created_by=row["created_by"],
        starts_at=starts,
        ends_at=ends,
        active=starts <= now < ends,
        edited_by=(changed or {}).get("edit"),
        ended_by=(changed or {}).get("end"),
    )


def _silence_refused(err: SilenceError) -> HTTPException:
    return HTTPException(SILENCE_STATUS.get(err.code, 422), {"code": err.code, "message": str(err)})


def _check_scope(ctx: WebContext, body: SilenceIn) -> None:
    """A silence names a configured enterprise and one of its outlets or meters, so that a
    typing error cannot make a window that silences nothing."""
    if body.enterprise_id is None:
        return
    ent = next((e for e in ctx.config.enterprises if e.id == body.enterprise_id), None)
    if ent is None:
        raise HTTPException(
            422, {"code": "bad_silence", "message": f"no enterprise {body.enterprise_id!r}"}
        )
    sources = {o.id for o in ent.outlets} | {m.id for m in ent.meters}
    if body.source_id is not None and body.source_id not in sources:
        message = f"{body.source_id!r} is no outlet or meter of {ent.id}"
        raise HTTPException(422, {"code": "bad_silence", "message": message})


@router.get(
    "/silences",
    response_model=list[SilenceOut],
    summary="Maintenance windows: those not ended (in force or to come), or all",
)
def list_silences(
    ctx: Context,
    _user: Annotated[User, Depends(grant("silences"))],
    include_ended: bool = False,
) -> list[SilenceOut]:
    now = datetime.now(UTC)
    query = select(silences)
    if include_ended:
        query = query.order_by(silences.c.id.desc()).limit(500)
    else:
        query = query.where(silences.c.ends_at > now).order_by(silences.c.starts_at, silences.c.id)
    with ctx.db.connect() as conn:
        rows = conn.execute(query).all()
        changed = last_changes(conn, [r.id for r in rows])
    return [_silence(dict(r._mapping), now, changed.get(r.id)) for r in rows]


@router.get(
    "/silences/{silence_id}",
    response_model=SilenceDetailOut,
    summary="A maintenance window with its record: who added, changed and ended it",
    responses={404: {"model": ErrorOut}},
)
def get_silence_detail(
    silence_id: SilenceId, ctx: Context, _user: Annotated[User, Depends(grant("silences"))]
) -> SilenceDetailOut:
    now = datetime.now(UTC)
    try:
        with ctx.db.connect() as conn:
            row = get_silence(conn, silence_id)
            trail = silence_trail(conn, silence_id)
            changed = last_changes(conn, [silence_id]).get(silence_id)
    except SilenceError as err:
        raise _silence_refused(err) from None
    return SilenceDetailOut(
        **_silence(row, now, changed).model_dump(),
        events=[SilenceEventOut(**e) for e in trail],
    )


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
    user: Annotated[User, Depends(grant("silences.edit"))],
) -> SilenceOut:
    now = datetime.now(UTC)
    starts = body.starts_at or now
    _check_scope(ctx, body)
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
            row = get_silence(conn, sid)
    except ValueError as exc:
        raise HTTPException(422, {"code": "bad_silence", "message": str(exc)}) from None
    return _silence(row, now)


@router.patch(
    "/silences/{silence_id}",
    response_model=SilenceOut,
    summary="Change a maintenance window that has not ended: its end, its reason, or a start "
    "that has not come (kept in its record)",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def edit_silence_endpoint(
    silence_id: SilenceId,
    body: SilenceEditIn,
    ctx: Context,
    user: Annotated[User, Depends(grant("silences.edit"))],
) -> SilenceOut:
    now = datetime.now(UTC)
    try:
        with ctx.db.begin() as conn:
            row = edit_silence(
                conn,
                silence_id,
                actor=user.display_name or user.username,
                role=user.role,
                now=now,
                reason=body.reason,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
            )
            changed = last_changes(conn, [silence_id]).get(silence_id)
    except SilenceError as err:
        raise _silence_refused(err) from None
    return _silence(row, now, changed)


@router.delete(
    "/silences/{silence_id}",
    response_model=SilenceOut,
    summary="End a maintenance window now (kept, with who ended it; one not started never starts)",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def end_silence_endpoint(
    silence_id: SilenceId,
    ctx: Context,
    user: Annotated[User, Depends(grant("silences.edit"))],
) -> SilenceOut:
    now = datetime.now(UTC)
    try:
        with ctx.db.begin() as conn:
            row = end_silence(
                conn, silence_id, actor=user.display_name or user.username, role=user.role, now=now
            )
            changed = last_changes(conn, [silence_id]).get(silence_id)
    except SilenceError as err:
        raise _silence_refused(err) from None
    return _silence(row, now, changed)


# -- dead letters and brigades -------------------------------------------------------------------


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterOut],
    summary="Frames that could not be used, why, and whose logger or meter sent them",
)
def dead_letters(
    ctx: Context,
    _user: Annotated[User, Depends(grant("dead_letters"))],
    reason: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    rows = list_dead_letters(ctx.db, reason=reason, limit=limit)
    sources = SourceIndex(ctx.config)
    out = []
    for r in rows:
        ref = sources.find(r.mn, r.topic)
        out.append(
            DeadLetterOut(
                id=r.id,
                archive_seq=r.archive_seq,
                received_at=r.received_at,
                topic=r.topic,
                reason=r.reason,
                detail=r.detail,
                mn=r.mn,
                enterprise_id=ref.enterprise_id if ref else None,
                enterprise_name=ref.enterprise_name if ref else None,
                source_id=ref.source_id if ref else None,
                source_name=ref.source_name if ref else None,
            )
        )
    return out


@router.get(
    "/brigades",
    response_model=list[BrigadeOut],
    summary="The enforcement brigades (执法大队), by their configured names",
)
def list_brigades(ctx: Context, _user: CurrentUser) -> list[BrigadeOut]:
    return [BrigadeOut(id=b.id, name=b.name) for b in ctx.config.brigades]
