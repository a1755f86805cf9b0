"""Decisions and their legal review, on SQLite and PostgreSQL: a fine above the major amount
waits for the legal reviewer (and the case cannot close meanwhile), a 不予处罚 with its ground,
a referral to the police, and what a decision must say."""

from __future__ import annotations

from datetime import date

import pytest

from alerts.decisions import case_decisions
from alerts.workflow import Actor, WorkflowError
from tests.alerts.conftest import finding
from tests.alerts.test_workflow import ENFORCER_B1, MONITOR, SUPERVISOR, act, apply, get, trail

LEGAL = Actor("陈法制", "legal")


def decide(store, book, cid, actor=SUPERVISOR, **kw):
    with store.begin() as conn:
        return book.decide(conn, cid, actor, **kw)


def review(store, book, did, actor=LEGAL, **kw):
    with store.begin() as conn:
        return book.review_decision(conn, did, actor, **kw)


def refused(fn, code):
    with pytest.raises(WorkflowError) as err:
        fn()
    assert err.value.code == code, str(err.value)


def reported_case(store, book) -> int:
    [cid] = apply(store, book, finding()).opened
    act(store, book, cid, "dispatch", SUPERVISOR)
    act(
        store, book, cid, "report", ENFORCER_B1,
        outcome="violation_confirmed", case_number="环罚〔2026〕88号",
    )  # fmt: skip
    return cid


def test_a_fine_above_the_major_amount_waits_for_legal_review(store, book):
    cid = reported_case(store, book)
    d = decide(
        store, book, cid, kind="fine", amount_yuan=200_000,
        document_number="环罚字〔2026〕88号", decided_on=date(2026, 11, 30),
        legal_ground="《大气污染防治法》第九十九条",
    )  # fmt: skip
    assert (d.major, d.state) == (True, "pending_review")
    # Not in effect: the case cannot close, and no second decision meanwhile.
    refused(lambda: act(store, book, cid, "close", SUPERVISOR), "decision_pending")
    refused(
        lambda: decide(store, book, cid, kind="order_correction", document_number="x"),
        "decision_pending",
    )
    refused(
        lambda: review(store, book, d.id, actor=SUPERVISOR, approve=True, note=""),
        "role_not_allowed",
    )
    refused(lambda: review(store, book, d.id, approve=False, note=""), "note_required")
    rejected = review(store, book, d.id, approve=False, note="罚款数额计算依据不足，请补充")
    assert (rejected.state, rejected.reviewed_by) == ("rejected", "陈法制")
    d2 = decide(
        store, book, cid, kind="fine", amount_yuan=150_000, document_number="环罚字〔2026〕89号",
        legal_ground="《大气污染防治法》第九十九条",
    )  # fmt: skip
    approved = review(store, book, d2.id, approve=True, note="")
    assert approved.state == "effective"
    assert act(store, book, cid, "close", SUPERVISOR).state == "closed"
    actions = [a for a, _, _ in trail(store, book, cid)]
    assert actions.count("decide") == 2 and actions.count("legal_review") == 2


def test_a_small_fine_and_no_penalty_take_effect_at_once(store, book):
    cid = reported_case(store, book)
    refused(
        lambda: decide(store, book, cid, kind="no_penalty", document_number="不罚〔2026〕3号"),
        "ground_required",
    )
    d = decide(
        store, book, cid, kind="no_penalty", document_number="不罚〔2026〕3号",
        legal_ground="《行政处罚法》第三十三条第一款：初次违法且危害后果轻微并及时改正",
    )  # fmt: skip
    assert (d.state, d.major, d.type) == ("effective", False, "no_penalty")
    ground = "《行政处罚法》第三十三条第一款：初次违法且危害后果轻微并及时改正"
    with store.connect() as conn:
        (kept,) = case_decisions(conn, cid)
    assert (kept.type, kept.legal_ground, kept.document_number) == (
        "no_penalty",
        ground,
        "不罚〔2026〕3号",
    )  # the ground is kept as given, and on the case's trail
    with store.connect() as conn:
        notes = [e["note"] for e in book.events(conn, cid)]
    assert any(ground in n for n in notes), notes
    [cid2] = apply(store, book, finding(source="DA002")).opened
    small = decide(
        store, book, cid2, kind="fine", amount_yuan=50_000, document_number="环罚〔2026〕9号"
    )
    assert small.state == "effective"


def test_a_referral_to_the_police_is_major(store, book):
    cid = reported_case(store, book)
    d = decide(
        store,
        book,
        cid,
        kind="police_crime",
        document_number="移送〔2026〕1号",
        note="篡改监测数据",
    )
    assert (d.major, d.state) == (True, "pending_review")
    assert review(store, book, d.id, approve=True, note="符合移送条件").state == "effective"
    with store.connect() as conn:
        assert [x.type for x in case_decisions(conn, cid)] == ["police_crime"]
    assert get(store, book, cid).state == "reported"


def test_what_a_decision_must_say_and_who_records_it(store, book):
    cid = reported_case(store, book)
    cases = [
        (MONITOR, {"kind": "order_correction", "document_number": "x"}, "role_not_allowed"),
        (SUPERVISOR, {"kind": "warning_letter", "document_number": "x"}, "bad_type"),
        (SUPERVISOR, {"kind": "fine", "document_number": "x"}, "amount_required"),
        (SUPERVISOR, {"kind": "seizure", "amount_yuan": 5.0, "document_number": "x"}, "bad_amount"),
        (SUPERVISOR, {"kind": "transfer", "document_number": "x"}, "department_required"),
        (SUPERVISOR, {"kind": "order_correction", "document_number": " "}, "document_required"),
    ]
    for actor, kw, code in cases:
        refused(lambda actor=actor, kw=kw: decide(store, book, cid, actor=actor, **kw), code)
