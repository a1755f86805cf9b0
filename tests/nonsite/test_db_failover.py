"""The database host fails: a primary and a synchronous standby (two PostgreSQL servers of our
own, ``nonsite.local_postgres``), the primary SIGKILLed under writes, the standby promoted.
Through one URL naming both hosts with ``target_session_attrs=read-write`` (libpq picks the
one that takes writes), the engine nonsite uses (``nonsite.db.make_engine``) goes on writing
at the promoted standby, and every transaction acknowledged before the kill is there, once.

The first step of issue 22's failover (the service's own retry and resumption come next).
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from nonsite.db import make_engine
from nonsite.embedded_broker import free_port
from nonsite.local_postgres import HOST, PrivatePostgres, postgres_bin_dir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# Durable. Once the standby streams, the primary's commits wait for its flush
# (``synchronous_standby_names``, set then: before, the primary's own database creation would
# wait for it), so what is acknowledged survives the primary's loss. The standby names no
# standby of its own: promoted, alone, its commits must not wait for one (Patroni's
# synchronous mode does the same).
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "hot_standby": "on",
}


def require_sync_standby(primary: PrivatePostgres, name: str) -> None:
    engine = sa.create_engine(primary.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
    finally:
        engine.dispose()


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def sync_standby(primary: PrivatePostgres) -> bool:
    engine = sa.create_engine(primary.url)
    try:
        with engine.connect() as conn:
            states = conn.execute(
                sa.text("SELECT application_name, sync_state FROM pg_stat_replication")
            ).all()
        return ("standby", "sync") in [tuple(row) for row in states]
    finally:
        engine.dispose()


def test_acknowledged_commits_survive_the_primarys_loss_and_writes_go_on_at_the_standby(
    tmp_path: Path,
) -> None:
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None, "PostgreSQL's programs (initdb, pg_ctl, pg_basebackup)"
    primary = PrivatePostgres(bin_dir, tmp_path / "primary", free_port(), settings=DURABLE)
    standby = PrivatePostgres(bin_dir, tmp_path / "standby", free_port(), settings=DURABLE)
    engine = None
    try:
        primary.start()
        standby.start_replica_of(primary, "standby")
        require_sync_standby(primary, "standby")
        wait_until(lambda: sync_standby(primary), 30, "the standby streaming synchronously")
        url = (
            f"postgresql+psycopg://postgres@/{primary.database}"
            f"?host={HOST}:{primary.port}&host={HOST}:{standby.port}"
            "&target_session_attrs=read-write"
        )
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE acked (i integer PRIMARY KEY, at float)"))

        acked: list[int] = []
        commits: list[float] = []
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                while not stop.is_set():  # the same row until a commit is acknowledged
                    try:
                        with engine.begin() as conn:
                            conn.execute(
                                sa.text(
                                    "INSERT INTO acked VALUES (:i, :at) ON CONFLICT DO NOTHING"
                                ),
                                {"i": i, "at": time.time()},
                            )
                        acked.append(i)
                        commits.append(time.monotonic())
                        break
                    except sa.exc.OperationalError:
                        time.sleep(0.05)  # no primary yet: try again

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        wait_until(lambda: len(acked) >= 200, 30, "200 commits on the primary")
        before = len(acked)
        killed = time.monotonic()
        primary.kill()
        time.sleep(1.0)  # the failure noticed; then the standby is promoted (Patroni's job)
        standby.promote()
        wait_until(lambda: len(acked) >= before + 200, 60, "200 commits after the failover")
        stop.set()
        writer.join(30)

        with engine.connect() as conn:
            stored = [row[0] for row in conn.execute(sa.text("SELECT i FROM acked ORDER BY i"))]
            in_recovery = conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one()
        assert in_recovery is False  # the promoted standby answers, not the dead primary
        assert stored == sorted(set(acked)) == list(range(1, len(stored) + 1))
        gap = max(b - a for a, b in itertools.pairwise(commits) if b >= killed)
        print(f"without commits: {gap:.2f} s (kill at +0, promotion after 1 s)")
        assert gap < 30
    finally:
        if engine is not None:
            engine.dispose()
        standby.stop(immediate=True)
        primary.stop(immediate=True)
