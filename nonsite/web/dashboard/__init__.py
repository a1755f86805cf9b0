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
from nonsite.auth.users import ROLE_NAMES, User
from nonsite.web.context import WebContext
from nonsite.web.security import optional_user, visible_cases

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
static = StaticFiles(directory=HERE / "static")
router = APIRouter(include_in_schema=False)

# The pages each role has in its menu (the API enforces the rules; this only hides the rest).
PAGES = {
    "fleet": ("monitor", "supervisor", "enforcer", "admin"),
    "cases": ("monitor", "supervisor", "enforcer", "enterprise", "admin"),
    "work_orders": ("monitor", "supervisor", "enforcer", "admin"),
    "enterprise": ("enterprise",),
    "ops": ("monitor", "supervisor", "admin"),
}
HOME = {"enterprise": "/enterprise", "enforcer": "/work-orders"}

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
            "pages": [p for p, roles in PAGES.items() if user.role in roles],
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


@router.get("/ops", response_class=HTMLResponse)
def ops_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "ops")


@router.get("/enterprise", response_class=HTMLResponse)
def enterprise_page(request: Request, user: MaybeUser) -> Response:
    return _page(request, user, "enterprise")


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
