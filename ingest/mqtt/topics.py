"""Topic conventions and routing.

Default topics (docs/ingest.md): ``hj212/{MN}`` carries raw HJ 212 packets (one or more per
message), ``power/{meter}`` carries power-meter JSON. Filters are configurable; each filter
is declared with the kind of payload it carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from paho.mqtt.client import topic_matches_sub

PayloadKind = Literal["hj212", "power"]


class Route(NamedTuple):
    kind: PayloadKind
    # The topic level at the filter's "+": who sent the message (an MN, a meter or a gateway
    # id), as the broker's ACL allowed that login to publish there. A filter without "+"
    # (allowed in tests and tools only; the configuration requires one) takes the last level.
    sender: str


class TopicRouter:
    """Which payload kind a topic carries, and its sender, from the configured (kind, filter)
    pairs."""

    _CACHE_MAX = 100_000

    def __init__(self, routes: Sequence[tuple[PayloadKind, str]]) -> None:
        self._routes = [(kind, unshared(f), _sender_level(f)) for kind, f in routes]
        self._cache: dict[str, Route | None] = {}

    def route(self, topic: str) -> Route | None:
        if topic in self._cache:
            return self._cache[topic]
        found: Route | None = None
        for kind, topic_filter, level in self._routes:
            if topic_matches_sub(topic_filter, topic):
                found = Route(kind, topic.split("/")[level])
                break
        if len(self._cache) >= self._CACHE_MAX:
            self._cache.clear()
        self._cache[topic] = found
        return found

    def kind(self, topic: str) -> PayloadKind | None:
        route = self.route(topic)
        return None if route is None else route.kind


def _sender_level(topic_filter: str) -> int:
    levels = unshared(topic_filter).split("/")
    return levels.index("+") if "+" in levels else -1


def unshared(topic_filter: str) -> str:
    """The topics a filter delivers, without its shared-subscription group."""
    # "$share/<group>/<filter>" delivers topics that match <filter>.
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


def shared(topic_filter: str, group: str | None) -> str:
    """The subscription filter, wrapped in a shared-subscription group when one is set."""
    return f"$share/{group}/{topic_filter}" if group else topic_filter
