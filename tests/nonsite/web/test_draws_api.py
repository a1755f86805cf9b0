"""双随机 draws over real HTTP, on SQLite and PostgreSQL: a supervisor draws a quarter once with
its published seed, the drawn enterprise's inspection is dispatched to its brigade with two
inspectors (unannounced: the enterprise does not see it), the draw reads back verified, and a
draw whose record was altered no longer verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from alerts.schema import inspection_draws
from alerts.workflow import Actor, WorkflowError
from nonsite.inspection_draws import make_draw


def test_a_quarter_is_drawn_once_and_its_inspection_dispatched(site):
    supervisor = site.login("supervisor")
    made = supervisor.post("/api/v1/draws", json={"period": "2026Q4", "seed": "滨江-2026Q4-3391"})
    assert made.status_code == 201, made.text
    d = made.json()
    assert d["quotas"]["general"] == {
        "members": 2, "share": 0.1, "quota": 1, "eligible": 2, "drawn": 1,
    }  # fmt: skip
    [one] = d["drawn"]
    assert len(set(one["inspectors"])) == 2 and d["short"] == []
    case_id = d["cases"][one["enterprise_id"]]
    detail = supervisor.get(f"/api/v1/cases/{case_id}").json()
    case = detail["case"]
    assert (case["kind"], case["rule_name"], case["state"]) == (
        "inspection",
        "双随机检查",
        "dispatched",
    )
    assert case["source_name"] == "2026Q4 双随机抽查"
    assert detail["work_order"]["kind"] == "on_site"
    assert "检查人员" in detail["events"][0]["note"]
    assert set(one["inspectors"]) <= {"王一", "李二", "张三", "陈五", "周六"}
    own = "ent1" if one["enterprise_id"] == "E1" else "ent2"
    assert site.login(own).get(f"/api/v1/cases/{case_id}").status_code == 404  # unannounced
    assert case_id not in [c["id"] for c in site.login(own).get("/api/v1/cases").json()["items"]]

    again = site.login("supervisor").post(
        "/api/v1/draws", json={"period": "2026Q4", "seed": "另一个种子"}
    )
    assert again.status_code == 409 and again.json()["code"] == "already_drawn"
    read = site.login("enforcer1").get("/api/v1/draws/2026Q4").json()
    assert read["verified"] is True and read["drawn"] == d["drawn"]
    assert read["inputs"]["candidates"][0]["enterprise_id"] == "E1"

    # Altered afterwards (another enterprise written in): it no longer re-runs the same.
    with site.ctx.db.begin() as conn:
        stored = json.loads(conn.execute(select(inspection_draws.c.draw)).scalar_one())
        stored["drawn"][0]["enterprise_id"] = "E2" if one["enterprise_id"] == "E1" else "E1"
        conn.execute(update(inspection_draws).values(draw=json.dumps(stored, ensure_ascii=False)))
    assert site.login("monitor").get("/api/v1/draws/2026Q4").json()["verified"] is False

    # The brigade inspects it as any other work order.
    brigade = "B1" if one["enterprise_id"] == "E1" else "B2"
    with site.ctx.db.begin() as conn:
        site.ctx.book.act(conn, case_id, "arrive", Actor("执法", "enforcer", brigade=brigade))


def test_who_may_draw_and_read(site):
    assert (
        site.login("monitor")
        .post("/api/v1/draws", json={"period": "2026Q4", "seed": "x"})
        .status_code
        == 403
    )
    assert site.login("ent1").get("/api/v1/draws").status_code == 403
    for period in ("2026Q5", "0000", "1999-12"):  # year 0 crashed the server (schemathesis)
        bad = site.login("supervisor").post("/api/v1/draws", json={"period": period, "seed": "x"})
        assert bad.status_code == 422, (period, bad.text)
    with pytest.raises(WorkflowError) as err:
        make_draw(
            site.ctx.db, site.ctx.config, site.ctx.book, "0000", "x", "sup", datetime.now(UTC)
        )
    assert err.value.code == "bad_period"
    lib = site.login("monitor").get("/api/v1/draws/library").json()
    assert [c["enterprise_id"] for c in lib["candidates"]] == ["E1", "E2"]
    assert lib["class_names"]["key"] == "重点监管"
    assert site.login("monitor").get("/api/v1/draws/2026Q3").status_code == 404
