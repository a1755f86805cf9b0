"""Topic conventions and routing.

Default topics (docs/ingest.md): ``hj212/{MN}`` carries raw HJ 212 packets (one or more per
message), ``power/{meter}`` carries power-meter JSON. Filters are configurable; each filter
is declared with the kind of payload it carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from paho.mqtt.client import topic_matches_sub

PayloadKind = Literal["hj212", "power"]


class TopicRouter:
    """Which payload kind a topic carries, from the configured (kind, filter) pairs."""

    _CACHE_MAX = 100_000

    def __init__(self, routes: Sequence[tuple[PayloadKind, str]]) -> None:
        self._routes = list(routes)
        self._cache: dict[str, PayloadKind | None] = {}

    def kind(self, topic: str) -> PayloadKind | None:
        if topic in self._cache:
            return self._cache[topic]
        found: PayloadKind | None = None
        for kind, topic_filter in self._routes:
            if topic_matches_sub(_strip_share(topic_filter), topic):
                found = kind
                break
        if len(self._cache) >= self._CACHE_MAX:
            self._cache.clear()
        self._cache[topic] = found
        return found


def _strip_share(topic_filter: str) -> str:
    # "$share/<group>/<filter>" delivers topics that match <filter>.
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


def shared(topic_filter: str, group: str | None) -> str:
    """The subscription filter, wrapped in a shared-subscription group when one is set."""
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def last_level(topic: str) -> str:
    return topic.rsplit("/", 1)[-1]
