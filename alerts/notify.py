"""Who is told about a case event, queued in the outbox in the case change's transaction.

A notification is one outbox row per (audit event, channel): its idempotency key is derived
from the audit row's id, so the same change never yields two different keys, and a row that
was queued is sent even if the service dies right after the change (the outbox is the
transactional half of "never lost or doubled"; the dispatcher is the other).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, insert

from alerts.case import Case
from alerts.policy import AlertPolicy
from alerts.schema import outbox
from alerts.templates import render


@dataclass(frozen=True)
class Routes:
    """Channel names per audience. ``every_change`` channels (typically MQTT) get every event."""

    every_change: tuple[str, ...] = ()
    supervisors: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()
    enterprises: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    brigades: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def channels(self, case: Case, audience: Iterable[str]) -> list[str]:
        names = list(self.every_change)
        for who in audience:
            if who == "enterprise":
                names += self.enterprises.get(case.enterprise_id, ())
            elif who == "supervisors":
                names += self.supervisors
            elif who == "monitors":
                names += self.monitors
            elif who == "brigade" and case.brigade:
                names += self.brigades.get(case.brigade, ())
        return list(dict.fromkeys(names))  # each channel once, in order


class Notifier:
    def __init__(self, routes: Routes, policy: AlertPolicy) -> None:
        self.routes = routes
        self.policy = policy

    def case_event(
        self,
        conn: Connection,
        case: Case,
        event: str,
        event_id: int,
        audience: Iterable[str],
        now: datetime,
        note: str = "",
    ) -> int:
        """Queue the event for its audience's channels; the number of rows queued."""
        channels = self.routes.channels(case, audience)
        if not channels:
            return 0
        title, text = render(case, event, self.policy, note)
        payload = json.dumps(
            {"event": event, "event_id": event_id, "note": note, "case": case.to_json()},
            ensure_ascii=False,
            default=str,
        )
        conn.execute(
            insert(outbox),
            [
                {
                    "key": f"case-{case.id}-event-{event_id}-{channel}",
                    "case_id": case.id,
                    "channel": channel,
                    "event": event,
                    "enterprise_id": case.enterprise_id,
                    "title": title,
                    "text": text,
                    "payload": payload,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for channel in channels
            ],
        )
        return len(channels)
