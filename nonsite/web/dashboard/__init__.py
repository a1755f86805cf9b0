"""The monitoring station's dashboard: server-rendered page shells (Jinja2) whose content the
page script fills from the API, in Chinese first with an English switch. Every asset is served
from ``static/`` (uPlot is vendored): nothing comes from a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.convertors import Convertor, register_url_convertor

from alerts.schema import cases
from nonsite import __version__
from nonsite.auth import ROLE_NAMES, ROLES, User
from nonsite.web.context import WebContext
from nonsite.web.security import GRANTS, optional_user, visible_cases

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
static = StaticFiles(directory=HERE / "static")
router = APIRouter(include_in_schema=False)

# What each page reads (security.GRANTS): a role opens a page, and has it in its menu, only
# when it may read all of it. The API enforces the grants; this keeps the menu in step.
READS = {
    "fleet": ("fleet",),
    "cases": ("cases",),
    "work_orders": ("work_orders", "cases"),
    "enterprise": ("own_enterprise", "cases", "outlets"),
    "ops": ("readiness", "silences", "dead_letters", "quality"),
    "outlet": ("outlets",),  # reached from a fleet card, a case or 本企业; not in the menu
    "clues": ("clues",),
    "risk": ("risk",),
    "statistics": ("statistics",),
}
PAGES = {
    page: tuple(r for r in ROLES if all(r in GRANTS[g] for g in grants))
    for page, grants in READS.items()
}
MENU = ("fleet", "cases", "work_orders", "clues", "risk", "statistics", "enterprise", "ops")
HOME = {
    "enterprise": "/enterprise",
    "enforcer": "/work-orders",
    "township": "/clues",
    "intake": "/clues",
    "legal": "/cases",
}
PATHS = {
    "fleet": "/",
    "cases": "/cases",
    "work_orders": "/work-orders",
    "clues": "/clues",
    "risk": "/risk",
    "statistics": "/statistics",
    "enterprise": "/enterprise",
    "ops": "/ops",
}


def page_href(page: str, role: str) -> str:
    """A menu entry's address: the fleet is ``/`` except for a role whose home is elsewhere."""
    if page == "fleet" and role in HOME:
        return "/fleet"
    return PATHS[page]


def menu(role: str) -> list[tuple[str, str]]:
    """The role's menu: (page, address) of each page it may open, in the menu's order."""
    return [(p, page_href(p, role)) for p in MENU if role in PAGES[p]]


def scope_name(request: Request, user: User) -> str:
    """The brigade or the enterprise a user belongs to, by its configured name."""
    ctx: WebContext = request.app.state.web
    if user.brigade:
        return next((b.name for b in ctx.config.brigades if b.id == user.brigade), user.brigade)
    if user.enterprise_id:
        found = (e.name for e in ctx.config.enterprises if e.id == user.enterprise_id)
        return next(found, user.enterprise_id)
    return user.area or ""


templates.env.globals["menu"] = menu
templates.env.globals["scope_name"] = scope_name

MaybeUser = Annotated[User | None, Depends(optional_user)]


def _page(
    request: Request, user: User | None, page: str, template: str | None = None, **extra: object
) -> Response:
    if user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if user.role not in PAGES.get(page, ()):
        return RedirectResponse(HOME.get(user.role, "/"), status_code=303)
    return templates.TemplateResponse(
        request,
        f"{template or page}.html",
        {
            "page": page,
            "user": user,
            "role_name": ROLE_NAMES.get(user.role, user.role),
            "pages": [p for p in MENU if user.role in PAGES[p]],
            "version": __version__,
            **extra,
        },
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"version": __version__})


@router.get("/", response_class=HTMLResponse)
def fleet_page(request: Request, user: MaybeUser) -> Response:
    if user is not None and user.role in HOME:
        return RedirectResponse(HOME[user.role], status_code=303)
    return _page(request, user, "fleet")


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page_anywhere(request: Request, user: MaybeUser) -> Response:
    """The fleet for a role whose home is another page (the enforcer's menu leads here)."""
    return _page(request, user, "fleet")


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "cases")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: str, request: Request, user: MaybeUser) -> Response:
    if user is not None and not _case_visible(request, user, case_id):
        return not_found_page(request, user)  # also another's case: as if it did not exist
    return _page(request, user, "cases", "case", case_id=case_id)


@router.get("/work-orders", response_class=HTMLResponse)
def work_orders_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "work_orders")


@router.get("/clues", response_class=HTMLResponse)
def clues_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "clues")


@router.get("/risk", response_class=HTMLResponse)
def risk_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "risk")


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "statistics")


@router.get("/ops", response_class=HTMLResponse)
def ops_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "ops")


@router.get("/enterprise", response_class=HTMLResponse)
def enterprise_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "enterprise")


@router.get("/enterprises/{enterprise_id}/outlets/{outlet_id}", response_class=HTMLResponse)
def outlet_page(enterprise_id: str, outlet_id: str, request: Request, user: MaybeUser) -> Response:
    """An outlet's factors, limits, flags and hour values over a chosen range (the page reads
    the series API, which answers 404 for another's enterprise)."""
    return _page(request, user, "outlet", enterprise_id=enterprise_id, outlet_id=outlet_id)


# -- not found ------------------------------------------------------------------------------


def _case_visible(request: Request, user: User, case_id: str) -> bool:
    if not case_id.isdigit() or len(case_id) > 18:
        return False
    ctx: WebContext = request.app.state.web
    with ctx.db.connect() as conn:
        query = select(cases.c.id).where(cases.c.id == int(case_id), visible_cases(user))
        return conn.execute(query).first() is not None


def not_found_page(request: Request, user: User | None) -> Response:
    """A page in Chinese saying so, with the way back (404)."""
    if user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return templates.TemplateResponse(
        request,
        "not_found.html",
        {
            "page": "not_found",
            "user": user,
            "role_name": ROLE_NAMES.get(user.role, user.role),
            "pages": [p for p, roles in PAGES.items() if user.role in roles],
            "version": __version__,
        },
        status_code=404,
    )


class _PagePath(Convertor[str]):
    """Any path outside the API and the static files: the rest is the dashboard's, so an
    unknown one there is an unknown page (the API's and the static files' stay theirs)."""

    regex = r"(?!(?:api|static)(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dashboard_page", _PagePath())


# Routed last (the service includes this router after the API's): what nothing else answered.
@router.api_route(
    "/{path:dashboard_page}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
)
def unknown_page(path: str, request: Request, user: MaybeUser) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise HTTPException(404, {"code": "not_found", "message": f"no {request.url.path}"})
    return not_found_page(request, user)
