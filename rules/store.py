"""Rules' tables in the service database: findings, and snapshots of the streaming engine.

Findings are written in the same transaction as the ingest checkpoint and keyed by their
deterministic id, so a batch judged twice (after a crash, or while catching up from a
snapshot) stores each finding once. The engine's state is snapshotted with the checkpoint
position it belongs to, so that a restart resumes judging open windows instead of starting
from zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ingest.china_time import stored_utc
from ingest.sqltypes import UTCDateTime
from rules.findings import Finding
from rules.markings import Marking
from rules.snapshot_codec import decode_state, encode_state

metadata = MetaData()

findings = Table(
    "findings",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("rule", String(16), nullable=False, index=True),
    Column("state", String(8), nullable=False),
    Column("tier", String(8), nullable=True),
    Column("enterprise_id", String(64), nullable=False, index=True),
    Column("source_id", String(64), nullable=False),
    Column("factor", String(16), nullable=True),
    Column("window_start", UTCDateTime(), nullable=False, index=True),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("value", Float, nullable=True),
    Column("limit_value", Float, nullable=True),
    Column("unit", String(16), nullable=False),
    Column("multiple", Float, nullable=True),
    Column("params_id", String(140), nullable=False),
    Column("params_version", String(16), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False, index=True),
)

# Whether each metered enterprise is producing (停产 on the dashboard when not), as the power
# judge last saw its production devices; one row per enterprise, changed when it changes.
production = Table(
    "production",
    metadata,
    Column("enterprise_id", String(64), primary_key=True),
    Column("producing", Boolean, nullable=False),
    Column("since", UTCDateTime(), nullable=False),
)

# Markings (标记) an enterprise declared online, beside those in the configuration. The rule
# engine takes them up within a clock tick: they excuse the data it judges from then on.
declared_markings = Table(
    "declared_markings",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("enterprise_id", String(64), nullable=False, index=True),
    Column("outlet_id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("factor", String(16), nullable=True),
    Column("start", UTCDateTime(), nullable=False),
    Column("end", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("declared_by", String(64), nullable=False),
    Column("declared_at", UTCDateTime(), nullable=False),
)

# The hour and day values the rules kept (rules.history), written and read by
# rules.history_store: partitioned by China month on PostgreSQL, keyed by outlet × factor.
hour_values = Table(
    "hour_values",
    metadata,
    Column("enterprise_id", String(64), primary_key=True),
    Column("outlet_id", String(64), primary_key=True),
    Column("factor", String(16), primary_key=True),
    Column("start", BigInteger, primary_key=True, autoincrement=False),  # epoch seconds
    Column("value", Float, nullable=True),
    Column("valid", Boolean, nullable=False),
    Column("source", String(8), nullable=False),
    Column("flag", String(2), nullable=True),
    Column("converted", Float, nullable=True),
    Column("valid_minutes", SmallInteger, nullable=False),
    Column("interval_s", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("n_valid", Integer, nullable=False),
    Column("n_marked", Integer, nullable=False),
    Column("n_d", Integer, nullable=False),
    Column("n_m", Integer, nullable=False),
    Column("n_c", Integer, nullable=False),
    Column("n_b", Integer, nullable=False),
    Column("n_t", Integer, nullable=False),
    Column("n_f", Integer, nullable=False),
    Column("device_value", Float, nullable=True),
    Column("device_flag", String(2), nullable=True),
    Column("device_marked", Boolean, nullable=False),
    postgresql_partition_by="RANGE (start)",
    sqlite_with_rowid=False,
)

day_values = Table(
    "day_values",
    metadata,
    Column("enterprise_id", String(64), primary_key=True),
    Column("outlet_id", String(64), primary_key=True),
    Column("factor", String(16), primary_key=True),
    Column("start", BigInteger, primary_key=True, autoincrement=False),  # China midnight
    Column("value", Float, nullable=True),
    Column("converted", Float, nullable=True),
    Column("valid_hours", SmallInteger, nullable=False),
    Column("converted_hours", SmallInteger, nullable=False),
    Column("required_hours", SmallInteger, nullable=False),
    Column("flow_weighted", Boolean, nullable=False),
    Column("received", Integer, nullable=True),  # B10's count (configured factors)
    Column("valid_records", Integer, nullable=True),
    Column("expected", Integer, nullable=True),
    Column("due_hours", SmallInteger, nullable=True),
    Column("interval_s", Integer, nullable=True),
    postgresql_partition_by="RANGE (start)",
    sqlite_with_rowid=False,
)

# Each meter's closed hours: its energy and on/off time (rules.history.MeterHours).
meter_hours = Table(
    "meter_hours",
    metadata,
    Column("enterprise_id", String(64), primary_key=True),
    Column("meter_id", String(64), primary_key=True),
    Column("start", BigInteger, primary_key=True, autoincrement=False),
    Column("samples", Integer, nullable=False),
    Column("energy_kwh", Float, nullable=True),
    Column("on_s", Integer, nullable=False),
    Column("off_s", Integer, nullable=False),
    Column("mean_kw", Float, nullable=True),
    Column("max_kw", Float, nullable=True),
    postgresql_partition_by="RANGE (start)",
    sqlite_with_rowid=False,
)

# Each closed outlet-hour's minute records as the rules held them (rules.minute_detail):
# partitioned by China day on PostgreSQL, kept as long as the raw archive.
minute_detail = Table(
    "minute_detail",
    metadata,
    Column("enterprise_id", String(64), primary_key=True),
    Column("outlet_id", String(64), primary_key=True),
    Column("start", BigInteger, primary_key=True, autoincrement=False),
    Column("layout", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    postgresql_partition_by="RANGE (start)",
    sqlite_with_rowid=False,
)

snapshots = Table(
    "rule_snapshots",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
)


def _at(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(findings).on_conflict_do_nothing(index_elements=["id"])
    if conn.dialect.name == "sqlite":
        return sqlite.insert(findings).on_conflict_do_nothing(index_elements=["id"])
    return insert(findings).prefix_with("IGNORE")


def record_findings(conn: Connection, items: Sequence[Finding]) -> list[Finding]:
    """Store findings once each (by id), in ``conn``'s transaction; the ones that were new
    (those stored before, by a batch judged again after a restart, are not returned)."""
    if not items:
        return []
    now = datetime.now(UTC)
    unique = list({f.id: f for f in items}.values())  # a batch may carry a finding twice
    rows = [
        {
            "id": f.id,
            "rule": f.rule,
            "state": f.state,
            "tier": f.tier,
            "enterprise_id": f.enterprise_id,
            "source_id": f.source_id,
            "factor": f.factor,
            "window_start": _at(f.window_start),
            "window_end": _at(f.window_end),
            "value": f.value,
            "limit_value": f.limit,
            "unit": f.unit,
            "multiple": f.multiple,
            "params_id": f.params_id,
            "params_version": f.params_version,
            "evidence": json.dumps(f.evidence, ensure_ascii=False, sort_keys=True, default=str),
            "recorded_at": now,
        }
        for f in unique
    ]
    inserted = conn.execute(_insert_ignoring_duplicates(conn).returning(findings.c.id), rows)
    new = {r[0] for r in inserted}
    return [f for f in unique if f.id in new]


@dataclass(frozen=True, slots=True)
class StoredFinding:
    id: str
    rule: str
    state: str
    tier: str | None
    enterprise_id: str
    source_id: str
    factor: str | None
    window_start: datetime
    window_end: datetime
    value: float | None
    limit: float | None
    unit: str
    multiple: float | None
    params_version: str
    evidence: dict[str, Any]


def list_findings(
    engine: Engine,
    *,
    rule: str | None = None,
    enterprise_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[StoredFinding]:
    query = select(findings).order_by(findings.c.recorded_at.desc(), findings.c.id).limit(limit)
    if rule:
        query = query.where(findings.c.rule == rule)
    if enterprise_id:
        query = query.where(findings.c.enterprise_id == enterprise_id)
    if since:
        query = query.where(findings.c.window_start >= since)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        StoredFinding(
            r.id,
            r.rule,
            r.state,
            r.tier,
            r.enterprise_id,
            r.source_id,
            r.factor,
            stored_utc(r.window_start),
            stored_utc(r.window_end),
            r.value,
            r.limit_value,
            r.unit,
            r.multiple,
            r.params_version,
            json.loads(r.evidence),
        )
        for r in rows
    ]


def record_production(conn: Connection, changed: dict[str, bool]) -> None:
    """Store production states, in ``conn``'s transaction; ``since`` moves only when the state
    really changed (not when a restarted service reports the same state again)."""
    now = datetime.now(UTC)
    stored = dict(
        conn.execute(
            select(production.c.enterprise_id, production.c.producing).where(
                production.c.enterprise_id.in_(sorted(changed))
            )
        ).all()
    )
    for enterprise, producing in changed.items():
        if enterprise not in stored:
            conn.execute(
                insert(production).values(enterprise_id=enterprise, producing=producing, since=now)
            )
        elif bool(stored[enterprise]) != producing:
            conn.execute(
                update(production)
                .where(production.c.enterprise_id == enterprise)
                .values(producing=producing, since=now)
            )


def producing(conn: Connection, enterprise_id: str) -> bool | None:
    """Whether the enterprise is producing, as the rules last saw it (its production meters,
    or its outlets' F flags); None when they have never said."""
    found = conn.execute(
        select(production.c.producing).where(production.c.enterprise_id == enterprise_id)
    ).scalar()
    return None if found is None else bool(found)


def declare_marking(
    conn: Connection,
    *,
    enterprise_id: str,
    outlet_id: str,
    type: str,
    start: datetime,
    end: datetime,
    factor: str | None,
    reason: str,
    declared_by: str,
) -> int:
    result = conn.execute(
        insert(declared_markings).values(
            enterprise_id=enterprise_id,
            outlet_id=outlet_id,
            type=type,
            factor=factor,
            start=start,
            end=end,
            reason=reason,
            declared_by=declared_by,
            declared_at=datetime.now(UTC),
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def list_declared_markings(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(declared_markings).order_by(declared_markings.c.id)).all()
    out = []
    for r in rows:
        row = dict(r._mapping)
        for key in ("start", "end", "declared_at"):
            row[key] = stored_utc(row[key])
        out.append(row)
    return out


def declared_as_markings(rows: Sequence[dict[str, Any]]) -> list[Marking]:
    """The rule engine's view of declared markings."""
    return [
        Marking(
            enterprise_id=r["enterprise_id"],
            outlet_id=r["outlet_id"],
            type=r["type"],
            start=int(r["start"].timestamp()),
            end=int(r["end"].timestamp()),
            factor=r["factor"],
        )
        for r in rows
    ]


def save_snapshot(conn: Connection, consumer: str, position: int, state: object) -> None:
    blob = encode_state(state)
    conn.execute(delete(snapshots).where(snapshots.c.consumer == consumer))
    conn.execute(
        insert(snapshots).values(
            consumer=consumer, position=position, state=blob, taken_at=datetime.now(UTC)
        )
    )


def load_snapshot(engine: Engine, consumer: str) -> tuple[int, object] | None:
    """(archive position, state) of the consumer's last snapshot; its parameters are None
    until the engine is reconfigured (rules.snapshot_codec)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(snapshots.c.position, snapshots.c.state).where(snapshots.c.consumer == consumer)
        ).first()
    if row is None:
        return None
    return int(row.position), decode_state(row.state)
