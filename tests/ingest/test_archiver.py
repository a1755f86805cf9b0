"""The archiver retries a failed group commit quietly, through the policy it is given (the
service injects nonsite.db_health.archive_retrying), and acknowledges only what is stored."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence

import pytest

from ingest.archive import RawArchive, Storable
from ingest.archiver import Archiver
from ingest.mqtt.source import Delivery


class FullDisk:
    """A RawArchive whose first ``failures`` appends fail as on a full disk."""

    def __init__(self, archive: RawArchive, failures: int) -> None:
        self.archive = archive
        self.failures = failures
        self.attempts = 0

    def append(self, messages: Sequence[Storable]) -> int:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise sqlite3.OperationalError("database or disk is full")
        return self.archive.append(messages)


class Policy:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def failed(self, exc: BaseException) -> float:
        with self.lock:
            self.calls.append(f"failed: {exc}")
        return 0.01

    def succeeded(self) -> None:
        with self.lock:
            self.calls.append("succeeded")


def deliveries(n: int) -> list[Delivery]:
    return [Delivery(i, "t", f"m{i}".encode(), i + 1, 1, 1) for i in range(n)]


def run(archive, retry=None, n: int = 5) -> tuple[list[Delivery], Archiver]:
    acked: list[Delivery] = []
    archiver = Archiver(archive, ack=acked.extend, retry=retry)
    archiver.start()
    for d in deliveries(n):
        archiver.submit(d)
    assert archiver.flush(10)
    archiver.stop(5)
    return acked, archiver


def test_a_failed_commit_goes_to_the_policy_and_is_retried_until_it_is_stored(tmp_path, caplog):
    archive = FullDisk(RawArchive(tmp_path / "a.sqlite3"), failures=4)
    policy = Policy()
    with caplog.at_level(logging.DEBUG, logger="ingest.archiver"):
        acked, archiver = run(archive, policy)
    assert policy.calls[:4] == ["failed: database or disk is full"] * 4
    assert set(policy.calls[4:]) == {"succeeded"}  # once per commit from then on
    assert len(acked) == 5  # acknowledged once stored, not before
    assert archive.archive.count() == 5
    assert archiver.failed is None
    assert not caplog.records  # the policy says it, not the archiver


def test_without_a_policy_each_distinct_error_is_logged_once(tmp_path, caplog):
    archive = FullDisk(RawArchive(tmp_path / "a.sqlite3"), failures=3)
    with caplog.at_level(logging.DEBUG, logger="ingest.archiver"):
        acked, _ = run(archive)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["archive write failed; retrying with backoff", "archive writes again"]
    assert len(acked) == 5


@pytest.mark.timeout(30)
def test_a_stop_while_failing_leaves_the_messages_unacknowledged(tmp_path):
    archive = FullDisk(RawArchive(tmp_path / "a.sqlite3"), failures=10**9)
    acked: list[Delivery] = []
    archiver = Archiver(archive, ack=acked.extend, retry=Policy())
    archiver.start()
    for d in deliveries(3):
        archiver.submit(d)
    assert not archiver.flush(0.3)
    assert archiver.pending == 3
    assert isinstance(archiver.failed, sqlite3.OperationalError)
    archiver.stop(5)
    assert acked == []  # the broker re-delivers them
