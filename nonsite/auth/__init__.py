"""Users and their credentials: roles and scopes, password logins (throttled and audited),
browser sessions and API tokens. ``nonsite users ...`` manages them (nonsite.cli.users).

``UserStore`` (nonsite.auth.users) is the facade callers use; it composes one module per
concept: roles, accounts, logins and throttle, sessions, tokens (with bearer) and auth_log.
"""

from nonsite.auth.accounts import Accounts, check_username
from nonsite.auth.auth_log import AuthEvent, AuthLog
from nonsite.auth.errors import AuthError, LoginFailed, LoginThrottled, NotFoundError
from nonsite.auth.logins import Logins
from nonsite.auth.roles import ROLE_NAMES, ROLES, User, UserRole, check_scope
from nonsite.auth.sessions import Sessions
from nonsite.auth.throttle import Throttle
from nonsite.auth.tokens import ApiToken, ApiTokens
from nonsite.auth.users import UserStore

__all__ = [
    "ROLES",
    "ROLE_NAMES",
    "Accounts",
    "ApiToken",
    "ApiTokens",
    "AuthError",
    "AuthEvent",
    "AuthLog",
    "LoginFailed",
    "LoginThrottled",
    "Logins",
    "NotFoundError",
    "Sessions",
    "Throttle",
    "User",
    "UserRole",
    "UserStore",
    "check_scope",
    "check_username",
]
