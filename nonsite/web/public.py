"""Public disclosure (公示), without a login: a page (server-rendered, no script) and a JSON
feed of what the rules require to be public, and nothing else.

- Penalty decisions in effect (``[public] decision_types``, kept ``keep_days``): 决定机关
  (``authority``), 行政相对人 (the enterprise's name), 处罚类别, 决定书文号, 处罚内容, the
  decision's date, the day it was published (the day it took effect: published at once) and
  the day it had to be published by (``deadline_working_days`` working days after the
  decision, "作出决定之日起7个工作日内"). Not the case, its evidence, the legal review or who
  worked it; a referral to the police or another department is not this authority's penalty
  and is not listed.
- The positive list (正面清单): its members and since when, and each approved change.
- Each enterprise's online status (联网状态): 在线, 离线 (its logger's offline case is open),
  未联网 (never heard from), or 状态未知 while the archive cannot say. Not its alarms, warnings
  or data.

Everything here is read by one module from the database and the configuration, so what is
public is what this file writes: ``tests/nonsite/web/test_public.py`` holds its fields.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import and_, select

from alerts.decisions import TYPES
from alerts.noise import OFFLINE_RULE
from alerts.positive_list import CHANGE_NAMES, changes, members
from alerts.schema import cases, decisions
from ingest.china_time import CHINA_TZ
from nonsite import __version__
from nonsite.web.context import WebContext
from nonsite.web.dashboard import templates

router = APIRouter(include_in_schema=False)

ONLINE_NAMES = {
    "online": "在线",
    "offline": "离线",
    "never_reported": "未联网",
    "unknown": "状态未知",
}


def _ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    if not ctx.config.public.enabled:
        raise HTTPException(404, {"code": "not_found", "message": "no public disclosure here"})
    return ctx


def _content(kind: str, amount_yuan: float | None) -> str:
    """处罚内容: the fine's amount, or the decision's kind."""
    if kind == "fine" and amount_yuan is not None:
        return f"罚款人民币 {amount_yuan:,.2f} 元"
    return TYPES[kind]


def disclosures(request: Request) -> dict[str, Any]:
    """What is public now, as the feed serves it."""
    ctx = _ctx(request)
    pub = ctx.config.public
    names = {e.id: e.name for e in ctx.config.enterprises}
    now = datetime.now(CHINA_TZ)
    since = now - timedelta(days=pub.keep_days)
    calendar = ctx.book.policy.calendar
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(decisions, cases.c.enterprise_id)
            .join(cases, cases.c.id == decisions.c.case_id)
            .where(
                decisions.c.state == "effective",
                decisions.c.type.in_(list(pub.decision_types)),
                decisions.c.proposed_at >= since,
            )
            .order_by(decisions.c.id.desc())
        ).all()
        configured = {e.id: e.positive_list for e in ctx.config.enterprises}
        member = members(conn, configured)
        list_changes = [c for c in changes(conn, 1000) if c.state == "approved" and c.decided_at]
        approved = {
            c.enterprise_id: c.decided_at for c in reversed(list_changes) if c.change == "enter"
        }
        offline = {
            r[0]
            for r in conn.execute(
                select(cases.c.enterprise_id).where(
                    and_(cases.c.rule == OFFLINE_RULE, cases.c.open_key.is_not(None))
                )
            )
        }
    heard = _heard(request, ctx)
    published = []
    for row in rows:
        d = row._mapping
        effective = d["reviewed_at"] or d["proposed_at"]
        decided: date = d["decided_on"] or effective.astimezone(CHINA_TZ).date()
        start = datetime.combine(decided, datetime.min.time(), CHINA_TZ)
        # the end of the last working day allowed: its date is the day before that midnight
        last = calendar.add_working_days(start, pub.deadline_working_days)
        deadline = (last.astimezone(CHINA_TZ) - timedelta(seconds=1)).date()
        published.append(
            {
                "authority": pub.authority,
                "enterprise": names.get(d["enterprise_id"], ""),
                "category": TYPES[d["type"]],
                "document_number": d["document_number"],
                "content": _content(d["type"], d["amount_yuan"]),
                "decided_on": decided.isoformat(),
                "published_on": effective.astimezone(CHINA_TZ).date().isoformat(),
                "publish_by": deadline.isoformat(),
            }
        )
    positive = [
        {
            "enterprise": names[e],
            "since": _day(approved.get(e)),
        }
        for e in names
        if member.get(e)
    ]
    status = []
    for e in ctx.config.enterprises:
        sources = len(e.outlets) + len(e.meters)
        if e.id in offline:
            state = "offline"
        elif heard is None:  # the archive cannot say yet: claim nothing
            state = "unknown"
        elif sources > 0 and len(heard.unheard(e)) == sources:
            state = "never_reported"
        else:
            state = "online"
        status.append({"enterprise": e.name, "status": state, "status_zh": ONLINE_NAMES[state]})
    adjusted = [  # each change in effect, newest first (动态调整, published)
        {"enterprise": names.get(c.enterprise_id, ""), "change": CHANGE_NAMES[c.change],
         "on": _day(c.decided_at)}
        for c in list_changes
        if c.decided_at is not None and c.decided_at >= since
    ]  # fmt: skip
    return {
        "authority": pub.authority,
        "as_of": now.isoformat(timespec="seconds"),
        "decisions": published,
        "positive_list": positive,
        "positive_list_changes": adjusted,
        "online_status": status,
    }


def _heard(request: Request, ctx: WebContext) -> Any:
    from nonsite.web.api.fleet import reported_sources  # noqa: PLC0415 - the fleet's reader

    return reported_sources(request, ctx)


def _day(at: datetime | None) -> str | None:
    return at.astimezone(CHINA_TZ).date().isoformat() if at is not None else None


@router.get("/public/disclosures.json")
def feed(request: Request) -> dict[str, Any]:
    return disclosures(request)


@router.get("/public", response_class=HTMLResponse)
def page(request: Request) -> Response:
    doc = disclosures(request)
    return templates.TemplateResponse(
        request, "public.html", {"doc": doc, "version": __version__, "as_of": doc["as_of"][:16]}
    )


__all__ = ["disclosures", "router"]
