"""Users, their logins, browser sessions and API tokens, in the service database.

Roles are those of the linkage workflow (alerts.workflow): monitor 监测中心, supervisor 监管,
enforcer 执法 (scoped to one brigade), enterprise 企业 (scoped to its own enterprise) and
admin 运维. A user acts in the workflow as ``user.actor()``.

Secrets: passwords are kept as scrypt hashes (nonsite.auth.passwords). Session and API tokens
are 256-bit random strings (``secrets.token_urlsafe(32)``) kept as their SHA-256: a slow KDF
protects guessable secrets, and there is nothing to guess in 256 random bits, so a fast hash
(which also lets a token be looked up by its hash) loses nothing. Neither hashes nor secrets
ever leave this module except a new token, returned once to its creator.

Login throttling slows guessing down without letting anyone lock an account (``Throttle``).
It counts ``login_failed`` events:

* per (username, client address): the first ``free_failures`` (5) cost nothing; after that,
  each further attempt from that client for that username must wait ``base_delay_s`` (1 s)
  after the client's latest failure, doubling with every further failure (1, 2, 4, … s) up to
  ``max_delay_s`` (15 minutes). Failures count for ``window_s`` (24 hours). A successful login
  from that client, or a new password set by an administrator, resets the count. The right
  password from another client works at once: a stranger's guessing never holds up the owner.
* per client, whatever the usernames: after ``client_free_failures`` (20) failures in
  ``client_window_s`` (an hour), the same growing delays for every attempt from that client.
  A success does not reset it: one client guessing at many accounts must not clear its record
  by logging into an account of its own.
* per username, from all clients (distributed guessing): once a username has
  ``user_alarm_failures`` (100) failures in ``window_s``, it is under attack and no client gets
  free failures for it any more: a client waits 1 s after its first failure for it, then 2, 4,
  … s. A client that has not failed is not held back, so this only slows the
  guessers, never locks the owner out; it does not stop many addresses guessing slowly, which
  the password policy, the scrypt cost and the audit log (``nonsite users events``) are for.
  Usernames are counted whether or not they exist, so throttling does not tell who has an
  account.

Refused attempts (``login_throttled``, with the reason and the wait in ``detail``) do not count
as failures and check no password, so knocking does not extend a wait. Every attempt,
successful or not, is recorded in ``auth_events``.

Sessions last ``session_ttl_s`` from login (an absolute limit, not extended by use); disabling a
user or changing their password ends their sessions. API tokens last until revoked and stop
working while their user is disabled. ``last_seen_at`` and ``last_used_at`` are written at most
once a minute, so reading does not turn every request into a write.
A token's use is not an event of the authentication log (a system polling every few seconds
would drown it); ``last_used_at`` records it, to the minute.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Connection, CursorResult, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from alerts.workflow import Actor
from ingest.china_time import stored_utc, stored_utc_or_none
from nonsite.auth.errors import LoginFailed, LoginThrottled, NotFoundError
from nonsite.auth.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from nonsite.auth.schema import api_tokens, auth_events, sessions, users

UserRole = Literal["monitor", "supervisor", "enforcer", "enterprise", "admin"]
ROLES: Final[tuple[UserRole, ...]] = ("monitor", "supervisor", "enforcer", "enterprise", "admin")
ROLE_NAMES: Final[dict[str, str]] = {
    "monitor": "监测中心",
    "supervisor": "监管",
    "enforcer": "执法",
    "enterprise": "企业",
    "admin": "运维",
}
USERNAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
TOKEN_PREFIX: Final = "nst_"  # noqa: S105 - not a secret: recognisable in logs and by secret scanners
TOKEN_PREFIX_CHARS: Final = 8  # how much of a token is kept in the clear, for listing
TOUCH_INTERVAL: Final = timedelta(minutes=1)
MAX_NAME_LENGTH: Final = 100
_MAX_SECRET_LENGTH: Final = 200  # longer presented tokens are not ours: no lookup

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


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: UserRole
    enterprise_id: str | None
    brigade: str | None
    active: bool

    def actor(self) -> Actor:
        """Who this user is in the workflow (and in its audit trail)."""
        return Actor(
            self.display_name or self.username,
            self.role,
            enterprise_id=self.enterprise_id,
            brigade=self.brigade,
        )


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
    """Text for the log: PostgreSQL cannot store NUL characters, and the columns are bounded."""
    return text.replace("\x00", "\ufffd")[:limit]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _role(value: str) -> UserRole:
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"unknown role {value!r}; roles: {', '.join(ROLES)}")


def _user(row: Any) -> User:
    return User(
        id=int(row.id),
        username=row.username,
        display_name=row.display_name,
        role=_role(row.role),
        enterprise_id=row.enterprise_id,
        brigade=row.brigade,
        active=bool(row.active),
    )


_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to verify against for unknown users, made with today's parameters so that a
    login for an unknown user takes as long as one with a wrong password."""
    global _dummy_hash  # noqa: PLW0603 - a lazily made, process-wide constant
    if _dummy_hash is None or needs_rehash(_dummy_hash):
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def check_username(username: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValueError(
            f"invalid username {username!r}: 2 to 64 of the letters A-Z a-z, digits and _ . @ -"
        )


def check_scope(role: str, enterprise_id: str | None, brigade: str | None) -> UserRole:
    """The role, if it and its scope fit together; otherwise a ValueError saying why."""
    checked = _role(role)
    for what, value in (("enterprise", enterprise_id), ("brigade", brigade)):
        if value is not None and len(value) > 64:
            raise ValueError(f"an {what} id has at most 64 characters")
    if checked == "enterprise":
        if not enterprise_id:
            raise ValueError("an enterprise user acts for one enterprise: give its enterprise id")
        if brigade:
            raise ValueError("an enterprise user has no brigade")
    elif checked == "enforcer":
        if not brigade:
            raise ValueError("an enforcer acts for one brigade: give the brigade")
        if enterprise_id:
            raise ValueError("an enforcer has no enterprise")
    elif enterprise_id or brigade:
        raise ValueError(
            f"the {checked} role is not scoped: only enterprise users have an enterprise "
            "and only enforcers a brigade"
        )
    return checked


@dataclass(frozen=True)
class Throttle:
    """How failed logins slow further attempts down (see the module docstring)."""

    free_failures: int = 5  # per (username, client), before any wait
    client_free_failures: int = 20  # per client, any usernames, within client_window_s
    base_delay_s: float = 1.0  # the first wait; each further failure doubles it
    max_delay_s: float = 900.0  # the longest wait
    window_s: int = 24 * 3600  # how long a failure counts (per username and client, per user)
    client_window_s: int = 3600  # how long a failure counts for its client alone
    user_alarm_failures: int = 100  # a username's failures from all clients: under attack

    def delay_s(self, failures: int, free: int) -> float | None:
        """The wait after the latest of ``failures`` failures, or None while they are free."""
        if failures <= 0 or failures < free:
            return None
        return float(min(self.base_delay_s * 2.0 ** min(failures - free, 64), self.max_delay_s))


class UserStore:
    """Users, logins, sessions and API tokens on a migrated database (nonsite.db.migrate)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        throttle: Throttle | None = None,
        session_ttl_s: int = 8 * 3600,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.throttle = throttle or Throttle()
        self.session_ttl_s = session_ttl_s  # also the session cookie's max-age
        self._session_ttl = timedelta(seconds=session_ttl_s)

    def _now(self) -> datetime:
        return stored_utc(self._clock()).astimezone(UTC)

    @staticmethod
    def _event(
        conn: Connection,
        at: datetime,
        event: EventKind,
        username: str,
        user_id: int | None,
        client: str,
        detail: str = "",
    ) -> None:
        conn.execute(
            insert(auth_events).values(
                at=at,
                username=_clean(username, 64),
                user_id=user_id,
                event=event,
                client=_clean(client, 200),
                detail=detail,
            )
        )

    # -- users -------------------------------------------------------------------------------

    def add(
        self,
        username: str,
        password: str,
        role: str,
        *,
        display_name: str = "",
        enterprise_id: str | None = None,
        brigade: str | None = None,
        by: str = "cli",
    ) -> User:
        """A new active user; ValueError for an invalid username, role, scope or password, or a
        username already taken."""
        check_username(username)
        checked = check_scope(role, enterprise_id, brigade)
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
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    insert(users).values(
                        username=username,
                        display_name=display_name,
                        role=checked,
                        enterprise_id=enterprise_id or None,
                        brigade=brigade or None,
                        password_hash=password_hash,
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
                user_id = _inserted_id(result)
                self._event(
                    conn, now, "user_added", username, user_id, by, f"role {checked}{scope}"
                )
        except IntegrityError:  # added by someone else since the check above
            raise ValueError(f"user {username!r} already exists") from None
        return User(
            user_id, username, display_name, checked, enterprise_id or None, brigade or None, True
        )

    def get(self, username: str) -> User | None:
        if not USERNAME_PATTERN.fullmatch(username):
            return None  # cannot exist; and no odd characters reach the database
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return None if row is None else _user(row)

    def by_id(self, user_id: int) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def list(self) -> list[User]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [_user(r) for r in rows]

    def _require(self, conn: Connection, username: str) -> Any:
        row = None
        if USERNAME_PATTERN.fullmatch(username):
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"no user {username!r}")
        return row

    def set_password(self, username: str, password: str, *, by: str = "cli") -> User:
        """Set a new password (the policy applies) and end the user's sessions."""
        check_password_policy(password, username=username)
        password_hash = hash_password(password)
        now = self._now()
        with self._engine.begin() as conn:
            row = self._require(conn, username)
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=password_hash, updated_at=now)
            )
            ended = conn.execute(delete(sessions).where(sessions.c.user_id == row.id)).rowcount
            self._event(
                conn, now, "password_changed", username, row.id, by, f"sessions ended: {ended}"
            )
        return _user(row)

    def set_active(self, username: str, active: bool, *, by: str = "cli") -> User:
        """Enable or disable a user (users are never deleted: the audit trails name them).
        Disabling ends their sessions; their API tokens stop working until they are enabled."""
        now = self._now()
        with self._engine.begin() as conn:
            row = self._require(conn, username)
            if bool(row.active) == active:
                return _user(row)
            conn.execute(
                update(users).where(users.c.id == row.id).values(active=active, updated_at=now)
            )
            detail = ""
            if not active:
                ended = conn.execute(delete(sessions).where(sessions.c.user_id == row.id)).rowcount
                detail = f"sessions ended: {ended}"
            event: EventKind = "user_enabled" if active else "user_disabled"
            self._event(conn, now, event, username, row.id, by, detail)
        return replace(_user(row), active=active)

    # -- logins ------------------------------------------------------------------------------

    def _failures(
        self, conn: Connection, where: Sequence[Any], since: datetime, limit: int
    ) -> tuple[int, datetime | None]:
        """How many failures match ``where`` after ``since`` (counting to ``limit`` at most), and
        the latest one's time."""
        found = conn.execute(
            select(auth_events.c.at)
            .where(auth_events.c.event == "login_failed", auth_events.c.at > since, *where)
            .order_by(auth_events.c.id.desc())
            .limit(max(limit, 1))
        ).all()
        return len(found), (stored_utc(found[0].at) if found else None)

    def _throttled(
        self, conn: Connection, username: str, client: str, now: datetime
    ) -> tuple[int, str] | None:
        """If this client must wait before trying this username again: how many seconds, and
        why (for the audit log)."""
        t = self.throttle
        since = now - timedelta(seconds=t.window_s)
        # The latest reset of the (username, client) count, by id: events in the same instant
        # (a coarse clock) are still ordered.
        reset = conn.execute(
            select(func.max(auth_events.c.id)).where(
                auth_events.c.username == username,
                auth_events.c.at > since,
                (
                    (auth_events.c.event == "login_ok") & (auth_events.c.client == client)
                    | (auth_events.c.event == "password_changed")
                ),
            )
        ).scalar()
        pair: list[Any] = [auth_events.c.username == username, auth_events.c.client == client]
        if reset is not None:
            pair.append(auth_events.c.id > reset)
        # Enough rows to reach the longest wait: more failures would not change it.
        steps = math.ceil(math.log2(max(t.max_delay_s / t.base_delay_s, 1))) + 2
        attacked, _ = self._failures(
            conn, [auth_events.c.username == username], since, t.user_alarm_failures
        )
        under_attack = attacked >= t.user_alarm_failures > 0
        free = 1 if under_attack else t.free_failures
        checks = {
            "username from this client": (
                self._failures(conn, pair, since, free + steps),
                free,
            ),
            "this client": (
                self._failures(
                    conn,
                    [auth_events.c.client == client],
                    now - timedelta(seconds=t.client_window_s),
                    t.client_free_failures + steps,
                ),
                t.client_free_failures,
            ),
        }
        waits: dict[str, tuple[float, int]] = {}
        for why, ((count, latest), allowed) in checks.items():
            delay = t.delay_s(count, allowed)
            if delay is None or latest is None:
                continue
            wait = (latest + timedelta(seconds=delay) - now).total_seconds()
            if wait > 0:
                waits[why] = (wait, count)
        if not waits:
            return None
        longest = max(1, math.ceil(max(w for w, _ in waits.values())))
        reasons = [
            f"{why} ({count} failure{'' if count == 1 else 's'})"
            for why, (_, count) in waits.items()
        ]
        if under_attack and "username from this client" in waits:
            reasons[0] += ", the username is under attack"
        return longest, f"{' and '.join(reasons)}; wait {longest} s"

    def authenticate(self, username: str, password: str, *, client: str) -> User:
        """The user with this username and password, if they may log in now.

        Raises LoginThrottled after too many recent failures (see the module docstring) and
        LoginFailed, with the same message, for an unknown user, a wrong password or a disabled
        account. An unknown user's attempt costs the same hash computation as a known one's.
        """
        now = self._now()
        name = _clean(username, 64)
        client = _clean(client, 200)
        with self._engine.connect() as conn:
            throttled = self._throttled(conn, name, client, now)
            row = None
            if throttled is None and USERNAME_PATTERN.fullmatch(username):
                row = conn.execute(select(users).where(users.c.username == username)).first()
        if throttled is not None:
            wait, why = throttled
            with self._engine.begin() as conn:
                self._event(
                    conn, now, "login_throttled", name, None, client, f"too many failures: {why}"
                )
            raise LoginThrottled(wait)
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
                self._event(conn, now, "login_failed", name, user_id, client, detail)
            raise LoginFailed
        new_hash = hash_password(password) if needs_rehash(row.password_hash) else None
        with self._engine.begin() as conn:
            if new_hash is not None:  # stored with older parameters: upgrade it now
                conn.execute(
                    update(users)
                    .where(users.c.id == row.id, users.c.password_hash == row.password_hash)
                    .values(password_hash=new_hash)
                )
            self._event(conn, now, "login_ok", name, int(row.id), client)
        return _user(row)

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, user: User, client: str) -> str:
        """A new browser session for ``user`` (just authenticated): the token for its cookie.

        Expired sessions are cleared out here."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        with self._engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                insert(sessions).values(
                    token_hash=_digest(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + self._session_ttl,
                    last_seen_at=now,
                    client=client[:200],
                )
            )
        return token

    def session_user(self, token: str) -> User | None:
        """The user of a live session; None if the token is unknown, expired or ended, or the
        user is disabled."""
        if not token or len(token) > _MAX_SECRET_LENGTH:
            return None
        token_hash = _digest(token)
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
            if now - stored_utc(row.last_seen_at) >= TOUCH_INTERVAL:
                conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == token_hash)
                    .values(last_seen_at=now)
                )
        return _user(row)

    def end_session(self, token: str) -> bool:
        """Log out: whether there was such a session."""
        if not token or len(token) > _MAX_SECRET_LENGTH:
            return False
        token_hash = _digest(token)
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
            self._event(conn, now, "logout", row.username, int(row.id), row.client)
        return True

    # -- API tokens --------------------------------------------------------------------------

    def create_token(self, username: str, name: str, *, by: str = "cli") -> str:
        """A new API token for ``username``, named for what uses it. The token is returned
        here only: the store keeps its hash."""
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"a token needs a name of 1 to {MAX_NAME_LENGTH} characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._now()
        with self._engine.begin() as conn:
            row = self._require(conn, username)
            result = conn.execute(
                insert(api_tokens).values(
                    user_id=row.id,
                    name=name,
                    token_hash=_digest(token),
                    prefix=token[:TOKEN_PREFIX_CHARS],
                    created_at=now,
                )
            )
            token_id = _inserted_id(result)
            self._event(
                conn, now, "token_created", username, row.id, by, f"token {token_id} {name!r}"
            )
        return token

    def token_user(self, token: str) -> User | None:
        """The user of an API token; None if it is unknown or revoked or its user disabled."""
        if not token or len(token) > _MAX_SECRET_LENGTH:
            return None
        token_hash = _digest(token)
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(
                    api_tokens.c.id.label("token_id"),
                    api_tokens.c.revoked_at,
                    api_tokens.c.last_used_at,
                    users,
                )
                .select_from(api_tokens.join(users, api_tokens.c.user_id == users.c.id))
                .where(api_tokens.c.token_hash == token_hash)
            ).first()
            if row is None or row.revoked_at is not None or not row.active:
                return None
            if row.last_used_at is None or now - stored_utc(row.last_used_at) >= TOUCH_INTERVAL:
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == row.token_id)
                    .values(last_used_at=now)
                )
        return _user(row)

    def _tokens(self, *where: Any) -> builtins.list[ApiToken]:
        query = (
            select(api_tokens, users.c.username)
            .select_from(api_tokens.join(users, api_tokens.c.user_id == users.c.id))
            .where(*where)
            .order_by(api_tokens.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
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

    def list_tokens(self, username: str | None = None) -> builtins.list[ApiToken]:
        """API tokens, revoked ones too, oldest first; NotFoundError for an unknown username."""
        if username is None:
            return self._tokens()
        if self.get(username) is None:
            raise NotFoundError(f"no user {username!r}")
        return self._tokens(users.c.username == username)

    def describe_token(self, token: str) -> ApiToken | None:
        """What the store knows of a token (revoked or not), found by the token itself; unlike
        ``token_user`` this is not a use and records nothing."""
        if not token or len(token) > _MAX_SECRET_LENGTH:
            return None
        found = self._tokens(api_tokens.c.token_hash == _digest(token))
        return found[0] if found else None

    def revoke_token(self, token_id: int, *, by: str = "cli") -> bool:
        """Revoke an API token: True, or False if it was revoked already; NotFoundError if there is
        no such token."""
        now = self._now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(api_tokens.c.name, api_tokens.c.revoked_at, users.c.id, users.c.username)
                .select_from(api_tokens.join(users, api_tokens.c.user_id == users.c.id))
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
            self._event(
                conn,
                now,
                "token_revoked",
                row.username,
                int(row.id),
                by,
                f"token {token_id} {row.name!r}",
            )
        return True

    # -- audit -------------------------------------------------------------------------------

    def events(self, limit: int = 100, username: str | None = None) -> builtins.list[AuthEvent]:
        """The authentication log, newest first."""
        query = select(auth_events).order_by(auth_events.c.id.desc()).limit(limit)
        if username is not None:
            query = query.where(auth_events.c.username == _clean(username, 64))
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
