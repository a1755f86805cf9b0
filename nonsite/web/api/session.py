"""Logging in and out (the browser's session cookie), and who the caller is."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from nonsite.auth import User
from nonsite.auth.errors import LoginFailed, LoginThrottled
from nonsite.web.context import WebContext
from nonsite.web.models import ErrorOut, LoginIn, MeOut
from nonsite.web.security import SESSION_COOKIE, Context, CurrentUser, client_of

router = APIRouter(prefix="/api/v1", tags=["session"])


def me_out(user: User) -> MeOut:
    return MeOut(
        username=user.username,
        display_name=user.display_name or user.username,
        role=user.role,
        enterprise_id=user.enterprise_id,
        brigade=user.brigade,
        area=user.area,
    )


def secure_cookie(request: Request, ctx: WebContext) -> bool:
    """Secure behind TLS: configured so, or this request came over HTTPS (directly, or as a
    trusted proxy says: nonsite.web.guard)."""
    return ctx.secure_cookies or request.url.scheme == "https"


@router.post(
    "/session",
    response_model=MeOut,
    summary="Log in: sets the session cookie",
    responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)
def login(body: LoginIn, request: Request, response: Response, ctx: Context) -> MeOut:
    try:
        user = ctx.users.authenticate(body.username, body.password, client=client_of(request))
    except LoginThrottled as exc:
        raise HTTPException(
            429,
            {"code": "throttled", "message": str(exc)},
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except LoginFailed as exc:
        raise HTTPException(401, {"code": "login_failed", "message": str(exc)}) from None
    token = ctx.users.create_session(user, client_of(request))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.users.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, ctx),
        path="/",
    )
    return me_out(user)


@router.delete("/session", status_code=204, summary="Log out")
def logout(request: Request, response: Response, ctx: Context) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        ctx.users.end_session(token)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, ctx),
    )
    response.status_code = 204
    return response


@router.get("/me", response_model=MeOut, summary="The logged-in user")
def me(user: CurrentUser) -> MeOut:
    return me_out(user)
