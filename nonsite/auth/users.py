"""The user store: the facade that the web app (nonsite.web) and the CLI (nonsite.cli.users,
nonsite.demo) use. It holds one part per concept, sharing one engine and one clock, and its
methods only delegate to them:

* ``accounts`` (nonsite.auth.accounts): users, with their roles and scopes (nonsite.auth.roles);
* ``logins`` (nonsite.auth.logins): password logins, throttled (nonsite.auth.throttle);
* ``sessions`` (nonsite.auth.sessions): browser sessions;
* ``tokens`` (nonsite.auth.tokens): API tokens, kept like sessions (nonsite.auth.bearer);
* ``log`` (nonsite.auth.auth_log): the authentication log, which every part writes to.
"""

from __future__ import annotations

from sqlalchemy import Engine

from nonsite.auth.accounts import Accounts
from nonsite.auth.auth_log import AuthLog
from nonsite.auth.base import Clock, system_clock
from nonsite.auth.logins import Logins
from nonsite.auth.sessions import DEFAULT_TTL_S, Sessions
from nonsite.auth.throttle import Throttle
from nonsite.auth.tokens import ApiTokens

__all__ = ["UserStore"]


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

        # The facade's methods are the parts' own, bound here: one signature each, in its part.
        self.add = self.accounts.add
        self.get = self.accounts.get
        self.by_id = self.accounts.by_id
        self.list = self.accounts.list
        self.set_password = self.accounts.set_password
        self.set_active = self.accounts.set_active
        self.authenticate = self.logins.authenticate
        self.create_session = self.sessions.create
        self.session_user = self.sessions.user
        self.end_session = self.sessions.end
        self.create_token = self.tokens.create
        self.token_user = self.tokens.user
        self.list_tokens = self.tokens.list
        self.describe_token = self.tokens.describe
        self.revoke_token = self.tokens.revoke
        self.events = self.log.events

    @property
    def throttle(self) -> Throttle:
        return self.logins.throttle

    @property
    def session_ttl_s(self) -> int:
        """How long a session lasts from login; also the session cookie's max-age."""
        return self.sessions.ttl_s
