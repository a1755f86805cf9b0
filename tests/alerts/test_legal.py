"""The legal-basis table (rule A9): every rule decided, only [F] sources quoted, nothing the
catalogue does not support in any text, and texts that still fit a phone notification."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from alerts.case import Case, Evidence
from alerts.legal import LEGAL, NOT_CITED, SOURCES, legal_lines
from alerts.templates import render
from rules.findings import RULES, Finding
from tests.alerts.conftest import POLICY

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EVIDENCE = {  # what findings carry that the table reads: orders (C5, C6), marked hours (A5-1)
    "order": "临环应急〔2026〕7号",
    "order_start": int(T0.timestamp()),
    "order_end": int(T0.timestamp()) + 86400,
    "marking_caps": [
        {"types": "startup+shutdown+fault+accident", "marked_hours": 12.0, "cap_hours": 60.0},
        {"types": "oven_drying+cooling", "marked_hours": 0.0, "cap_hours": 700.0},
    ],
}
STATES = ("sensed", "reminded", "dispatched", "closed")
EVENTS = ("case.opened", "case.dispatched", "case.overdue", "case.changed")


def case_of(rule, tier="alarm", evidence=None, state="sensed", findings=None) -> Case:
    ev = Evidence()
    start = int(T0.timestamp())
    for f in findings or [
        Finding(
            rule, "fire", "E1", "DA001", "a21026", start, start + 3600, tier, 150.0, 100.0,
            "mg/m³", 0.5, "E1/DA001", "v1", dict(evidence or {}),
        )
    ]:  # fmt: skip
        ev.add(f, 20)
    return Case(
        id=1, enterprise_id="E1", source_id="DA001", rule=rule, factor="a21026", tier=tier,
        state=state, condition="active", positive_list=False, opened_at=T0, first_seen=T0,
        last_seen=T0, count=1, value=150.0, peak_value=150.0, peak_multiple=0.5,
        limit_value=100.0, unit="mg/m³", evidence=ev, recurrence=0, flaps=0, escalation=None,
        explain_due=None, feedback_due=None, overdue=None, brigade="B1", assignee=None, disposition=None,
        case_number=None, closed_at=None, recheck_until=None, updated_at=T0, version=1,
    )  # fmt: skip


def every_text():
    """Every rule's text at both tiers, in every state, for every event, with the evidence
    that makes a basis apply."""
    for rule in [*RULES, "B11"]:
        for tier in ("warning", "alarm"):
            for state in STATES:
                for event in EVENTS:
                    case = case_of(rule, tier, EVIDENCE, state)
                    yield rule, tier, state, render(case, event, POLICY)[1]


def test_every_rule_is_decided_one_way_or_the_other():
    undecided = [r for r in RULES if r not in LEGAL]
    assert not undecided, f"decide the legal basis of {undecided} in alerts/legal.py"
    for rule, decision in LEGAL.items():
        assert bool(decision.bases) != bool(decision.none), rule  # bases, or why none


def test_only_sources_the_catalogue_marks_found_are_quoted():
    assert {s.confidence for s in SOURCES.values()} == {"F"}
    for rule, decision in LEGAL.items():
        for basis in decision.bases:
            assert set(basis.sources) <= set(SOURCES), rule
            if basis.gate == "order":  # the order in the case's evidence, not a statute
                assert (basis.sources, basis.confidence) == ((), "order"), rule
                assert "{order}" in basis.cites
            else:
                assert basis.sources and basis.confidence == "F", rule
    # what is left out is left out for a reason
    for key, left_out in NOT_CITED.items():
        assert left_out.reason and left_out.marks, key


def test_no_text_quotes_what_the_catalogue_does_not_support():
    marks = {m: key for key, left_out in NOT_CITED.items() for m in left_out.marks}
    for rule, tier, state, text in every_text():
        for mark, key in marks.items():
            assert mark not in text, (rule, tier, state, key)
        if not LEGAL[rule].bases:
            for word in ("依据", "罚则", "判定口径", "企业应", "《", "条例"):
                assert word not in text, (rule, tier, state, word)


def test_which_rules_quote_what():
    quoting = {
        (rule, tier)
        for rule, tier, state, text in every_text()
        if state == "sensed" and "- 依据：" in text
    }
    assert quoting == {
        ("A3", "alarm"),
        ("A4", "alarm"),
        ("A5-1", "alarm"),
        ("A5-2", "alarm"),
        ("C5", "warning"),  # the order binds at any tier (C5 fires at alarm tier)
        ("C5", "alarm"),
        ("C6", "warning"),
        ("C6", "alarm"),
    }


@pytest.mark.parametrize("rule", ["A3", "A4", "A5-1", "A5-2"])
def test_a_warning_case_quotes_nothing_until_a_finding_fires_at_alarm_tier(rule):
    warning = case_of(rule, "warning", EVIDENCE)
    assert legal_lines(replace(warning, tier="alarm"), to_enterprise=False) == []  # escalated
    start = int(T0.timestamp())
    both = [
        Finding(rule, "fire", "E1", "DA001", "a21026", start, start + 3600, "warning", 90.0, 80.0),
        Finding(rule, "fire", "E1", "DA001", "a21026", start + 3600, start + 7200, "alarm", 120.0),
        Finding(rule, "clear", "E1", "DA001", "a21026", start + 7200, start + 10800, "alarm"),
    ]
    lines = legal_lines(case_of(rule, findings=both), to_enterprise=False)
    assert lines and lines[0].startswith("- 依据：")


def test_an_order_rule_without_the_orders_reference_quotes_nothing():
    assert legal_lines(case_of("C5", "alarm", {}), to_enterprise=True) == []


def test_the_enterprise_is_asked_while_the_case_is_open_and_told_about_otherwise():
    lines = legal_lines(case_of("A3", state="reminded"), to_enterprise=True)
    assert any(line.startswith("- 请加密监测") for line in lines)
    lines = legal_lines(case_of("A3"), to_enterprise=False)
    assert any(line.startswith("- 企业应加密监测") for line in lines)
    closed = legal_lines(case_of("A3", state="closed"), to_enterprise=True)
    assert closed[0].startswith("- 依据：")
    assert not any(line.startswith(("- 请", "- 企业应")) for line in closed)


def test_texts_stay_short_enough_for_a_phone():
    longest = max(every_text(), key=lambda t: len(t[3]))
    rule, _, _, text = longest
    assert rule == "A5-1"
    assert len(text.encode()) < 4096  # WeCom cuts markdown messages at 4096 bytes
    assert len(text) < 700  # a few screens on a phone, the legal part included
    assert max(len(line) for line in text.splitlines()) < 200
