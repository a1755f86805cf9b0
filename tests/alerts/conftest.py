"""A migrated alert store on SQLite and PostgreSQL, a controllable clock, and findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.cases import CaseBook
from alerts.notify import Notifier, Routes
from alerts.policy import AlertPolicy, EnterpriseInfo
from rules.findings import Finding

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
# An audit record's first CSV columns, for people (the stable codes follow them).
AUDIT_COLUMNS_ZH = ["序号", "时间", "操作人", "角色", "操作", "原状态", "新状态", "说明", "关联"]


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def store(engine):
    """The alert store: a migrated service database (tests/conftest.py)."""
    return engine


@pytest.fixture
def clock():
    return Clock()


POLICY = AlertPolicy(
    enterprises={
        "E1": EnterpriseInfo("E1", "华能示范电厂", brigade="B1", source_names={"DA001": "1号锅炉"}),
        "E2": EnterpriseInfo("E2", "正面清单化工", positive_list=True, brigade="B2"),
    },
)
ROUTES = Routes(
    every_change=("mqtt",),
    supervisors=("supervisors-hook",),
    enterprises={"E1": ("e1-wecom",), "E2": ("e2-wecom",)},
    brigades={"B1": ("b1-hook",), "B2": ("b2-hook",)},
)


@pytest.fixture
def book(clock):
    return CaseBook(POLICY, Notifier(ROUTES, POLICY), clock=clock)


def finding(
    rule="A3",
    state="fire",
    tier="alarm",
    *,
    enterprise="E1",
    source="DA001",
    factor="a21026",
    hour=0,
    value=150.0,
    limit=100.0,
) -> Finding:
    start = int(T0.timestamp()) + hour * 3600
    return Finding(
        rule=rule,
        state=state,
        enterprise_id=enterprise,
        source_id=source,
        factor=factor,
        window_start=start,
        window_end=start + 3600,
        tier=tier,
        value=value if state == "fire" else None,
        limit=limit,
        unit="mg/m³",
        multiple=round((value - limit) / limit, 4) if state == "fire" and limit else None,
        params_id=f"{enterprise}/{source}",
        params_version="v1",
    )
