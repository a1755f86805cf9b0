"""The user store's tables: users, API tokens, browser sessions and the authentication log.

No secret is stored in the clear: ``users.password_hash`` is a salted scrypt hash
(nonsite.auth.passwords); API tokens and session tokens are stored as the SHA-256 of the token
(they are long random strings, so a fast hash is enough: there is nothing to guess). The
authentication log (``auth_events``) is append-only: the code never updates or deletes its rows,
and users are disabled, never deleted, so every event keeps its user.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from ingest.sqltypes import UTCDateTime

metadata = MetaData()

# Integer keys that are 64-bit on PostgreSQL and still the rowid alias on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),  # "" when none was given
    # monitor | supervisor | enforcer | enterprise | admin
    Column("role", String(16), nullable=False),
    Column("enterprise_id", String(64), nullable=True),  # the enterprise role's own enterprise
    Column("brigade", String(64), nullable=True),  # the enforcer's brigade
    Column("area", String(64), nullable=True),  # the township user's area (镇街)
    Column("password_hash", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),  # what it is for, e.g. the system using it
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256, hex
    Column("prefix", String(8), nullable=False),  # the token's first characters, for listing
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),  # to the minute
    Column("revoked_at", UTCDateTime(), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's value, hex
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("last_seen_at", UTCDateTime(), nullable=False),  # to the minute
    Column("client", String(200), nullable=False),
)

auth_events = Table(
    "auth_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("username", String(64), nullable=False),  # as given at login, even if unknown
    Column("user_id", Id, ForeignKey("users.id"), nullable=True),  # None: no such user
    # login_ok | login_failed | login_throttled | logout | password_changed | user_added |
    # user_disabled | user_enabled | token_created | token_revoked
    Column("event", String(24), nullable=False),
    # Where a login came from (the client's address, "cli"); for a management event, who made
    # the change (the ``by`` of the UserStore call).
    Column("client", String(200), nullable=False),
    Column("detail", Text, nullable=False),
)
# Login throttling counts recent failures per username and per client.
Index("ix_auth_events_username_at", auth_events.c.username, auth_events.c.at)
Index("ix_auth_events_client_at", auth_events.c.client, auth_events.c.at)
