"""Cases: the queue with filters, one case with its evidence and audit trail, the workflow
actions, bulk verification, and the brigades' work orders."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import FileResponse, Response
from pydantic import Field
from sqlalchemy import ColumnElement, Connection, false, func, null, or_, select, tuple_
from sqlalchemy import case as sql_case
from starlette.background import BackgroundTask

from alerts.case import Case
from alerts.cases import permitted
from alerts.clues import CLUE_RULE
from alerts.quantity import quantity
from alerts.schema import cases, work_orders
from alerts.templates import TIER_NAMES, factor_name, rule_name
from alerts.workflow import INSPECTION_RULE, STATE_NAMES, TRANSITIONS, WorkflowError
from ingest.china_time import CHINA_TZ, stored_utc_or_none
from nonsite.auth import User
from nonsite.web.case_export import (
    CSV_TYPE,
    DUE_BY_STATE,
    EXPORT_MAX_ROWS,
    XLSX_TYPE,
    due_of,
    export_rows,
    write_export,
)
from nonsite.web.context import WebContext
from nonsite.web.models import (
    ActionIn,
    BulkResultOut,
    BulkVerifyIn,
    CaseDetailOut,
    CaseEventOut,
    CaseOut,
    CasePage,
    ErrorOut,
    OrderOut,
    QuantityOut,
    WorkOrderOut,
    china_if_naive,
)
from nonsite.web.refusals import refused
from nonsite.web.request_keys import RequestKey, keyed_transaction, member_key, own_request_key
from nonsite.web.security import ERRORS, Context, CurrentUser, not_found, require, visible_cases
from rules.findings import RULES

router = APIRouter(prefix="/api/v1", tags=["cases"], responses=ERRORS)

CaseId = Annotated[int, Path(ge=1, le=2**62, description="the case's number")]
State = Annotated[str, Field(max_length=16)]
PEOPLE_ACTIONS = tuple(a for a, t in TRANSITIONS.items() if t.roles - {"system"})


def case_out(ctx: WebContext, case: Case) -> CaseOut:
    info = ctx.book.policy.enterprise(case.enterprise_id)
    due_at, due_kind = due_of(case.state, case.explain_due, case.feedback_due)
    q = quantity(case)
    return CaseOut(
        id=case.id,
        enterprise_id=case.enterprise_id,
        enterprise_name=info.name,
        source_id=case.source_id,
        source_name=(
            f"线索{case.source_id.removeprefix('clue-')}号"
            if case.rule == CLUE_RULE
            else f"{case.source_id.removeprefix('draw-')} 双随机抽查"
            if case.rule == INSPECTION_RULE
            else info.source_names.get(case.source_id, "")
        ),
        rule=case.rule,
        kind=(
            "clue"
            if case.rule == CLUE_RULE
            else "inspection"
            if case.rule == INSPECTION_RULE
            else "rule"
        ),
        rule_name=rule_name(case.rule),
        factor=case.factor,
        factor_name=factor_name(case.factor),
        tier=case.tier,  # type: ignore[arg-type]
        tier_zh=TIER_NAMES.get(case.tier, case.tier),
        state=case.state,
        state_zh=STATE_NAMES.get(case.state, case.state),
        condition=case.condition,  # type: ignore[arg-type]
        positive_list=case.positive_list,
        opened_at=case.opened_at,
        first_seen=case.first_seen,
        last_seen=case.last_seen,
        count=case.count,
        value=case.value,
        peak_value=case.peak_value,
        peak_multiple=case.peak_multiple if q.exceedance else None,
        limit=case.limit_value,
        unit=case.unit,
        quantity=QuantityOut(**asdict(q)),
        recurrence=case.recurrence,
        flaps=case.flaps,
        escalation=case.escalation,
        explain_due=case.explain_due,
        feedback_due=case.feedback_due,
        due_at=due_at,
        due_kind=due_kind,
        overdue=case.overdue,
        brigade=case.brigade,
        assignee=case.assignee,
        disposition=case.disposition,
        case_number=case.case_number,
        closed_at=case.closed_at,
        recheck_until=case.recheck_until,
        version=case.version,
    )


def work_order_out(row: dict[str, Any], now: datetime) -> WorkOrderOut:
    due = stored_utc_or_none(row["due_at"])
    assert due is not None
    return WorkOrderOut(
        id=row["id"],
        case_id=row["case_id"],
        brigade=row["brigade"],
        kind=row["kind"],
        state=row["state"],
        created_at=stored_utc_or_none(row["created_at"]),  # type: ignore[arg-type]
        created_by=row["created_by"],
        due_at=due,
        overdue=row["state"] in ("open", "on_site") and due < now,
        outcome=row["outcome"],
        case_number=row["case_number"],
        reported_at=stored_utc_or_none(row["reported_at"]),
    )


def _visible_case(
    ctx: WebContext, user: User, case_id: int, conn: Connection | None = None
) -> Case:
    if conn is None:
        with ctx.db.connect() as own:
            return _visible_case(ctx, user, case_id, own)
    row = conn.execute(select(cases).where(cases.c.id == case_id, visible_cases(user))).first()
    if row is None:
        raise not_found(f"case {case_id}")
    return Case.from_row(row)


def allowed_actions(case: Case, user: User) -> list[str]:
    actor = user.actor()
    out: list[str] = []
    for action in PEOPLE_ACTIONS:
        try:
            permitted(case, action, actor)
        except WorkflowError:
            continue
        out.append(action)
    return out


def related(
    ctx: WebContext, case: Case
) -> tuple[Literal["outlet", "meter", "other"], list[str], list[OrderOut]]:
    """What the case page charts with a case: the kind of its source and, for a meter, the
    meters linked to it (a control device and the production it serves) and the orders that
    name it (C5, C6)."""
    ent = next((e for e in ctx.config.enterprises if e.id == case.enterprise_id), None)
    if ent is None:
        return "other", [], []
    if any(o.id == case.source_id for o in ent.outlets):
        return "outlet", [], []
    meter = next((m for m in ent.meters if m.id == case.source_id), None)
    if meter is None:
        return "other", [], []
    linked = [m.id for m in ent.meters if case.source_id in m.serves] + list(meter.serves)
    orders = [
        OrderOut(kind=o.kind, reference=o.reference, start=o.start, end=o.end, daily=o.daily)
        for o in ent.orders
        if case.source_id in o.devices
    ]
    return "meter", list(dict.fromkeys([meter.id, *linked])), orders


# What the queue shows, and the export writes: the same filters and order for both.
@dataclass(frozen=True, slots=True)
class CaseQuery:
    state: list[str] | None
    tier: str | None
    rule: str | None
    enterprise_id: str | None
    open_only: bool
    since: datetime | None
    until: datetime | None
    q: str | None
    sort: str | None


SORT_KEYS = ("id", "enterprise", "source", "rule", "tier", "state", "count", "last_seen",
             "opened_at", "due")  # fmt: skip
SORT_PATTERN = f"^-?({'|'.join(SORT_KEYS)})$"


def case_query(
    state: Annotated[list[State] | None, Query(max_length=20)] = None,
    tier: Annotated[str | None, Query(pattern="^(warning|alarm)$", max_length=8)] = None,
    rule: Annotated[
        str | None,
        Query(
            max_length=16,
            description="a rule's code in any case (b8 is B8), or a part of its Chinese name "
            "(超标: A3, A4, A5-1)",
        ),
    ] = None,
    enterprise_id: Annotated[str | None, Query(max_length=64)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    since: Annotated[
        datetime | None, Query(description="last seen at or after; no offset: China time")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="opened before; no offset: China time")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="search: a part of an enterprise's name, id or region, or of an "
            "outlet's or meter's MN, id or name; a number is also a case number",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            pattern=SORT_PATTERN,
            max_length=16,
            description="a column, - for descending; default: overdue first, then 报警 before "
            "预警, then the most recently seen",
        ),
    ] = None,
) -> CaseQuery:
    return CaseQuery(state, tier, rule, enterprise_id, open_only, since, until, q, sort)


Filters = Annotated[CaseQuery, Depends(case_query)]


def due_column() -> ColumnElement[Any]:
    """``due_of`` in SQL: the deadline each case waits on (NULL: none)."""
    return sql_case(
        *[
            (cases.c.state.in_([s for s, k in DUE_BY_STATE.items() if k == kind]), column)
            for kind, column in (
                ("explanation", cases.c.explain_due),
                ("feedback", cases.c.feedback_due),
            )
        ],
        else_=null(),
    )


def _search(ctx: WebContext, text: str) -> ColumnElement[bool]:
    """Cases of the enterprises, outlets and meters whose name, id, region or MN contains the
    text (the configuration holds them, not the case table)."""
    needle = text.strip().casefold()
    ents: set[str] = set()
    sources: set[tuple[str, str]] = set()
    for e in ctx.config.enterprises:
        if any(needle in x.casefold() for x in (e.name, e.id, e.region)):
            ents.add(e.id)
            continue
        for o in e.outlets:
            if any(needle in x.casefold() for x in (o.mn, o.id, o.name)):
                sources.add((e.id, o.id))
        for m in e.meters:
            if any(needle in x.casefold() for x in (m.id, m.name, m.mn or "")):
                sources.add((e.id, m.id))
    found: list[ColumnElement[bool]] = []
    if ents:
        found.append(cases.c.enterprise_id.in_(sorted(ents)))
    if sources:
        found.append(tuple_(cases.c.enterprise_id, cases.c.source_id).in_(sorted(sources)))
    if needle.lstrip("#").isdigit() and len(needle) < 19:
        found.append(cases.c.id == int(needle.lstrip("#")))
    return or_(*found) if found else false()


def _rules(text: str) -> ColumnElement[bool]:
    """A rule's code in any case, or the rules whose Chinese name contains the text."""
    code = text.strip().upper()
    named = [r for r in RULES if text.strip() and text.strip() in rule_name(r)]
    return or_(func.upper(cases.c.rule) == code, cases.c.rule.in_(named))


def case_filter(ctx: WebContext, user: User, f: CaseQuery) -> list[ColumnElement[bool]]:
    where = [visible_cases(user)]
    if f.state:
        where.append(cases.c.state.in_(f.state))
    if f.tier:
        where.append(cases.c.tier == f.tier)
    if f.rule and f.rule.strip():
        where.append(_rules(f.rule))
    if f.enterprise_id:
        where.append(cases.c.enterprise_id == f.enterprise_id)
    if f.open_only:
        where.append(cases.c.open_key.is_not(None))
    if f.since:
        where.append(cases.c.last_seen >= china_if_naive(f.since))
    if f.until:
        where.append(cases.c.opened_at < china_if_naive(f.until))
    if f.q and f.q.strip():
        where.append(_search(ctx, f.q))
    return where


def case_order(ctx: WebContext, f: CaseQuery, now: datetime) -> list[ColumnElement[Any]]:
    """The queue's order. By default what needs someone now comes first: overdue cases, then
    报警 before 预警, then the most recently seen. A chosen column sorts by itself (cases
    without a deadline last either way), then by number, newest first."""
    due = due_column()
    tier_rank = sql_case((cases.c.tier == "alarm", 0), else_=1)
    if not f.sort:
        overdue = sql_case((due < now, 0), else_=1)
        return [overdue, tier_rank, cases.c.last_seen.desc(), cases.c.id.desc()]
    key = f.sort.lstrip("-")
    names = {e.id: e.name for e in ctx.config.enterprises}
    columns: dict[str, ColumnElement[Any]] = {
        "id": cases.c.id,
        "enterprise": (
            sql_case(names, value=cases.c.enterprise_id, else_=cases.c.enterprise_id)
            if names
            else cases.c.enterprise_id
        ),
        "source": cases.c.source_id,
        "rule": cases.c.rule,
        "tier": tier_rank,
        "state": sql_case(
            {s: i for i, s in enumerate(STATE_NAMES)}, value=cases.c.state, else_=len(STATE_NAMES)
        ),
        "count": cases.c.count,
        "last_seen": cases.c.last_seen,
        "opened_at": cases.c.opened_at,
        "due": due,
    }
    column = columns[key]
    first = [due.is_(None)] if key == "due" else []
    return [*first, column.desc() if f.sort.startswith("-") else column.asc(), cases.c.id.desc()]


@router.get(
    "/cases",
    response_model=CasePage,
    summary="The case queue, filtered, sorted and paged (total: all that the filter matches)",
)
def list_cases(
    ctx: Context,
    user: CurrentUser,
    f: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> CasePage:
    now = datetime.now(UTC)
    where = case_filter(ctx, user, f)
    with ctx.db.connect() as conn:
        total = conn.execute(select(func.count()).select_from(cases).where(*where)).scalar_one()
        rows = conn.execute(
            select(cases)
            .where(*where)
            .order_by(*case_order(ctx, f, now))
            .limit(limit)
            .offset(offset)
        ).all()
    return CasePage(total=total, items=[case_out(ctx, Case.from_row(r)) for r in rows])


@router.get(
    "/cases/export",
    response_class=Response,
    summary=f"The case queue as CSV or Excel: every case the filter matches (at most "
    f"{EXPORT_MAX_ROWS:,}), in the queue's order, China time, Chinese headers and names",
    responses={
        200: {
            "content": {CSV_TYPE: {}, XLSX_TYPE: {}},
            "description": "a file to save (Content-Disposition: attachment)",
        },
        422: {"model": ErrorOut, "description": "export_too_large: narrow the filter"},
    },
)
def export_cases(
    ctx: Context,
    user: CurrentUser,
    f: Filters,
    format: Annotated[Literal["csv", "xlsx"], Query(description="csv or xlsx")] = "csv",
) -> Response:
    now = datetime.now(UTC)
    where = case_filter(ctx, user, f)
    with ctx.db.connect() as conn:
        total = conn.execute(select(func.count()).select_from(cases).where(*where)).scalar_one()
        if total > EXPORT_MAX_ROWS:
            raise HTTPException(
                422,
                {
                    "code": "export_too_large",
                    "message": f"{total:,} cases match; an export holds at most "
                    f"{EXPORT_MAX_ROWS:,}: narrow the filter (e.g. the time range)",
                },
            )
        rows = conn.execute(
            # with the evidence: each row's quantity (alerts.quantity) reads its trail
            select(cases)
            .where(*where)
            .order_by(*case_order(ctx, f, now))
            .execution_options(yield_per=2000)  # PostgreSQL: a server-side cursor, not all rows
        )
        path = write_export(format, export_rows(ctx, (r._mapping for r in rows), now))
    stamp = now.astimezone(CHINA_TZ).strftime("%Y%m%d-%H%M")
    return FileResponse(
        path,
        media_type=CSV_TYPE if format == "csv" else XLSX_TYPE,
        filename=f"告警队列-{stamp}.{format}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetailOut,
    summary="A case with its evidence, work order, audit trail and the caller's actions",
    responses={404: {"model": ErrorOut}},
)
def get_case(case_id: CaseId, ctx: Context, user: CurrentUser) -> CaseDetailOut:
    case = _visible_case(ctx, user, case_id)
    now = datetime.now(UTC)
    source_kind, meters, orders = related(ctx, case)
    with ctx.db.connect() as conn:
        events = ctx.book.events(conn, case_id)
        order = ctx.book.current_work_order(conn, case_id)
    return CaseDetailOut(
        case=case_out(ctx, case),
        evidence={
            "first": case.evidence.first,
            "trail": case.evidence.trail,
            "active": case.evidence.active,
            "peaks": case.evidence.peaks,
        },
        work_order=work_order_out(order, now) if order else None,
        events=[CaseEventOut(**e) for e in events],
        actions=allowed_actions(case, user),
        source_kind=source_kind,
        meters=meters,
        orders=orders,
    )


@router.post(
    "/cases/{case_id}/actions/{action}",
    response_model=CaseOut,
    summary="Take a workflow action (remind, explain, verify, dispatch, arrive, report, close, "
    "comment, escalate)",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def act(
    case_id: CaseId,
    action: Annotated[str, Path(max_length=32)],
    body: ActionIn,
    ctx: Context,
    user: CurrentUser,
    idempotency_key: RequestKey = None,
) -> CaseOut:
    if action not in PEOPLE_ACTIONS:
        raise HTTPException(404, {"code": "unknown_action", "message": f"no action {action!r}"})
    key = idempotency_key or own_request_key()

    def take(conn: Connection) -> Case:
        _visible_case(ctx, user, case_id, conn)
        return ctx.book.act(
            conn,
            case_id,
            action,
            user.actor(),
            note=body.note,
            outcome=body.outcome,
            brigade=body.brigade,
            kind=body.kind,
            due_at=body.due_at,
            case_number=body.case_number,
            refs=dict(body.refs),
            expected_version=body.version,
            request_key=key,
        )

    try:
        case = keyed_transaction(ctx, take, version_pinned=body.version is not None)
    except WorkflowError as err:
        raise refused(err) from None
    return case_out(ctx, case)


@router.post(
    "/cases/verify",
    response_model=BulkResultOut,
    summary="Verify many cases at once (the monitoring centre's bulk verification)",
)
def bulk_verify(
    body: BulkVerifyIn,
    ctx: Context,
    user: Annotated[User, Depends(require("monitor"))],
    idempotency_key: RequestKey = None,
) -> BulkResultOut:
    done: list[int] = []
    failed: dict[int, ErrorOut] = {}
    key = idempotency_key or own_request_key()
    for case_id in dict.fromkeys(body.case_ids):

        def verify(conn: Connection, case_id: int = case_id) -> Case:
            _visible_case(ctx, user, case_id, conn)
            return ctx.book.act(
                conn,
                case_id,
                "verify",
                user.actor(),
                note=body.note,
                outcome=body.outcome,
                request_key=member_key(key, case_id),
            )

        try:
            # One transaction each: one refusal stops no other.
            keyed_transaction(ctx, verify, version_pinned=False)
            done.append(case_id)
        except WorkflowError as err:
            failed[case_id] = ErrorOut(code=err.code, message=str(err))
        except HTTPException as exc:
            detail: dict[str, str] = exc.detail  # type: ignore[assignment]
            failed[case_id] = ErrorOut(**detail)
    return BulkResultOut(done=done, refused=failed)


@router.get(
    "/work-orders",
    response_model=list[WorkOrderOut],
    summary="Work orders (派单): a brigade's own for enforcers, all for supervisors",
)
def list_work_orders(
    ctx: Context,
    user: Annotated[User, Depends(require("supervisor", "enforcer", "monitor", "admin"))],
    brigade: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10**9, description="for paging")] = 0,
) -> list[WorkOrderOut]:
    # The id breaks ties so that pages neither repeat nor skip an order.
    query = (
        select(work_orders)
        .order_by(work_orders.c.due_at, work_orders.c.id)
        .limit(limit)
        .offset(offset)
    )
    if user.role == "enforcer":
        query = query.where(work_orders.c.brigade == (user.brigade or ""))
    elif brigade:
        query = query.where(work_orders.c.brigade == brigade)
    if state:
        query = query.where(work_orders.c.state == state)
    now = datetime.now(UTC)
    with ctx.db.connect() as conn:
        rows = conn.execute(query).all()
    return [work_order_out(dict(r._mapping), now) for r in rows]
