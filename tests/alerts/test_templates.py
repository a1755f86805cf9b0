"""Notification texts name the enterprise, outlet, factor, value, limit, time and a link."""

from alerts.templates import render, rule_name
from tests.alerts.conftest import POLICY, finding


def test_an_opened_alarm_reads_like_a_supervision_notice(store, book):
    with store.begin() as conn:
        [cid] = book.apply(conn, [finding(value=152.5)]).opened
        case = book.get(conn, cid)
    title, text = render(case, "case.opened", POLICY)
    assert title == "报警：华能示范电厂 超标"
    for part in (
        "企业：华能示范电厂（E1）",
        "监测点：1号锅炉（DA001）",
        "规则：超标（A3），报警",
        "因子：二氧化硫(a21026)",
        "监测值：152.5 mg/m³，限值 100 mg/m³",
        "最大超标倍数：0.525",
        "2026-11-23 17:00 起",  # 09:00 UTC is 17:00 China time
        f"详情：http://127.0.0.1:8080/cases/{cid}",
    ):
        assert part in text, part


def test_a_reminder_tells_the_enterprise_its_deadline(store, book):
    with store.begin() as conn:
        [cid] = book.apply(conn, [finding("B2", tier="warning", limit=None)]).opened
        case = book.get(conn, cid)
    title, text = render(case, "case.opened", POLICY)
    assert title == "预警：华能示范电厂 恒值"
    assert "请于 2026-11-24 17:00 前提交异常情况说明" in text


def test_rule_names_are_the_fields_terms():
    assert [rule_name(r) for r in ("A3", "B8", "C1", "A5-2")] == [
        "超标",
        "数采仪离线",
        "产污治污不同步",
        "炉温不达标",
    ]
