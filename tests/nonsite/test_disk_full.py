"""A full disk under a running ``nonsite serve``: said plainly, counted, and recovered from.

The service's data directory is a small tmpfs of its own (mounted by the test, which needs
root or passwordless sudo); the real service process, a real Mosquitto. The test fills the
file system while frames flow, then frees it. Required: ``/readyz`` says "disk full" and
which file (not SQLite's "cannot rollback - no transaction is active"), the pending-messages
metric counts the messages that wait unacknowledged, the log has one line when writing fails
and one when it works again (no traceback per retry), and once there is room again every frame
is archived exactly once and decoded, and the service is ready again within seconds.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.archive import RawArchive
from ingest.store import load_checkpoint
from nonsite.db import make_engine
from tests.mqtt_tools import Publisher
from tests.nonsite.test_service_durability import MNS, archived, assert_exactly_once, frames
from tests.service_process import ServiceProcess, write_config

pytestmark = pytest.mark.integration

TMPFS_SIZE = "24m"
# How long the disk stays full at least; NONSITE_TEST_FULL_S=30 measures recovery after the
# retries' backoff has reached its cap.
FULL_S = float(os.environ.get("NONSITE_TEST_FULL_S", "0"))
# Retries are at most 2 s apart (the archive's) and 5 s (the database's, on the same disk
# here): once there is room, everything is archived, decoded and ready within seconds.
RECOVERY_BOUND_S = 10.0


def _as_root(*cmd: str) -> list[str]:
    if os.geteuid() == 0:
        return list(cmd)
    if shutil.which("sudo"):
        return ["sudo", "-n", *cmd]
    return list(cmd)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``TMPFS_SIZE`` at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        _as_root("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount)),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root or passwordless sudo: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(_as_root("umount", "-l", str(mount)), check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system has no room left; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            while True:
                try:
                    out.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def archive_count(data_dir: Path) -> int:
    archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
    try:
        return archive.count()
    finally:
        archive.close()


def test_a_full_disk_is_reported_as_such_and_nothing_is_lost(mosquitto, small_disk, tmp_path):
    data_dir = small_disk
    config = write_config(
        tmp_path / "nonsite.toml", broker_url=mosquitto.url, data_dir=data_dir, mns=MNS
    )
    service = ServiceProcess.started(config)
    pub = Publisher(mosquitto.host, mosquitto.port)
    published: list[tuple[str, bytes]] = []
    try:
        first = frames(0, 200)
        pub.publish_all(first)
        published += first
        deadline = time.monotonic() + 30
        while len(archived(data_dir)) < len(first) and time.monotonic() < deadline:
            time.sleep(0.1)

        filler = fill(data_dir)
        filled_at = time.monotonic()
        # Frames keep coming. SQLite reuses the space its write-ahead log already has, so
        # the first ones after the fill may still be archived: send until the archive stops.
        problem: str | None = None
        start = len(published)
        while problem is None and len(published) < 20_000 and time.monotonic() - filled_at < 60:
            batch = frames(len(published), 100)
            pub.publish_all(batch)
            published += batch
            time.sleep(0.2)
            problems = service.readiness().get("problems") or {}
            assert isinstance(problems, dict)
            problem = problems.get("archive")
        time.sleep(max(0.0, FULL_S - (time.monotonic() - filled_at)))
        readiness = service.readiness()
        # What waits: received, not archived, not acknowledged. Counted while the disk is
        # full (the gauge used to show the last successful commit's figure, 0).
        time.sleep(1.0)
        waiting = len(published) - archive_count(data_dir)
        pending = service.metric("nonsite_ingest_pending_messages")
        sent_after_fill = len(published) - start

        filler.unlink()  # room again
        freed_at = time.monotonic()
        last = frames(len(published), 100)
        pub.publish_all(last)
        published += last
        ready_again = False
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if len(archived(data_dir)) >= len(published) and service.ready():
                ready_again = True
                break
            time.sleep(0.25)
        recovered_s = time.monotonic() - freed_at
        stored = archived(data_dir)
    finally:
        pub.close()
        code = service.terminate()
    db = make_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    checkpoint = load_checkpoint(db, "ingest")
    db.dispose()
    archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
    head = archive.head_seq()
    archive.close()
    figures = (
        f"{sent_after_fill} frames sent after the fill; readiness {readiness}; "
        f"{waiting} waiting by the archive, pending metric {pending}; "
        f"recovered {recovered_s:.1f} s after the space was freed"
    )
    print(figures)
    assert problem is not None, figures
    assert problem.startswith("disk full"), figures
    assert str(data_dir / "archive.sqlite3") in problem, figures  # where
    assert "no transaction is active" not in problem, figures
    assert readiness.get("status") == "not ready", figures
    assert waiting > 0, figures
    assert pending == waiting, figures
    assert ready_again, (figures, service.log_text())
    assert recovered_s <= RECOVERY_BOUND_S, figures
    assert_exactly_once(published, stored)
    assert checkpoint == head, (checkpoint, head, service.log_text())
    assert code == 0, service.log_text()
    # Quiet: one line when the archive cannot be written, one when it can again.
    log_text = service.log_text()
    assert log_text.count("archive write failed") == 1, log_text[-3000:]
    assert log_text.count("archive writes again") == 1, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[-3000:]
