"""WeCom (企业微信) group robot: a Markdown message posted to the robot's webhook.

WeCom caps Markdown ``content`` at 4096 bytes of UTF-8. The body is cut at a character
boundary and marked with "…"; the title and the key line are kept whole, so a cut
message is still recognisable and a duplicate still identifiable.

The robot replies ``{"errcode": 0, "errmsg": "ok"}``; 45009 ("api freq out of limit",
20 messages a minute per robot) and -1 (系统繁忙) are worth retrying, other codes are not
(93000: invalid webhook key; 40008: invalid message type; ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.channels.base import (
    DEFAULT_TIMEOUT_S,
    DeliveryError,
    Notification,
    check_timeout,
    json_bytes,
)
from alerts.channels.http import check_http_url, make_client, post, redact, robot_reply

MAX_CONTENT_BYTES = 4096
ELLIPSIS = "…"
RETRYABLE_ERRCODES = frozenset({-1, 45009})


def truncate_utf8(text: str, max_bytes: int, ellipsis: str = ELLIPSIS) -> str:
    """``text``, or its longest prefix that fits ``max_bytes`` of UTF-8 with ``ellipsis``."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    room = max_bytes - len(ellipsis.encode("utf-8"))
    if room < 0:
        return ""
    # Cutting bytes can split a character; "ignore" drops the partial tail, nothing else
    # (the rest is valid UTF-8 we just encoded).
    return encoded[:room].decode("utf-8", "ignore") + ellipsis


def markdown_content(n: Notification, max_bytes: int = MAX_CONTENT_BYTES) -> str:
    """``**title**\\ntext\\n> 编号 key``, the text shortened so the whole fits ``max_bytes``."""
    head = f"**{n.title}**\n"
    tail = f"\n> 编号 {n.key}"
    room = max_bytes - len(head.encode("utf-8")) - len(tail.encode("utf-8"))
    if room < len(ELLIPSIS.encode("utf-8")):  # an absurd title: cut the whole instead
        return truncate_utf8(head + n.text + tail, max_bytes)
    return head + truncate_utf8(n.text, room) + tail


class WeComChannel:
    """Posts the notification as a Markdown message to one WeCom group robot."""

    kind = "wecom"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        mentioned_mobiles: Sequence[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if isinstance(mentioned_mobiles, str):
            raise ValueError("mentioned_mobiles must be a list of phone numbers, not a string")
        self.name = name
        self.url = check_http_url(url)
        self.mentioned_mobiles = tuple(mentioned_mobiles)
        self.timeout_s = check_timeout(timeout_s)
        self._client = make_client(self.timeout_s)

    def message(self, n: Notification) -> dict[str, Any]:
        markdown: dict[str, Any] = {"content": markdown_content(n)}
        if self.mentioned_mobiles:
            # WeCom documents mentioned_mobile_list for text messages; for Markdown it may
            # be ignored. Sent anyway: harmless, and honoured where supported.
            markdown["mentioned_mobile_list"] = list(self.mentioned_mobiles)
        return {"msgtype": "markdown", "markdown": markdown}

    def send(self, notification: Notification) -> None:
        body = json_bytes(self.message(notification))
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = post(self._client, self.url, body, headers)
        errcode, errmsg = robot_reply(response)
        if errcode != 0:
            raise DeliveryError(
                f"WeCom robot {redact(self.url)} refused: errcode {errcode} {errmsg}",
                retryable=errcode in RETRYABLE_ERRCODES,
            )

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"WeComChannel(name={self.name!r})"
