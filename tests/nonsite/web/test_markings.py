"""Markings declared online: who may declare them, their checks, and that the rule engine
excuses the data it judges after taking them up."""

from __future__ import annotations

import pytest

from rules.markings import Marking
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import O2, SO2
from tests.rules.scenario import gas_outlet, hour_of, tick

MARK = {
    "outlet": "DA001",
    "type": "maintenance",
    "start": "2026-11-24T08:00:00+08:00",
    "end": "2026-11-24T12:00:00+08:00",
    "reason": "脱硫塔检修",
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_enterprise_declares_a_marking_for_its_own_outlet(site):
    client = site.login("ent1")
    r = client.post("/api/v1/markings", json=MARK)
    assert r.status_code == 201, r.text
    assert (r.json()["enterprise_id"], r.json()["source"]) == ("E1", "declared")
    assert r.json()["declared_by"] == "ent1-显示名"
    mine = client.get("/api/v1/markings").json()
    assert [m["reason"] for m in mine if m["source"] == "declared"] == ["脱硫塔检修"]
    assert any(
        m["reason"] == "脱硫塔检修" for m in client.get("/api/v1/enterprises/E1").json()["markings"]
    )
    assert client.post("/api/v1/markings", json={**MARK, "enterprise_id": "E2"}).status_code == 404
    other = site.login("ent2")
    assert all(m["enterprise_id"] == "E2" for m in other.get("/api/v1/markings").json())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"outlet": "DA009"}, "not an outlet"),
        ({"type": "holiday"}, "unknown marking type"),
        ({"end": "2026-11-24T07:00:00+08:00"}, "end after it starts"),
        ({"end": "2027-01-24T07:00:00+08:00"}, "at most 31 days"),
    ],
)
def test_a_bad_marking_is_refused_with_the_reason(site, change, problem):
    r = site.login("ent1").post("/api/v1/markings", json={**MARK, **change})
    assert r.status_code == 422 and problem in r.json()["message"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_monitoring_centre_may_declare_for_an_enterprise_others_may_not(site):
    assert (
        site.login("monitor")
        .post("/api/v1/markings", json={**MARK, "enterprise_id": "E2"})
        .status_code
        == 201
    )
    for user in ("supervisor", "enforcer1", "admin"):
        r = site.login(user).post("/api/v1/markings", json={**MARK, "enterprise_id": "E1"})
        assert r.status_code == 403, user


def test_the_engine_excuses_data_judged_after_it_takes_a_marking_up():
    params = gas_outlet()
    table = {("E1", "DA001"): params}
    engine = StreamEngine(table, grace_s=600)
    data = hour_of(SO2, tick(1), 150.0) + hour_of(O2, tick(1), 6.0)
    mark = Marking("E1", "DA001", "maintenance", epoch(tick(1)), epoch(tick(2)))
    engine.reconfigure(StreamEngine(table, markings=[mark], grace_s=600))  # declared online
    found = engine.process_measurements(data) + engine.flush()
    assert [f for f in found if f.rule == "A3"] == []
    unmarked = StreamEngine(table, grace_s=600)  # the same data without the marking exceeds
    found = unmarked.process_measurements(data) + unmarked.flush()
    assert [f.state for f in found if f.rule == "A3"] == ["fire"]
