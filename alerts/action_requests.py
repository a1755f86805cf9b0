"""A person's action once per request, however often the request is sent.

A reply can be lost after the commit (the database failed over as it acknowledged, the phone
lost its signal): the client sends the action again, and the API retries its own transaction
after a failover. Each request carries a key (``Idempotency-Key``, or one the API makes for its
own retries), written in the action's transaction; a request whose key is there finds its
action done and gets the case as it is now. A key is the request's: sent again for another
case, action or person it is refused, so a client bug cannot pass one action off as another.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from alerts.schema import action_requests
from alerts.workflow import Actor, WorkflowError

MAX_KEY_LENGTH = 64


def done_before(conn: Connection, key: str, case_id: int, action: str, actor: Actor) -> bool:
    """Whether this request's action is already recorded (WorkflowError: the key was another
    request's)."""
    row = conn.execute(
        sa.select(
            action_requests.c.case_id, action_requests.c.action, action_requests.c.actor
        ).where(action_requests.c.key == key)
    ).first()
    if row is None:
        return False
    if (row.case_id, row.action, row.actor) != (case_id, action, actor.name):
        raise WorkflowError("key_reused", f"idempotency key {key!r} was used for another request")
    return True


def record(
    conn: Connection, key: str, case_id: int, action: str, actor: Actor, now: datetime
) -> None:
    """The request done, in its action's transaction (a concurrent duplicate fails on the key
    and, retried, finds it done)."""
    conn.execute(
        action_requests.insert().values(
            key=key, case_id=case_id, action=action, actor=actor.name, at=now
        )
    )


__all__ = ["MAX_KEY_LENGTH", "done_before", "record"]
