"""Noise control: maintenance windows (silences) and inhibition by an offline logger.

A suppressed finding opens or updates no case and notifies no one, but it is not lost: it
stays in the findings table and is listed in ``suppressed_findings`` with the silence or the
case that suppressed it. Clears are never suppressed (ending a condition is not noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, or_, select

from alerts.schema import cases, silences, suppressed
from ingest.china_time import stored_utc
from rules.findings import Finding

# A logger that is offline (B8) inhibits the exceedance and data-anomaly cases of its outlet:
# their data is missing or stale, and the offline case already says what is wrong.
INHIBITED_BY_OFFLINE = ("A", "B")
OFFLINE_RULE = "B8"


@dataclass(frozen=True)
class Silence:
    id: int
    enterprise_id: str | None
    source_id: str | None
    rule: str | None
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime

    def matches(self, f: Finding) -> bool:
        return (
            (self.enterprise_id is None or self.enterprise_id == f.enterprise_id)
            and (self.source_id is None or self.source_id == f.source_id)
            and (self.rule is None or self.rule == f.rule)
        )


def add_silence(
    conn: Connection,
    *,
    reason: str,
    created_by: str,
    starts_at: datetime,
    ends_at: datetime,
    enterprise_id: str | None = None,
    source_id: str | None = None,
    rule: str | None = None,
    now: datetime,
) -> int:
    if not reason.strip():
        raise ValueError("a silence needs a reason")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    if source_id is not None and enterprise_id is None:
        raise ValueError("a silence for an outlet or meter must name its enterprise")
    result = conn.execute(
        insert(silences).values(
            enterprise_id=enterprise_id,
            source_id=source_id,
            rule=rule,
            reason=reason,
            created_by=created_by,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    rows = conn.execute(
        select(silences).where(silences.c.starts_at <= now, silences.c.ends_at > now)
    ).all()
    out = []
    for r in rows:
        m = r._mapping
        out.append(
            Silence(
                m["id"],
                m["enterprise_id"],
                m["source_id"],
                m["rule"],
                m["reason"],
                m["created_by"],
                stored_utc(m["starts_at"]),
                stored_utc(m["ends_at"]),
            )
        )
    return out


def offline_sources(conn: Connection, enterprise_ids: set[str]) -> dict[tuple[str, str], int]:
    """(enterprise, outlet) → the open offline case, for the enterprises given."""
    if not enterprise_ids:
        return {}
    rows = conn.execute(
        select(cases.c.enterprise_id, cases.c.source_id, cases.c.id).where(
            cases.c.rule == OFFLINE_RULE,
            cases.c.open_key.is_not(None),
            cases.c.condition == "active",
            or_(*[cases.c.enterprise_id == e for e in sorted(enterprise_ids)]),
        )
    ).all()
    return {(r[0], r[1]): r[2] for r in rows}


def inhibited(f: Finding, offline: dict[tuple[str, str], int]) -> int | None:
    """The offline case that inhibits ``f``, if any."""
    if f.rule == OFFLINE_RULE or not f.rule.startswith(INHIBITED_BY_OFFLINE):
        return None
    return offline.get((f.enterprise_id, f.source_id))


def record_suppressed(conn: Connection, f: Finding, reason: str, ref: int, now: datetime) -> None:
    exists = conn.execute(
        select(suppressed.c.finding_id).where(suppressed.c.finding_id == f.id)
    ).first()
    if exists is None:
        conn.execute(
            insert(suppressed).values(
                finding_id=f.id,
                enterprise_id=f.enterprise_id,
                source_id=f.source_id,
                rule=f.rule,
                reason=reason,
                ref=str(ref),
                at=now,
            )
        )
