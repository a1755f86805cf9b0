"""Case rows: reading them, changing them compare-and-set, and recording each change.

Every change is compare-and-set on the case's version, so two people acting on one case at
once cannot both succeed: the second gets a ``conflict`` error and sees the new state. Each
change writes an audit row and queues its notifications in the caller's transaction.

While a batch of findings is applied, the store keeps the open case of each of the batch's
keys in memory (read once for the whole batch, then kept current by the store's own writes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, insert, select, update

from alerts.case import Case, Evidence
from alerts.notify import Notifier
from alerts.schema import case_events, cases
from alerts.workflow import Actor, WorkflowError
from ingest.china_time import stored_utc


def open_key(enterprise_id: str, source_id: str, rule: str) -> str:
    """The key of a problem's open case: one open case per (enterprise, source, rule)."""
    return f"{enterprise_id}|{source_id}|{rule}"


def recurrence_values(case: Case, escalation: str) -> dict[str, Any]:
    """A closed case opened again as a recurrence (回头看): sensed, at alarm tier, its
    dispatch and deadlines cleared, holding its problem's open key again."""
    return {
        "open_key": open_key(case.enterprise_id, case.source_id, case.rule),
        "closed_at": None,
        "state": "sensed",
        "recurrence": case.recurrence + 1,
        "tier": "alarm",
        "escalation": escalation,
        "recheck_until": None,
        "disposition": None,
        "explain_due": None,
        "feedback_due": None,
        "overdue": None,
        "assignee": None,
    }


def unruled_case(
    enterprise_id: str,
    source_id: str,
    rule: str,
    *,
    tier: str,
    at: datetime,
    now: datetime,
    positive_list: bool,
    brigade: str | None,
    factor: str | None = None,
) -> dict[str, Any]:
    """The row of a case no rule's finding opened (a clue's, a 双随机 inspection's): sensed,
    active, one occurrence at ``at``, no value or limit."""
    return {
        "open_key": open_key(enterprise_id, source_id, rule),
        "enterprise_id": enterprise_id,
        "source_id": source_id,
        "rule": rule,
        "factor": factor,
        "tier": tier,
        "state": "sensed",
        "condition": "active",
        "positive_list": positive_list,
        "opened_at": now,
        "first_seen": at,
        "last_seen": at,
        "count": 1,
        "value": None,
        "peak_value": None,
        "peak_multiple": None,
        "limit_value": None,
        "unit": "",
        "evidence": Evidence().dumps(),
        "recurrence": 0,
        "flaps": 0,
        "escalation": None,
        "brigade": brigade,
        "updated_at": now,
        "version": 1,
    }


def key_of(case: Case) -> str:
    return open_key(case.enterprise_id, case.source_id, case.rule)


# Statements built once: building and cache-keying a statement per finding costs more than
# running it (bench/alerts_store.py's profile).
_BY_ID = select(cases).where(cases.c.id == bindparam("id"))
_BY_KEY = select(cases).where(cases.c.open_key == bindparam("key"))
_OPEN_IN = select(cases).where(cases.c.open_key.in_(bindparam("keys", expanding=True)))
_LAST_CLOSED = (
    select(cases)
    .where(
        cases.c.enterprise_id == bindparam("enterprise"),
        cases.c.source_id == bindparam("source"),
        cases.c.rule == bindparam("rule"),
        cases.c.closed_at.is_not(None),  # closed or resolved (ix_cases_problem serves it)
    )
    .order_by(cases.c.id.desc())
    .limit(1)
)
_LATEST = (
    select(cases.c.id)
    .where(
        cases.c.enterprise_id == bindparam("enterprise"),
        cases.c.source_id == bindparam("source"),
        cases.c.rule == bindparam("rule"),
    )
    .order_by(cases.c.id.desc())
    .limit(1)
)
_UNEXPLAINED = (
    select(func.count())
    .select_from(cases)
    .where(
        cases.c.enterprise_id == bindparam("enterprise"),
        cases.c.source_id == bindparam("source"),
        cases.c.tier == "warning",
        cases.c.opened_at >= bindparam("since"),
        ~exists().where(case_events.c.case_id == cases.c.id, case_events.c.action == "explain"),
        cases.c.disposition.is_distinct_from("false_positive"),
    )
)
_AUDIT = insert(case_events)
_UPDATES: dict[tuple[str, ...], Any] = {}


def _update_statement(names: tuple[str, ...]) -> Any:
    statement = _UPDATES.get(names)
    if statement is None:
        statement = _UPDATES[names] = (
            update(cases)
            .where(cases.c.id == bindparam("_id"), cases.c.version == bindparam("_version"))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
    return statement


class CaseStore:
    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier = notifier
        # While a batch is applied: the open case of each key of the batch (None: none open).
        self._batch_open: dict[str, Case | None] | None = None

    # -- reading ----------------------------------------------------------------------------

    def get(self, conn: Connection, case_id: int) -> Case:
        row = conn.execute(_BY_ID, {"id": case_id}).first()
        if row is None:
            raise WorkflowError("not_found", f"no case {case_id}")
        return Case.from_row(row)

    def open_case(self, conn: Connection, key: str) -> Case | None:
        if self._batch_open is not None and key in self._batch_open:
            return self._batch_open[key]
        row = conn.execute(_BY_KEY, {"key": key}).first()
        return Case.from_row(row) if row is not None else None

    def latest_case_id(
        self, conn: Connection, enterprise_id: str, source_id: str, rule: str
    ) -> int | None:
        found = conn.execute(
            _LATEST, {"enterprise": enterprise_id, "source": source_id, "rule": rule}
        ).scalar_one_or_none()
        return int(found) if found is not None else None

    def last_closed(
        self, conn: Connection, enterprise_id: str, source_id: str, rule: str
    ) -> Case | None:
        """The problem's newest closed or resolved case."""
        params = {"enterprise": enterprise_id, "source": source_id, "rule": rule}
        row = conn.execute(_LAST_CLOSED, params).first()
        return Case.from_row(row) if row is not None else None

    def unexplained(
        self, conn: Connection, enterprise_id: str, source_id: str, since: datetime
    ) -> int:
        """Warnings for this source opened since ``since`` that were never explained."""
        params = {"enterprise": enterprise_id, "source": source_id, "since": since}
        return int(conn.execute(_UNEXPLAINED, params).scalar_one())

    def state_before_resolve(self, conn: Connection, case_id: int) -> str:
        row = conn.execute(
            select(case_events.c.from_state)
            .where(case_events.c.case_id == case_id, case_events.c.action == "resolve")
            .order_by(case_events.c.id.desc())
            .limit(1)
        ).first()
        return row[0] if row is not None and row[0] else "sensed"

    def events(self, conn: Connection, case_id: int) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
        ).all()
        return [
            {
                "id": r.id,
                "at": stored_utc(r.at).isoformat(),
                "actor": r.actor,
                "role": r.role,
                "action": r.action,
                "from_state": r.from_state,
                "to_state": r.to_state,
                "note": r.note,
                "refs": json.loads(r.refs),
            }
            for r in rows
        ]

    # -- the batch's open cases ---------------------------------------------------------------

    @contextmanager
    def batch(self, conn: Connection, keys: Sequence[str]) -> Iterator[None]:
        """Keep the open cases of ``keys`` in memory while the block runs (one read for all)."""
        self._batch_open = dict.fromkeys(keys)
        for row in conn.execute(_OPEN_IN, {"keys": list(keys)}):
            case = Case.from_row(row)
            self._batch_open[key_of(case)] = case
        try:
            yield
        finally:
            self._batch_open = None

    def _remember(self, key: str, case: Case | None) -> None:
        if self._batch_open is not None:
            self._batch_open[key] = case

    # -- writing ------------------------------------------------------------------------------

    def insert(self, conn: Connection, values: dict[str, Any], evidence: Evidence) -> Case:
        """A new case row from ``values`` (its evidence already dumped into them)."""
        result = conn.execute(insert(cases), values)
        case_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        row = dict.fromkeys(cases.c.keys()) | values | {"id": case_id, "evidence": evidence}
        case = Case.from_mapping(row)
        self._remember(values["open_key"], case)
        return case

    def cas(self, conn: Connection, case: Case, now: datetime, values: dict[str, Any]) -> Case:
        """Compare-and-set on the version; the changed case without reading it back."""
        names = tuple(sorted(values))
        params = {f"v_{k}": v.dumps() if isinstance(v, Evidence) else v for k, v in values.items()}
        params |= {
            "_id": case.id,
            "_version": case.version,
            "v_updated_at": now,
            "v_version": case.version + 1,
        }
        result = conn.execute(_update_statement((*names, "updated_at", "version")), params)
        if result.rowcount != 1:
            raise WorkflowError("conflict", f"case {case.id} changed meanwhile; reload it")
        fields = {k: v for k, v in values.items() if k != "open_key"}
        if isinstance(fields.get("evidence"), str):
            fields["evidence"] = Evidence.loads(fields["evidence"])
        changed = replace(case, **fields, updated_at=now, version=case.version + 1)
        if "open_key" in values:
            self._remember(key_of(case), changed if values["open_key"] is not None else None)
        elif self._batch_open is not None and self._batch_open.get(key_of(case)) is not None:
            self._remember(key_of(case), changed)
        return changed

    def audit(
        self,
        conn: Connection,
        case: Case,
        actor: Actor,
        action: str,
        from_state: str | None,
        now: datetime,
        note: str,
        refs: dict[str, Any],
    ) -> int:
        """The audit row of a change that left ``case`` as it is; its id."""
        result = conn.execute(
            _AUDIT,
            {
                "case_id": case.id,
                "at": now,
                "actor": actor.name,
                "role": actor.role,
                "action": action,
                "from_state": from_state,
                "to_state": case.state,
                "note": note,
                "refs": json.dumps(refs, ensure_ascii=False, sort_keys=True, default=str),
            },
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def notify(
        self,
        conn: Connection,
        case: Case,
        event: str,
        event_id: int,
        audience: Iterable[str],
        now: datetime,
        note: str = "",
    ) -> None:
        if self.notifier is not None:
            self.notifier.case_event(conn, case, event, event_id, audience, now, note)
