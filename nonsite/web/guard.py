"""What every HTTP request and response passes through: who the client is, how large a body
may be, and the headers that tell browsers what this site allows.

**Client address.** The connecting peer is the client, unless it is one of the configured
``[service] trusted_proxies``: then the client is the rightmost address of ``X-Forwarded-For``
that is not itself a trusted proxy (everything left of it was written by the client and is not
believed), and ``X-Forwarded-Proto`` says whether the client used HTTPS. Nothing else is
trusted, loopback included, so a client cannot choose the address it is audited and throttled
under. (uvicorn's own proxy-header handling, which trusts loopback, is switched off:
nonsite.http.make_server.)

**Body size.** A request body larger than ``[service] max_request_bytes`` (1 MiB) is answered
413 ``{"code": "body_too_large", ...}`` and never reaches the application: refused by its
Content-Length, or, for a chunked body, as soon as the bytes received pass the limit. The rest
of the body is read and dropped (up to 64 MiB) before the answer, so that the client, still
sending, is not reset before it reads it. File uploads (evidence, a clue file: ``UPLOADS``)
may be as large as ``[service] max_upload_bytes`` (100 MiB) and must say their length (411
``length_required`` otherwise): a chunked body that large is not held in memory to be counted.

**Headers.** Every response carries a strict Content-Security-Policy (everything from this
origin only: no inline script or style, no eval, no plugins, not framed), ``X-Frame-Options:
DENY`` for browsers that predate ``frame-ancestors``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``, ``Cross-Origin-Opener-Policy: same-origin`` and a
Permissions-Policy that turns off the device APIs. Over HTTPS (or with ``[service]
secure_cookies``, which says TLS is in front), ``Strict-Transport-Security`` too. A response
that sets its own Content-Security-Policy keeps it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

CSP: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Swagger UI (/api/docs) draws its icons from data: URLs; nothing else differs.
CSP_API_DOCS: Final = CSP.replace("img-src 'self'", "img-src 'self' data:")
HSTS: Final = b"max-age=31536000"
SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
DEFAULT_MAX_BODY: Final = 1024 * 1024
DEFAULT_MAX_UPLOAD: Final = 100 * 1024 * 1024
# The paths that take a file: evidence for a case or a clue, a file of clues.
UPLOADS: Final = re.compile(r"^/api/v1/(?:clues/import|(?:cases|clues)/\d{1,19}/attachments)$")
DRAIN_BYTES: Final = 64 * 1024 * 1024  # of a refused body, read and dropped before the 413


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _address(text: str) -> Address | None:
    """An address as a hop of X-Forwarded-For may give it: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]`` or ``[2001:db8::1]:5678``; None for anything else."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy (see the module docstring)."""
    if not forwarded_for or not _trusted(_address(peer), proxies):
        return peer
    hops = [h for h in forwarded_for.split(",") if h.strip()]
    leftmost: Address | None = None
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # not an address: nothing from here on leftwards is believed
        if not _trusted(address, proxies):
            return str(address)
        leftmost = address
    return str(leftmost) if leftmost is not None else peer


class HttpGuard:
    """Pure ASGI middleware (it does not buffer responses, so the live event stream flows)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Sequence[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
        secure_cookies: bool = False,
    ) -> None:
        self.app = app
        self.proxies = parse_networks(trusted_proxies)
        self.max_body = max_body_bytes
        self.max_upload = max(max_upload_bytes, max_body_bytes)
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        headers = _headers(scope)
        peer = scope["client"][0] if scope.get("client") else ""
        if peer and self.proxies and _trusted(_address(peer), self.proxies):
            forwarded = b",".join(headers.get(b"x-forwarded-for", []))
            client = client_address(peer, forwarded.decode("latin-1"), self.proxies)
            scope["client"] = (client, 0)
            proto = b",".join(headers.get(b"x-forwarded-proto", [])).decode("latin-1")
            scheme = proto.split(",")[0].strip().lower()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        https = scope.get("scheme") == "https" or self.secure_cookies

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = list(message.get("headers", []))
                present = {name.lower() for name, _ in out}
                out += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                if b"content-security-policy" not in present:
                    out.append((b"content-security-policy", CSP.encode()))
                if https and b"strict-transport-security" not in present:
                    out.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": out}
            await send(message)

        upload = scope.get("method") == "POST" and bool(UPLOADS.match(scope.get("path", "")))
        chunked = b"chunked" in b",".join(headers.get(b"transfer-encoding", [])).lower()
        if upload and (chunked or not headers.get(b"content-length")):
            await _drain(receive)
            await _refuse(
                send_guarded,
                "a file upload states its length (Content-Length)",
                status=411,
                code="length_required",
            )
            return
        too_large = self._too_large(headers, self.max_upload if upload else self.max_body)
        if too_large is not None:
            await _drain(receive)
            await _refuse(send_guarded, too_large)
            return
        if chunked:
            body = await self._read_bounded(receive)
            if body is None:
                await _drain(receive)
                await _refuse(send_guarded, f"the request body is larger than {self._limit()}")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_guarded)

    def _limit(self, limit: int | None = None) -> str:
        if limit is not None and limit != self.max_body:
            return f"{limit} bytes ([service] max_upload_bytes)"
        return f"{self.max_body} bytes ([service] max_request_bytes)"

    def _too_large(self, headers: dict[bytes, list[bytes]], limit: int) -> str | None:
        for value in headers.get(b"content-length", []):
            try:
                length = int(value)
            except ValueError:
                continue  # the server refuses a malformed length itself
            if length > limit:
                return f"the request body ({length} bytes) is larger than {self._limit(limit)}"
        return None

    async def _read_bounded(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # disconnected: the application will see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _drain(receive: Receive, limit: int = DRAIN_BYTES) -> None:
    """Read and drop the rest of a refused body (up to ``limit``), so that the connection is
    closed after the client has sent it: closing a socket with unread data resets it, and the
    client could lose the 413 that explains why."""
    drained = 0
    while drained < limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _headers(scope: Scope) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", []):
        out.setdefault(name.lower(), []).append(value)
    return out


def _replay(body: bytes, then: Receive) -> Receive:
    """The body already read, as one message; then whatever comes next (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


async def _refuse(
    send: Send, message: str, *, status: int = 413, code: str = "body_too_large"
) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
