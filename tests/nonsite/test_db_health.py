"""nonsite.db_health: backoff with jitter, one log line per state change, errors told apart
and described in one line (a full disk as "disk full" and where, whatever hides it)."""

from __future__ import annotations

import logging
import random
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from nonsite.db_health import (
    Backoff,
    DatabaseHealth,
    Retrying,
    archive_retrying,
    describe,
    is_disk_full,
    is_unavailable,
    one_line,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused() -> sa.exc.OperationalError:
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        engine.connect()
    except sa.exc.OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("port 1 accepted a connection")


def sqlite_full_behind_a_failed_rollback() -> sqlite3.OperationalError:
    """What RawArchive.append raised on a full disk: its ROLLBACK failed ("no transaction is
    active", SQLite had rolled back already) and hid the real error in ``__context__``."""
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise sqlite3.OperationalError("cannot rollback - no transaction is active")  # noqa: B904
    except sqlite3.OperationalError as exc:
        return exc
    raise AssertionError


def test_backoff_grows_to_its_cap_with_jitter_and_resets():
    backoff = Backoff(base_s=0.5, max_s=5.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(10)]
    caps = [0.5, 1, 2, 4, 5, 5, 5, 5, 5, 5]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True)), delays
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jittered, not in step
    backoff.reset()
    assert backoff.next() <= 0.5


def test_an_outage_is_two_log_lines_whatever_the_number_of_attempts(caplog):
    clock = Clock()
    registry = CollectorRegistry()
    health = DatabaseHealth(logging.getLogger("t"), registry, clock=clock)
    exc = refused()
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(50):
            assert health.due()
            delay = health.failed(exc)
            assert not health.due()
            clock.now += delay
        problem = health.problem
        health.succeeded()
        health.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unavailable: OperationalError: connection failed:")
    assert "\n" not in lines[0]
    assert lines[1].startswith("database available again after")
    assert "(50 failed attempts)" in lines[1]
    assert not any(r.exc_info for r in caplog.records)  # no traceback for an outage
    assert problem is not None
    assert problem.startswith("database unavailable for ")
    assert "(50 failed attempts): OperationalError" in problem
    assert health.problem is None
    assert registry.get_sample_value("nonsite_database_up") == 1
    assert registry.get_sample_value("nonsite_database_failures_total") == 50


def test_a_cut_connection_then_refused_ones_are_one_outage(caplog):
    """The first attempt of an outage may meet a pooled connection cut under it, the next
    ones a refused connect: one line, with the latest error in /readyz."""
    health = DatabaseHealth(logging.getLogger("t"))
    cut = sa.exc.OperationalError(
        "SELECT 1", {}, ConnectionResetError("server closed the connection unexpectedly")
    )
    with caplog.at_level(logging.INFO, logger="t"):
        health.failed(cut)
        for _ in range(5):
            health.failed(refused())
        health.failed(sqlite3.OperationalError("database or disk is full"))  # another state
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "server closed the connection" in lines[0]
    assert lines[1].startswith("database unavailable, now: disk full")
    assert health.problem is not None and "disk full" in health.problem


def test_the_gauge_is_0_during_an_outage():
    registry = CollectorRegistry()
    health = DatabaseHealth(logging.getLogger("t"), registry)
    assert registry.get_sample_value("nonsite_database_up") == 1
    health.failed(refused())
    assert registry.get_sample_value("nonsite_database_up") == 0


def test_a_bug_logs_its_traceback_once_per_distinct_error(caplog):
    failing = Retrying(
        logging.getLogger("t"), lost="batch failed", back="batches work", traceback=True
    )
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(5):
            failing.failed(ValueError("bad frame"))
        failing.failed(KeyError("other"))
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "batch failed",
        "batch failed, now",
    ]
    assert all(r.exc_info for r in caplog.records)


def test_a_full_disk_whose_free_bytes_change_is_not_a_new_error(tmp_path: Path, caplog):
    """The description names the free bytes, which change while the disk stays full: one line,
    not one per change."""
    free = iter(range(100, 0, -1))
    failing = Retrying(
        logging.getLogger("t"),
        lost="archive write failed",
        back="archive writes again",
        describe_error=lambda exc: f"disk full: {next(free)} bytes free",
    )
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(20):
            failing.failed(sqlite_full_behind_a_failed_rollback())
    assert len(caplog.records) == 1
    assert failing.error == "disk full: 81 bytes free"  # /readyz has the latest figure


def test_archive_retrying_says_a_full_disk_in_one_line_and_a_bug_with_its_traceback(
    tmp_path: Path, caplog
):
    path = tmp_path / "archive.sqlite3"
    retry = archive_retrying(path, logging.getLogger("t"))
    full = sqlite3.OperationalError("database or disk is full")
    with caplog.at_level(logging.INFO, logger="t"):
        delays = [retry.failed(full) for _ in range(30)]
        retry.succeeded()
        retry.failed(TypeError("a bug"))
    assert max(delays) <= 2.0  # prompt once there is room again
    lost, back, bug = caplog.records
    assert lost.getMessage().startswith(
        f"archive write failed: disk full: cannot write {path} ("
    ), lost.getMessage()
    assert f"bytes free in {tmp_path})" in lost.getMessage()
    assert "unacknowledged" in lost.getMessage()
    assert not lost.exc_info  # an expected condition: no traceback
    assert back.getMessage().startswith("archive writes again after ")
    assert "(30 failed attempts)" in back.getMessage()
    assert bug.exc_info  # a bug: its traceback, once


def test_errors_are_told_apart():
    assert is_unavailable(refused())
    assert is_unavailable(sqlite_full_behind_a_failed_rollback())
    assert not is_unavailable(ValueError("a bug"))
    assert not is_unavailable(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))


def test_a_full_disk_is_said_so_with_the_file_and_its_directory(tmp_path: Path):
    exc = sqlite_full_behind_a_failed_rollback()
    assert is_disk_full(exc)
    path = tmp_path / "archive.sqlite3"
    text = describe(exc, path)
    assert text.startswith(f"disk full: cannot write {path} (")
    assert f"bytes free in {tmp_path})" in text
    assert "no transaction is active" not in text
    assert describe(OSError(28, "No space left on device")).startswith("disk full")


@pytest.mark.parametrize(
    ("exc", "want"),
    [
        (ValueError("first\nsecond"), "ValueError: first"),
        (ValueError(""), "ValueError"),
        (ValueError("x" * 500), "ValueError: " + "x" * 237 + "..."),
    ],
)
def test_one_line(exc, want):
    assert one_line(exc) == want
