"""POSTing JSON over HTTP and classifying the outcome: shared by webhook, DingTalk and WeCom.

Retryable: connection errors, timeouts, 408, 425, 429 and 5xx (the receiver may be back
later). Anything else that is not 2xx (other 4xx, 3xx: a misconfigured URL or a body the
receiver refuses) is permanent: sending the same request again cannot succeed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from alerts.channels.base import DeliveryError

RETRYABLE_STATUS = frozenset({408, 425, 429})
DETAIL_CHARS = 200  # of the response body, in error details


def check_http_url(url: str) -> str:
    """Fail at construction, not at the first alert, on a URL httpx cannot post to."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"URL must be http:// or https:// with a host, not {url!r}")
    return url


def make_client(timeout_s: float) -> httpx.Client:
    # One client per channel: connections are pooled and reused between notifications.
    # Redirects are not followed: a webhook that redirects is misconfigured, and a POST
    # replayed to another address is not what the operator set up.
    return httpx.Client(timeout=timeout_s, follow_redirects=False)


def post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    """POST ``body``; return a 2xx response or raise :class:`DeliveryError`."""
    try:
        response = client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"POST {redact(url)} timed out: {exc!r}") from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        # Our request is malformed (bad scheme, bad header value): it will stay malformed.
        raise DeliveryError(f"POST {redact(url)} cannot be sent: {exc}", retryable=False) from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise DeliveryError(f"POST {redact(url)} failed: {exc!r}") from exc
    except UnicodeEncodeError as exc:  # a header value outside Latin-1
        raise DeliveryError(
            f"POST {redact(url)} has an unencodable header: {exc}", retryable=False
        ) from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = f"POST {redact(url)} answered HTTP {status}: {response.text[:DETAIL_CHARS]}"
    retryable = status in RETRYABLE_STATUS or status >= 500
    raise DeliveryError(detail, retryable=retryable)


def robot_reply(response: httpx.Response) -> tuple[int, str]:
    """``(errcode, errmsg)`` of a DingTalk or WeCom robot reply.

    A 2xx that is not such a reply (a proxy's page, a truncated body) leaves the outcome
    unknown; it is retryable, and the key line in the text lets people spot a duplicate.
    """
    try:
        reply: Any = json.loads(response.content)
        code = reply["errcode"]
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"errcode is {type(code).__name__}")
        return code, str(reply.get("errmsg", ""))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DeliveryError(
            f"robot reply is not {{errcode, errmsg}} JSON ({exc}): {response.text[:DETAIL_CHARS]}"
        ) from exc


def redact(url: str) -> str:
    """The URL without its query: DingTalk's access_token and WeCom's key are credentials."""
    return url.split("?", 1)[0]
