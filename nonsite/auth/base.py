"""What the user store's parts share: one database engine and one clock.

Each part (accounts, logins, sessions, API tokens) owns the queries of its own concept; a
UserStore gives them all the same engine and clock, so that they agree on the time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, Engine

from ingest.china_time import stored_utc

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class StorePart:
    """A part of the user store, on a migrated database (nonsite.db.migrate)."""

    def __init__(self, engine: Engine, *, clock: Clock = system_clock) -> None:
        self._engine = engine
        self._clock = clock

    def _now(self) -> datetime:
        # Aware UTC whatever the clock gives: a naive time means UTC, as it does in the database.
        return stored_utc(self._clock()).astimezone(UTC)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
