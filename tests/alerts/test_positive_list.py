"""The positive list (正面清单), managed, on SQLite and PostgreSQL: a member's confirmed violation
proposes its exit at once; a supervisor's approval takes it off the list (its next case goes
on site); proposals are decided once, by a supervisor, a rejection with its reason."""

from __future__ import annotations

import pytest

from alerts.positive_list import changes, decide, is_member, members, pending, propose
from alerts.workflow import SYSTEM, Actor, WorkflowError
from tests.alerts.conftest import finding
from tests.alerts.test_workflow import ENFORCER_B1, SUPERVISOR, act, apply, get

ENFORCER_B2 = Actor("城东执法", "enforcer", brigade="B2")
CONFIGURED = {"E1": False, "E2": True}  # tests/alerts/conftest.py's POLICY


def confirm(store, book, enterprise: str, enforcer: Actor) -> int:
    [cid] = apply(store, book, finding(enterprise=enterprise)).opened
    kind = "non_site_check" if enterprise == "E2" else "on_site"
    act(store, book, cid, "dispatch", SUPERVISOR, kind=kind)
    act(
        store, book, cid, "report", enforcer,
        outcome="violation_confirmed", case_number=f"环罚〔2026〕{cid}号",
    )  # fmt: skip
    return cid


def test_a_members_confirmed_violation_proposes_its_exit_at_once(store, book, clock):
    [first] = apply(store, book, finding("B2", enterprise="E2", tier="warning")).opened
    assert get(store, book, first).positive_list  # a member's case: off-site first
    cid = confirm(store, book, "E2", ENFORCER_B2)
    with store.connect() as conn:
        [proposal] = pending(conn)
        assert is_member(conn, "E2", True)  # not until a supervisor approves
    assert (proposal.enterprise_id, proposal.change, proposal.proposed_by) == (
        "E2",
        "exit",
        SYSTEM.name,
    )
    assert f"案件 #{cid} 违法事实成立" in proposal.reason
    # A penalty decided on the same case while the exit waits proposes nothing more.
    with store.begin() as conn:
        book.decide(
            conn, cid, SUPERVISOR, kind="fine", amount_yuan=20_000,
            document_number="环罚字〔2026〕7号", legal_ground="《水污染防治法》第八十三条",
        )  # fmt: skip
    with store.connect() as conn:
        assert len(pending(conn)) == 1
    clock.advance(hours=1)
    with store.begin() as conn:
        done = decide(conn, proposal.id, SUPERVISOR, True, "", clock.now)
    assert (done.state, done.decided_by) == ("approved", SUPERVISOR.name)
    with store.connect() as conn:
        assert not is_member(conn, "E2", True)
        assert members(conn, CONFIGURED) == {"E1": False, "E2": False}
        assert [c.state for c in changes(conn)] == ["approved"]
    [later] = apply(store, book, finding("A4", enterprise="E2", tier="warning")).opened
    assert not get(store, book, later).positive_list  # off the list: no off-site-first path


def test_a_non_members_violation_and_a_penalty_in_effect(store, book):
    confirm(store, book, "E1", ENFORCER_B1)
    with store.connect() as conn:
        assert pending(conn) == []  # E1 is not on the list
    [cid] = apply(store, book, finding("A4", enterprise="E2")).opened
    with store.begin() as conn:  # a penalty in effect is a confirmed violation too
        book.decide(
            conn, cid, SUPERVISOR, kind="order_correction", document_number="责改〔2026〕3号"
        )
    with store.connect() as conn:
        [proposal] = pending(conn)
    assert proposal.change == "exit" and "责令改正" in proposal.reason


def test_proposals_are_decided_once_by_a_supervisor(store, book, clock):
    with store.begin() as conn:
        entry = propose(
            conn, "E1", "enter", "连续6个月绿码，无违法记录", SUPERVISOR, clock.now, member=False
        )
        assert entry is not None
        assert propose(conn, "E1", "enter", "再次", SUPERVISOR, clock.now, member=False) is None
        assert (
            propose(conn, "E1", "exit", "不在清单上", SUPERVISOR, clock.now, member=False) is None
        )
    for actor, approve, note, code in [
        (ENFORCER_B1, True, "", "role_not_allowed"),
        (SUPERVISOR, False, " ", "note_required"),
    ]:
        with pytest.raises(WorkflowError) as err, store.begin() as conn:
            decide(conn, entry.id, actor, approve, note, clock.now)
        assert err.value.code == code
    with store.begin() as conn:
        rejected = decide(conn, entry.id, SUPERVISOR, False, "信访投诉未办结", clock.now)
    assert (rejected.state, rejected.note) == ("rejected", "信访投诉未办结")
    with pytest.raises(WorkflowError) as err, store.begin() as conn:
        decide(conn, entry.id, SUPERVISOR, True, "", clock.now)
    assert err.value.code == "invalid_transition"
    with store.connect() as conn:
        assert not is_member(conn, "E1", False)
