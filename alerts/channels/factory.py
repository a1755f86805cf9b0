"""Building a channel from a plain mapping (one entry of the configuration's channel list).

``{"name": "brigade-hook", "kind": "webhook", "url": "...", "secret": "..."}``: ``kind``
selects the class, the other keys are its constructor's arguments. Unknown kinds, missing
keys and unknown keys (usually typos, e.g. "secert") are refused with a ValueError that
names the channel, so the operator knows which entry to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.channels.base import Channel
from alerts.channels.dingtalk import DingTalkChannel
from alerts.channels.mqtt import MqttChannel
from alerts.channels.smtp import SmtpChannel
from alerts.channels.webhook import WebhookChannel
from alerts.channels.wecom import WeComChannel


@dataclass(frozen=True, slots=True)
class _Kind:
    build: Callable[..., Channel]
    positional: tuple[str, ...]  # required, passed after the name in this order
    keyword: tuple[str, ...] = ()  # required keyword-only arguments
    optional: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        return self.positional + self.keyword


KINDS: dict[str, _Kind] = {
    "webhook": _Kind(WebhookChannel, ("url",), optional=("secret", "timeout_s", "headers")),
    "dingtalk": _Kind(DingTalkChannel, ("url",), optional=("secret", "at_mobiles", "timeout_s")),
    "wecom": _Kind(WeComChannel, ("url",), optional=("mentioned_mobiles", "timeout_s")),
    "smtp": _Kind(
        SmtpChannel,
        ("host", "port"),
        ("sender", "recipients"),
        ("username", "password", "starttls", "ssl", "timeout_s"),
    ),
    "mqtt": _Kind(
        MqttChannel,
        ("host", "port"),
        optional=("topic_prefix", "username", "password", "tls", "client_id", "timeout_s"),
    ),
}


def build_channel(spec: Mapping[str, Any]) -> Channel:
    """The channel ``spec`` describes; ValueError naming the channel if it is not buildable."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a notification channel needs a non-empty string 'name' (got {name!r})")
    kind_name = spec.get("kind")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise ValueError(
            f"channel {name!r}: unknown kind {kind_name!r} (known: {', '.join(sorted(KINDS))})"
        )
    missing = [key for key in kind.required if key not in spec]
    if missing:
        raise ValueError(f"channel {name!r} ({kind_name}): missing {', '.join(missing)}")
    known = {"name", "kind", *kind.required, *kind.optional}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(
            f"channel {name!r} ({kind_name}): unknown key(s) {', '.join(map(str, unknown))} "
            f"(allowed: {', '.join(sorted(known - {'name', 'kind'}))})"
        )
    positional = [spec[key] for key in kind.positional]
    keywords = {key: spec[key] for key in (*kind.keyword, *kind.optional) if key in spec}
    try:
        return kind.build(name, *positional, **keywords)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"channel {name!r} ({kind_name}): {exc}") from exc
