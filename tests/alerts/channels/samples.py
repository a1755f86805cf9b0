"""Sample notifications and small network helpers for the channel tests."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from alerts.channels import Channel, DeliveryError, Notification

TITLE = "【超标】某某热电有限公司 1号锅炉 颗粒物小时均值超标"
TEXT = (
    "**企业**：某某热电有限公司\n\n"
    "**监测点**：1号锅炉排口\n\n"
    "颗粒物小时均值 **32.5 mg/m³**，标准限值 20 mg/m³，超标 0.63 倍。\n\n"
    "[查看案件](https://nonsite.example.cn/cases/42)"
)


def notification(**overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "key": "case-42-event-7-hook",
        "channel": "hook",
        "event": "case.opened",
        "enterprise_id": "91330100MA2B0001X",
        "title": TITLE,
        "text": TEXT,
        "payload": {"case_id": 42, "rule": "A1-1", "value": 32.5, "limit": 20, "因子": "颗粒物"},
        "status": {"enterprise_id": "91330100MA2B0001X", "open_cases": 1, "level": "红"},
    }
    fields.update(overrides)
    return Notification(**fields)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# What a webhook posts, and MQTT publishes, of a notification: these fields, by these names.
EVENT_FIELDS = ("key", "event", "enterprise_id", "title", "text", "payload", "status")


def event_document(n: Notification) -> dict[str, Any]:
    """The JSON document a webhook posts, and MQTT publishes, for ``n``."""
    return {field: getattr(n, field) for field in EVENT_FIELDS}


def send_error(channel: Channel) -> DeliveryError:
    """What ``channel`` raises on sending a sample notification (it must raise)."""
    with pytest.raises(DeliveryError) as err:
        channel.send(notification())
    return err.value


def timed_send_error(channel: Channel) -> tuple[DeliveryError, float]:
    """``send_error``, and the seconds the send took."""
    start = time.monotonic()
    error = send_error(channel)
    return error, time.monotonic() - start
