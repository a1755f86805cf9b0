"""Rectification to 销号 and the active 回头看, on SQLite and PostgreSQL: each path of the issue
(ordered, reported, verified and struck off; overdue and escalated; a 回头看 decided from data
that passes, one that fails and reopens the case, one without data handed to the brigade)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rechecks import case_rechecks
from alerts.rectification import case_rectifications
from alerts.workflow import Actor, WorkflowError
from rules.history import HourRecord, Kept
from rules.history_store import Partitions, record_history
from rules.store import record_findings
from tests.alerts.conftest import T0, finding
from tests.alerts.test_workflow import (
    ENFORCER_B1,
    ENFORCER_B2,
    MONITOR,
    SUPERVISOR,
    act,
    apply,
    get,
    notified,
    trail,
)

E1 = Actor("企业环保员", "enterprise", enterprise_id="E1")


def rectify(store, book, cid, step, actor, **kw):
    with store.begin() as conn:
        return book.rectify(conn, cid, step, actor, **kw)


def refused(store, book, cid, step, actor, code, **kw):
    with pytest.raises(WorkflowError) as err:
        rectify(store, book, cid, step, actor, **kw)
    assert err.value.code == code, str(err.value)


def tick(store, book):
    with store.begin() as conn:
        return book.tick(conn)


def closed_case(store, book, clock) -> int:
    """An exceedance confirmed on site and closed (its hour at T0)."""
    [cid] = apply(store, book, finding()).opened
    act(store, book, cid, "dispatch", SUPERVISOR)
    act(
        store, book, cid, "report", ENFORCER_B1,
        outcome="rectification_ordered", note="脱硫塔喷淋层堵塞",
    )  # fmt: skip
    return cid


def valid_hours(store, start, hours: int, source="DA001") -> None:
    """The rules' kept valid hours of E1's outlet from ``start``."""
    t0 = int(start.timestamp()) // 3600 * 3600
    kept = [
        HourRecord(
            "E1",
            source,
            "a21026",
            t0 + h * 3600,
            40.0,
            True,
            "minutes",
            "N",
            60.0,
            60,
            600,
            6,
            6,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            None,
            None,
            False,
        )
        for h in range(hours)
    ]
    with store.begin() as conn:
        record_history(conn, Kept(kept, [], [], []), Partitions())


def test_rectification_is_ordered_reported_verified_and_struck_off(store, book, clock):
    cid = closed_case(store, book, clock)
    refused(store, book, cid, "order", E1, "role_not_allowed", requirement="x")
    refused(store, book, cid, "order", ENFORCER_B2, "out_of_scope", requirement="x")
    refused(store, book, cid, "order", SUPERVISOR, "requirement_required")
    refused(store, book, cid, "report", E1, "no_rectification", note="x")
    r = rectify(
        store, book, cid, "order", ENFORCER_B1,
        requirement="疏通喷淋层，更换循环泵，10日内提交整改报告", working_days=10,
    )  # fmt: skip
    assert (r.state, r.round) == ("ordered", 1)
    assert r.due_at == T0.replace(hour=16) + timedelta(days=14)  # 10 working days, China time
    assert ("case.changed", "e1-wecom") in notified(store, cid)  # the enterprise is told
    refused(store, book, cid, "order", SUPERVISOR, "rectification_open", requirement="再次")
    refused(store, book, cid, "verify", MONITOR, "invalid_transition", method="on_site")
    refused(store, book, cid, "report", E1, "note_required")
    clock.advance(days=6)
    r = rectify(store, book, cid, "report", E1, note="已更换循环泵，附验收照片")
    assert r.state == "reported" and r.report.startswith("已更换")
    refused(store, book, cid, "close", SUPERVISOR, "invalid_transition")
    refused(store, book, cid, "verify", MONITOR, "bad_outcome", method="on_site")
    r = rectify(store, book, cid, "verify", ENFORCER_B1, method="on_site", outcome="passed")
    assert (r.state, r.method, r.verified_by) == ("verified", "on_site", "张执法")
    refused(store, book, cid, "close", MONITOR, "role_not_allowed")
    r = rectify(store, book, cid, "close", SUPERVISOR, note="整改到位")
    assert (r.state, r.closed_by) == ("closed", "李监管")
    actions = [a for a, _, _ in trail(store, book, cid)]
    assert actions[-5:] == [
        "rectify_order",
        "rectify_report",
        "rectify_verify",
        "rectify_close",
        "recheck_scheduled",
    ]
    with store.connect() as conn:
        [recheck] = case_rechecks(conn, cid)
    assert (recheck.reason, recheck.method, recheck.state) == (
        "rectification_closed",
        "off_site",
        "scheduled",
    )
    assert recheck.due_at == clock.now + timedelta(days=30)


def test_an_off_site_verification_is_decided_by_the_data(store, book, clock):
    cid = closed_case(store, book, clock)
    rectify(store, book, cid, "order", SUPERVISOR, requirement="整改脱硫设施")
    rectify(store, book, cid, "report", E1, note="已整改")
    clock.advance(days=9)
    # No data in the last 7 days: the data cannot show it was put right.
    refused(store, book, cid, "verify", MONITOR, "no_data", method="off_site")
    valid_hours(store, clock.now - timedelta(days=7), 7 * 24)
    # It fired again 2 days ago: failed, and a new round with a new deadline.
    with store.begin() as conn:
        record_findings(conn, [finding(hour=24 * 7)])
    r = rectify(store, book, cid, "verify", MONITOR, method="off_site")
    assert (r.state, r.outcome) == ("failed", "failed") and "又判定 1 次" in r.verify_note
    with store.connect() as conn:
        rounds = case_rectifications(conn, cid)
    assert [(x.round, x.state) for x in rounds] == [(1, "failed"), (2, "ordered")]
    rectify(store, book, cid, "report", E1, note="再次整改完成")
    clock.advance(days=8)
    valid_hours(store, clock.now - timedelta(days=7), 7 * 24)
    r = rectify(store, book, cid, "verify", MONITOR, method="off_site")
    assert (
        r.state == "verified" and "未再判定" in r.verify_note and "有效小时 168 个" in r.verify_note
    )


def test_an_overdue_rectification_escalates_once(store, book, clock):
    [cid] = apply(store, book, finding("B2", tier="warning", value=12.0, limit=None)).opened
    act(store, book, cid, "verify", MONITOR, outcome="confirmed")
    rectify(store, book, cid, "order", SUPERVISOR, requirement="校准分析仪", working_days=3)
    clock.advance(days=3)
    assert cid not in tick(store, book)  # Thursday 16:00 China time is the deadline
    clock.advance(days=2)
    assert cid in tick(store, book)
    case = get(store, book, cid)
    assert (case.tier, case.escalation) == ("alarm", "整改逾期未完成")
    assert trail(store, book, cid)[-1][0] == "rectify_overdue"
    assert ("case.overdue", "supervisors-hook") in notified(store, cid)
    assert cid not in tick(store, book)  # once


def test_a_recheck_from_data_passes(store, book, clock):
    cid = closed_case(store, book, clock)
    act(store, book, cid, "close", SUPERVISOR, note="处罚到位")
    with store.connect() as conn:
        [recheck] = case_rechecks(conn, cid)
    assert (recheck.reason, recheck.state) == ("closed", "scheduled")
    valid_hours(store, clock.now, 30 * 24)
    clock.advance(days=29)
    assert cid not in tick(store, book)  # not yet due
    clock.advance(days=1, minutes=1)
    assert cid in tick(store, book)
    with store.connect() as conn:
        [recheck] = case_rechecks(conn, cid)
    assert (recheck.state, recheck.decided_by) == ("passed", "nonsite")
    assert get(store, book, cid).state == "closed"
    assert trail(store, book, cid)[-1][0] == "recheck"


def test_a_recheck_that_fails_reopens_the_case(store, book, clock):
    cid = closed_case(store, book, clock)
    act(store, book, cid, "close", SUPERVISOR)
    valid_hours(store, clock.now, 30 * 24)
    # The rule fired again 20 days after closing: recorded by the rules, not applied to the
    # case (a silence held it back, say): the re-check finds it in the data.
    with store.begin() as conn:
        record_findings(conn, [finding(hour=24 * 20)])
    clock.advance(days=31)
    assert cid in tick(store, book)
    case = get(store, book, cid)
    assert (case.state, case.tier, case.recurrence) == ("sensed", "alarm", 1)
    assert case.escalation == "回头看复查未通过"
    assert trail(store, book, cid)[-1][:2] == ("reopen", "system")
    assert ("case.reopened", "b1-hook") in notified(store, cid)


def test_a_recheck_without_data_goes_to_the_brigade_which_decides_on_site(store, book, clock):
    cid = closed_case(store, book, clock)
    act(store, book, cid, "close", SUPERVISOR)
    clock.advance(days=31)
    assert cid in tick(store, book)
    with store.connect() as conn:
        [recheck] = case_rechecks(conn, cid)
    assert (recheck.method, recheck.state) == ("on_site", "scheduled")
    with store.begin() as conn, pytest.raises(WorkflowError) as err:
        book.decide_recheck(conn, recheck.id, ENFORCER_B2, "passed", "无异常")
    assert err.value.code == "out_of_scope"
    with store.begin() as conn:
        done = book.decide_recheck(conn, recheck.id, ENFORCER_B1, "failed", "喷淋层再次堵塞")
    assert (done.state, done.decided_by) == ("failed", "张执法")
    assert get(store, book, cid).state == "sensed"
