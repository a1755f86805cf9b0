"""DingTalk (钉钉) custom group robot: a Markdown message posted to the robot's webhook.

With "加签" security the URL carries ``timestamp`` (ms) and ``sign``: the URL-encoded
Base64 of HMAC-SHA256 keyed with the secret over ``"{timestamp}\\n{secret}"``. DingTalk
refuses timestamps more than an hour off, so the signature is made for each request.

The robot replies HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success. It has no
idempotency header, so the key goes into the text as a last small line: people in the
group can tell a redelivered message from a new case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
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

# errcodes that mean "not now" rather than "never". 130101: "send too fast, exceed 20 times
# per minute" (the robot is then throttled for about ten minutes); 410100: 发送速度太快而限流;
# 660026: flow control, as named in the design brief (not found in the docs we could consult);
# 90005/90006/90018: the open platform's per-minute/per-second call limits; -1: 系统繁忙.
RETRYABLE_ERRCODES = frozenset({-1, 130101, 410100, 660026, 90005, 90006, 90018})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value, already URL-encoded, per DingTalk's documented algorithm."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


class DingTalkChannel:
    """Posts the notification as a Markdown message to one DingTalk group robot."""

    kind = "dingtalk"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | None = None,
        at_mobiles: Sequence[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if isinstance(at_mobiles, str):  # a lone number would be split into digits
            raise ValueError("at_mobiles must be a list of phone numbers, not a string")
        self.name = name
        self.url = check_http_url(url)
        self._secret = secret or None
        self.at_mobiles = tuple(at_mobiles)
        self.timeout_s = check_timeout(timeout_s)
        self._client = make_client(self.timeout_s)

    def message(self, n: Notification) -> dict[str, Any]:
        """The robot message: Markdown, the key on the last line, mentioned people named.

        DingTalk only shows an @ for a Markdown message when the text itself contains
        ``@<mobile>``, so the mentions are written into the text as well as listed.
        """
        text = n.text
        if self.at_mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in self.at_mobiles)
        text += f"\n\n> 编号 {n.key}"
        return {
            "msgtype": "markdown",
            "markdown": {"title": n.title, "text": text},
            "at": {"atMobiles": list(self.at_mobiles), "isAtAll": False},
        }

    def signed_url(self, timestamp_ms: int) -> str:
        if self._secret is None:
            return self.url
        separator = "&" if "?" in self.url else "?"
        sign = dingtalk_sign(self._secret, timestamp_ms)
        return f"{self.url}{separator}timestamp={timestamp_ms}&sign={sign}"

    def send(self, notification: Notification) -> None:
        body = json_bytes(self.message(notification))
        url = self.signed_url(time.time_ns() // 1_000_000)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = post(self._client, url, body, headers)
        errcode, errmsg = robot_reply(response)
        if errcode != 0:
            raise DeliveryError(
                f"DingTalk robot {redact(self.url)} refused: errcode {errcode} {errmsg}",
                retryable=errcode in RETRYABLE_ERRCODES,
            )

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"DingTalkChannel(name={self.name!r})"
