"""The service's HTTP application: Prometheus metrics, liveness and readiness, and (with a
web context) the API under /api/v1 with its OpenAPI document at /api/openapi.json."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from ingest.jetstream.errors import StreamUnavailableError
from nonsite import __version__
from nonsite.db_health import is_unavailable, one_line
from nonsite.errors import ListenError
from nonsite.web.context import WebContext
from nonsite.web.guard import CSP_API_DOCS, DEFAULT_MAX_BODY, DEFAULT_MAX_UPLOAD, HttpGuard

log = logging.getLogger("nonsite.http")

API_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nonsite API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""
ReadinessCheck = Callable[[], dict[str, str]]  # name → problem; empty when ready
ExtraMetrics = Callable[[], str]  # exposition text of other processes (the pipeline)


def build_app(
    registry: CollectorRegistry,
    readiness: ReadinessCheck,
    extra_metrics: ExtraMetrics = str,
    web: WebContext | None = None,
) -> FastAPI:
    """Health, readiness and metrics; with ``web``, also the API and the dashboard."""
    app = FastAPI(
        title="nonsite",
        summary="非现场监管 streaming alert service: fleet, cases, workflow, work orders",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: /api/docs serves our copy
        redoc_url=None,
    )

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: broker, pipeline, database")
    def readyz() -> JSONResponse:
        problems = readiness()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def metrics() -> Response:
        body = generate_latest(registry) + extra_metrics().encode()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def error_body(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Errors are {"code", "message"} everywhere (the API's ErrorOut), not {"detail": ...}.
        detail: object = exc.detail
        if not isinstance(detail, dict):
            detail = {"code": f"http_{exc.status_code}", "message": str(detail)}
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    service = web.config.service if web is not None else None
    app.add_middleware(
        HttpGuard,
        trusted_proxies=service.trusted_proxies if service else (),
        max_body_bytes=service.max_request_bytes if service else DEFAULT_MAX_BODY,
        max_upload_bytes=service.max_upload_bytes if service else DEFAULT_MAX_UPLOAD,
        secure_cookies=service.secure_cookies if service else False,
    )

    @app.exception_handler(StreamUnavailableError)
    async def stream_unavailable(_request: Request, exc: StreamUnavailableError) -> JSONResponse:
        # Cluster mode reads raw data from NATS: its absence is temporary, not a fault here.
        log.warning("%s", exc)
        body = {
            "code": "stream_unavailable",
            "message": "原始数据流暂时无法读取（NATS 不可达），请稍后重试",
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(SQLAlchemyError)
    async def database_error(_request: Request, exc: SQLAlchemyError) -> Response:
        if not is_unavailable(exc):
            raise exc  # a fault: the server's error page and the traceback in the log
        # Away (a failover past [database] retry_s): the request is to be repeated; a person's
        # action with its Idempotency-Key is taken once however often it is sent.
        log.warning("a request found the database unavailable: %s", one_line(exc))
        body = {
            "code": "database_unavailable",
            "message": "数据库暂时不可用（可能正在主备切换），请稍后重试",
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    if web is not None:
        # Only with a web context (the service's): the API, the live feed and the dashboard.
        from nonsite.web import dashboard  # noqa: PLC0415
        from nonsite.web.api import (  # noqa: PLC0415
            cases,
            clues,
            commands,
            decisions,
            draws,
            events,
            evidence,
            fleet,
            follow_up,
            positive_list,
            quality,
            record,
            reports,
            risk,
            series,
            session,
            statistics,
        )

        app.state.web = web
        for module in (
            session,
            fleet,
            cases,
            clues,
            decisions,
            draws,
            evidence,
            follow_up,
            positive_list,
            record,
            series,
            quality,
            reports,
            risk,
            statistics,
            commands,
            events,
        ):
            app.include_router(module.router)
        from nonsite.web import public  # noqa: PLC0415

        app.include_router(public.router)  # before the dashboard's catch-all of page paths
        app.include_router(dashboard.router)
        app.mount("/static", dashboard.static, name="static")

        @app.get("/api/docs", include_in_schema=False)
        def api_docs() -> Response:
            # Swagger UI from our own /static (FastAPI's default page loads it from a CDN, and
            # starts it with an inline script, which the Content-Security-Policy forbids).
            return HTMLResponse(API_DOCS_PAGE, headers={"Content-Security-Policy": CSP_API_DOCS})

    return app


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """A request that does not fit the API's models, as ``{"code": "invalid_request",
    "message", "detail"}``: the message names each field and what it must be (e.g.
    ``body.note: String should have at most 4000 characters``), ``detail`` is FastAPI's list
    without the inputs (which may be large, or a password)."""
    detail = []
    for error in errors:
        item: dict[str, Any] = {
            "loc": [str(p) for p in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        ctx = {
            k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, (int, float, str))
        }
        if ctx:
            item["ctx"] = ctx
        detail.append(item)
    shown = [f"{'.'.join(d['loc'])}: {d['msg']}" for d in detail[:5]]
    if len(detail) > 5:
        shown.append(f"and {len(detail) - 5} more")
    return {"code": "invalid_request", "message": "; ".join(shown), "detail": detail}


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM and drains first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(listen: str, setting: str = "service.http_listen") -> socket.socket:
    """Bind a listening socket before anything else starts, so a taken port is a clear error
    naming the setting (the HTTP one, or the TCP gateway's)."""
    host, _, port = listen.rpartition(":")
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP (proto 0 does not), and without it a response's body
    # waits ~40 ms for the client's delayed ACK behind its headers.
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {listen} ({setting}): {exc.strerror}") from None
    sock.listen(128)
    return sock


def make_server(app: FastAPI, sock: socket.socket) -> HttpServer:
    host, port = sock.getsockname()[:2]
    # A dashboard holds an event stream open for as long as it is shown: without a limit the
    # server would wait for every browser to go away before the service could stop.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        # Client addresses come from X-Forwarded-For only through [service] trusted_proxies
        # (nonsite.web.guard); uvicorn's own handling would trust it from loopback.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return HttpServer(config)
