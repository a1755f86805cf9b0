"""User accounts (the ``users`` table): adding users, finding them, setting their passwords,
disabling and enabling them. Users are never deleted: the audit trails name them.

Passwords are kept as scrypt hashes (nonsite.auth.passwords). A new password or a disabled
account ends the user's sessions; a disabled user's API tokens stop working until they are
enabled again (nonsite.auth.tokens checks). Every change is in the authentication log.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import replace
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from nonsite.auth.auth_log import EventKind, record
from nonsite.auth.base import StorePart, inserted_id
from nonsite.auth.errors import NotFoundError
from nonsite.auth.passwords import check_password_policy, hash_password
from nonsite.auth.roles import User, check_scope, user_of
from nonsite.auth.schema import users
from nonsite.auth.sessions import end_all

USERNAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
MAX_NAME_LENGTH: Final = 100  # a display name's or an API token's name (nonsite.auth.schema)


def check_username(username: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValueError(
            f"invalid username {username!r}: 2 to 64 of the letters A-Z a-z, digits and _ . @ -"
        )


def find_row(conn: Connection, username: str) -> Any | None:
    """The ``users`` row of ``username``, or None."""
    if not USERNAME_PATTERN.fullmatch(username):
        return None  # cannot exist; and no odd characters reach the database
    return conn.execute(select(users).where(users.c.username == username)).first()


def require_row(conn: Connection, username: str) -> Any:
    """The ``users`` row of ``username``; NotFoundError if there is none."""
    row = find_row(conn, username)
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return row


class Accounts(StorePart):
    """Adding, finding and changing users."""

    def add(
        self,
        username: str,
        password: str,
        role: str,
        *,
        display_name: str = "",
        enterprise_id: str | None = None,
        brigade: str | None = None,
        area: str | None = None,
        by: str = "cli",
    ) -> User:
        """A new active user; ValueError for an invalid username, role, scope or password, or a
        username already taken."""
        check_username(username)
        checked = check_scope(role, enterprise_id, brigade, area)
        display_name = display_name.strip()
        if len(display_name) > MAX_NAME_LENGTH:
            raise ValueError(f"the display name must have at most {MAX_NAME_LENGTH} characters")
        check_password_policy(password, username=username)
        if self.get(username) is not None:
            raise ValueError(f"user {username!r} already exists")
        password_hash = hash_password(password)
        now = self._now()
        scope = f" enterprise {enterprise_id}" if enterprise_id else ""
        scope += f" brigade {brigade}" if brigade else ""
        scope += f" area {area}" if area else ""
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    insert(users).values(
                        username=username,
                        display_name=display_name,
                        role=checked,
                        enterprise_id=enterprise_id or None,
                        brigade=brigade or None,
                        area=area or None,
                        password_hash=password_hash,
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
                user_id = inserted_id(result)
                record(conn, now, "user_added", username, user_id, by, f"role {checked}{scope}")
        except IntegrityError:  # added by someone else since the check above
            raise ValueError(f"user {username!r} already exists") from None
        return User(
            user_id,
            username,
            display_name,
            checked,
            enterprise_id or None,
            brigade or None,
            True,
            area or None,
        )

    def get(self, username: str) -> User | None:
        with self._engine.connect() as conn:
            row = find_row(conn, username)
        return None if row is None else user_of(row)

    def by_id(self, user_id: int) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else user_of(row)

    def list(self) -> builtins.list[User]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [user_of(r) for r in rows]

    def set_password(self, username: str, password: str, *, by: str = "cli") -> User:
        """Set a new password (the policy applies) and end the user's sessions."""
        check_password_policy(password, username=username)
        password_hash = hash_password(password)
        now = self._now()
        with self._engine.begin() as conn:
            row = require_row(conn, username)
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=password_hash, updated_at=now)
            )
            ended = end_all(conn, row.id)
            record(conn, now, "password_changed", username, row.id, by, f"sessions ended: {ended}")
        return user_of(row)

    def set_active(self, username: str, active: bool, *, by: str = "cli") -> User:
        """Enable or disable a user. Disabling ends their sessions; their API tokens stop
        working until they are enabled."""
        now = self._now()
        with self._engine.begin() as conn:
            row = require_row(conn, username)
            if bool(row.active) == active:
                return user_of(row)
            conn.execute(
                update(users).where(users.c.id == row.id).values(active=active, updated_at=now)
            )
            detail = ""
            if not active:
                detail = f"sessions ended: {end_all(conn, row.id)}"
            event: EventKind = "user_enabled" if active else "user_disabled"
            record(conn, now, event, username, row.id, by, detail)
        return replace(user_of(row), active=active)
