"""Login throttling: how failed logins slow further attempts down, without letting anyone lock
an account. It counts the ``login_failed`` events of the authentication log:

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select

from ingest.china_time import stored_utc
from nonsite.auth.schema import auth_events


class Wait(NamedTuple):
    """How long a client must wait before its next attempt, and why (for the audit log)."""

    seconds: int
    why: str


@dataclass(frozen=True)
class Throttle:
    """The limits (see the module docstring), and the wait they impose on an attempt."""

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

    def wait(self, conn: Connection, username: str, client: str, now: datetime) -> Wait | None:
        """If this client must wait before trying this username again (both as the log keeps
        them): how long, and why."""
        since = now - timedelta(seconds=self.window_s)
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
        steps = math.ceil(math.log2(max(self.max_delay_s / self.base_delay_s, 1))) + 2
        attacked, _ = _failures(
            conn, [auth_events.c.username == username], since, self.user_alarm_failures
        )
        under_attack = attacked >= self.user_alarm_failures > 0
        free = 1 if under_attack else self.free_failures
        checks = {
            "username from this client": (_failures(conn, pair, since, free + steps), free),
            "this client": (
                _failures(
                    conn,
                    [auth_events.c.client == client],
                    now - timedelta(seconds=self.client_window_s),
                    self.client_free_failures + steps,
                ),
                self.client_free_failures,
            ),
        }
        waits: dict[str, tuple[float, int]] = {}
        for why, ((count, latest), allowed) in checks.items():
            delay = self.delay_s(count, allowed)
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
        return Wait(longest, f"{' and '.join(reasons)}; wait {longest} s")


def _failures(
    conn: Connection, where: Sequence[Any], since: datetime, limit: int
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
