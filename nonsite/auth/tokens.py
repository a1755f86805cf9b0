"""API tokens (the ``api_tokens`` table): for systems that call the API as a user, with
``Authorization: Bearer nst_…``. Kept as their hash (nonsite.auth.bearer); listed by their first
characters only.

A token lasts until revoked and stops working while its user is disabled. Its use is not an
event of the authentication log (a system polling every few seconds would drown it);
``last_used_at`` records it, to the minute.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update

from ingest.china_time import stored_utc, stored_utc_or_none
from nonsite.auth.accounts import MAX_NAME_LENGTH, require_row
from nonsite.auth.auth_log import record
from nonsite.auth.base import StorePart, inserted_id
from nonsite.auth.bearer import digest, lookup_digest, new_secret, touch_due
from nonsite.auth.errors import NotFoundError
from nonsite.auth.roles import User, user_of
from nonsite.auth.schema import api_tokens, users

TOKEN_PREFIX: Final = "nst_"  # noqa: S105 - not a secret: recognisable in logs and by secret scanners
TOKEN_PREFIX_CHARS: Final = 8  # how much of a token is kept in the clear, for listing


@dataclass(frozen=True)
class ApiToken:
    """An API token as listed: never the token or its hash, only its first characters."""

    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


_with_user = api_tokens.join(users, api_tokens.c.user_id == users.c.id)


class ApiTokens(StorePart):
    """Making, using, listing and revoking API tokens."""

    def create(self, username: str, name: str, *, by: str = "cli") -> str:
        """A new API token for ``username``, named for what uses it. The token is returned
        here only: the store keeps its hash."""
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"a token needs a name of 1 to {MAX_NAME_LENGTH} characters")
        token = TOKEN_PREFIX + new_secret()
        now = self._now()
        with self._engine.begin() as conn:
            row = require_row(conn, username)
            result = conn.execute(
                insert(api_tokens).values(
                    user_id=row.id,
                    name=name,
                    token_hash=digest(token),
                    prefix=token[:TOKEN_PREFIX_CHARS],
                    created_at=now,
                )
            )
            token_id = inserted_id(result)
            record(conn, now, "token_created", username, row.id, by, f"token {token_id} {name!r}")
        return token

    def user(self, token: str) -> User | None:
        """The user of an API token; None if it is unknown or revoked or its user disabled."""
        token_hash = lookup_digest(token)
        if token_hash is None:
            return None
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(
                    api_tokens.c.id.label("token_id"),
                    api_tokens.c.revoked_at,
                    api_tokens.c.last_used_at,
                    users,
                )
                .select_from(_with_user)
                .where(api_tokens.c.token_hash == token_hash)
            ).first()
            if row is None or row.revoked_at is not None or not row.active:
                return None
            if touch_due(row.last_used_at, now):
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == row.token_id)
                    .values(last_used_at=now)
                )
        return user_of(row)

    def list(self, username: str | None = None) -> builtins.list[ApiToken]:
        """API tokens, revoked ones too, oldest first; NotFoundError for an unknown username."""
        with self._engine.connect() as conn:
            if username is None:
                return _listed(conn)
            require_row(conn, username)
            return _listed(conn, users.c.username == username)

    def describe(self, token: str) -> ApiToken | None:
        """What the store knows of a token (revoked or not), found by the token itself; unlike
        ``user`` this is not a use and records nothing."""
        token_hash = lookup_digest(token)
        if token_hash is None:
            return None
        with self._engine.connect() as conn:
            found = _listed(conn, api_tokens.c.token_hash == token_hash)
        return found[0] if found else None

    def revoke(self, token_id: int, *, by: str = "cli") -> bool:
        """Revoke an API token: True, or False if it was revoked already; NotFoundError if there
        is no such token."""
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(api_tokens.c.name, api_tokens.c.revoked_at, users.c.id, users.c.username)
                .select_from(_with_user)
                .where(api_tokens.c.id == token_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no API token {token_id}")
            if row.revoked_at is not None:
                return False
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            detail = f"token {token_id} {row.name!r}"
            record(conn, now, "token_revoked", row.username, int(row.id), by, detail)
        return True


def _listed(conn: Connection, *where: Any) -> list[ApiToken]:
    rows = conn.execute(
        select(api_tokens, users.c.username)
        .select_from(_with_user)
        .where(*where)
        .order_by(api_tokens.c.id)
    ).all()
    return [
        ApiToken(
            id=int(r.id),
            user_id=int(r.user_id),
            username=r.username,
            name=r.name,
            prefix=r.prefix,
            created_at=stored_utc(r.created_at),
            last_used_at=stored_utc_or_none(r.last_used_at),
            revoked_at=stored_utc_or_none(r.revoked_at),
        )
        for r in rows
    ]
