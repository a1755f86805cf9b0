"""Work orders (派单): what a case's dispatch gives a brigade to do, and how far it got."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from alerts.schema import work_orders


def new_work_order(
    conn: Connection,
    case_id: int,
    brigade: str,
    kind: str,
    by: str,
    due: datetime,
    now: datetime,
) -> int:
    result = conn.execute(
        insert(work_orders).values(
            case_id=case_id,
            brigade=brigade,
            kind=kind,
            state="open",
            created_at=now,
            created_by=by,
            due_at=due,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def current_work_order(conn: Connection, case_id: int) -> dict[str, Any] | None:
    """The case's newest work order."""
    row = conn.execute(
        select(work_orders)
        .where(work_orders.c.case_id == case_id)
        .order_by(work_orders.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def move_work_order(
    conn: Connection, case_id: int, state: str, **values: Any
) -> dict[str, Any] | None:
    """Move the case's current work order to ``state``; the order as it was (None: none)."""
    order = current_work_order(conn, case_id)
    if order is None:
        return None
    conn.execute(
        update(work_orders).where(work_orders.c.id == order["id"]).values(state=state, **values)
    )
    return order
