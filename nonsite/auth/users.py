"""The user store: the facade that the web app (nonsite.web) and the CLI (nonsite.auth.cli,
nonsite.demo) use. It holds one part per concept, sharing one engine and one clock, and its
methods only delegate to them:

* ``accounts`` (nonsite.auth.accounts): users, with their roles and scopes (nonsite.auth.roles);
* ``logins`` (nonsite.auth.logins): password logins, throttled (nonsite.auth.throttle);
* ``sessions`` (nonsite.auth.sessions): browser sessions;
* ``tokens`` (nonsite.auth.tokens): API tokens, kept like sessions (nonsite.auth.bearer);
* ``log`` (nonsite.auth.auth_log): the authentication log, which every part writes to.

The names callers imported from this module before the parts existed are still importable here.
"""

from __future__ import annotations

import builtins

from sqlalchemy import Engine

from nonsite.auth.accounts import Accounts, check_username
from nonsite.auth.auth_log import AuthEvent, AuthLog
from nonsite.auth.base import Clock, system_clock
from nonsite.auth.logins import Logins
from nonsite.auth.roles import ROLE_NAMES, ROLES, User, UserRole, check_scope
from nonsite.auth.sessions import DEFAULT_TTL_S, Sessions
from nonsite.auth.throttle import Throttle
from nonsite.auth.tokens import ApiToken, ApiTokens

__all__ = [
    "ROLES",
    "ROLE_NAMES",
    "ApiToken",
    "AuthEvent",
    "Throttle",
    "User",
    "UserRole",
    "UserStore",
    "check_scope",
    "check_username",
]


class UserStore:
    """Users, logins, sessions, API tokens and the authentication log, on a migrated database
    (nonsite.db.migrate). The parts are attributes, for a caller that needs only one."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = system_clock,
        throttle: Throttle | None = None,
        session_ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self.accounts = Accounts(engine, clock=clock)
        self.logins = Logins(engine, clock=clock, throttle=throttle)
        self.sessions = Sessions(engine, clock=clock, ttl_s=session_ttl_s)
        self.tokens = ApiTokens(engine, clock=clock)
        self.log = AuthLog(engine)

    @property
    def throttle(self) -> Throttle:
        return self.logins.throttle

    @property
    def session_ttl_s(self) -> int:
        """How long a session lasts from login; also the session cookie's max-age."""
        return self.sessions.ttl_s

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
        return self.accounts.add(
            username,
            password,
            role,
            display_name=display_name,
            enterprise_id=enterprise_id,
            brigade=brigade,
            by=by,
        )

    def get(self, username: str) -> User | None:
        return self.accounts.get(username)

    def by_id(self, user_id: int) -> User | None:
        return self.accounts.by_id(user_id)

    def list(self) -> builtins.list[User]:
        return self.accounts.list()

    def set_password(self, username: str, password: str, *, by: str = "cli") -> User:
        """Set a new password (the policy applies) and end the user's sessions."""
        return self.accounts.set_password(username, password, by=by)

    def set_active(self, username: str, active: bool, *, by: str = "cli") -> User:
        """Enable or disable a user (users are never deleted: the audit trails name them).
        Disabling ends their sessions; their API tokens stop working until they are enabled."""
        return self.accounts.set_active(username, active, by=by)

    # -- logins ------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, *, client: str) -> User:
        """The user with this username and password, if they may log in now; LoginThrottled or
        LoginFailed if not (nonsite.auth.logins)."""
        return self.logins.authenticate(username, password, client=client)

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, user: User, client: str) -> str:
        """A new browser session for ``user`` (just authenticated): the token for its cookie."""
        return self.sessions.create(user, client)

    def session_user(self, token: str) -> User | None:
        """The user of a live session; None if the token is unknown, expired or ended, or the
        user is disabled."""
        return self.sessions.user(token)

    def end_session(self, token: str) -> bool:
        """Log out: whether there was such a session."""
        return self.sessions.end(token)

    # -- API tokens --------------------------------------------------------------------------

    def create_token(self, username: str, name: str, *, by: str = "cli") -> str:
        """A new API token for ``username``, named for what uses it. The token is returned
        here only: the store keeps its hash."""
        return self.tokens.create(username, name, by=by)

    def token_user(self, token: str) -> User | None:
        """The user of an API token; None if it is unknown or revoked or its user disabled."""
        return self.tokens.user(token)

    def list_tokens(self, username: str | None = None) -> builtins.list[ApiToken]:
        """API tokens, revoked ones too, oldest first; NotFoundError for an unknown username."""
        return self.tokens.list(username)

    def describe_token(self, token: str) -> ApiToken | None:
        """What the store knows of a token (revoked or not), found by the token itself; unlike
        ``token_user`` this is not a use and records nothing."""
        return self.tokens.describe(token)

    def revoke_token(self, token_id: int, *, by: str = "cli") -> bool:
        """Revoke an API token: True, or False if it was revoked already; NotFoundError if there
        is no such token."""
        return self.tokens.revoke(token_id, by=by)

    # -- the authentication log --------------------------------------------------------------

    def events(self, limit: int = 100, username: str | None = None) -> builtins.list[AuthEvent]:
        """The authentication log, newest first."""
        return self.log.events(limit, username)
