"""The commands API: who may ask a logger for what, what is refused and why, and the audit.

The service's sender and a logger's answers are tested end to end in
tests/nonsite/test_logger_commands.py; here the requests as people make them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)

RECALL = {"cn": "2061", "begin": "2026-12-05T08:00:00+08:00", "end": "2026-12-05T09:59:59+08:00"}


def test_a_monitor_recalls_and_the_audit_shows_it(site):
    client = site.login("monitor")
    r = client.post("/api/v1/loggers/MN1/recall", json={**RECALL, "reason": "核对 8 点数据"})
    assert r.status_code == 202, r.text
    made = r.json()
    assert (made["mn"], made["kind"], made["cn"], made["status"]) == (
        "MN1", "recall", "2061", "requested"
    )  # fmt: skip
    assert made["requested_by"] == "monitor-显示名"
    assert made["params"] == {
        "BeginTime": "2026-12-05T00:00:00+00:00",
        "EndTime": "2026-12-05T01:59:59+00:00",
    }
    listed = client.get("/api/v1/commands", params={"mn": "MN1"}).json()
    assert [c["id"] for c in listed] == [made["id"]]
    assert client.get("/api/v1/commands", params={"mn": "MN2"}).json() == []


def test_refusals_say_why(site):
    client = site.login("supervisor")
    unknown = client.post("/api/v1/loggers/NOPE/recall", json=RECALL)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_mn"
    backwards = client.post(
        "/api/v1/loggers/MN1/recall", json={**RECALL, "end": "2026-12-05T07:00:00+08:00"}
    )
    assert backwards.status_code == 422 and "早于" in backwards.json()["message"]
    # Without an offset a time is China time, as everywhere in the API.
    naive = client.post(
        "/api/v1/loggers/MN1/recall", json={**RECALL, "begin": "2026-12-05T08:00:00"}
    )
    assert naive.status_code == 202, naive.text
    assert naive.json()["params"]["BeginTime"] == "2026-12-05T00:00:00+00:00"
    wrong_cn = client.post("/api/v1/loggers/MN1/recall", json={**RECALL, "cn": "2011"})
    assert wrong_cn.status_code == 422


def test_recalls_are_rate_limited_per_logger(site):
    client = site.login("monitor")
    limit = site.ctx.config.commands.recall_per_hour
    for _ in range(limit):
        assert client.post("/api/v1/loggers/MN1/recall", json=RECALL).status_code == 202
    over = client.post("/api/v1/loggers/MN1/recall", json=RECALL)
    assert over.status_code == 429 and over.json()["code"] == "rate_limited"
    assert client.post("/api/v1/loggers/MN2/recall", json=RECALL).status_code == 202


def test_who_may_do_what(site):
    for user in ("enforcer1", "ent1", "admin"):
        client = site.login(user)
        assert client.post("/api/v1/loggers/MN1/recall", json=RECALL).status_code == 403, user
    for user in ("enforcer1", "ent1"):
        assert site.login(user).get("/api/v1/commands").status_code == 403, user
    command = {"cn": "3020", "cp": "PolId=a21026", "reason": "读取设备参数"}
    assert (
        site.login("monitor").post("/api/v1/loggers/MN1/commands", json=command).status_code == 403
    )
    admin = site.login("admin")
    r = admin.post("/api/v1/loggers/MN1/commands", json=command)
    assert r.status_code == 202, r.text
    assert r.json()["params"] == {"cp": "PolId=a21026"}
    bad = admin.post("/api/v1/loggers/MN1/commands", json={**command, "cp": "a=1&&b=2"})
    assert bad.status_code == 422 and "&&" in bad.json()["message"]
    check = site.login("supervisor").post("/api/v1/loggers/MN1/time-check")
    assert check.status_code == 202 and check.json()["kind"] == "time_get"


def test_the_packet_is_shown_without_the_loggers_pw(site):
    from datetime import UTC, datetime

    from ingest.commands.packets import request_packet
    from ingest.commands.store import mark_sent, request

    now = datetime.now(UTC)
    qn, packet = request_packet(st="31", cn="2061", pw="Secret-77", mn="MN1", cp={}, now=now)
    with site.ctx.db.begin() as conn:
        command_id = request(
            conn, mn="MN1", kind="recall", cn="2061", requested_by="auto:B7", reason="B7",
            now=now, case_id=site.cases["e1_warning"],
        )  # fmt: skip
        mark_sent(conn, command_id, qn=qn, topic="hj212/MN1/reply", packet=packet, now=now)
    client = site.login("monitor")
    [shown] = client.get("/api/v1/commands", params={"mn": "MN1"}).json()
    assert "Secret-77" not in shown["packet"] and ";PW=******;MN=MN1;" in shown["packet"]
    record = client.get(f"/api/v1/cases/{site.cases['e1_warning']}/record").json()
    assert [c["id"] for c in record["commands"]] == [command_id]
    assert "Secret-77" not in str(record) and "PW=******" in str(record)
