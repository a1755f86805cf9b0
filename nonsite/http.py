"""The service's HTTP endpoints: Prometheus metrics, liveness and readiness.

The dashboard and the API arrive in issue #5 and mount on this same application.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nonsite.errors import ListenError

ReadinessCheck = Callable[[], dict[str, str]]  # name → problem; empty when ready
ExtraMetrics = Callable[[], str]  # exposition text of other processes (the pipeline)


def build_app(
    registry: CollectorRegistry, readiness: ReadinessCheck, extra_metrics: ExtraMetrics = str
) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(_request: Request) -> JSONResponse:
        problems = readiness()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(_request: Request) -> Response:
        body = generate_latest(registry) + extra_metrics().encode()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )


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


def make_server(app: Starlette, sock: socket.socket) -> HttpServer:
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return HttpServer(config)
