"""A person's request done once, through a failover and through the client's own repeats.

The client may name its request (``Idempotency-Key``, e.g. the dashboard's form, one key for
all its submissions); without one the API makes a key for its own retries. The action's
transaction writes the key (:mod:`alerts.action_requests`) and is run again while the database
is away (:func:`nonsite.db_health.through_outage`): a repeat after a commit whose reply was lost
finds the action done and answers with the case as it is.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Header
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from alerts.action_requests import MAX_KEY_LENGTH, done_before, record
from alerts.workflow import WorkflowError
from nonsite.auth import User
from nonsite.db_health import is_unavailable, through_outage
from nonsite.web.context import WebContext

T = TypeVar("T")

RequestKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="the request's own key: sent again (a lost reply), the action is not "
        "taken twice; the answer is the case as it is",
    ),
]


def own_request_key() -> str:
    return f"api-{uuid.uuid4().hex}"


def member_key(key: str, member: int) -> str:
    """The key of one part of a bulk request (each case's action its own transaction)."""
    return "part-" + hashlib.blake2b(f"{key}/{member}".encode(), digest_size=20).hexdigest()


CONFLICT_RETRIES = 3


def keyed_transaction(
    ctx: WebContext, work: Callable[[Connection], T], *, version_pinned: bool = True
) -> T:
    """``work`` in one transaction, run again through a failover (``[database] retry_s``).
    ``work`` must write its request key: that is what makes running it again safe. A request
    that named no case version (``version_pinned`` False) is also run again when the case
    changed between its read and its write (the rules counted another hour on it): the
    person asked for the action on the case as it is, not as it was."""
    raced = False
    conflicts = 0

    def retry_if(exc: BaseException) -> bool:
        nonlocal raced, conflicts
        if isinstance(exc, IntegrityError) and not raced:
            raced = True  # a repeat of the request committed first: the next run finds it done
            return True
        if isinstance(exc, WorkflowError) and exc.code == "conflict" and not version_pinned:
            conflicts += 1
            return conflicts <= CONFLICT_RETRIES
        return is_unavailable(exc)

    def once() -> T:
        with ctx.db.begin() as conn:
            return work(conn)

    return through_outage(once, ctx.config.database.retry_s, retry_if=retry_if)


def keyed_step(
    ctx: WebContext,
    idempotency_key: str | None,
    user: User,
    action: str,
    *,
    case_of: Callable[[Connection], int],
    take: Callable[[Connection, int], T],
    taken: Callable[[Connection, int], T],
) -> T:
    """A person's step on a case, taken once per request key in one transaction.

    ``case_of`` finds the step's case (and refuses one the person may not see), ``take`` takes
    the step, ``taken`` answers a repeat of the request (its first reply lost) with what the
    first one did. The key is written in the step's own transaction, so running it again
    through a failover cannot take the step twice."""
    key = idempotency_key or own_request_key()

    def work(conn: Connection) -> T:
        case_id = case_of(conn)
        if done_before(conn, key, case_id, action, user.actor()):
            return taken(conn, case_id)
        result = take(conn, case_id)
        record(conn, key, case_id, action, user.actor(), ctx.book.clock())
        return result

    return keyed_transaction(ctx, work)


__all__ = ["RequestKey", "keyed_step", "keyed_transaction", "member_key", "own_request_key"]
