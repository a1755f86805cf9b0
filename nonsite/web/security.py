"""Who is calling, and what they may see.

A browser carries a session cookie (HttpOnly, SameSite=Strict, so cross-site requests do not
carry it: that is the CSRF defence); a system sends ``Authorization: Bearer nst_…``. Roles
keep everyone in their lane: an enterprise user sees only its own enterprise, an enforcer the
cases its brigade has a work order for; reads of another's data answer 404, as if it did not
exist, so that nothing is learnt from probing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy import ColumnElement, Connection, and_, false, select, true

from alerts.schema import cases, work_orders
from alerts.workflow import HIDDEN_FROM_ENTERPRISE
from nonsite.auth import User
from nonsite.db_health import through_outage
from nonsite.web.context import WebContext

SESSION_COOKIE = "nonsite_session"


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def optional_user(request: Request, ctx: Annotated[WebContext, Depends(context)]) -> User | None:
    # Reads (and a touch that may be repeated): they wait through a failover as actions do.
    wait_s = ctx.config.database.retry_s
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        bearer = header[7:].strip()
        user = through_outage(lambda: ctx.users.token_user(bearer), wait_s)
        if user is None:
            raise HTTPException(401, {"code": "bad_token", "message": "unknown or revoked token"})
        return user
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return through_outage(lambda: ctx.users.session_user(token), wait_s)


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise HTTPException(401, {"code": "not_logged_in", "message": "log in first"})
    return user


CurrentUser = Annotated[User, Depends(current_user)]
Context = Annotated[WebContext, Depends(context)]


# Who may read what: the one table the API's checks and the dashboard's menu are both built
# from, so that a menu never offers a page whose data its role may not read. A page is in a
# role's menu when the role holds every grant the page reads (dashboard.PAGES).
EVERYONE = ("monitor", "supervisor", "enforcer", "enterprise", "admin", "legal")
GRANTS: dict[str, tuple[str, ...]] = {
    "fleet": ("monitor", "supervisor", "enforcer", "admin"),  # the fleet list and its status
    "cases": EVERYONE,  # in each role's scope (visible_cases)
    "work_orders": ("monitor", "supervisor", "enforcer", "admin"),
    "own_enterprise": ("enterprise",),  # its reminders, its markings
    "outlets": EVERYONE,  # an outlet's series, an enterprise user only its own
    "readiness": ("monitor", "supervisor", "admin"),
    "silences": ("monitor", "supervisor", "admin"),
    "silences.edit": ("monitor", "supervisor"),  # add, edit, end
    "dead_letters": ("monitor", "supervisor", "admin"),
    "quality": ("monitor", "supervisor", "admin"),
    "commands": ("monitor", "supervisor", "admin"),  # the audit of commands to loggers
    "commands.recall": ("monitor", "supervisor"),  # 补遗 and 校时: the monitoring work
    "commands.send": ("admin",),  # any command: the operator of the service only
    # Clues (alerts.clues): submitted by the centre, the supervisors, a township of its area
    # and the systems that send them; read in each role's scope (a township its area's, a
    # system its own).
    "clues.submit": ("monitor", "supervisor", "township", "intake"),
    "clues": ("monitor", "supervisor", "admin", "township", "intake"),
    "cases.clues": ("monitor", "supervisor", "enforcer", "admin"),  # a case's, in its scope
    # Evidence (alerts.evidence): attached to a case in its scope; a case's bundle (证据包)
    # exported by who works it for a court or the police.
    "evidence.attach": ("monitor", "supervisor", "enforcer", "enterprise"),
    "cases.bundle": ("monitor", "supervisor", "enforcer"),
    # Rectification steps and re-check decisions (alerts.rectification, alerts.rechecks):
    # each step's own roles are the workflow's; these may take one.
    "rectification": ("monitor", "supervisor", "enforcer", "enterprise"),
    # Decisions (alerts.decisions): recorded by the supervisors, the major ones reviewed by
    # the legal reviewer (法制审核), read by who sees the case.
    "decisions.record": ("supervisor",),
    "decisions.review": ("legal",),
    "decisions.queue": ("monitor", "supervisor", "admin", "legal"),
    "rechecks.plan": ("monitor", "supervisor"),  # a 回头看's date, method, brigade
    # Risk ratings (alerts.risk): the fleet's for who plans inspections; an enterprise reads
    # its own (enterprise_risk checks the scope); rated again on demand by the centre.
    "risk": ("monitor", "supervisor", "enforcer", "admin"),
    "risk.recompute": ("monitor", "supervisor", "admin"),
    "positive_list.decide": ("supervisor",),  # 正面清单: propose, approve or reject a change
    # 双随机 draws: read by who plans and makes inspections, made by a supervisor
    "draws": ("monitor", "supervisor", "enforcer", "admin"),
    "draws.make": ("supervisor",),
    "statistics": ("monitor", "supervisor", "admin"),  # 统计: what the supervision did
}


def grant(name: str) -> Callable[[User], User]:
    """A dependency admitting the roles of ``GRANTS[name]``."""
    return require(*GRANTS[name])


def require(*roles: str) -> Callable[[User], User]:
    """A dependency admitting only ``roles``."""

    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(
                403,
                {"code": "role_not_allowed", "message": f"the {user.role} role may not do this"},
            )
        return user

    return check


def visible_cases(user: User) -> ColumnElement[bool]:
    """The cases ``user`` may see, as a WHERE clause. An enterprise sees its own, but not a
    case a clue opened (a complaint is not shown to the enterprise it is about); a township
    and a clue-sending system follow their clues, not cases."""
    if user.role == "enterprise":
        return and_(
            cases.c.enterprise_id == (user.enterprise_id or ""),
            cases.c.rule.not_in(HIDDEN_FROM_ENTERPRISE),
        )
    if user.role in ("township", "intake"):
        return false()
    if user.role == "enforcer":
        assigned = select(work_orders.c.case_id).where(
            work_orders.c.brigade == (user.brigade or "")
        )
        return cases.c.id.in_(assigned)
    return true()


def require_visible_case(conn: Connection, user: User, case_id: int) -> None:
    """404 unless ``user`` may see the case (as if it did not exist)."""
    row = conn.execute(select(cases.c.id).where(cases.c.id == case_id, visible_cases(user))).first()
    if row is None:
        raise not_found(f"case {case_id}")


def may_see_enterprise(user: User, enterprise_id: str, region: str | None = None) -> bool:
    """Whether ``user`` may see the enterprise (of ``region``, where the caller knows it): an
    enterprise only itself, a township the enterprises of its area (in the fleet list, to
    name them in a clue), a clue-sending system none."""
    if user.role == "enterprise":
        return user.enterprise_id == enterprise_id
    if user.role == "township":
        return region is not None and region == user.area
    return user.role != "intake"


def not_found(what: str) -> HTTPException:
    return HTTPException(404, {"code": "not_found", "message": f"no {what}"})


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not logged in, or a bad token"},
    403: {"description": "the role may not do this"},
}
