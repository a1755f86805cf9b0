"""The generic webhook: the event as signed JSON, for systems that integrate with us.

Receivers dedup by the ``Idempotency-Key`` header (a redelivery after a lost reply carries
the same key) and check ``X-Nonsite-Signature`` with :func:`verify_signature`: HMAC-SHA256
over ``"{timestamp}."`` followed by the exact body bytes, so a body cannot be replayed under
a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from alerts.channels.base import (
    DEFAULT_TIMEOUT_S,
    Notification,
    check_timeout,
    event_document,
    json_bytes,
)
from alerts.channels.http import check_http_url, make_client, post

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Nonsite-Signature`` value: ``sha256=<hex HMAC-SHA256(secret, "{ts}." + body)>``."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: str, timestamp: int | str, body: bytes, header_value: str | None
) -> bool:
    """True when ``header_value`` is our signature of ``body`` sent at ``timestamp``.

    Compared in constant time. Receivers should also reject timestamps far from their clock
    (a few minutes) to bound replays; that policy is theirs.
    """
    if not header_value:
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), header_value.strip().encode("utf-8"))


class WebhookChannel:
    """POSTs the event document to one URL."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.url = check_http_url(url)
        self._secret = secret or None  # an empty secret would sign with a known key: treat as none
        self.timeout_s = check_timeout(timeout_s)
        self._extra_headers = dict(headers or {})
        self._client = make_client(self.timeout_s)

    def send(self, notification: Notification) -> None:
        body = json_bytes(event_document(notification))
        timestamp = int(time.time())
        ours = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": notification.key,
            "X-Nonsite-Event": notification.event,
            "X-Nonsite-Timestamp": str(timestamp),
        }
        if self._secret is not None:
            ours["X-Nonsite-Signature"] = sign(self._secret, timestamp, body)
        # Configured headers (Authorization and the like) go along; ours win on a clash,
        # whatever the case of the configured name.
        taken = {name.lower() for name in ours}
        extra = {k: v for k, v in self._extra_headers.items() if k.lower() not in taken}
        post(self._client, self.url, body, {**extra, **ours})

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r})"
