"""Who a user is in the linkage workflow (alerts.workflow): the roles, how each is scoped, and
the ``User`` value every part of the user store returns.

Roles: monitor 监测中心, supervisor 监管, enforcer 执法 (scoped to one brigade), enterprise 企业
(scoped to its own enterprise), admin 运维, township 镇街 (scoped to its area: submits and
follows the clues of its area) and intake 线索报送系统 (a system sending clues with its API
token, and nothing else) and legal 法制审核 (reviews the major decisions before they take
effect). A user acts in the workflow as ``user.actor()``.

Apart from the accounts (nonsite.auth.accounts) so that sessions and API tokens can make a User
without depending on the accounts, which in turn end sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from alerts.workflow import Actor

UserRole = Literal[
    "monitor", "supervisor", "enforcer", "enterprise", "admin", "township", "intake", "legal"
]
ROLES: Final[tuple[UserRole, ...]] = (
    "monitor",
    "supervisor",
    "enforcer",
    "enterprise",
    "admin",
    "township",
    "intake",
    "legal",
)
ROLE_NAMES: Final[dict[str, str]] = {
    "monitor": "监测中心",
    "supervisor": "监管",
    "enforcer": "执法",
    "enterprise": "企业",
    "admin": "运维",
    "township": "镇街",
    "intake": "线索报送系统",
    "legal": "法制审核",
}


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: UserRole
    enterprise_id: str | None
    brigade: str | None
    active: bool
    area: str | None = None  # the township role's area (镇街)

    def actor(self) -> Actor:
        """Who this user is in the workflow (and in its audit trail)."""
        return Actor(
            self.display_name or self.username,
            self.role,
            enterprise_id=self.enterprise_id,
            brigade=self.brigade,
            area=self.area,
        )


def role_of(value: str) -> UserRole:
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"unknown role {value!r}; roles: {', '.join(ROLES)}")


def check_scope(
    role: str, enterprise_id: str | None, brigade: str | None, area: str | None = None
) -> UserRole:
    """The role, if it and its scope fit together; otherwise a ValueError saying why."""
    checked = role_of(role)
    for what, value in (("enterprise", enterprise_id), ("brigade", brigade), ("area", area)):
        if value is not None and len(value) > 64:
            raise ValueError(f"an {what} id has at most 64 characters")
    if checked == "township":
        if not area:
            raise ValueError("a township user acts for one area (镇街): give its area")
        if enterprise_id or brigade:
            raise ValueError("a township user has an area, no enterprise and no brigade")
        return checked
    if area:
        raise ValueError("only township users have an area")
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


def user_of(row: Any) -> User:
    """The User of a row with the ``users`` table's columns (joined rows too)."""
    return User(
        id=int(row.id),
        username=row.username,
        display_name=row.display_name,
        role=role_of(row.role),
        enterprise_id=row.enterprise_id,
        brigade=row.brigade,
        active=bool(row.active),
        area=row.area,
    )
