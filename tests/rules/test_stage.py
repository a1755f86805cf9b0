"""The rule stage: findings and engine snapshots in the service database (SQLite and
PostgreSQL), the findings new to the store handed on."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from ingest.china_time import CHINA_TZ
from ingest.readings import ReadingBatch
from nonsite.db import make_engine, migrate
from rules.history_store import drop_before, drop_months_before, read_days, read_hours
from rules.stage import RuleStage, restore
from rules.store import list_findings, load_snapshot, minute_detail, save_snapshot, snapshots
from rules.stream import StreamEngine
from rules.timebase import epoch
from tests.rules.factors import O2, SO2
from tests.rules.scenario import T0, gas_outlet, hour_of, tick


@pytest.fixture
def db(engine):
    """A migrated service database (tests/conftest.py)."""
    return engine


def batch(readings):
    return ReadingBatch(0, 0, measurements=readings)


def factory(params=None):
    params = params or gas_outlet()
    return lambda: StreamEngine({("E1", "DA001"): params}, grace_s=600)


def test_findings_are_stored_once_even_when_judged_again(db):
    stage = RuleStage(factory()())
    stage.judge(
        batch(hour_of(SO2, tick(0), 150.0) + hour_of(O2, tick(0), 6.0) + hour_of(O2, tick(1), 6.0))
    )
    with db.begin() as conn:
        handed = stage.commit(conn, 10, ())
    assert [f.rule for f in handed] == ["A3"]  # new to the store: on to the alert stage
    again = RuleStage(factory()())  # e.g. after a restart without a snapshot: the same findings
    again.judge(
        batch(hour_of(SO2, tick(0), 150.0) + hour_of(O2, tick(0), 6.0) + hour_of(O2, tick(1), 6.0))
    )
    with db.begin() as conn:
        assert again.commit(conn, 10, ()) == []  # stored before: no second case
    stored = list_findings(db, rule="A3")
    assert len(stored) == 1
    assert (stored[0].value, stored[0].tier, stored[0].evidence["valid_minutes"]) == (
        150.0,
        "alarm",
        60,
    )


def test_snapshot_restore_resumes_an_open_hour_with_new_parameters(db):
    stage = RuleStage(factory()())
    stage.judge(batch(hour_of(SO2, tick(0), 150.0)[:3] + hour_of(O2, tick(0), 6.0)))
    with db.begin() as conn:
        stage.commit(conn, 7, ())
    assert load_snapshot(db, "rules")[0] == 7
    # The configuration changed meanwhile: a lower limit. The open hour's data is kept.
    lower = gas_outlet()
    lower = replace(
        lower,
        factors={
            **lower.factors,
            SO2: replace(
                lower.factors[SO2],
                thresholds=replace(lower.factors[SO2].thresholds, hour_alarm=120),
            ),
        },
    )
    engine, position = restore(factory(lower), db)
    assert position == 7
    found = engine.process_measurements(
        hour_of(SO2, tick(0), 150.0)[3:] + hour_of(O2, tick(1), 6.0)
    )
    [a3] = [f for f in found if f.rule == "A3"]
    assert (a3.evidence["valid_minutes"], a3.limit, a3.params_version) == (60, 120, lower.version)


def test_restore_without_a_snapshot_is_a_fresh_engine(db):
    engine, position = restore(factory(), db)
    assert position == 0
    assert engine.stats.readings == 0


def test_a_snapshot_of_another_state_layout_is_not_restored(db):
    old = factory()()
    old.state_format = -1  # as if written by a release whose engine state looked different
    old.process_measurements(hour_of(SO2, tick(0), 150.0)[:3])
    with db.begin() as conn:
        save_snapshot(conn, "rules", 9, old)
    engine, position = restore(factory(), db)
    assert position == 0  # the archive is replayed from the start instead
    assert engine.stats.readings == 0
    with db.begin() as conn:  # bytes no release could read
        conn.execute(update(snapshots).values(state=b"\x80\x05garbage"))
    engine, position = restore(factory(), db)
    assert (position, engine.stats.readings) == (0, 0)


def test_the_production_state_is_stored_with_the_batch(db):
    from sqlalchemy import select

    from rules.store import production
    from tests.rules.test_power_usage import power_params, series

    stage = RuleStage(StreamEngine({}, power={"E3": power_params()}, grace_s=0))
    stage.judge(ReadingBatch(0, 0, power=series("E3-P1", 0, 5, 80.0)))
    with db.begin() as conn:
        stage.commit(conn, 1, ())
    stage.judge(ReadingBatch(1, 1, power=series("E3-P1", 5, 12, 0.0)))
    with db.begin() as conn:
        stage.commit(conn, 2, ())
    with db.connect() as conn:
        assert conn.execute(select(production.c.enterprise_id, production.c.producing)).all() == [
            ("E3", False)
        ]


def test_an_outlet_whose_data_are_flagged_f_stores_its_enterprise_as_stopped(db):
    """停产 from the CEMS alone (no meters): the F flags of its latest data, stored with the
    batch that brought them, and changed back when production resumes."""
    from sqlalchemy import select

    from rules.store import production

    stage = RuleStage(factory()())
    stopped = [
        r._replace(flag="F") for r in hour_of(SO2, tick(0), 2.0) + hour_of(O2, tick(0), 20.6)
    ]
    stage.judge(batch(stopped))
    with db.begin() as conn:
        stage.commit(conn, 1, ())
    query = select(production.c.enterprise_id, production.c.producing)
    with db.connect() as conn:
        assert conn.execute(query).all() == [("E1", False)]
    stage.judge(batch(hour_of(SO2, tick(1), 40.0) + hour_of(O2, tick(1), 6.0)))
    with db.begin() as conn:
        stage.commit(conn, 2, ())
    with db.connect() as conn:
        assert conn.execute(query).all() == [("E1", True)]


def kept_hours(db, lo=0, hi=2**40):
    with db.connect() as conn:
        return read_hours(conn, "E1", "DA001", lo, hi)


def test_closed_hours_and_days_are_kept_with_the_batch_and_once(db):
    readings = []
    for h in range(26):  # a whole China day (T0 is its midnight) and two more hours
        readings += hour_of(SO2, tick(h), 150.0 if h == 3 else 40.0) + hour_of(O2, tick(h), 6.0)
    stage = RuleStage(factory()())
    stage.judge(batch(readings))
    with db.begin() as conn:
        stage.commit(conn, 10, ())
    hours = kept_hours(db)
    assert len(hours) == 2 * 25  # SO2 and O2 of the 25 hours closed
    [over] = [h for h in hours if h.factor == SO2 and h.start == epoch(tick(3))]
    assert (over.valid, over.value, over.converted, over.valid_minutes) == (True, 150.0, 150.0, 60)
    with db.connect() as conn:
        [so2_day] = [d for d in read_days(conn, "E1", "DA001", 0, 2**40) if d.factor == SO2]
    assert (so2_day.start, so2_day.valid_hours) == (epoch(tick(0)), 24)
    assert so2_day.value == pytest.approx((150.0 + 23 * 40.0) / 24)
    # Judged again (a replay after a restart): the same rows, not new ones.
    again = RuleStage(factory()())
    again.judge(batch(readings))
    with db.begin() as conn:
        again.commit(conn, 10, ())
    assert kept_hours(db) == hours


def test_postgresql_keeps_the_values_in_month_partitions_and_drops_old_months(pg_url):
    db = make_engine(pg_url)
    migrate(db)
    try:
        stage = RuleStage(factory()())
        november = hour_of(SO2, tick(0), 40.0) + hour_of(O2, tick(0), 6.0)
        stage.judge(batch(november + hour_of(O2, tick(1), 6.0)))
        with db.begin() as conn:
            stage.commit(conn, 1, ())
        stage.committed()
        later = T0 + timedelta(days=40)
        stage.judge(batch(hour_of(SO2, later, 40.0) + hour_of(O2, later + timedelta(hours=1), 6.0)))
        with db.begin() as conn:
            stage.commit(conn, 2, ())
        stage.committed()
        with db.connect() as conn:
            parts = (
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'hour_values' "
                        "AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
                        "ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
        months = [
            f"hour_values_{T0.astimezone(CHINA_TZ):%Y%m}",
            f"hour_values_{later.astimezone(CHINA_TZ):%Y%m}",
        ]
        assert parts == months
        assert {h.start for h in kept_hours(db) if h.factor == SO2} == {
            epoch(tick(0)),
            epoch(later),
        }
        with db.connect() as conn:
            days = (
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'minute_detail' "
                        "AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
                        "ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
        assert f"minute_detail_{T0.astimezone(CHINA_TZ):%Y%m%d}" in days  # a partition a day
        with db.begin() as conn:
            dropped = drop_months_before(conn, epoch(later))
            dropped_days = drop_before(conn, minute_detail, epoch(later))
        assert months[0] in dropped
        assert f"minute_detail_{T0.astimezone(CHINA_TZ):%Y%m%d}" in dropped_days
        assert {h.start for h in kept_hours(db)} == {epoch(later)}  # November's are gone
    finally:
        db.dispose()
