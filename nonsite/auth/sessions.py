"""Browser sessions (the ``sessions`` table): made at login, found by the cookie's token on every
request, ended at logout, when their user is disabled or gets a new password.

A session lasts ``ttl_s`` from login (an absolute limit, not extended by use); expired ones are
cleared out when a new one is made. Tokens are kept as their hash (nonsite.auth.bearer).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from sqlalchemy import Connection, Engine, delete, insert, select, update

from ingest.china_time import stored_utc
from nonsite.auth.auth_log import record
from nonsite.auth.base import Clock, StorePart, system_clock
from nonsite.auth.bearer import digest, lookup_digest, new_secret, touch_due
from nonsite.auth.roles import User, user_of
from nonsite.auth.schema import sessions, users

DEFAULT_TTL_S: Final = 8 * 3600


def end_all(conn: Connection, user_id: int) -> int:
    """End every session of a user, in the caller's transaction: how many there were."""
    return conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount


class Sessions(StorePart):
    """Making, finding and ending browser sessions."""

    def __init__(
        self, engine: Engine, *, clock: Clock = system_clock, ttl_s: int = DEFAULT_TTL_S
    ) -> None:
        super().__init__(engine, clock=clock)
        self.ttl_s = ttl_s  # also the session cookie's max-age
        self._ttl = timedelta(seconds=ttl_s)

    def create(self, user: User, client: str) -> str:
        """A new session for ``user`` (just authenticated): the token for its cookie.

        Expired sessions are cleared out here."""
        token = new_secret()
        now = self._now()
        with self._engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                insert(sessions).values(
                    token_hash=digest(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + self._ttl,
                    last_seen_at=now,
                    client=client[:200],
                )
            )
        return token

    def user(self, token: str) -> User | None:
        """The user of a live session; None if the token is unknown, expired or ended, or the
        user is disabled."""
        token_hash = lookup_digest(token)
        if token_hash is None:
            return None
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(sessions.c.expires_at, sessions.c.last_seen_at, users)
                .select_from(sessions.join(users, sessions.c.user_id == users.c.id))
                .where(sessions.c.token_hash == token_hash)
            ).first()
            if row is None:
                return None
            if stored_utc(row.expires_at) <= now:
                conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
                return None
            if not row.active:
                return None
            if touch_due(row.last_seen_at, now):
                conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == token_hash)
                    .values(last_seen_at=now)
                )
        return user_of(row)

    def end(self, token: str) -> bool:
        """Log out: whether there was such a session."""
        token_hash = lookup_digest(token)
        if token_hash is None:
            return False
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(sessions.c.client, users.c.id, users.c.username)
                .select_from(sessions.join(users, sessions.c.user_id == users.c.id))
                .where(sessions.c.token_hash == token_hash)
            ).first()
            if row is None:
                return False
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
            record(conn, now, "logout", row.username, int(row.id), row.client)
        return True
