"""双随机 draws (alerts.draws) from the configuration and the database: the inspection object
library (名录库: each enterprise's region, industry, size and supervision class from the
configuration, its positive-list membership and latest risk rating from the database), the
brigades' inspectors, and ``[inspections]``; a period's draw recorded once, with its seed and
inputs (a second draw of the same period is refused: nobody draws again until they like it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from alerts.cases import CaseBook
from alerts.draws import Candidate, Draw, DrawRules, draw, draw_json, redraw
from alerts.positive_list import members
from alerts.risk_record import latest
from alerts.schema import cases, inspection_draws
from alerts.workflow import INSPECTION_RULE, WorkflowError
from nonsite.config.model import Config
from nonsite.periods import PERIOD, bounds


def rules_of(config: Config) -> DrawRules:
    i = config.inspections
    return DrawRules(
        shares={str(k): v for k, v in i.shares.items()},
        color_weights={str(k): v for k, v in i.color_weights.items()},
        exclude_positive_list=i.exclude_positive_list,
        inspectors_each=i.inspectors_each,
    )


def library(conn: Connection, config: Config) -> list[Candidate]:
    """The inspection object library as it stands."""
    ratings = latest(conn)
    member = members(conn, {e.id: e.positive_list for e in config.enterprises})
    return [
        Candidate(
            e.id,
            e.supervision_class,
            ratings[e.id]["color"] if e.id in ratings else None,
            positive_list=member.get(e.id, False),
            brigade=e.brigade,
            region=e.region,
            industry=e.industry,
            size=e.size,
        )
        for e in config.enterprises
    ]


def inspectors_of(config: Config) -> dict[str, list[str]]:
    return {b.id: list(b.inspectors) for b in config.brigades}


def period_end(period: str) -> datetime:
    """The first China instant after ``period``: when its inspections are due."""
    return bounds(period)[1]


def make_draw(
    db: Engine, config: Config, book: CaseBook, period: str, seed: str, by: str, now: datetime
) -> dict[str, Any]:
    """Draw ``period`` with ``seed``, record it and dispatch its inspections as cases (one
    transaction); WorkflowError when the period is drawn already."""
    if not PERIOD.match(period):
        raise WorkflowError("bad_period", "a period is 2026, 2026-11, 2026Q4 or 2026H2")
    if not seed.strip():
        raise WorkflowError("seed_required", "a draw needs its published seed")
    rules = rules_of(config)
    inspectors = inspectors_of(config)
    with db.begin() as conn:
        if drawn(conn, period) is not None:
            raise WorkflowError("already_drawn", f"{period} is drawn already")
        candidates = library(conn, config)
        result: Draw = draw(candidates, inspectors, rules, seed.strip(), period)
        doc = draw_json(result, candidates, inspectors, rules)
        try:
            conn.execute(
                insert(inspection_draws).values(
                    period=period,
                    seed=seed.strip(),
                    draw=json.dumps(doc, ensure_ascii=False, sort_keys=True),
                    created_by=by,
                    created_at=now,
                )
            )
        except IntegrityError:  # drawn at the same moment by someone else: theirs stands
            raise WorkflowError("already_drawn", f"{period} is drawn already") from None
        opened = book.open_inspections(conn, period, seed.strip(), result.drawn, period_end(period))
    cases = {c.enterprise_id: c.id for c in opened}
    return doc | {"created_by": by, "created_at": now.isoformat(), "cases": cases}


def drawn(conn: Connection, period: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(
            inspection_draws.c.draw, inspection_draws.c.created_by, inspection_draws.c.created_at
        ).where(inspection_draws.c.period == period)
    ).first()
    if row is None:
        return None
    doc: dict[str, Any] = json.loads(row.draw)
    opened = conn.execute(
        select(cases.c.enterprise_id, cases.c.id).where(
            cases.c.rule == INSPECTION_RULE, cases.c.source_id == f"draw-{period}"
        )
    )
    return doc | {
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "cases": {e: int(i) for e, i in opened},
    }


def verified(doc: dict[str, Any]) -> bool:
    """Whether the recorded draw is what its seed and inputs give."""
    again = draw_json(
        redraw(doc),
        [Candidate(**c) for c in doc["inputs"]["candidates"]],
        doc["inputs"]["inspectors"],
        DrawRules(**doc["inputs"]["rules"]),
    )
    return all(again[k] == doc[k] for k in ("drawn", "quotas", "short"))


__all__ = [
    "PERIOD",
    "drawn",
    "inspectors_of",
    "library",
    "make_draw",
    "period_end",
    "rules_of",
    "verified",
]
