"""The period report's figures equal an independent recomputation from the rows themselves, on
a seeded fleet of six enterprises (two regions, two brigades that do not follow the regions,
three supervision classes, a positive-list member), on SQLite and PostgreSQL: kept days with
silent ones among them, exceedance findings inside and around the period, risk ratings and
positive-list changes before, in and after it, and a 双随机 draw whose inspections are reported
inside and after it. The alert store's figures (``alerts.statistics``) have their own such test
(tests/alerts/test_statistics.py); here they are checked to be the report's."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import insert, select

from alerts.cases import CaseBook
from alerts.notify import Notifier
from alerts.schema import inspection_draws, positive_list_changes, risk_ratings
from alerts.statistics import TOTAL, Figures, period_statistics
from alerts.workflow import Actor
from ingest.china_time import CHINA_TZ
from nonsite.alert_wiring import build_alert_policy, build_routes
from nonsite.config.load import parse_config
from nonsite.inspection_draws import make_draw
from nonsite.periods import bounds
from nonsite.report.figures import UNRATED, group_of, period_report
from rules.findings import Finding
from rules.history_store import Partitions
from rules.markings import STOPPED_MARK
from rules.store import day_values, declare_marking, record_findings
from tests.alerts.conftest import Clock

ENTERPRISES = [  # id, region, brigade, class, on the positive list
    ("E1", "滨江区", "B1", "key", False),
    ("E2", "滨江区", "B1", "key", False),
    ("E3", "滨江区", "B2", "special", False),
    ("E4", "城东区", "B2", "general", False),
    ("E5", "城东区", "B2", "general", True),
    ("E6", "城东区", "B1", "general", False),
]
NOW = datetime(2026, 12, 20, 10, 0, tzinfo=CHINA_TZ)
STOPPED_DAYS = [date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)]


def fleet_config():
    doc = {
        "brigades": [
            {"id": "B1", "name": "滨江执法大队", "inspectors": ["王一", "李二", "张三"]},
            {"id": "B2", "name": "城东执法大队", "inspectors": ["陈五", "周六"]},
        ],
        "enterprises": [
            {
                "id": eid,
                "name": f"企业{eid}",
                "region": region,
                "brigade": brigade,
                "supervision_class": cls,
                "positive_list": member,
                "outlets": [
                    {
                        "id": "DA001",
                        "kind": "gas",
                        "mn": f"MN{eid}",
                        "pw": "1",
                        "preset": "thermal_power_coal_boiler",
                    }
                ],
            }
            for eid, region, brigade, cls, member in ENTERPRISES
        ],
    }
    return parse_config(doc, "fleet.toml", env={})


def china_day_start(d: date) -> int:
    return int(datetime.combine(d, time(), CHINA_TZ).timestamp())


class Seeded:
    """What the test put in the database, kept for the recomputation."""

    def __init__(self) -> None:
        self.days: dict[tuple[str, str, int], tuple[int, int, int, int, int]] = {}
        self.findings: list[Finding] = []
        self.ratings: list[tuple[str, date, str]] = []
        self.changes: list[dict] = []
        self.reported: dict[str, dict[str, datetime]] = {}  # period → enterprise → reported at


def seed_fleet(engine, config, rules, rng: random.Random) -> Seeded:
    s = Seeded()
    rows = []
    first, last = date(2026, 9, 28), date(2026, 12, 3)  # around the fourth quarter
    day = first
    while day <= last:
        for e in config.enterprises:
            for factor in rules.params[(e.id, "DA001")].factors:
                if rng.random() < 0.15 or (e.id == "E6" and day in STOPPED_DAYS):
                    continue  # silent all day: due in full (unless declared stopped)
                expected = 144
                received = rng.randint(0, 144)
                valid = rng.randint(0, received)
                due = rng.choice([24, 24, 20])
                valid_hours = rng.randint(0, 24)  # may exceed due: counted up to it
                start = china_day_start(day)
                s.days[(e.id, factor, start)] = (expected, received, valid, due, valid_hours)
                rows.append({
                    "enterprise_id": e.id, "outlet_id": "DA001", "factor": factor,
                    "start": start, "value": 10.0, "converted": 10.0, "valid_hours": valid_hours,
                    "converted_hours": valid_hours, "required_hours": 20, "flow_weighted": False,
                    "received": received, "valid_records": valid, "expected": expected,
                    "due_hours": due, "interval_s": 600,
                })  # fmt: skip
        day += timedelta(days=1)
    with engine.begin() as conn:
        Partitions().ensure(conn, day_values, [r["start"] for r in rows])
        conn.execute(insert(day_values), rows)
        declare_marking(  # E6 stopped three days, declared online: not due then
            conn, enterprise_id="E6", outlet_id="DA001", type=STOPPED_MARK,
            start=datetime.combine(STOPPED_DAYS[0], time(), CHINA_TZ),
            end=datetime.combine(STOPPED_DAYS[-1] + timedelta(days=1), time(), CHINA_TZ),
            factor=None, reason="停产检修", declared_by="E6 环保专员",
        )  # fmt: skip
    # Findings from the quarter's edges: fired and cleared, A3 by tier, daily, other rules.
    base = int(datetime(2026, 9, 25, tzinfo=CHINA_TZ).timestamp())
    for n in range(900):
        rule = rng.choice(["A3", "A3", "A3", "A4", "A5-1", "B2", "C1"])
        state = rng.choice(["fire", "fire", "clear"])
        start = base + rng.randint(0, 75 * 24) * 3600
        e = rng.choice(ENTERPRISES)[0]
        s.findings.append(
            Finding(
                rule=rule,
                state=state,
                enterprise_id=e,
                source_id="DA001",
                factor=rng.choice(["a21026", "a21002"]),
                window_start=start,
                window_end=start + 3600,
                tier=rng.choice(["alarm", "warning"]),
                value=150.0 if state == "fire" else None,
                limit=100.0,
                unit="mg/m³",
                multiple=0.5 if state == "fire" else None,
                params_id=f"{e}/DA001/{n}",
                params_version="v1",
            )
        )
    s.findings = list({f.id: f for f in s.findings}.values())  # the same finding drawn twice
    with engine.begin() as conn:
        assert len(record_findings(conn, s.findings)) == len(s.findings)
    # Ratings on some days from September to December (one per enterprise and day).
    for eid, *_ in ENTERPRISES:
        days = sorted(rng.sample(range(100), 12))
        for offset in days:
            d = date(2026, 9, 1) + timedelta(days=offset)
            s.ratings.append((eid, d, rng.choice(["green", "yellow", "red"])))
    with engine.begin() as conn:
        conn.execute(insert(risk_ratings), [
            {"enterprise_id": e, "day": d, "score": 1.0, "color": c,
             "computed_at": datetime.combine(d, time(3), CHINA_TZ), "trigger": "daily",
             "rating": json.dumps({"enterprise_id": e, "color": c})}
            for e, d, c in s.ratings
        ])  # fmt: skip
    # Two draws (before the list's changes: their library is the configuration's), a month's and the quarter's; some inspections reported in November, some in
    # December, some never.
    clock = Clock(datetime(2026, 11, 2, 9, tzinfo=CHINA_TZ).astimezone(UTC))
    policy = build_alert_policy(config)
    book = CaseBook(policy, Notifier(build_routes(config), policy), clock=clock)
    for period, seed in (("2026-11", "2026年11月 公开种子"), ("2026Q4", "2026年第四季度")):
        doc = make_draw(engine, config, book, period, seed, "科长", clock.now)
        s.reported[period] = {}
        for n, (eid, case_id) in enumerate(sorted(doc["cases"].items())):
            when = ("november", "december", "never")[n % 3]
            if when == "never":
                continue
            clock.now = (
                datetime(2026, 11, rng.randint(3, 29), 15, tzinfo=CHINA_TZ)
                if when == "november"
                else datetime(2026, 12, rng.randint(1, 30), 15, tzinfo=CHINA_TZ)
            ).astimezone(UTC)
            brigade = next(b for e, _r, b, _c, _m in ENTERPRISES if e == eid)
            enforcer = Actor("执法", "enforcer", brigade=brigade)
            with engine.begin() as conn:
                book.act(conn, case_id, "arrive", enforcer)
                book.act(conn, case_id, "report", enforcer, outcome="not_confirmed")
            s.reported[period][eid] = clock.now
    # Positive-list changes: approved, rejected and pending, decided before, in and after.
    for n in range(30):
        decided = datetime(2026, 9, 15, tzinfo=CHINA_TZ) + timedelta(hours=rng.randint(0, 2400))
        state = rng.choice(["approved", "approved", "rejected", "proposed"])
        s.changes.append({
            "enterprise_id": rng.choice(ENTERPRISES)[0], "change": rng.choice(["enter", "exit"]),
            "reason": f"理由{n}", "criteria": "{}", "proposed_by": "system",
            "proposed_at": decided - timedelta(days=1), "state": state,
            "decided_by": None if state == "proposed" else "科长",
            "decided_at": None if state == "proposed" else decided, "note": "",
        })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(positive_list_changes), s.changes)
    return s


def recompute_transmission(config, rules, s: Seeded, since, until, groups):
    out = {g: [0, 0, 0, 0, 0] for g in [*set(groups.values()), TOTAL]}
    day = since.date()
    while day < until.date():
        start = china_day_start(day)
        for e in config.enterprises:
            for factor in rules.params[(e.id, "DA001")].factors:
                row = s.days.get((e.id, factor, start))
                if row is None and e.id == "E6" and day in STOPPED_DAYS:
                    continue  # declared stopped: nothing due
                if row is None:
                    counts = (144, 0, 0, 24, 0)  # silent: due in full at its 10 minutes
                else:
                    expected, received, valid, due, valid_hours = row
                    counts = (expected, received, valid, due, min(valid_hours, due))
                for g in (groups[e.id], TOTAL):
                    out[g] = [a + b for a, b in zip(out[g], counts, strict=True)]
        day += timedelta(days=1)
    return out


def recompute_top(s: Seeded, since, until, names, groups):
    counts: dict[str, list[int]] = {}
    for f in s.findings:
        at = datetime.fromtimestamp(f.window_start, UTC)
        if f.state != "fire" or not since <= at < until:
            continue
        c = counts.setdefault(f.enterprise_id, [0, 0, 0])
        if f.rule == "A3":
            c[0 if f.tier == "alarm" else 1] += 1
        elif f.rule in ("A4", "A5-1"):
            c[2] += 1
    ranked = [(e, names[e], groups[e], *c) for e, c in counts.items() if c[0] or c[2]]
    ranked.sort(key=lambda r: (-r[3], -r[5], -r[4], r[0]))
    return ranked[:10]


def colour_before(s: Seeded, eid: str, day: date) -> str:
    earlier = [(d, c) for e, d, c in s.ratings if e == eid and d < day]
    return max(earlier)[1] if earlier else UNRATED


@pytest.mark.parametrize(
    ("period", "by"), [("2026-11", "region"), ("2026-11", "brigade"), ("2026Q4", "region")]
)
def test_each_report_figure_equals_its_recomputation_from_the_rows(fleet, period, by):
    engine, config, rules, s = fleet
    since, until = bounds(period)
    report = period_report(engine, config, period, by, NOW)
    groups = group_of(config, by)
    names = {e.id: e.name for e in config.enterprises}
    expected_groups = sorted(set(groups.values()))
    assert report.groups == [*expected_groups, TOTAL]
    assert len(expected_groups) == 2

    with engine.connect() as conn:
        statistics = period_statistics(conn, since, until, groups)
    assert report.statistics == {g: statistics.get(g, Figures()) for g in report.groups}
    assert report.statistics[TOTAL].on_site_checks > 0

    transmission = recompute_transmission(config, rules, s, since, until, groups)
    for g in report.groups:
        c = report.transmission[g]
        assert [c.expected, c.received, c.valid, c.due_hours, c.valid_hours] == transmission[g], g
    assert report.transmission[TOTAL].expected > report.transmission[expected_groups[0]].expected

    top = recompute_top(s, since, until, names, groups)
    assert len(top) >= 5
    assert [
        (x.enterprise_id, x.name, x.group, x.alarm_hours, x.warning_hours, x.exceeded_days)
        for x in report.top
    ] == top

    moves, first = [], 0
    colours = {g: {"red": 0, "yellow": 0, "green": 0, UNRATED: 0} for g in report.groups}
    for eid, *_ in ENTERPRISES:
        was = colour_before(s, eid, since.date())
        now_is = colour_before(s, eid, until.date())
        colours[groups[eid]][now_is] += 1
        colours[TOTAL][now_is] += 1
        if was == UNRATED and now_is != UNRATED:
            first += 1
        elif was != now_is:
            moves.append((eid, was, now_is))
    assert report.colors == colours
    assert [(m.enterprise_id, m.before, m.after) for m in report.moves] == moves
    assert report.first_rated == first
    assert moves, "the seed moves some enterprise's colour"

    approved = sorted(
        (c for c in s.changes if c["state"] == "approved" and since <= c["decided_at"] < until),
        key=lambda c: (c["decided_at"], c["enterprise_id"]),
    )
    assert approved
    assert [(c.enterprise_id, c.change, c.reason) for c in report.list_changes] == [
        (c["enterprise_id"], c["change"], c["reason"]) for c in approved
    ]
    member = {eid: m for eid, _r, _b, _c, m in ENTERPRISES}
    for c in sorted(
        (c for c in s.changes if c["state"] == "approved" and c["decided_at"] < until),
        key=lambda c: c["decided_at"],
    ):
        member[c["enterprise_id"]] = c["change"] == "enter"
    assert report.members_at_end == sum(member.values())

    inside = [p for p in s.reported if bounds(p)[0] >= since and bounds(p)[1] <= until]
    assert [d.period for d in report.draws] == sorted(inside)
    with engine.connect() as conn:
        docs = dict(conn.execute(select(inspection_draws.c.period, inspection_draws.c.draw)).all())
    classes = {eid: cls for eid, _r, _b, cls, _m in ENTERPRISES}
    for d in report.draws:
        doc = json.loads(docs[d.period])
        assert d.seed == doc["seed"]
        assert [c.supervision_class for c in d.classes] == ["key", "special", "general"]
        assert set(doc["quotas"]) == {"key", "special", "general"}
        for c in d.classes:
            assert c.quota == doc["quotas"][c.supervision_class]["quota"]
            drawn = [x["enterprise_id"] for x in doc["drawn"]
                     if classes[x["enterprise_id"]] == c.supervision_class]  # fmt: skip
            assert c.drawn == len(drawn)
            reported = s.reported[d.period]
            assert c.inspected == sum(1 for e in drawn if e in reported and reported[e] < until)
    if period == "2026-11":  # the seed reports some in December: drawn, not yet inspected
        (month,) = report.draws
        assert 0 < sum(c.inspected for c in month.classes) < sum(c.drawn for c in month.classes)
