"""Password logins: a username and password checked, throttled (nonsite.auth.throttle) and
audited.

Refused attempts (``login_throttled``, with the reason and the wait in ``detail``) do not count
as failures and check no password, so knocking does not extend a wait. Every attempt,
successful or not, is recorded in the authentication log. A hash made with older scrypt
parameters is upgraded at the next successful login.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, update

from nonsite.auth.accounts import find_row
from nonsite.auth.auth_log import logged_client, logged_username, record
from nonsite.auth.base import Clock, StorePart, system_clock
from nonsite.auth.errors import LoginFailed, LoginThrottled
from nonsite.auth.passwords import hash_password, needs_rehash, verify_password
from nonsite.auth.roles import User, user_of
from nonsite.auth.schema import users
from nonsite.auth.throttle import Throttle

_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to verify against for unknown users, made with today's parameters so that a
    login for an unknown user takes as long as one with a wrong password."""
    global _dummy_hash  # noqa: PLW0603 - a lazily made, process-wide constant
    if _dummy_hash is None or needs_rehash(_dummy_hash):
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


class Logins(StorePart):
    """Checking passwords at login."""

    def __init__(
        self, engine: Engine, *, clock: Clock = system_clock, throttle: Throttle | None = None
    ) -> None:
        super().__init__(engine, clock=clock)
        self.throttle = throttle or Throttle()

    def authenticate(self, username: str, password: str, *, client: str) -> User:
        """The user with this username and password, if they may log in now.

        Raises LoginThrottled after too many recent failures (nonsite.auth.throttle) and
        LoginFailed, with the same message, for an unknown user, a wrong password or a disabled
        account. An unknown user's attempt costs the same hash computation as a known one's.
        """
        now = self._now()
        name = logged_username(username)
        client = logged_client(client)
        with self._engine.connect() as conn:
            wait = self.throttle.wait(conn, name, client, now)
            row = find_row(conn, username) if wait is None else None
        if wait is not None:
            with self._engine.begin() as conn:
                detail = f"too many failures: {wait.why}"
                record(conn, now, "login_throttled", name, None, client, detail)
            raise LoginThrottled(wait.seconds)
        ok = verify_password(password, row.password_hash if row is not None else _dummy())
        if row is None or not ok or not row.active:
            if row is None:
                detail = "unknown user"
            elif not ok:
                detail = "wrong password"
            else:
                detail = "user disabled"
            with self._engine.begin() as conn:
                user_id = None if row is None else int(row.id)
                record(conn, now, "login_failed", name, user_id, client, detail)
            raise LoginFailed
        new_hash = hash_password(password) if needs_rehash(row.password_hash) else None
        with self._engine.begin() as conn:
            if new_hash is not None:  # stored with older parameters: upgrade it now
                conn.execute(
                    update(users)
                    .where(users.c.id == row.id, users.c.password_hash == row.password_hash)
                    .values(password_hash=new_hash)
                )
            record(conn, now, "login_ok", name, int(row.id), client)
        return user_of(row)
