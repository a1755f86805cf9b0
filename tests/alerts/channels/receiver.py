"""A real local HTTP receiver for notification tests: records requests, answers as told.

    with Receiver() as rx:
        rx.respond(500)                       # every later request gets 500
        rx.respond(200, {"errcode": 0})       # dict bodies are sent as JSON
        rx.respond(200, delay_s=2.0)          # answer late (timeout tests)
        channel = WebhookChannel("hook", rx.url)
        ...
        rx.requests[0].json()

``ThreadingHTTPServer`` on 127.0.0.1, port 0, in a thread. A delayed answer waits on an
event that ``close`` sets, so closing never hangs on a sleeping handler.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request as the receiver saw it, and what it answered."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int  # the status the receiver answered (or was about to, if the client gave up)
    received: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)

    @property
    def raw_query(self) -> str:
        return urllib.parse.urlsplit(self.path).query


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str
    delay_s: float


class Receiver:
    """An HTTP server that records every request; use as a context manager."""

    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._arrived = threading.Condition(self._lock)
        self._reply = _Reply(200, b"", "text/plain", 0.0)
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ----------------------------------------------------------------

    def respond(
        self, status: int = 200, body: bytes | str | dict[str, Any] = b"", delay_s: float = 0.0
    ) -> None:
        """Answer every later request with ``status`` and ``body`` after ``delay_s`` seconds."""
        if isinstance(body, dict):
            raw, content_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            raw, content_type = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            raw, content_type = body, "application/octet-stream" if body else "text/plain"
        with self._lock:
            self._reply = _Reply(status, raw, content_type, delay_s)

    # -- observation ------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the receiver is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    @property
    def port(self) -> int:
        assert self._server is not None, "the receiver is not started"
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[Request]:
        """A snapshot of the requests so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Request]:
        """The requests once at least ``n`` have arrived (or all so far after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            return list(self._requests)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            do_GET = do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = False  # server_close joins handlers: nothing leaks
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving (handler threads) ----------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            reply = self._reply
            self._requests.append(
                Request(
                    method=handler.command,
                    path=handler.path,
                    headers={k.lower(): v for k, v in handler.headers.items()},
                    body=body,
                    status=reply.status,
                )
            )
            self._arrived.notify_all()
        if reply.delay_s and self._closing.wait(reply.delay_s):
            return  # closing: drop the connection unanswered
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (timed out) before the answer: that is the test's point


class HungReceiver:
    """A TCP server that accepts every connection and reads what comes; it never writes a byte
    (a receiver that hangs)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self.received = 0  # bytes read
        self.requests = 0  # HTTP request heads seen (one per attempt: httpx drops a timed-out one)
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                t = threading.Thread(target=self._hold, args=(conn,), daemon=True)
                self._threads.append(t)
            t.start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        with conn:
            while not self._closing.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return  # the client gave up
                with self._lock:
                    self.received += len(data)
                    self.requests += data.count(b"POST ")

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
