"""Risk ratings over real HTTP, on SQLite and PostgreSQL: rated on demand and once a day, the
fleet's for who plans inspections, an enterprise its own (without naming the complaints about
it), and a confirmed violation raising a rating with its reason."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.risk_record import latest
from alerts.workflow import Actor
from nonsite.risk_rating import rate_if_due


def points(rating: dict) -> float:
    return round(sum(c["points"] for c in rating["contributions"]), 2)


def test_ratings_on_demand_read_by_role(site):
    supervisor = site.login("supervisor")
    assert supervisor.get("/api/v1/risk").json()["ratings"] == []  # nothing rated yet
    done = supervisor.post("/api/v1/risk/recompute", json={})
    assert done.status_code == 200, done.text
    assert done.json()["rated"] == 2

    fleet = site.login("enforcer1").get("/api/v1/risk").json()
    [e1, e2] = fleet["ratings"]  # the highest score first
    assert (e1["enterprise_id"], e2["enterprise_id"]) == ("E1", "E2")
    # E1: its A3 alarm (10), its B2 warning (2), the complaint merged into the alarm (3).
    kinds = {c["kind"]: c for c in e1["contributions"]}
    assert set(kinds) == {"exceedance_alarm", "data_quality", "clue"}
    assert kinds["exceedance_alarm"]["refs"] == [f"case:{site.cases['e1_alarm']}"]
    assert kinds["clue"]["refs"] == [f"clue:{site.cases['clue']}"]
    assert e1["score"] == points(e1) == 15
    assert (e1["color"], e1["color_name"], e1["enterprise_name"]) == (
        "green",
        "绿码",
        "华能示范电厂",
    )
    assert e1["next_change"]["rise_to"] == "yellow" and e1["next_change"]["rise_in"] == 5
    assert fleet["counts"] == {"red": 0, "yellow": 0, "green": 2}

    # The enterprise reads its own, with how many complaints count but not which.
    own = site.login("ent1").get("/api/v1/enterprises/E1/risk").json()
    clue = next(c for c in own["rating"]["contributions"] if c["kind"] == "clue")
    assert (clue["count"], clue["points"], clue["refs"]) == (1, 3, [])
    assert "clue:" not in str(own)
    assert own["rating"]["score"] == 15 and len(own["history"]) == 1
    ent = site.login("ent1")
    assert ent.get("/api/v1/enterprises/E2/risk").status_code == 404
    assert ent.get("/api/v1/risk").status_code == 403
    assert ent.post("/api/v1/risk/recompute", json={}).status_code == 403
    assert site.login("enforcer1").post("/api/v1/risk/recompute", json={}).status_code == 403
    town = site.login("town1").get("/api/v1/enterprises/E1/risk")
    assert town.status_code == 404, town.text
    assert site.login("hotline").get("/api/v1/risk").status_code == 403
    one = site.login("supervisor").post("/api/v1/risk/recompute", json={"enterprise_id": "nope"})
    assert one.status_code == 404


def test_a_confirmed_violation_raises_the_rating_and_says_why(site):
    case = site.cases["e1_alarm"]
    with site.ctx.db.begin() as conn:
        site.ctx.book.act(
            conn, case, "report", Actor("执法一", "enforcer", brigade="B1"),
            outcome="violation_confirmed", case_number="环罚〔2026〕130号",
        )  # fmt: skip
    monitor = site.login("monitor")
    assert monitor.post("/api/v1/risk/recompute", json={"enterprise_id": "E1"}).json() == {
        "rated": 1,
        "counts": {"red": 0, "yellow": 1, "green": 0},
    }
    e1 = monitor.get("/api/v1/enterprises/E1/risk").json()["rating"]
    violation = next(c for c in e1["contributions"] if c["kind"] == "violation")
    assert (violation["name"], violation["refs"]) == ("违法事实成立", [f"case:{case}"])
    assert (e1["score"], e1["color"]) == (45, "yellow")
    assert e1["next_change"]["falls_to"] == "green"  # when the violation leaves the window
    assert monitor.get("/api/v1/risk?color=yellow").json()["ratings"][0]["enterprise_id"] == "E1"


def test_the_daily_rating_rates_each_enterprise_once_a_day(site):
    now = datetime.now(UTC)
    assert rate_if_due(site.ctx.db, site.ctx.config, now) == 2
    assert rate_if_due(site.ctx.db, site.ctx.config, now) == 0  # done for the day
    with site.ctx.db.connect() as conn:
        kept = latest(conn)
    assert sorted(kept) == ["E1", "E2"]
    assert all(points(r) == r["score"] for r in kept.values())
