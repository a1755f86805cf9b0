"""A case's whole record exports as JSON and CSV."""

import csv
import io
import json

from alerts.audit import case_record, events_csv, to_json
from alerts.workflow import Actor
from tests.alerts.conftest import finding


def test_the_record_holds_every_change_action_work_order_and_notification(store, book):
    with store.begin() as conn:
        [cid] = book.apply(conn, [finding()]).opened
    with store.begin() as conn:
        book.act(conn, cid, "verify", Actor("王监测", "monitor"), outcome="confirmed", note="属实")
    with store.begin() as conn:
        book.act(conn, cid, "dispatch", Actor("李监管", "supervisor"), note="请于三日内核查")
    with store.connect() as conn:
        record = json.loads(to_json(case_record(conn, book, cid)))
    assert record["case"]["id"] == cid and record["case"]["state"] == "dispatched"
    assert [e["action"] for e in record["events"]] == ["sense", "verify", "dispatch"]
    assert record["events"][1]["actor"] == "王监测" and record["events"][1]["note"] == "属实"
    [order] = record["work_orders"]
    assert (order["brigade"], order["kind"], order["state"]) == ("B1", "on_site", "open")
    assert order["due_at"].endswith("+08:00")  # China time, with its offset, on every database
    assert record["case"]["opened_at"].endswith("+08:00")
    assert all(e["at"].endswith("+08:00") for e in record["events"])
    assert [e["action_zh"] for e in record["events"]] == ["感知", "平台核实", "派单"]
    assert {n["channel"] for n in record["notifications"]} == {
        "mqtt",
        "supervisors-hook",
        "b1-hook",
        "e1-wecom",  # the enterprise learns of the dispatch too
    }
    rows = list(csv.DictReader(io.StringIO(events_csv(record).lstrip("\ufeff"))))
    # for people: Chinese names; for machines: the stable codes in their own columns
    assert [(r["操作"], r["action"]) for r in rows] == [
        ("感知", "sense"),
        ("平台核实", "verify"),
        ("派单", "dispatch"),
    ]
    assert [(r["操作人"], r["角色"]) for r in rows] == [
        ("系统", "系统"),
        ("王监测", "监测中心"),
        ("李监管", "监管"),
    ]
    assert rows[2]["新状态"] == "已派单" and rows[2]["to_state"] == "dispatched"
    assert all(r["时间"].endswith("+08:00") for r in rows)
    assert rows[2]["说明"] == "请于三日内核查" and json.loads(rows[2]["关联"])["brigade"] == "B1"
    assert events_csv(record).startswith("\ufeff")  # spreadsheet software reads it as UTF-8
