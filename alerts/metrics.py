"""Prometheus gauges of the case book, read from the database (cases by state and tier, overdue
work orders). Labels are the workflow's fixed states and the two tiers: never an enterprise.

The counts are the store's, not this process's: a person's action through the HTTP API (the
service process) changes them as much as the pipeline does. So they are refreshed by a query,
at most every few seconds (``refresh``), not counted as the changes happen.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Connection, func, select

from alerts.case import TIERS
from alerts.schema import cases, work_orders
from alerts.workflow import STATE_NAMES

# Work orders not yet reported: their due time is the deadline for arriving and reporting.
OPEN_WORK_ORDER_STATES = ("open", "on_site")

_BY_STATE_AND_TIER = select(cases.c.state, cases.c.tier, func.count()).group_by(
    cases.c.state, cases.c.tier
)


class CaseMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.cases = Gauge(
            "nonsite_cases",
            "Cases by workflow state and tier (warning, alarm), from the database",
            ["state", "tier"],
            registry=registry,
        )
        self.work_orders_overdue = Gauge(
            "nonsite_work_orders_overdue",
            "Work orders still open or on site past their due time, from the database",
            registry=registry,
        )

    def refresh(self, conn: Connection, now: datetime) -> None:
        # Every state × tier is set, to 0 when there is none: a state emptied since the last
        # refresh must read 0, not its old count.
        counts = {(state, tier): 0 for state in STATE_NAMES for tier in TIERS}
        for state, tier, n in conn.execute(_BY_STATE_AND_TIER):
            counts[(state, tier)] = int(n)
        for (state, tier), n in counts.items():
            self.cases.labels(state, tier).set(n)
        overdue = conn.execute(
            select(func.count())
            .select_from(work_orders)
            .where(work_orders.c.state.in_(OPEN_WORK_ORDER_STATES), work_orders.c.due_at < now)
        ).scalar_one()
        self.work_orders_overdue.set(overdue)
