"""deploy/backup.sh, run for real: SQLite copies taken while the archive is being written,
pg_dump for PostgreSQL, the database before the archive, and the retention of old backups."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.archive import IncomingMessage, RawArchive
from ingest.store import record_batch
from nonsite.db import make_engine, migrate

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).parents[2] / "deploy" / "backup.sh"


def setup_site(tmp_path: Path, db_url: str | None = None) -> tuple[Path, Path, RawArchive]:
    data = tmp_path / "data"
    config = tmp_path / "nonsite.toml"
    config.write_text(f'[service]\ndata_dir = "{data}"\n')
    archive = RawArchive(data / "archive.sqlite3")
    archive.append(
        [
            IncomingMessage(1_700_000_000_000_000 + i, f"hj212/MN{i % 5}", b"m%d" % i)
            for i in range(500)
        ]
    )
    engine = make_engine(db_url or f"sqlite:///{data / 'nonsite.db'}")
    migrate(engine)
    with engine.begin() as conn:
        record_batch(conn, "ingest", 400, [])
    engine.dispose()
    return config, data, archive


def run_backup(config: Path, dest: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        "PATH": os.environ["PATH"],
        "NONSITE_CONFIG": str(config),
        "NONSITE_PYTHON": sys.executable,
        "NONSITE_BACKUP_DIR": str(dest),
        **env,
    }
    return subprocess.run(
        ["sh", str(SCRIPT)], env=full, capture_output=True, text=True, check=False
    )


def backups(dest: Path) -> list[Path]:
    return sorted(p for p in dest.iterdir() if not p.name.startswith("."))


def test_sqlite_copies_are_consistent_while_the_archive_is_written(tmp_path):
    config, _, archive = setup_site(tmp_path)
    stop = threading.Event()

    def write() -> None:  # the service's archiver, appending all along
        i = 0
        while not stop.is_set():
            archive.append([IncomingMessage(time.time_ns() // 1000, "hj212/W", b"w%d" % i)])
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        done = run_backup(config, tmp_path / "backups")
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 0, done.stderr
    [backup] = backups(tmp_path / "backups")
    assert sorted(p.name for p in backup.iterdir()) == ["MANIFEST", "archive.sqlite3", "nonsite.db"]
    copy = sqlite3.connect(backup / "archive.sqlite3")
    count, head = copy.execute("SELECT COUNT(*), MAX(seq) FROM messages").fetchone()
    assert count == head >= 500  # every message up to its last one: a consistent snapshot
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db = sqlite3.connect(backup / "nonsite.db")
    assert db.execute("SELECT seq FROM ingest_checkpoints").fetchone()[0] == 400
    manifest = (backup / "MANIFEST").read_text()
    assert "ingest checkpoint 400" in manifest
    assert f"last sequence number {head}" in manifest
    assert oct(backup.stat().st_mode & 0o777) == "0o700"


def test_postgresql_is_dumped_with_pg_dump(tmp_path, pg_url):
    config, _, _ = setup_site(tmp_path, pg_url)
    done = run_backup(config, tmp_path / "backups", NONSITE_DB_URL=pg_url)
    assert done.returncode == 0, done.stderr
    [backup] = backups(tmp_path / "backups")
    assert sorted(p.name for p in backup.iterdir()) == [
        "MANIFEST",
        "archive.sqlite3",
        "database.dump",
    ]
    listing = subprocess.run(
        ["pg_restore", "--list", str(backup / "database.dump")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    schema = pg_url.rsplit("%3D", 1)[1]
    assert f"TABLE DATA {schema} ingest_checkpoints" in listing


def test_old_backups_are_removed_and_failed_runs_leave_nothing(tmp_path):
    config, data, _ = setup_site(tmp_path)
    dest = tmp_path / "backups"
    old = dest / "20200101T000000Z"
    recent = dest / "20200102T000000Z"
    for d in (old, recent):
        d.mkdir(parents=True)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    done = run_backup(config, dest, NONSITE_BACKUP_KEEP_DAYS="7")
    assert done.returncode == 0, done.stderr
    names = [p.name for p in backups(dest)]
    assert old.name not in names
    assert recent.name in names
    assert len(names) == 2

    (data / "archive.sqlite3").rename(data / "moved.sqlite3")
    failed = run_backup(config, dest)
    assert failed.returncode != 0
    assert "archive.sqlite3 does not exist" in failed.stderr
    assert len(backups(dest)) == 2
    assert not [p for p in dest.iterdir() if p.name.endswith(".partial")]

    assert run_backup(config, dest, NONSITE_BACKUP_KEEP_DAYS="0").returncode == 2
