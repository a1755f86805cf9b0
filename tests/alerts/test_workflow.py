"""Every workflow path, refused transitions and role violations, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from alerts.schema import cases, outbox, work_orders
from alerts.workflow import Actor, WorkflowError
from tests.alerts.conftest import T0, finding

MONITOR = Actor("王监测", "monitor")
SUPERVISOR = Actor("李监管", "supervisor")
ENFORCER_B1 = Actor("张执法", "enforcer", brigade="B1")
ENFORCER_B2 = Actor("赵执法", "enforcer", brigade="B2")
E1 = Actor("企业环保员", "enterprise", enterprise_id="E1")
E2 = Actor("别家企业", "enterprise", enterprise_id="E2")
ADMIN = Actor("运维", "admin")


def apply(store, book, *findings):
    with store.begin() as conn:
        return book.apply(conn, list(findings))


def act(store, book, case_id, action, actor, **kw):
    with store.begin() as conn:
        return book.act(conn, case_id, action, actor, **kw)


def refused(store, book, case_id, action, actor, code, **kw):
    with pytest.raises(WorkflowError) as err:
        act(store, book, case_id, action, actor, **kw)
    assert err.value.code == code, str(err.value)
    return str(err.value)


def get(store, book, case_id):
    with store.connect() as conn:
        return book.get(conn, case_id)


def trail(store, book, case_id):
    with store.connect() as conn:
        return [(e["action"], e["role"], e["to_state"]) for e in book.events(conn, case_id)]


def notified(store, case_id):
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.event, outbox.c.channel)
            .where(outbox.c.case_id == case_id)
            .order_by(outbox.c.id)
        ).all()
    return [tuple(r) for r in rows]


def test_an_alarm_goes_the_whole_way_and_recurs_within_the_recheck_window(store, book, clock):
    [cid] = apply(store, book, finding()).opened
    case = get(store, book, cid)
    assert (case.state, case.tier, case.brigade) == ("sensed", "alarm", "B1")
    assert ("case.opened", "supervisors-hook") in notified(store, cid)
    act(store, book, cid, "verify", MONITOR, outcome="confirmed", note="数据与视频一致")
    case = act(store, book, cid, "dispatch", SUPERVISOR)
    assert case.state == "dispatched"
    assert case.feedback_due == T0.replace(hour=16) + timedelta(days=3)  # end of Thursday, China
    assert ("case.dispatched", "b1-hook") in notified(store, cid)
    act(store, book, cid, "arrive", ENFORCER_B1)
    refused(
        store,
        book,
        cid,
        "report",
        ENFORCER_B1,
        "case_number_required",
        outcome="violation_confirmed",
    )
    act(
        store,
        book,
        cid,
        "report",
        ENFORCER_B1,
        outcome="violation_confirmed",
        case_number="环罚〔2026〕88号",
        note="现场核实超标",
    )
    case = act(store, book, cid, "close", SUPERVISOR, note="立案处罚")
    assert case.state == "closed" and case.disposition == "violation_confirmed"
    assert case.recheck_until == clock.now + timedelta(days=30)
    assert trail(store, book, cid) == [
        ("sense", "system", "sensed"),
        ("verify", "monitor", "verified"),
        ("dispatch", "supervisor", "dispatched"),
        ("arrive", "enforcer", "on_site"),
        ("report", "enforcer", "reported"),
        ("close", "supervisor", "closed"),
        ("recheck_scheduled", "system", "closed"),  # the active 回头看, on a date
    ]
    with store.connect() as conn:
        [order] = conn.execute(sa.select(work_orders)).all()
    assert (order.state, order.outcome, order.case_number) == (
        "closed",
        "violation_confirmed",
        "环罚〔2026〕88号",
    )
    # 回头看: the same rule fires again on data after closing → the case reopens.
    clock.advance(days=10)
    done = apply(store, book, finding(hour=24 * 10))
    assert done.reopened == [cid] and done.opened == []
    case = get(store, book, cid)
    assert (case.state, case.recurrence, case.tier) == ("sensed", 1, "alarm")
    assert ("case.reopened", "b1-hook") in notified(store, cid)


def test_after_the_recheck_window_a_new_case_opens(store, book, clock):
    [cid] = apply(store, book, finding()).opened
    act(store, book, cid, "verify", MONITOR, outcome="confirmed")
    act(store, book, cid, "dispatch", SUPERVISOR)
    act(store, book, cid, "report", ENFORCER_B1, outcome="not_confirmed")
    act(store, book, cid, "close", SUPERVISOR)
    clock.advance(days=31)
    done = apply(store, book, finding(hour=24 * 31))
    assert done.reopened == [] and len(done.opened) == 1 and done.opened[0] != cid


def test_a_warning_reminds_the_enterprise_which_explains_then_the_centre_verifies(
    store, book, clock
):
    [cid] = apply(store, book, finding("B2", tier="warning", value=12.0, limit=None)).opened
    case = get(store, book, cid)
    assert (case.state, case.explain_due) == ("reminded", clock.now + timedelta(hours=24))
    assert notified(store, cid) == [("case.opened", "mqtt"), ("case.opened", "e1-wecom")]
    refused(store, book, cid, "explain", E1, "note_required")
    act(
        store,
        book,
        cid,
        "explain",
        E1,
        note="分析仪校准，已补标记",
        refs={"marking": "maintenance"},
    )
    refused(store, book, cid, "dispatch", SUPERVISOR, "not_verified")
    refused(store, book, cid, "verify", MONITOR, "note_required", outcome="false_positive")
    case = act(
        store, book, cid, "verify", MONITOR, outcome="false_positive", note="校准期间，说明合理"
    )
    assert (case.state, case.disposition) == ("closed", "false_positive")
    assert case.recheck_until is None  # nothing to re-check after a false positive
    assert [a for a, _, _ in trail(store, book, cid)] == ["sense", "remind", "explain", "verify"]


def test_roles_stay_in_their_lanes(store, book):
    [cid] = apply(store, book, finding()).opened
    refused(store, book, cid, "dispatch", ENFORCER_B1, "role_not_allowed")
    refused(store, book, cid, "verify", ADMIN, "role_not_allowed", outcome="confirmed")
    refused(store, book, cid, "close", MONITOR, "role_not_allowed")
    refused(store, book, cid, "explain", E2, "out_of_scope", note="不是我家的")
    refused(store, book, cid, "resolve", SUPERVISOR, "role_not_allowed")
    act(store, book, cid, "dispatch", SUPERVISOR)  # alarms may be dispatched unverified
    refused(store, book, cid, "arrive", ENFORCER_B2, "out_of_scope")
    refused(store, book, cid, "report", E1, "role_not_allowed", outcome="not_confirmed")


def test_invalid_transitions_are_refused_with_the_reason(store, book):
    [cid] = apply(store, book, finding()).opened
    message = refused(store, book, cid, "arrive", ENFORCER_B1, "invalid_transition")
    assert "sensed" in message and "dispatched" in message
    refused(store, book, cid, "close", SUPERVISOR, "invalid_transition")
    refused(store, book, cid, "fly", SUPERVISOR, "unknown_action")
    refused(store, book, cid, "verify", MONITOR, "bad_outcome", outcome="maybe")
    refused(store, book, 999, "verify", MONITOR, "not_found", outcome="confirmed")
    act(store, book, cid, "verify", MONITOR, outcome="confirmed")
    refused(store, book, cid, "explain", E1, "invalid_transition", note="太晚了")


def test_concurrent_actions_conflict_instead_of_both_succeeding(store, book):
    [cid] = apply(store, book, finding()).opened
    version = get(store, book, cid).version
    act(store, book, cid, "verify", MONITOR, outcome="confirmed", expected_version=version)
    refused(store, book, cid, "comment", SUPERVISOR, "conflict", note="x", expected_version=version)


def test_positive_list_gets_a_non_site_check_first_and_a_failed_check_goes_on_site(store, book):
    f = finding("B2", tier="warning", enterprise="E2", value=12.0, limit=None)
    [cid] = apply(store, book, f).opened
    act(store, book, cid, "verify", MONITOR, outcome="confirmed")
    refused(store, book, cid, "dispatch", SUPERVISOR, "positive_list", kind="on_site")
    act(store, book, cid, "dispatch", SUPERVISOR)
    with store.connect() as conn:
        assert book.current_work_order(conn, cid)["kind"] == "non_site_check"
    case = act(store, book, cid, "report", ENFORCER_B2, outcome="check_failed", note="视频缺失")
    assert (case.state, case.tier) == ("dispatched", "alarm")
    with store.connect() as conn:
        kinds = [r.kind for r in conn.execute(sa.select(work_orders).order_by(work_orders.c.id))]
    assert kinds == ["non_site_check", "on_site"]
    assert [a for a, _, _ in trail(store, book, cid)][-2:] == ["report", "escalate"]
    # An alarm-tier case of a positive-list enterprise goes on site directly.
    [alarm] = apply(store, book, finding(enterprise="E2")).opened
    act(store, book, alarm, "dispatch", SUPERVISOR)
    with store.connect() as conn:
        assert book.current_work_order(conn, alarm)["kind"] == "on_site"


def test_one_open_case_per_source_and_rule_updated_by_further_findings(store, book):
    done = apply(
        store,
        book,
        finding(hour=0, value=150.0),
        finding(hour=1, value=180.0),
        finding(factor="a21002", hour=1, value=120.0),
        finding(hour=2, value=130.0),
    )
    [cid] = done.opened
    assert done.updated == 3
    case = get(store, book, cid)
    assert (case.count, case.value, case.peak_value, case.peak_multiple) == (4, 130.0, 180.0, 0.8)
    assert case.evidence.active == ["a21026", "a21002"]
    # One factor clears: the case stays open while the other still exceeds.
    apply(store, book, finding(state="clear", hour=3))
    assert get(store, book, cid).state == "sensed"
    apply(store, book, finding(state="clear", factor="a21002", hour=3))
    case = get(store, book, cid)
    # An exceedance that has ended is still a violation: the alarm stays to be dispatched.
    assert (case.state, case.condition) == ("sensed", "cleared")
    assert trail(store, book, cid)[-1] == ("condition_cleared", "system", "sensed")
    apply(store, book, finding(hour=9))
    assert get(store, book, cid).count == 5  # the same problem, the same case
    # The store itself refuses a second open case for the same key.
    with store.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.open_key.is_not(None))).first()
    values = dict(row._mapping)
    del values["id"]
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(sa.insert(cases).values(**values))


def test_a_clear_after_dispatch_is_recorded_not_resolved(store, book):
    [cid] = apply(store, book, finding()).opened
    act(store, book, cid, "dispatch", SUPERVISOR)
    apply(store, book, finding(state="clear", hour=1))
    case = get(store, book, cid)
    assert (case.state, case.condition) == ("dispatched", "cleared")
    assert trail(store, book, cid)[-1] == ("condition_cleared", "system", "dispatched")


def test_a_flapping_condition_keeps_its_case_and_does_not_remind_twice(store, book, clock):
    [cid] = apply(store, book, finding("B2", tier="warning", limit=None)).opened
    apply(store, book, finding("B2", state="clear", tier="warning", hour=1, limit=None))
    assert get(store, book, cid).state == "resolved"
    clock.advance(minutes=30)
    done = apply(store, book, finding("B2", tier="warning", hour=2, limit=None))
    assert done.reopened == [cid] and done.opened == []
    case = get(store, book, cid)
    assert (case.state, case.flaps) == ("reminded", 1)
    reminders = [n for n in notified(store, cid) if n == ("case.opened", "e1-wecom")]
    assert len(reminders) == 1
    apply(store, book, finding("B2", state="clear", tier="warning", hour=3, limit=None))
    clock.advance(hours=3)  # the flap window (3 h) has passed: a new problem, a new case
    assert apply(store, book, finding("B2", tier="warning", hour=6, limit=None)).opened != []


def test_three_unexplained_warnings_in_30_days_become_an_alarm(store, book, clock):
    tiers = []
    for day in range(3):
        [cid] = apply(store, book, finding("B2", tier="warning", hour=24 * day, limit=None)).opened
        tiers.append(get(store, book, cid).tier)
        apply(
            store, book, finding("B2", state="clear", tier="warning", hour=24 * day + 1, limit=None)
        )
        clock.advance(days=1)
    assert tiers == ["warning", "warning", "alarm"]
    assert "未说明" in get(store, book, cid).escalation


def test_explained_warnings_do_not_count_toward_escalation(store, book, clock):
    for day in range(3):
        [cid] = apply(store, book, finding("B2", tier="warning", hour=24 * day, limit=None)).opened
        if day < 2:
            act(store, book, cid, "explain", E1, note="停炉检修")
        apply(
            store, book, finding("B2", state="clear", tier="warning", hour=24 * day + 1, limit=None)
        )
        clock.advance(days=1)
    assert get(store, book, cid).tier == "warning"


def test_overdue_explanation_escalates_once_and_overdue_feedback_is_flagged(store, book, clock):
    [warn] = apply(store, book, finding("B2", tier="warning", limit=None)).opened
    [alarm] = apply(store, book, finding()).opened
    act(store, book, alarm, "dispatch", SUPERVISOR)
    clock.advance(hours=23)
    with store.begin() as conn:
        assert book.tick(conn) == []
    clock.advance(hours=2)
    with store.begin() as conn:
        assert book.tick(conn) == [warn]
    case = get(store, book, warn)
    assert (case.tier, case.overdue) == ("alarm", "explanation")
    assert ("case.overdue", "supervisors-hook") in notified(store, warn)
    clock.advance(days=3)  # past Thursday's end
    with store.begin() as conn:
        assert book.tick(conn) == [alarm]
        assert book.tick(conn) == []  # once
    assert get(store, book, alarm).overdue == "feedback"
    assert ("case.overdue", "b1-hook") in notified(store, alarm)


def test_the_tiers_a_clear_resolves_are_configurable(store, clock):
    from dataclasses import replace

    from alerts.cases import CaseBook
    from alerts.notify import Notifier
    from tests.alerts.conftest import POLICY, ROUTES

    policy = replace(POLICY, resolve_on_clear=frozenset({"warning", "alarm"}))
    book = CaseBook(policy, Notifier(ROUTES, policy), clock=clock)
    [alarm] = apply(store, book, finding()).opened
    [warning] = apply(store, book, finding("B2", tier="warning", limit=None)).opened
    apply(store, book, finding(state="clear", hour=1))
    apply(store, book, finding("B2", "clear", "warning", hour=1, limit=None))
    assert get(store, book, alarm).state == "resolved"
    assert get(store, book, warning).state == "resolved"


def test_a_finding_on_the_same_incident_is_evidence_on_the_open_case(store, book):
    """A control device started late within a C1 episode (production on, control off): the
    C2 finding joins the C1 case instead of opening a second case for one incident."""
    c1 = replace(finding("C1", tier="warning", source="K1", factor=None), value=None, limit=None)
    late = replace(
        finding("C2", tier="warning", source="K1", factor=None, value=900.0, limit=300.0),
        multiple=None,
        evidence={"episode_of": "C1", "production_on": 0},
    )
    [cid] = apply(store, book, c1).opened
    done = apply(store, book, late)
    assert (done.opened, done.updated) == ([], 1)
    case = get(store, book, cid)
    assert (case.rule, case.count) == ("C1", 1)
    assert [e["finding"] for e in case.evidence.trail] == [c1.id, late.id]
    # without an open C1 case the late start is a case of its own
    other = replace(late, source_id="K2")
    assert len(apply(store, book, other).opened) == 1


def test_the_systems_own_notes_in_the_record_are_chinese(store, book):
    """The audit trail is shown on Chinese pages: a resolved warning and a cleared alarm
    leave notes an officer reads, not English."""
    import re

    warning = replace(finding(tier="warning", value=90.0), tier="warning")
    [w] = apply(store, book, warning).opened
    apply(store, book, replace(finding(state="clear", hour=1), tier="warning"))
    [a] = apply(store, book, finding(source="DA002", hour=2)).opened
    apply(store, book, finding(state="clear", source="DA002", hour=3))
    with store.connect() as conn:
        notes = [e["note"] for cid in (w, a) for e in book.events(conn, cid) if e["note"]]
    assert notes  # the clears wrote theirs
    assert all(re.search(r"[\u4e00-\u9fff]", n) for n in notes), notes


# -- who handles a case (认领) --------------------------------------------------------------


def test_an_officer_takes_a_case_and_it_is_audited(store, book):
    [cid] = apply(store, book, finding()).opened
    assert get(store, book, cid).assignee is None
    case = act(store, book, cid, "acknowledge", MONITOR)
    assert (case.assignee, case.state) == ("王监测", "sensed")  # the state does not move
    refused(store, book, cid, "acknowledge", MONITOR, "already_assignee")
    case = act(store, book, cid, "acknowledge", SUPERVISOR)  # taken over, and said so
    assert get(store, book, cid).assignee == "李监管"
    with store.connect() as conn:
        taken = [e for e in book.events(conn, cid) if e["action"] == "acknowledge"]
    assert [(e["actor"], e["role"], e["refs"]) for e in taken] == [
        ("王监测", "monitor", {"assignee": "王监测"}),
        ("李监管", "supervisor", {"assignee": "李监管", "from": "王监测"}),
    ]
    assert ("case.changed", "mqtt") in notified(store, cid)


def test_a_dispatch_hands_the_case_to_the_brigade_whose_officer_confirms_receipt(store, book):
    [cid] = apply(store, book, finding()).opened
    act(store, book, cid, "acknowledge", SUPERVISOR)
    refused(store, book, cid, "acknowledge", ENFORCER_B1, "invalid_transition")  # not yet its
    assert act(store, book, cid, "dispatch", SUPERVISOR).assignee is None
    refused(store, book, cid, "acknowledge", ENFORCER_B2, "out_of_scope")
    refused(store, book, cid, "acknowledge", E1, "role_not_allowed")
    case = act(store, book, cid, "acknowledge", ENFORCER_B1)
    assert (case.assignee, case.state) == ("张执法", "dispatched")
    assert act(store, book, cid, "arrive", ENFORCER_B1).assignee == "张执法"
    act(store, book, cid, "report", ENFORCER_B1, outcome="rectification_ordered")
    act(store, book, cid, "close", SUPERVISOR)
    refused(store, book, cid, "acknowledge", SUPERVISOR, "invalid_transition")  # closed
    assert [a for a, _, _ in trail(store, book, cid)] == [
        "sense", "acknowledge", "dispatch", "acknowledge", "arrive", "report", "close",
        "recheck_scheduled",
    ]  # fmt: skip
