"""The clue API over real HTTP, on SQLite and PostgreSQL: a hotline's system sends clues with
its token, a township submits and follows the clues of its area, clues come in as a CSV file,
and an enterprise never sees a complaint about it."""

from __future__ import annotations

import httpx

from tests.alerts.conftest import T0

NIGHT = (T0.replace(hour=17, minute=40)).isoformat()  # 01:40 China time, E1's alarm hour


def bearer(site, username: str) -> httpx.Client:
    token = site.ctx.users.create_token(username, "12345平台")
    return httpx.Client(
        base_url=site.client.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_a_hotline_system_sends_a_complaint_that_merges_and_is_sent_again(site):
    clue = {
        "source": "hotline_12369",
        "occurred_at": (T0.replace(minute=20)).isoformat(),
        "description": "电厂方向飘来刺鼻气味",
        "enterprise_id": "E1",
        "factor": "a21026",
        "external_ref": "12369-20261123-7",
    }
    with bearer(site, "hotline") as system:
        r = system.post("/api/v1/clues", json=clue)
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["outcome"], body["case_id"]) == ("merged", site.cases["e1_alarm"])
        assert (body["outcome_name"], body["source_name"]) == ("并入在办案件", "12369环保热线")
        assert body["case_state_name"] == "已派单" and body["enterprise_name"]
        again = system.post("/api/v1/clues", json=clue | {"description": "重复推送"})
        assert again.json()["id"] == body["id"]  # the same ticket: the same clue
        mine = system.get("/api/v1/clues").json()
        assert {c["id"] for c in mine} == {site.cases["clue"], body["id"]}
        assert system.get("/api/v1/cases").json()["items"] == []  # no cases for a system
    monitor = site.login("monitor")
    listed = monitor.get(f"/api/v1/cases/{site.cases['e1_alarm']}/clues").json()
    assert [c["external_ref"] for c in listed] == ["12345-0001", "12369-20261123-7"]
    detail = monitor.get(f"/api/v1/cases/{site.cases['e1_alarm']}").json()
    assert [e["action"] for e in detail["events"]].count("clue") == 2


def test_a_township_submits_and_follows_the_clues_of_its_area(site):
    town = site.login("town1")
    me = town.get("/api/v1/me").json()
    assert (me["role"], me["area"]) == ("township", "滨江区")
    assert [e["id"] for e in town.get("/api/v1/enterprises").json()] == ["E1"]
    r = town.post(
        "/api/v1/clues",
        json={
            "source": "township",
            "occurred_at": NIGHT,
            "description": "群众反映厂区夜间偷排，河道发黑",
            "enterprise_id": "E1",
            "factor": "w01018",
        },
        headers={"Idempotency-Key": "form-0001"},
    )
    assert r.status_code == 201, r.text
    clue = r.json()
    assert (clue["area"], clue["outcome"], clue["case_state"]) == ("滨江区", "opened", "sensed")
    # The form's reply lost, its second tap: one clue.
    again = town.post(
        "/api/v1/clues",
        json={
            "source": "township",
            "occurred_at": NIGHT,
            "description": "重复",
            "enterprise_id": "E1",
        },
        headers={"Idempotency-Key": "form-0001"},
    )
    assert again.json()["id"] == clue["id"]
    assert town.get(f"/api/v1/clues/{clue['id']}").status_code == 200
    assert town.get("/api/v1/clues?area=城东区").status_code == 403
    assert town.get(f"/api/v1/cases/{clue['case_id']}").status_code == 404  # follows the clue

    # The clue's case in the queue: a monitor sees it as a clue case; E1 never sees it.
    monitor = site.login("monitor")
    case = monitor.get(f"/api/v1/cases/{clue['case_id']}").json()["case"]
    assert (case["kind"], case["rule_name"], case["quantity"]["name"]) == ("clue", "线索", "线索数")
    ent1 = site.login("ent1")
    assert ent1.get(f"/api/v1/cases/{clue['case_id']}").status_code == 404
    assert clue["case_id"] not in {c["id"] for c in ent1.get("/api/v1/cases").json()["items"]}
    assert ent1.get("/api/v1/clues").status_code == 403
    assert ent1.get(f"/api/v1/cases/{site.cases['e1_alarm']}/clues").status_code == 403


def test_clues_come_in_as_a_csv_file_and_each_bad_row_is_named(site):
    text = (
        "来源,发生时间,问题描述,企业编号,经度,纬度,来源编号\n"
        f"12345热线,{NIGHT},夜间噪声扰民,E1,,,12345-A\n"
        "无人机,2026-11-22 10:00,河道排口疑似偷排,,121.9,31.2,UAV-9\n"
        "12345热线,2026-11-22 10:00,,E1,,,12345-B\n"
        "传说,2026-11-22 10:00,不明,E1,,,X-1\n"
        "12345热线,2026-11-22 10:00,企业不存在,E9,,,12345-C\n"
    )
    supervisor = site.login("supervisor")
    r = supervisor.post(
        "/api/v1/clues/import",
        files={"file": ("线索.csv", ("\ufeff" + text).encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert [c["external_ref"] for c in out["taken"]] == ["12345-A", "UAV-9"]
    assert out["taken"][1]["located"] == "none" and out["taken"][1]["outcome"] == "opened"
    assert [(x["row"], x["code"]) for x in out["refused"]] == [
        (4, "invalid"),
        (5, "invalid"),
        (6, "unknown_enterprise"),
    ]
    assert "description" in out["refused"][0]["message"]
    # The same file again takes nothing twice.
    again = supervisor.post(
        "/api/v1/clues/import", files={"file": ("线索.csv", text.encode(), "text/csv")}
    ).json()
    assert [c["id"] for c in again["taken"]] == [c["id"] for c in out["taken"]]
    bad = supervisor.post(
        "/api/v1/clues/import", files={"file": ("x.csv", "名称,说明\n甲,乙\n".encode(), "text/csv")}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "bad_columns"
    gbk = supervisor.post(
        "/api/v1/clues/import", files={"file": ("x.csv", text.encode("gbk"), "text/csv")}
    )
    assert gbk.status_code == 422 and gbk.json()["code"] == "bad_encoding"


def test_clues_come_in_as_an_excel_workbook(site, tmp_path):
    from datetime import datetime

    import xlsxwriter

    path = tmp_path / "线索.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("线索")
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for col, heading in enumerate(["来源", "发生时间", "问题描述", "经度", "纬度", "来源编号"]):
        sheet.write(0, col, heading)
    sheet.write(1, 0, "卫星遥感")
    sheet.write_datetime(1, 1, datetime(2026, 11, 22, 10, 30), when)  # China time, as typed
    sheet.write(1, 2, "疑似违法排污点位")
    sheet.write_number(1, 3, 121.9)
    sheet.write_number(1, 4, 31.2)
    sheet.write(1, 5, "RS-2026-11")
    sheet.write(2, 0, "无人机")
    sheet.write(2, 1, "昨天")
    sheet.write(2, 2, "时间写错")
    book.close()
    monitor = site.login("monitor")
    r = monitor.post(
        "/api/v1/clues/import",
        files={"file": ("线索.xlsx", path.read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    [taken] = out["taken"]
    assert (taken["source"], taken["external_ref"]) == ("satellite", "RS-2026-11")
    assert taken["occurred_at"].startswith("2026-11-22T02:30")  # 10:30 China time, in UTC
    assert [(x["row"], x["code"]) for x in out["refused"]] == [(3, "invalid")]
    broken = monitor.post(
        "/api/v1/clues/import", files={"file": ("x.xlsx", b"PK\x03\x04broken", "application/zip")}
    )
    assert broken.status_code == 422 and broken.json()["code"] == "bad_workbook"
