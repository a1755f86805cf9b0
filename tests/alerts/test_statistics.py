"""The period's statistics on SQLite and PostgreSQL equal an independent recomputation from the
rows themselves, on a seeded fleet's month of cases worked through the whole workflow (some
actions refused on the way, as in life), per region and in total."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.schema import case_events, cases, rectifications, work_orders
from alerts.statistics import TOTAL, family, period_statistics
from alerts.workflow import Actor, WorkflowError
from tests.alerts.conftest import T0, finding
from tests.alerts.test_workflow import ENFORCER_B1, MONITOR, SUPERVISOR

ENFORCER_B2 = Actor("城东执法", "enforcer", brigade="B2")
ENTERPRISE = {"E1": Actor("华能", "enterprise", enterprise_id="E1"),
              "E2": Actor("城东", "enterprise", enterprise_id="E2")}  # fmt: skip
REGION = {"E1": "滨江区", "E2": "城东区"}
RULES = ["A3", "A4", "B2", "B8-8", "C1", "B7"]


def seeded_month(store, book, clock, seed: int) -> None:
    rng = random.Random(seed)
    opened: list[tuple[int, str]] = []
    for n in range(60):
        clock.advance(hours=rng.randint(1, 12))
        enterprise = rng.choice(["E1", "E2"])
        f = finding(
            rng.choice(RULES), tier=rng.choice(["alarm", "warning"]), enterprise=enterprise,
            source=f"DA{n:03d}", hour=n,
        )  # fmt: skip
        with store.begin() as conn:
            opened += [(c, enterprise) for c in book.apply(conn, [f]).opened]
        for cid, ent in rng.sample(opened, min(4, len(opened))):
            brigade = ENFORCER_B1 if ent == "E1" else ENFORCER_B2
            step = rng.choice(["explain", "verify", "dispatch", "report", "close", "rectify"])
            try:
                with store.begin() as conn:
                    if step == "explain":
                        book.act(conn, cid, "explain", ENTERPRISE[ent], note="设备检修")
                    elif step == "verify":
                        outcome = rng.choice(["confirmed", "false_positive"])
                        book.act(conn, cid, "verify", MONITOR, outcome=outcome, note="核实")
                    elif step == "dispatch":
                        kind = "non_site_check" if ent == "E2" else "on_site"
                        book.act(conn, cid, "dispatch", SUPERVISOR, kind=kind)
                    elif step == "report":
                        outcome = rng.choice(["violation_confirmed", "not_confirmed"])
                        book.act(conn, cid, "report", brigade, outcome=outcome,
                                 case_number=f"环罚〔2026〕{cid}号")  # fmt: skip
                    elif step == "close":
                        book.act(conn, cid, "close", SUPERVISOR, note="办结")
                    else:
                        book.rectify(conn, cid, "order", SUPERVISOR, requirement="整改",
                                     working_days=5, note="", method=None, outcome=None,
                                     days=None)  # fmt: skip
            except WorkflowError:
                pass  # refused in this state: the fleet goes on
        with store.begin() as conn:
            book.tick(conn)  # deadlines: overdue explanations escalate


def recomputed(store, since, until) -> dict[str, dict[str, object]]:
    """The figures from the rows, by plain loops (not the module's queries)."""
    with store.connect() as conn:
        all_cases = {r.id: r for r in conn.execute(select(cases))}
        events = list(conn.execute(select(case_events)))
        orders = list(conn.execute(select(work_orders)))
        rounds = list(conn.execute(select(rectifications)))
    out: dict[str, dict[str, object]] = {}

    def bump(enterprise: str, key: str, by: float = 1) -> None:
        for group in (REGION[enterprise], TOTAL):
            g = out.setdefault(group, {})
            g[key] = g.get(key, 0) + by  # type: ignore[operator]

    def inside(at) -> bool:
        return at is not None and since <= at < until

    due: dict[int, datetime] = {}  # each case's reminder's deadline, as the trail goes
    for e in sorted(events, key=lambda e: e.id):
        c = all_cases[e.case_id]
        if e.action == "remind":
            due[e.case_id] = datetime.fromisoformat(json.loads(e.refs)["due"])
        if inside(e.at) and e.action == "remind":
            bump(c.enterprise_id, "reminders")
        if inside(e.at) and e.action == "explain":
            bump(c.enterprise_id, "explanations")
            if e.case_id in due and e.at <= due[e.case_id]:
                bump(c.enterprise_id, "explained_on_time")
        if inside(e.at) and e.action == "reopen":
            bump(c.enterprise_id, "recurrences")
    for o in orders:
        c = all_cases[o.case_id]
        if inside(o.created_at):
            bump(
                c.enterprise_id,
                "non_site_checks" if o.kind == "non_site_check" else "on_site_checks",
            )
        if o.outcome == "violation_confirmed" and inside(o.reported_at):
            bump(c.enterprise_id, "violations_confirmed")
    for c in all_cases.values():
        if inside(c.opened_at):
            bump(c.enterprise_id, "opened")
            bump(c.enterprise_id, f"family:{family(c.rule)}")
            bump(c.enterprise_id, f"tier:{c.tier}")
            if c.state == "closed" and c.closed_at is not None and c.closed_at < until:
                bump(c.enterprise_id, "opened_and_closed")
                bump(c.enterprise_id, "hours", (c.closed_at - c.opened_at).total_seconds() / 3600)
        if c.state == "closed" and inside(c.closed_at):
            bump(c.enterprise_id, "closed")
            bump(c.enterprise_id, f"outcome:{c.disposition or 'closed'}")
    for r in rounds:
        c = all_cases[r.case_id]
        if inside(r.ordered_at):
            bump(c.enterprise_id, "rectifications_ordered")
        if r.state == "closed" and inside(r.closed_at):
            bump(c.enterprise_id, "struck_off")
    return out


@pytest.mark.parametrize("seed", [7, 2026])
def test_each_figure_equals_its_recomputation_from_the_rows(store, book, clock, seed):
    seeded_month(store, book, clock, seed)
    since, until = T0 + timedelta(days=2), T0 + timedelta(days=20)
    with store.connect() as conn:
        figures = period_statistics(conn, since, until, REGION)
    expected = recomputed(store, since, until)
    assert set(figures) == set(expected) == {"滨江区", "城东区", TOTAL}
    for group, f in figures.items():
        e = expected[group]
        got = {
            "reminders": f.reminders, "explanations": f.explanations,
            "explained_on_time": f.explained_on_time, "recurrences": f.recurrences,
            "non_site_checks": f.non_site_checks, "on_site_checks": f.on_site_checks,
            "violations_confirmed": f.violations_confirmed, "opened": f.opened,
            "opened_and_closed": f.opened_and_closed, "closed": f.closed,
            "rectifications_ordered": f.rectifications_ordered, "struck_off": f.struck_off,
            **{f"family:{k}": v for k, v in f.by_family.items()},
            **{f"tier:{k}": v for k, v in f.by_tier.items()},
            **{f"outcome:{k}": v for k, v in f.by_outcome.items()},
        }  # fmt: skip
        assert {k: v for k, v in got.items() if v} == {
            k: v for k, v in e.items() if k != "hours" and v
        }, group
        assert f.hours_to_close == pytest.approx(e.get("hours", 0))
    total = figures[TOTAL]
    assert total.opened > 20 and total.reminders > 0 and total.closed > 0  # the month was worked
    assert total.closure_rate == pytest.approx(total.opened_and_closed / total.opened)


def test_an_explanation_is_measured_against_its_own_reminders_deadline(store, book, clock):
    """The deadline an explanation is measured against is its reminder's, kept on the trail:
    a recurrence (回头看) clears the case's deadline, and its next reminder sets another, which
    says nothing of the first explanation."""
    since = T0
    with store.begin() as conn:
        (cid,) = book.apply(conn, [finding("A3", tier="warning", hour=0)]).opened
    clock.advance(hours=30)  # past the first reminder's 24 hours
    with store.begin() as conn:
        book.act(conn, cid, "explain", ENTERPRISE["E1"], note="迟到的说明")
        book.act(conn, cid, "verify", MONITOR, outcome="confirmed", note="核实")
        book.act(conn, cid, "dispatch", SUPERVISOR, kind="on_site")
        book.act(conn, cid, "arrive", ENFORCER_B1)
        book.act(conn, cid, "report", ENFORCER_B1, outcome="not_confirmed")
        book.act(conn, cid, "close", SUPERVISOR, note="办结")
    clock.advance(days=3)
    with store.begin() as conn:
        assert book.apply(conn, [finding("A3", tier="warning", hour=110)]).reopened == [cid]
        book.act(conn, cid, "remind", MONITOR, note="请说明")
    clock.advance(hours=2)  # in time for the second
    with store.begin() as conn:
        book.act(conn, cid, "explain", ENTERPRISE["E1"], note="设备检修")
        figures = period_statistics(conn, since, clock.now + timedelta(hours=1), REGION)
    assert (figures[TOTAL].reminders, figures[TOTAL].explanations) == (2, 2)
    assert figures[TOTAL].explained_on_time == 1  # the first late, the second in time
