"""Notification texts name the enterprise, outlet, factor, value, limit, time and a link."""

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from alerts.schema import outbox
from alerts.templates import render, rule_name
from alerts.workflow import Actor
from ingest.china_time import CHINA_TZ
from tests.alerts.conftest import POLICY, finding

MONITOR = Actor("王监测", "monitor")
SUPERVISOR = Actor("李监管", "supervisor")


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
        "小时均值：152.5 mg/m³，排放限值 100 mg/m³",
        "最大超标倍数：0.525",
        "2026-11-23 17:00 起",  # 09:00 UTC is 17:00 China time
        f"详情：http://127.0.0.1:8080/cases/{cid}",
    ):
        assert part in text, part


def test_each_rule_family_states_its_own_quantity_and_threshold(store, book):
    """Not "监测值 / 限值" in a concentration unit for every rule: a flag held too long is a
    duration against the warning time, a transmission rate a percentage against its minimum,
    and only an exceedance has a 超标倍数."""
    b9 = replace(finding("B9", tier="warning", value=5.0, limit=4.0), unit="h")
    b10 = replace(finding("B10", tier="warning", factor=None, value=80.0, limit=90.0), unit="%")
    for f, line in [
        (b9, "- 标记持续时长：5 小时，预警时长 4 小时"),
        (b10, "- 有效传输率：80 %，最低要求 90 %"),
    ]:
        _, text = render(opened(store, book, f), "case.opened", POLICY)
        assert line in text, text
        assert "监测值" not in text and "限值" not in text and "mg" not in text
        assert "超标倍数" not in text
    _, text = render(opened(store, book, finding(hour=3, value=152.5)), "case.opened", POLICY)
    assert "- 小时均值：152.5 mg/m³，排放限值 100 mg/m³" in text
    assert "- 最大超标倍数：0.525" in text


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


# -- the legal basis (rule A9, alerts/legal.py) ----------------------------------------------

CAPS = [
    {"types": "startup+shutdown+fault+accident", "marked_hours": 72.5, "cap_hours": 60.0},
    {"types": "oven_drying+cooling", "marked_hours": 0.0, "cap_hours": 700.0},
]
ORDER = {
    "order": "临环应急〔2026〕7号",
    "order_start": int(datetime(2026, 11, 23, tzinfo=CHINA_TZ).timestamp()),
    "order_end": int(datetime(2026, 11, 25, tzinfo=CHINA_TZ).timestamp()),
}
INVENTED = ("弄虚作假", "175号", "刑法", "重庆", "征求意见", "第二十条")


def opened(store, book, f):
    with store.begin() as conn:
        [cid] = book.apply(conn, [f]).opened
        return book.get(conn, cid)


def queued(store, cid, channel):
    """The texts queued in the outbox for one channel, in order."""
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.text)
            .where(outbox.c.case_id == cid, outbox.c.channel == channel)
            .order_by(outbox.c.id)
        ).all()
    return [r.text for r in rows]


def test_an_hourly_exceedance_names_the_permit_regulation_and_what_the_enterprise_must_do(
    store, book
):
    case = opened(store, book, finding(value=152.5))
    _, text = render(case, "case.opened", POLICY)
    for part in (
        "- 依据：《排污许可管理条例》第二十一条第二款；《排污单位自行监测技术指南 总则》"
        "（HJ 819-2017）7.3",
        "- 判定口径：标记为无效的自动监测数据，不作为超标判定依据",
        # the supervisors' copy says what the enterprise must do, not "please"
        "- 企业应加密监测、检查超标原因，立即采取措施消除、减轻危害后果",
        "并报告生态环境主管部门，提交分析报告，说明原因",
        "- 罚则：超标等异常情况不报告的，责令改正，处2万元以上20万元以下罚款，拒不改正的，"
        "责令停产整治",
        "（《排污许可管理条例》第三十六条、第三十七条）",
    ):
        assert part in text, part
    assert "- 请加密监测" not in text
    assert not any(word in text for word in INVENTED)
    # the existing lines stay, the link last
    assert "- 小时均值：152.5 mg/m³，排放限值 100 mg/m³" in text
    assert text.splitlines()[-1].startswith("- 详情：")

    with store.begin() as conn:
        book.act(conn, case.id, "dispatch", SUPERVISOR)
    [to_enterprise] = queued(store, case.id, "e1-wecom")
    assert "- 请加密监测、检查超标原因" in to_enterprise
    assert "依据：《排污许可管理条例》第二十一条第二款" in to_enterprise
    [to_brigade] = queued(store, case.id, "b1-hook")
    assert to_brigade == to_enterprise  # one text per event: the dispatch reaches both


def test_a_warning_below_the_limit_quotes_no_exceedance_basis(store, book):
    # an hourly value above the warning threshold (a fraction of the limit) exceeded nothing
    case = opened(store, book, finding(tier="warning", value=85.0, limit=80.0))
    _, text = render(case, "case.opened", POLICY)
    assert "请于 2026-11-24 17:00 前提交异常情况说明" in text
    assert "依据" not in text and "罚则" not in text and "条例" not in text
    # escalated to alarm by a person (or for being unexplained), it still exceeded nothing
    with store.begin() as conn:
        book.act(conn, case.id, "escalate", MONITOR, note="连续三次未说明")
        case = book.get(conn, case.id)
    assert case.tier == "alarm"
    _, text = render(case, "case.escalated", POLICY)
    assert "依据" not in text and "罚则" not in text
    # an alarm-tier finding of the same problem: now the limit itself was exceeded
    with store.begin() as conn:
        book.apply(conn, [finding(hour=1, value=120.0)])
        case = book.get(conn, case.id)
    _, text = render(case, "case.changed", POLICY)
    assert "- 依据：《排污许可管理条例》第二十一条第二款" in text
    assert "- 请加密监测" in text  # the case is still with the enterprise (reminded)


def test_an_incinerator_daily_exceedance_cites_the_ministry_order_and_the_marked_hours(store, book):
    f = replace(
        finding("A5-1", factor="a34013", value=26.0, limit=20.0),
        evidence={"valid_hours": 22, "marking_caps": CAPS},
    )
    case = opened(store, book, f)
    title, text = render(case, "case.opened", POLICY)
    assert title == "报警：华能示范电厂 垃圾焚烧日均值超标"
    [basis] = [line for line in text.splitlines() if line.startswith("- 依据：")]
    assert basis.startswith(
        "- 依据：《生活垃圾焚烧发电厂自动监测数据应用管理规定》（生态环境部令第10号）："
        "焚烧炉日均值超过24小时均值限值或日均值限值"
    )
    assert "可以认定其污染物排放超标" in basis
    assert "《排污许可管理条例》第二十一条第二款" in basis  # an exceedance: report it
    assert (
        "- 本年标记：启炉、停炉、故障、事故 72.5 小时（上限 60 小时）；"
        "烘炉、停炉降温 0 小时（上限 700 小时）"
    ) in text
    assert "- 判定口径：标记为无效的自动监测数据，不作为超标判定依据" in text
    assert "- 企业应加密监测" in text and "- 罚则：" in text
    assert not any(word in text for word in (*INVENTED, "HJ 1307", "HJ1307"))
    assert len(text.encode()) < 4096  # WeCom cuts markdown at 4096 bytes


def test_an_emergency_order_violation_names_the_order_as_the_enterprises_own_duty(store, book):
    f = replace(
        finding("C5", source="E1-M01", factor=None, value=None, limit=None),
        evidence=ORDER,
    )
    case = opened(store, book, f)
    title, text = render(case, "case.opened", POLICY)
    assert title == "报警：华能示范电厂 停限产违规"
    assert (
        "- 依据：停限产指令 临环应急〔2026〕7号（2026-11-23 00:00 至 2026-11-25 00:00）："
        "所列设备须在指令期间停止运行，是企业自身的应急减排义务"
    ) in text
    assert "- 企业应立即停止指令所列设备运行，落实应急减排措施" in text
    # an order is not a statute: no regulation, no fine, no exceedance wording
    assert "条例" not in text and "罚则" not in text and "判定口径" not in text
    assert not any(word in text for word in INVENTED)
    with store.begin() as conn:
        book.act(conn, case.id, "dispatch", SUPERVISOR)
    [to_enterprise] = queued(store, case.id, "e1-wecom")
    assert "- 请立即停止指令所列设备运行" in to_enterprise
    assert "临环应急〔2026〕7号" in to_enterprise


def test_a_rule_without_a_basis_gets_no_legal_line(store, book):
    case = opened(store, book, finding("B6", tier="warning", value=95.0, limit=None))
    _, text = render(case, "case.opened", POLICY)
    assert "请于 2026-11-24 17:00 前提交异常情况说明" in text  # the reminder stays
    for word in ("依据", "罚则", "判定口径", "企业应", "《", "条例", "规定", *INVENTED):
        assert word not in text, word


def test_every_rule_has_a_chinese_name():
    """The queue and the texts show a rule's Chinese term: none may fall back to English."""
    import re

    from rules.findings import RULES

    english = [r for r in RULES if not re.search(r"[\u4e00-\u9fff]", rule_name(r))]
    assert english == []
