"""What every notification channel shares: the notification, the failure, the protocol.

A channel delivers ONE already-rendered notification to ONE destination. It returns on
success and raises :class:`DeliveryError` otherwise; the outbox dispatcher decides from
``retryable`` whether to try again later or to give up and tell an operator.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Notification:
    """One rendered notification for one channel."""

    key: str  # idempotency key, unique per (case event, channel); the receiver dedups by it
    channel: str  # the configured channel's name
    event: str  # "case.opened", "case.escalated", "case.dispatched", "case.overdue", ...
    enterprise_id: str
    title: str  # short Chinese title, already rendered
    text: str  # Chinese body (Markdown allowed), already rendered, includes a link
    payload: dict[str, Any]  # structured event data (case fields etc.), JSON-serialisable
    status: dict[str, Any] | None = None  # the enterprise's current status (retained MQTT topic)


class DeliveryError(Exception):
    """Delivery failed.

    ``retryable`` False means retrying cannot help (bad URL, 4xx, rejected recipient).
    """

    def __init__(self, detail: str, *, retryable: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"DeliveryError({self.detail!r}, retryable={self.retryable})"


class Channel(Protocol):
    """A configured destination. Synchronous; called from one dispatcher thread at a time."""

    name: str
    kind: str  # "webhook" | "dingtalk" | "wecom" | "smtp" | "mqtt"

    def send(self, notification: Notification) -> None:
        """Deliver, or raise :class:`DeliveryError` (never anything else for network trouble)."""
        ...

    def close(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...


DEFAULT_TIMEOUT_S = 10.0


def event_document(n: Notification) -> dict[str, Any]:
    """The JSON document the generic webhook and MQTT publish: the same shape on both."""
    return {
        "key": n.key,
        "event": n.event,
        "enterprise_id": n.enterprise_id,
        "title": n.title,
        "text": n.text,
        "payload": n.payload,
        "status": n.status,
    }


def json_bytes(document: Any) -> bytes:
    """UTF-8 JSON with Chinese kept readable.

    NaN and infinities are refused: they are not JSON and strict receivers reject them.
    A document that cannot be serialised is a permanent failure: retrying sends the same.
    """
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise DeliveryError(
            f"notification is not JSON-serialisable: {exc}", retryable=False
        ) from exc
    return text.encode("utf-8")


def check_timeout(timeout_s: float) -> float:
    """A positive, finite timeout in seconds; configuration mistakes fail at construction."""
    value = float(timeout_s)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
    return value
