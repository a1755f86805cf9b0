"""Decisions over real HTTP, on SQLite and PostgreSQL: a supervisor's fine above the major
amount waits in the legal reviewer's queue, the case cannot close until it is reviewed, and the
approval puts it in effect."""

from __future__ import annotations


def test_a_major_fine_waits_for_the_legal_reviewer(site):
    case = site.cases["e1_alarm"]
    supervisor = site.login("supervisor")
    fine = {
        "kind": "fine",
        "amount_yuan": 300000,
        "document_number": "环罚字〔2026〕120号",
        "legal_ground": "《大气污染防治法》第九十九条第二项",
        "decided_on": "2026-12-01",
    }
    r = supervisor.post(
        f"/api/v1/cases/{case}/decisions", json=fine, headers={"Idempotency-Key": "dec-00001"}
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["major"], d["state_name"], d["type_name"]) == (True, "待法制审核", "罚款")
    again = supervisor.post(
        f"/api/v1/cases/{case}/decisions", json=fine, headers={"Idempotency-Key": "dec-00001"}
    )
    assert again.json()["id"] == d["id"]
    second = supervisor.post(
        f"/api/v1/cases/{case}/decisions", json=fine | {"document_number": "x"}
    )
    assert second.status_code == 409 and second.json()["code"] == "decision_pending"

    legal = site.login("legal1")
    assert [x["id"] for x in legal.get("/api/v1/decisions").json()] == [d["id"]]
    assert legal.get(f"/api/v1/cases/{case}").status_code == 200  # it reads the case it reviews
    ok = legal.post(
        f"/api/v1/decisions/{d['id']}/review", json={"approve": True, "note": "程序合法"}
    )
    assert ok.status_code == 200 and ok.json()["state"] == "effective"
    assert legal.get("/api/v1/decisions").json() == []
    assert (
        legal.post(f"/api/v1/decisions/{d['id']}/review", json={"approve": True}).status_code == 409
    )
    events = site.login("supervisor").get(f"/api/v1/cases/{case}").json()["events"]
    assert [e["action"] for e in events][-2:] == ["decide", "legal_review"]
    assert events[-1]["role"] == "legal"
