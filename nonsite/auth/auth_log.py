"""The authentication log (``auth_events``): every login attempt, logout and change to users
and API tokens, append-only. This is its one home: the other parts ``record`` into it inside
their own transactions, the login throttle counts its failures (nonsite.auth.throttle), and
``nonsite users events`` reads it (``AuthLog.events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import Connection, Engine, insert, select

from ingest.china_time import stored_utc
from nonsite.auth.schema import auth_events

EventKind = Literal[
    "login_ok",
    "login_failed",
    "login_throttled",
    "logout",
    "password_changed",
    "user_added",
    "user_disabled",
    "user_enabled",
    "token_created",
    "token_revoked",
]
USERNAME_CHARS: Final = 64  # the columns' bounds (nonsite.auth.schema)
CLIENT_CHARS: Final = 200


@dataclass(frozen=True)
class AuthEvent:
    id: int
    at: datetime
    username: str
    user_id: int | None
    event: str
    client: str
    detail: str


def _clean(text: str, limit: int) -> str:
    # PostgreSQL cannot store NUL characters, and the columns are bounded.
    return text.replace("\x00", "\ufffd")[:limit]


def logged_username(username: str) -> str:
    """A username as the log keeps it: what to look its events up by."""
    return _clean(username, USERNAME_CHARS)


def logged_client(client: str) -> str:
    """A client (an address, or who made a change) as the log keeps it."""
    return _clean(client, CLIENT_CHARS)


def record(
    conn: Connection,
    at: datetime,
    event: EventKind,
    username: str,
    user_id: int | None,
    client: str,
    detail: str = "",
) -> None:
    """Add an event, in the caller's transaction: it is logged if and only if it happened."""
    conn.execute(
        insert(auth_events).values(
            at=at,
            username=logged_username(username),
            user_id=user_id,
            event=event,
            client=logged_client(client),
            detail=detail,
        )
    )


class AuthLog:
    """Reading the authentication log."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def events(self, limit: int = 100, username: str | None = None) -> list[AuthEvent]:
        """The authentication log, newest first."""
        query = select(auth_events).order_by(auth_events.c.id.desc()).limit(limit)
        if username is not None:
            query = query.where(auth_events.c.username == logged_username(username))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuthEvent(
                id=int(r.id),
                at=stored_utc(r.at),
                username=r.username,
                user_id=None if r.user_id is None else int(r.user_id),
                event=r.event,
                client=r.client,
                detail=r.detail,
            )
            for r in rows
        ]
