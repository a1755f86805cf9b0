"""Rectification and 回头看 over real HTTP, on SQLite and PostgreSQL: ordered by a supervisor,
reported by the enterprise, verified on site by the brigade, struck off (销号), and the re-check
that follows on the brigade's list; each step once per request key, each in its scope."""

from __future__ import annotations


def step(client, case, name, key=None, **body):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/api/v1/cases/{case}/rectification/{name}", json=body, headers=headers)


def test_a_rectification_goes_to_its_end_and_its_recheck_is_on_the_brigades_list(site):
    case = site.cases["e1_alarm"]
    supervisor = site.login("supervisor")
    r = step(
        supervisor, case, "order", key="order-0001", requirement="更换脱硫循环泵", working_days=5
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["state_name"]) == ("ordered", "整改中")
    again = step(supervisor, case, "order", key="order-0001", requirement="更换脱硫循环泵")
    assert again.json()["id"] == r.json()["id"]  # the same request: one order
    other = step(supervisor, case, "order", requirement="又一次")
    assert other.status_code == 409 and other.json()["code"] == "rectification_open"

    assert step(site.login("ent2"), case, "report", note="x").status_code == 404
    assert step(site.login("town1"), case, "report", note="x").status_code == 403
    ent1 = site.login("ent1")
    assert step(ent1, case, "report").json()["code"] == "note_required"
    assert step(ent1, case, "report", note="已更换，附验收单").json()["state"] == "reported"
    officer = site.login("enforcer1")
    verified = step(officer, case, "verify", method="on_site", outcome="passed", note="现场核实")
    assert verified.json()["state_name"] == "核查通过"
    off_site = site.login("monitor")
    assert step(off_site, case, "close").json()["code"] == "role_not_allowed"
    supervisor = site.login("supervisor")
    closed = step(supervisor, case, "close", note="整改到位")
    assert closed.json()["state_name"] == "已销号"

    follow = supervisor.get(f"/api/v1/cases/{case}/follow-up").json()
    assert [r["state"] for r in follow["rectifications"]] == ["closed"]
    [recheck] = follow["rechecks"]
    assert (recheck["reason_name"], recheck["method_name"], recheck["state_name"]) == (
        "整改销号",
        "非现场（数据）",
        "待复查",
    )
    officer = site.login("enforcer1")
    assert [r["id"] for r in officer.get("/api/v1/rechecks?state=scheduled").json()] == [
        recheck["id"]
    ]
    decided = officer.post(
        f"/api/v1/rechecks/{recheck['id']}/decide",
        json={"outcome": "passed", "note": "现场复查，设施运行正常"},
    )
    assert decided.status_code == 200 and decided.json()["state_name"] == "复查通过"
    assert site.login("enforcer2").get("/api/v1/rechecks").json() == []
    events = site.login("supervisor").get(f"/api/v1/cases/{case}").json()["events"]
    names = [e["action"] for e in events]
    assert names[-6:] == [
        "rectify_order",
        "rectify_report",
        "rectify_verify",
        "rectify_close",
        "recheck_scheduled",
        "recheck",
    ]


def test_a_recheck_is_planned_a_date_a_method_and_a_brigade(site):
    case = site.cases["e1_alarm"]
    supervisor = site.login("supervisor")
    step(supervisor, case, "order", requirement="整改")
    step(site.login("ent1"), case, "report", note="已整改")
    supervisor = site.login("supervisor")
    step(supervisor, case, "verify", method="on_site", outcome="passed", note="核实")
    step(supervisor, case, "close")
    [recheck] = supervisor.get(f"/api/v1/cases/{case}/follow-up").json()["rechecks"]
    path = f"/api/v1/rechecks/{recheck['id']}"
    planned = supervisor.patch(
        path, json={"due_at": "2027-02-01T10:00:00+08:00", "method": "on_site", "brigade": "B2"}
    )
    assert planned.status_code == 200, planned.text
    assert (planned.json()["method_name"], planned.json()["brigade"]) == ("现场", "B2")
    assert planned.json()["due_at"].startswith("2027-02-01T02:00")
    assert supervisor.patch(path, json={"brigade": "B9"}).json()["code"] == "unknown_brigade"
    assert (
        supervisor.patch(path, json={"due_at": "2020-01-01T00:00:00+08:00"}).json()["code"]
        == "bad_date"
    )
    assert supervisor.patch(path, json={}).json()["code"] == "nothing_changed"
    assert site.login("enforcer1").patch(path, json={"method": "off_site"}).status_code == 403
    # Its brigade now: B2's officer sees it on its list.
    assert [r["id"] for r in site.login("enforcer2").get("/api/v1/rechecks").json()] == [
        recheck["id"]
    ]
