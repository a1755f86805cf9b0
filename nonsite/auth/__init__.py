"""Users and their credentials: roles and scopes, password logins (throttled and audited),
browser sessions and API tokens. ``nonsite users ...`` manages them (nonsite.auth.cli)."""

from nonsite.auth.errors import AuthError, LoginFailed, LoginThrottled, NotFoundError
from nonsite.auth.users import (
    ROLE_NAMES,
    ROLES,
    ApiToken,
    AuthEvent,
    User,
    UserRole,
    UserStore,
)

__all__ = [
    "ROLES",
    "ROLE_NAMES",
    "ApiToken",
    "AuthError",
    "AuthEvent",
    "LoginFailed",
    "LoginThrottled",
    "NotFoundError",
    "User",
    "UserRole",
    "UserStore",
]
