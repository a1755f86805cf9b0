"""The positive list over real HTTP, on SQLite and PostgreSQL: a supervisor proposes an entry,
a rejection needs its reason, the approval puts the enterprise on the list; who may read and
who may decide."""

from __future__ import annotations


def test_a_supervisor_proposes_and_decides_an_entry(site):
    supervisor = site.login("supervisor")
    r = supervisor.post(
        "/api/v1/positive-list/proposals",
        json={"enterprise_id": "E1", "change": "enter", "reason": "连续六个月绿码，整改全部销号"},
    )
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert (proposal["state_name"], proposal["change_name"], proposal["enterprise_name"]) == (
        "待审批",
        "纳入正面清单",
        "华能示范电厂",
    )
    again = supervisor.post(
        "/api/v1/positive-list/proposals",
        json={"enterprise_id": "E1", "change": "enter", "reason": "重复"},
    )
    assert again.status_code == 409 and again.json()["code"] == "nothing_to_change"
    no_reason = supervisor.post(
        f"/api/v1/positive-list/proposals/{proposal['id']}/decide", json={"approve": False}
    )
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "note_required"
    ok = supervisor.post(
        f"/api/v1/positive-list/proposals/{proposal['id']}/decide", json={"approve": True}
    )
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    twice = supervisor.post(
        f"/api/v1/positive-list/proposals/{proposal['id']}/decide", json={"approve": True}
    )
    assert twice.status_code == 409

    listed = site.login("monitor").get("/api/v1/positive-list").json()
    assert [m["enterprise_id"] for m in listed["members"]] == ["E1"]
    assert listed["members"][0]["since"] is not None
    assert listed["pending"] == [] and listed["changes"][0]["decided_by"]
    monitor = site.login("monitor")
    assert (
        monitor.post(
            "/api/v1/positive-list/proposals",
            json={"enterprise_id": "E2", "change": "enter", "reason": "x"},
        ).status_code
        == 403
    )
    assert site.login("ent1").get("/api/v1/positive-list").status_code == 403
    unknown = site.login("supervisor").post(
        "/api/v1/positive-list/proposals",
        json={"enterprise_id": "E9", "change": "enter", "reason": "x"},
    )
    assert unknown.status_code == 404
