"""The service's HTTP application: Prometheus metrics, liveness and readiness, and (with a
web context) the API under /api/v1 with its OpenAPI document at /api/openapi.json."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from nonsite import __version__
from nonsite.errors import ListenError
from nonsite.web.context import WebContext

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

    if web is not None:
        # Only with a web context (the service's): the API, the live feed and the dashboard.
        from nonsite.web import dashboard  # noqa: PLC0415
        from nonsite.web.api import cases, events, fleet, series, session  # noqa: PLC0415

        app.state.web = web
        for module in (session, fleet, cases, series, events):
            app.include_router(module.router)
        app.include_router(dashboard.router)
        app.mount("/static", dashboard.static, name="static")

        @app.get("/api/docs", include_in_schema=False)
        def api_docs() -> Response:
            # Swagger UI from our own /static (FastAPI's default page loads it from a CDN).
            return get_swagger_ui_html(
                openapi_url="/api/openapi.json",
                title="nonsite API",
                swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
                swagger_favicon_url="/static/favicon.svg",
            )

    return app


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM and drains first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(listen: str) -> socket.socket:
    """Bind the HTTP socket before anything else starts, so a taken port is a clear error."""
    host, _, port = listen.rpartition(":")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on {listen} (service.http_listen): {exc.strerror}"
        ) from None
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
        timeout_graceful_shutdown=3,
    )
    return HttpServer(config)
