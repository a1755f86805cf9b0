"""Commands to loggers in the database: automatic recalls and clock checks with their limits,
and the loggers' answers matched to what was asked (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from ingest.commands.auto import AutoCommands, AutoPolicy, MissingHour
from ingest.commands.store import (
    ClockPolicy,
    LoggerAnswer,
    logger_commands,
    mark_sent,
    record_answers,
)
from ingest.readings import LoggerSeen
from nonsite.db import migrate

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
HOUR = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


@pytest.fixture
def db(engine):
    migrate(engine)
    return engine


def rows(db) -> list:
    with db.connect() as conn:
        return list(conn.execute(select(logger_commands).order_by(logger_commands.c.id)).all())


def seen(mn: str) -> LoggerSeen:
    return LoggerSeen("E", "DA001", mn, "2051", HOUR, NOW, 1)


def test_a_missing_hour_is_recalled_once_and_within_the_rate(db):
    auto = AutoCommands(AutoPolicy(recall_per_hour=2), ClockPolicy())
    hours = [MissingHour("M1", HOUR + timedelta(hours=k), False, 7, None) for k in range(3)]
    with db.begin() as conn:
        auto.recall_missing(conn, hours, NOW)
        auto.recall_missing(conn, hours[:1], NOW)  # the same hour again: not asked twice
    got = rows(db)
    assert [(r.cn, r.status, r.case_id) for r in got] == [
        ("2061", "requested", 7),
        ("2061", "requested", 7),
        ("2061", "rate_limited", 7),  # the third within the hour: recorded, not sent
    ]
    assert json.loads(got[0].params)["BeginTime"] == "2026-12-04T22:00:00+00:00"
    assert json.loads(got[0].params)["EndTime"] == "2026-12-04T22:59:59+00:00"
    assert "补遗" in got[0].reason and "超过上限" in got[2].detail


def test_a_minute_only_logger_is_asked_for_minute_data(db):
    auto = AutoCommands(AutoPolicy(), ClockPolicy())
    with db.begin() as conn:
        auto.recall_missing(conn, [MissingHour("M1", HOUR, True, None, None)], NOW)
    assert [r.cn for r in rows(db)] == ["2051"]


def test_clocks_are_read_daily_and_a_silent_logger_only_weekly(db):
    auto = AutoCommands(AutoPolicy(time_check_every_h=24), ClockPolicy())
    with db.begin() as conn:
        assert len(auto.check_clocks(conn, [seen("M1"), seen("M1")], NOW)) == 1
        assert auto.check_clocks(conn, [seen("M1")], NOW + timedelta(hours=23)) == []
        assert len(auto.check_clocks(conn, [seen("M1")], NOW + timedelta(hours=25))) == 1
    with db.begin() as conn:  # neither answered
        conn.execute(update(logger_commands).values(status="no_answer"))
    restarted = AutoCommands(AutoPolicy(time_check_every_h=24), ClockPolicy())
    with db.begin() as conn:
        assert restarted.check_clocks(conn, [seen("M1")], NOW + timedelta(days=3)) == []
        later = NOW + timedelta(hours=25) + timedelta(days=7, minutes=1)
        assert len(restarted.check_clocks(conn, [seen("M1")], later)) == 1


def test_answers_are_matched_by_qn_and_say_what_happened(db):
    auto = AutoCommands(AutoPolicy(), ClockPolicy(tolerance_s=60))
    with db.begin() as conn:
        auto.recall_missing(conn, [MissingHour("M1", HOUR, False, None, None)], NOW)
        auto.recall_missing(conn, [MissingHour("M2", HOUR, False, None, None)], NOW)
        auto.check_clocks(conn, [seen("M3")], NOW)
    with db.begin() as conn:
        for r, qn in zip(rows(db), ("Q1", "Q2", "Q3"), strict=True):
            mark_sent(conn, r.id, qn=qn, topic="t", packet=b"p", now=NOW)
    at = NOW + timedelta(seconds=5)
    answers = [
        LoggerAnswer("M1", "9011", "Q1", at, qn_rtn=1),
        LoggerAnswer("M1", "9012", "Q1", at, exe_rtn=100),  # nothing stored for that hour
        LoggerAnswer("M2", "9011", "Q2", at, qn_rtn=3),  # PW 错误
        LoggerAnswer("M3", "9011", "Q3", at, qn_rtn=1),
        # Its clock 2 minutes slow; its upload carries the request's QN (the standard's echo).
        LoggerAnswer("M3", "1011", "Q3", at, system_time=at - timedelta(seconds=120)),
        LoggerAnswer("M3", "9012", "Q3", at, exe_rtn=1),
        LoggerAnswer("M9", "9012", "Q1", at, exe_rtn=1),  # another logger's QN: no match
    ]
    with db.begin() as conn:
        record_answers(conn, answers, [], ClockPolicy(tolerance_s=60), at)
    m1, m2, m3, set_clock = rows(db)
    assert (m1.status, m1.qn_rtn, m1.exe_rtn) == ("no_data", 1, 100)
    assert (m2.status, m2.qn_rtn) == ("refused", 3)
    assert (m3.status, m3.drift_s) == ("done", -120.0)
    assert (set_clock.mn, set_clock.kind, set_clock.cn, set_clock.status) == (
        "M3", "time_set", "1012", "requested"
    )  # fmt: skip
    assert "-120" in set_clock.reason


def test_a_recall_counts_the_data_of_its_interval_that_arrive_after_it_was_sent(db):
    auto = AutoCommands(AutoPolicy(), ClockPolicy())
    with db.begin() as conn:
        auto.recall_missing(conn, [MissingHour("M1", HOUR, True, None, None)], NOW)
    with db.begin() as conn:
        mark_sent(conn, rows(db)[0].id, qn="Q1", topic="t", packet=b"p", now=NOW)
    after = NOW + timedelta(seconds=3)
    data = [
        LoggerSeen("E", "DA001", "M1", "2051", HOUR + timedelta(minutes=10), after, 1),
        LoggerSeen("E", "DA001", "M1", "2051", HOUR + timedelta(minutes=20), after, 2),
        LoggerSeen("E", "DA001", "M1", "2051", HOUR + timedelta(hours=2), after, 3),  # outside
        LoggerSeen("E", "DA001", "M1", "2061", HOUR, after, 4),  # another CN
        LoggerSeen("E", "DA001", "M1", "2051", HOUR, NOW - timedelta(seconds=1), 5),  # before
    ]
    with db.begin() as conn:
        record_answers(conn, [], data, ClockPolicy(), after)
    assert rows(db)[0].filled == 2


def test_a_logger_asking_for_the_time_gets_it_set_once(db):
    asks = [LoggerAnswer("M1", "1013", "Q", NOW), LoggerAnswer("M1", "1013", "Q2", NOW)]
    with db.begin() as conn:
        record_answers(conn, asks[:1], [], ClockPolicy(), NOW)
    with db.begin() as conn:
        record_answers(conn, asks[1:], [], ClockPolicy(), NOW)  # one is waiting already
    assert [(r.kind, r.requested_by) for r in rows(db)] == [("time_set", "auto:1013")]
