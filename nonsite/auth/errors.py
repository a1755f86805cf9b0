"""What the user store refuses with, besides ``ValueError`` for invalid input."""

from __future__ import annotations


class AuthError(Exception):
    """Base of the user store's refusals."""


class LoginFailed(AuthError):  # noqa: N818 - reads as what happened: except LoginFailed
    """A login was refused. The message is the same whatever the reason (unknown user, wrong
    password, disabled account), so it does not tell who has an account; the reason is in the
    audit log (``auth_events``)."""

    def __init__(self) -> None:
        super().__init__("invalid username or password")


class LoginThrottled(AuthError):  # noqa: N818 - as LoginFailed
    """Too many failed logins for this username or from this client: try again later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class NotFoundError(AuthError, LookupError):
    """No such user or API token."""
