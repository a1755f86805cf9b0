"""Clues (线索): problems reported from outside the monitoring data, taken into the workflow.

A clue comes from a complaint (信访投诉: the 12345 and 12369 hotlines), a drone, satellite
remote sensing, a VOC 走航 vehicle, video, a township (镇街移送) or another department. It is
located at an enterprise (named, or the nearest one to its coordinates within a radius) and
matched to the enterprise's open cases: a case whose problem was seen within the matching
window around the clue's time, of the clue's factor when it names one. A matched clue is
merged into that case as evidence (the bureaus de-duplicate assigned clues: "交办…的425宗案件，
去重后为39宗"); an unmatched one opens a case of kind "clue" (rule ``CLUE``) in the same
workflow: a monitor verifies it, a supervisor dispatches it, a brigade reports, it is closed.

A clue case is not a reminder to the enterprise (a complaint is not shown to the enterprise
it is about) and no rule clears it. The monitoring data around the clue's time (the
enterprise's outlets' hour values, its meters' hours and the rules' findings) are recorded
with the clue when it is taken, so that a complaint about smoke at 02:00 arrives with the
night's CEMS and power data. A sending system's own reference (``external_ref``) makes a
clue sent twice one clue.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update

from alerts.case import Case, Evidence, record_json
from alerts.case_store import CaseStore, unruled_case
from alerts.policy import AlertPolicy, ClueMatching, EnterpriseInfo
from alerts.positive_list import is_member
from alerts.schema import cases, clues
from alerts.workflow import CLUE_RULE, OPEN_STATES, SYSTEM, Actor, WorkflowError
from ingest.china_time import stored_utc

CLUE_SOURCES: Final = {
    "hotline_12345": "12345热线",
    "hotline_12369": "12369环保热线",
    "petition": "信访",
    "drone": "无人机",
    "satellite": "卫星遥感",
    "voc_survey": "VOCs走航",
    "video": "视频监控",
    "township": "镇街移送",
    "department": "部门移送",
    "other": "其他",
}
MAX_DESCRIPTION: Final = 4000
# Who submits clues: the monitoring centre and the supervisors (a hotline's transfer typed
# in, an import), a township of its own area, a system sending them with its token.
SUBMITTERS: Final = frozenset({"monitor", "supervisor", "township", "intake"})
NO_ENTERPRISE: Final = ""  # a clue no enterprise could be found for (its case names none)


@dataclass(frozen=True)
class ClueIn:
    """A clue as submitted."""

    source: str
    occurred_at: datetime  # when the problem was seen (complained of, photographed …)
    description: str
    enterprise_id: str | None = None
    longitude: float | None = None
    latitude: float | None = None
    address: str = ""
    area: str | None = None  # the township (镇街) it concerns
    factor: str | None = None  # a related pollutant, when the clue names one
    external_ref: str | None = None  # the sending system's own id (a hotline's 工单号)
    urgent: bool = False  # at alarm tier: dispatched without waiting for verification


@dataclass(frozen=True)
class Clue:
    """A clue as recorded."""

    id: int
    source: str
    external_ref: str | None
    received_at: datetime
    occurred_at: datetime
    enterprise_id: str | None
    located: str  # given | coordinates | none
    longitude: float | None
    latitude: float | None
    address: str
    area: str | None
    factor: str | None
    description: str
    submitted_by: str
    submitter_role: str
    case_id: int
    outcome: str  # merged | opened
    match: dict[str, Any]
    surroundings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        out = record_json(self)
        out["source_name"] = CLUE_SOURCES.get(self.source, self.source)
        return out


# Reads the monitoring data of an enterprise between two times (alerts.clue_data).
Surroundings = Callable[[Connection, str, datetime, datetime], dict[str, Any]]


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine): within a few hundred metres it is exact enough, and
    a geodesy library for one formula is not worth its weight."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def locate(
    clue: ClueIn, enterprises: Iterable[EnterpriseInfo], radius_m: float
) -> tuple[str | None, str, float | None]:
    """The clue's enterprise: the one it names, else the nearest located one within
    ``radius_m`` of its coordinates; (id, how: given | coordinates | none, distance m)."""
    if clue.enterprise_id:
        return clue.enterprise_id, "given", None
    if clue.longitude is None or clue.latitude is None:
        return None, "none", None
    best: tuple[float, str] | None = None
    for info in enterprises:
        if info.location is None:
            continue
        d = distance_m(clue.longitude, clue.latitude, *info.location)
        if d <= radius_m and (best is None or d < best[0]):
            best = (d, info.id)
    if best is None:
        return None, "none", None
    return best[1], "coordinates", round(best[0], 1)


def check_clue(clue: ClueIn, policy: AlertPolicy) -> None:
    """A WorkflowError naming what is wrong with a clue as submitted."""
    if clue.source not in CLUE_SOURCES:
        raise WorkflowError("bad_source", f"a clue's source is one of: {', '.join(CLUE_SOURCES)}")
    if not clue.description.strip():
        raise WorkflowError("description_required", "a clue needs a description")
    if len(clue.description) > MAX_DESCRIPTION:
        raise WorkflowError(
            "description_too_long", f"a clue's description has at most {MAX_DESCRIPTION} characters"
        )
    if (clue.longitude is None) != (clue.latitude is None):
        raise WorkflowError("bad_location", "give both longitude and latitude, or neither")
    if clue.longitude is not None and not (
        -180 <= clue.longitude <= 180 and -90 <= (clue.latitude or 0) <= 90
    ):
        raise WorkflowError("bad_location", "longitude or latitude out of range")
    if clue.enterprise_id and clue.enterprise_id not in policy.enterprises:
        raise WorkflowError("unknown_enterprise", f"no enterprise {clue.enterprise_id!r}")
    if clue.occurred_at.tzinfo is None:
        raise WorkflowError("bad_time", "a clue's time carries its zone (e.g. +08:00)")


def take_clue(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    clue: ClueIn,
    actor: Actor,
    surroundings: Surroundings | None = None,
) -> Clue:
    """Record a clue, merged into an open case of its enterprise or opening a case of its own;
    the clue recorded before under the same source and ``external_ref`` if there is one."""
    if actor.role not in SUBMITTERS:
        raise WorkflowError(
            "role_not_allowed",
            f"the {actor.role} role may not submit clues; allowed: {', '.join(sorted(SUBMITTERS))}",
        )
    if actor.role == "township":
        if clue.area not in (None, actor.area):
            raise WorkflowError(
                "out_of_scope", f"a township submits clues of its area {actor.area}"
            )
        clue = replace(clue, area=actor.area)
    check_clue(clue, policy)
    if clue.occurred_at > now + timedelta(minutes=5):
        raise WorkflowError("bad_time", "a clue's time is not in the future")
    if clue.external_ref:
        earlier = _by_ref(conn, clue.source, clue.external_ref)
        if earlier is not None:
            return earlier
    rules = policy.clues
    enterprise, located, distance = locate(clue, policy.enterprises.values(), rules.radius_m)
    match: dict[str, Any] = {"located": located}
    if distance is not None:
        match["distance_m"] = distance
    data: dict[str, Any] = {}
    if enterprise is not None and surroundings is not None:
        data = surroundings(
            conn,
            enterprise,
            clue.occurred_at - timedelta(hours=rules.data_before_h),
            clue.occurred_at + timedelta(hours=rules.data_after_h),
        )
    case = _matching_case(conn, enterprise, clue, rules) if enterprise is not None else None
    values = {
        "source": clue.source,
        "external_ref": clue.external_ref,
        "received_at": now,
        "occurred_at": clue.occurred_at,
        "enterprise_id": enterprise,
        "located": located,
        "longitude": clue.longitude,
        "latitude": clue.latitude,
        "address": clue.address,
        "area": clue.area or (policy.enterprise(enterprise).region if enterprise else None),
        "factor": clue.factor,
        "description": clue.description.strip(),
        "submitted_by": actor.name,
        "submitter_role": actor.role,
        "outcome": "merged" if case is not None else "opened",
        "match": "{}",
        "surroundings": json.dumps(data, ensure_ascii=False, default=str),
    }
    # The same reference sent at the same moment by a retry fails here on the unique index:
    # the whole transaction with it (no savepoint: on SQLite one opened before any write
    # commits when released), and the caller's retry finds the clue recorded
    # (nonsite.web.request_keys).
    clue_id = int(conn.execute(insert(clues), values).inserted_primary_key[0])  # type: ignore[index]
    source_name = CLUE_SOURCES[clue.source]
    if case is not None:
        match |= {"case": case.id, "why": _why(case, clue, rules)}
        # A clue case counts its clues; a rule's case counts its findings and keeps that count.
        more = (
            {}
            if case.rule != CLUE_RULE
            else {
                "count": case.count + 1,
                "first_seen": min(case.first_seen, clue.occurred_at),
                "last_seen": max(case.last_seen, clue.occurred_at),
            }
        )
        changed = store.cas(conn, case, now, more)
        event = store.audit(
            conn,
            changed,
            SYSTEM,
            "clue",
            case.state,
            now,
            f"{source_name}线索并入：{_excerpt(clue.description)}",
            {"clue": clue_id, "source": clue.source, "submitted_by": actor.name},
        )
        store.notify(conn, changed, "case.clue", event, ("supervisors", "monitors"), now)
    else:
        changed = _open_case(conn, store, policy, now, clue, clue_id, enterprise, actor)
        match["case"] = changed.id
    conn.execute(
        update(clues)
        .where(clues.c.id == clue_id)
        .values(case_id=changed.id, match=json.dumps(match, ensure_ascii=False))
    )
    return _read(conn, clue_id)


def _matching_case(
    conn: Connection, enterprise: str, clue: ClueIn, rules: ClueMatching
) -> Case | None:
    """The enterprise's open case the clue belongs to: seen within the window around the
    clue's time and, when the clue names a factor, of that factor or of none; the closest in
    time, a case of the clue's own factor first."""
    window = timedelta(hours=rules.window_h)
    rows = conn.execute(
        select(cases).where(
            cases.c.enterprise_id == enterprise,
            cases.c.state.in_(sorted(OPEN_STATES)),
            cases.c.first_seen <= clue.occurred_at + window,
            cases.c.last_seen >= clue.occurred_at - window,
        )
    ).all()
    candidates = [Case.from_row(r) for r in rows]
    if clue.factor:
        candidates = [c for c in candidates if c.factor in (clue.factor, None)]
    if not candidates:
        return None

    def rank(c: Case) -> tuple[int, float, int]:
        gap = max(
            (c.first_seen - clue.occurred_at).total_seconds(),
            (clue.occurred_at - c.last_seen).total_seconds(),
            0.0,
        )
        same_factor = 0 if clue.factor and c.factor == clue.factor else 1
        return same_factor, gap, c.id

    return min(candidates, key=rank)


def _why(case: Case, clue: ClueIn, rules: ClueMatching) -> str:
    parts = [f"同一企业的在办案件，问题时间在线索时间前后{rules.window_h:g}小时内"]
    if clue.factor and case.factor == clue.factor:
        parts.append("因子相同")
    return "，".join(parts)


def _open_case(
    conn: Connection,
    store: CaseStore,
    policy: AlertPolicy,
    now: datetime,
    clue: ClueIn,
    clue_id: int,
    enterprise: str | None,
    actor: Actor,
) -> Case:
    ent = enterprise or NO_ENTERPRISE
    info = policy.enterprise(ent) if enterprise else None
    at = clue.occurred_at.astimezone(UTC)
    source = f"clue-{clue_id}"  # each clue case its own problem
    values = unruled_case(
        ent, source, CLUE_RULE, tier="alarm" if clue.urgent else "warning", at=at, now=now,
        positive_list=bool(
            enterprise and is_member(conn, ent, bool(info and info.positive_list))
        ),
        brigade=info.brigade if info else None, factor=clue.factor,
    )  # fmt: skip
    case = store.insert(conn, values, Evidence())
    event = store.audit(
        conn,
        case,
        SYSTEM,
        "sense",
        None,
        now,
        f"{CLUE_SOURCES[clue.source]}线索：{_excerpt(clue.description)}",
        {"clue": clue_id, "source": clue.source, "submitted_by": actor.name},
    )
    # Not a reminder: the enterprise a complaint is about is not told of it.
    store.notify(conn, case, "case.opened", event, ("supervisors", "monitors"), now)
    return case


def _excerpt(text: str, length: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def _by_ref(conn: Connection, source: str, ref: str) -> Clue | None:
    row = conn.execute(
        select(clues.c.id).where(clues.c.source == source, clues.c.external_ref == ref)
    ).first()
    return _read(conn, int(row[0])) if row is not None else None


def _read(conn: Connection, clue_id: int) -> Clue:
    row = conn.execute(select(clues).where(clues.c.id == clue_id)).first()
    if row is None:
        raise WorkflowError("not_found", f"no clue {clue_id}")
    return clue_of(row._mapping)


def clue_of(m: Any) -> Clue:
    return Clue(
        id=int(m["id"]),
        source=m["source"],
        external_ref=m["external_ref"],
        received_at=stored_utc(m["received_at"]),
        occurred_at=stored_utc(m["occurred_at"]),
        enterprise_id=m["enterprise_id"],
        located=m["located"],
        longitude=m["longitude"],
        latitude=m["latitude"],
        address=m["address"],
        area=m["area"],
        factor=m["factor"],
        description=m["description"],
        submitted_by=m["submitted_by"],
        submitter_role=m["submitter_role"],
        case_id=int(m["case_id"]),
        outcome=m["outcome"],
        match=json.loads(m["match"]),
        surroundings=json.loads(m["surroundings"]),
    )


def may_read_clue(actor: Actor, clue: Clue) -> bool:
    """A township reads its area's clues, a sending system its own, the centre, the
    supervisors and the operator all."""
    if actor.role == "township":
        return clue.area == actor.area
    if actor.role == "intake":
        return clue.submitted_by == actor.name
    return actor.role in ("monitor", "supervisor", "admin")


def may_attach_to_clue(actor: Actor, clue: Clue) -> None:
    """WorkflowError unless ``actor`` may add evidence to the clue: who may submit clues, in
    their scope (a township to its area's, a sending system to its own)."""
    if actor.role not in SUBMITTERS or not may_read_clue(actor, clue):
        raise WorkflowError("not_found", f"no clue {clue.id}")


def get_clue(conn: Connection, clue_id: int) -> Clue:
    return _read(conn, clue_id)


def case_clues(conn: Connection, case_id: int) -> list[Clue]:
    """The clues merged into or opening a case, oldest first."""
    rows = conn.execute(select(clues).where(clues.c.case_id == case_id).order_by(clues.c.id))
    return [clue_of(r._mapping) for r in rows]


def list_clues(
    conn: Connection,
    *,
    area: str | None = None,
    submitted_by: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[Clue]:
    """Clues, newest first: of one township (``area``), of one submitter, since a time."""
    q = select(clues).order_by(clues.c.id.desc()).limit(limit)
    if area is not None:
        q = q.where(clues.c.area == area)
    if submitted_by is not None:
        q = q.where(clues.c.submitted_by == submitted_by)
    if since is not None:
        q = q.where(clues.c.received_at >= since)
    return [clue_of(r._mapping) for r in conn.execute(q)]


__all__ = [
    "CLUE_RULE",
    "CLUE_SOURCES",
    "Clue",
    "ClueIn",
    "Surroundings",
    "case_clues",
    "check_clue",
    "distance_m",
    "get_clue",
    "list_clues",
    "locate",
    "may_attach_to_clue",
    "may_read_clue",
    "take_clue",
]
