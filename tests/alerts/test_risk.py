"""The risk rating (环保码): reproducible from its inputs, its explanation sums to its score,
the window lets go of old items, and it says when it would change. Its record on SQLite and
PostgreSQL: a false positive counts nothing, a confirmed violation once per case."""

from __future__ import annotations

import json
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.risk import (
    KIND_NAMES,
    Item,
    RiskInputs,
    RiskWeights,
    dumps,
    rate,
    rating_json,
    rerate,
)
from alerts.risk_record import case_kind, keep, latest, record_items
from alerts.workflow import Actor
from tests.alerts.conftest import T0, finding
from tests.alerts.test_workflow import ENFORCER_B1, MONITOR, SUPERVISOR, act, apply

DAY = date(2026, 11, 30)
W = RiskWeights()
KINDS = [k for k in KIND_NAMES if k not in ("transmission", "class")]


def inputs(*items: Item, rate_: float | None = 0.99, cls: str = "general") -> RiskInputs:
    return RiskInputs("E1", tuple(items), rate_, cls)  # type: ignore[arg-type]


def test_points_follow_the_weights_and_the_colour_the_thresholds():
    items = [Item("exceedance_alarm", f"case:{i}", DAY - timedelta(days=i)) for i in range(3)]
    r = rate(inputs(*items, Item("clue", "clue:1", DAY)), DAY, W)
    assert r.score == 3 * 10 + 3
    assert r.color == "yellow"  # 33: from 20, below 60
    [alarm, clue] = r.contributions
    assert (alarm.kind, alarm.count, alarm.each, alarm.points) == ("exceedance_alarm", 3, 10, 30)
    assert alarm.refs == ("case:2", "case:1", "case:0")
    assert (clue.name, clue.points) == ("投诉举报线索", 3)
    # 27 more points make it red: three alarm exceedances, say.
    assert (r.next_change.rise_in, r.next_change.rise_to) == (27, "red")
    assert rate(inputs(), DAY, W).color == "green"


def test_the_transmission_rate_short_of_its_target_and_the_class_count():
    r = rate(inputs(rate_=0.825, cls="key"), DAY, W)
    by_kind = {c.kind: c for c in r.contributions}
    assert by_kind["transmission"].count == 7.5  # percentage points below 90 %
    assert by_kind["transmission"].points == 7.5
    assert (by_kind["class"].name, by_kind["class"].points) == ("监管类别：重点监管", 10)
    assert r.score == 17.5 and r.color == "green"
    assert rate(inputs(rate_=None), DAY, W).score == 0  # nothing was due: no figure, no points


def test_the_window_lets_go_of_old_items_and_says_when_the_colour_falls():
    old = DAY - timedelta(days=W.window_days - 1)  # the window's first day: still counted
    items = (
        Item("violation", "case:7", old),
        Item("exceedance_alarm", "case:7", old),
        Item("exceedance_warning", "case:9", DAY - timedelta(days=10)),
    )
    r = rate(inputs(*items), DAY, W)
    assert (r.score, r.color) == (43, "yellow")
    assert rate(inputs(*items), DAY + timedelta(days=1), W).score == 3
    change = r.next_change
    assert (change.falls_on, change.falls_to) == (DAY + timedelta(days=1), "green")
    assert change.released == ("case:7", "case:7")
    too_old = rate(inputs(Item("violation", "case:1", old - timedelta(days=1))), DAY, W)
    assert too_old.score == 0
    future = rate(inputs(Item("violation", "case:1", DAY + timedelta(days=1))), DAY, W)
    assert future.score == 0  # a rating of a past day does not see what came after it


item_strategy = st.builds(
    Item,
    st.sampled_from(KINDS),
    st.integers(1, 500).map(lambda n: f"case:{n}"),
    st.integers(-400, 0).map(lambda d: DAY + timedelta(days=d)),
)
weights_strategy = st.builds(
    lambda pts, yellow, gap: RiskWeights(
        yellow_at=yellow, red_at=yellow + gap, points=dict(zip(KINDS, pts, strict=True))
    ),
    st.lists(st.floats(0, 50, allow_nan=False).map(lambda x: round(x, 2)), min_size=len(KINDS),
             max_size=len(KINDS)),
    st.floats(1, 100).map(lambda x: round(x, 1)),
    st.floats(1, 100).map(lambda x: round(x, 1)),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(item_strategy, max_size=40),
    st.one_of(st.none(), st.floats(0, 1)),
    st.sampled_from(["key", "special", "general"]),
    weights_strategy,
)
def test_a_rating_is_its_explanation_and_is_made_again_from_what_it_keeps(
    items, transmission, cls, weights
):
    r = rate(inputs(*items, rate_=transmission, cls=cls), DAY, weights)
    assert round(sum(c.points for c in r.contributions), 2) == r.score
    assert r.color == weights.color(r.score)
    stored = json.loads(dumps(rating_json(r)))  # as the database keeps it
    again = rerate(stored)
    assert rating_json(again) == rating_json(r)
    # Each counted item is named by exactly one line of the explanation.
    named = [ref for c in r.contributions for ref in c.refs]
    counted = [i for i in items if DAY - timedelta(days=weights.window_days - 1) <= i.on <= DAY]
    assert sorted(named) == sorted(i.ref for i in counted if weights.points.get(i.kind))


def test_cases_count_by_rule_family():
    assert case_kind("A3", "alarm") == "exceedance_alarm"
    assert case_kind("A4", "warning") == "exceedance_warning"
    assert case_kind("B8-8", "warning") == "fraud"
    assert case_kind("A7-2", "alarm") == "fraud"
    assert case_kind("C1", "alarm") == "power"
    assert case_kind("B2", "warning") == "data_quality"
    assert case_kind("CLUE", "warning") is None  # its clue counts


def test_the_record_counts_a_false_positive_as_nothing_and_a_violation_once(store, book, clock):
    [exceeded] = apply(store, book, finding()).opened  # A3 alarm on E1
    [mistaken] = apply(store, book, finding("B2", tier="warning", factor="a21002")).opened
    act(store, book, mistaken, "verify", MONITOR, outcome="false_positive", note="标定期间")
    act(store, book, exceeded, "dispatch", SUPERVISOR)
    act(
        store, book, exceeded, "report", ENFORCER_B1,
        outcome="violation_confirmed", case_number="环罚〔2026〕90号",
    )  # fmt: skip
    with store.begin() as conn:
        book.decide(
            conn, exceeded, SUPERVISOR, kind="fine", amount_yuan=50_000,
            document_number="环罚字〔2026〕90号", legal_ground="《大气污染防治法》第九十九条",
        )  # fmt: skip
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
    with store.connect() as conn:
        record = record_items(conn, since, until)
    kinds = sorted((i.kind, i.ref) for i in record["E1"])
    assert kinds == [("exceedance_alarm", f"case:{exceeded}"), ("violation", f"case:{exceeded}")]
    day = T0.date()
    r = rate(RiskInputs("E1", tuple(record["E1"]), None, "general"), day, W)
    assert (r.score, r.color) == (40, "yellow")
    with store.begin() as conn:
        keep(conn, r, T0, "daily")
        keep(conn, r, T0 + timedelta(hours=1), "on_demand")  # the day's again: replaced
    with store.connect() as conn:
        kept = latest(conn)
    assert list(kept) == ["E1"]
    assert kept["E1"]["score"] == 40 and kept["E1"]["color_name"] == "黄码"
    assert rating_json(rerate(kept["E1"])) == rating_json(r)


def test_an_explanation_missed_and_a_failed_rectification_are_on_the_record(store, book, clock):
    [cid] = apply(store, book, finding(tier="warning")).opened
    clock.advance(days=3)  # past the explanation's deadline
    with store.begin() as conn:
        book.tick(conn)
    act(store, book, cid, "dispatch", SUPERVISOR)
    with store.begin() as conn:
        book.rectify(
            conn, cid, "order", SUPERVISOR, requirement="更换脱硫塔喷淋层", working_days=5,
            note="", method=None, outcome=None, days=None,
        )  # fmt: skip
        book.rectify(
            conn, cid, "report", Actor("企业", "enterprise", enterprise_id="E1"),
            requirement="", working_days=None, note="已更换", method=None, outcome=None, days=None,
        )  # fmt: skip
        book.rectify(
            conn, cid, "verify", ENFORCER_B1, requirement="", working_days=None,
            note="喷淋层未更换", method="on_site", outcome="failed", days=None,
        )  # fmt: skip
    with store.connect() as conn:
        record = record_items(conn, T0 - timedelta(days=1), clock.now + timedelta(days=1))
    kinds = sorted(i.kind for i in record["E1"])
    # The clock raised the unexplained warning to an alarm: it counts as one now.
    assert kinds == ["exceedance_alarm", "rectification_failed", "unexplained"]
