"""Partition leases against a real PostgreSQL: fair shares, takeover, and the fence."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ingest.store import load_checkpoint, record_batch
from nonsite.cluster.leases import (
    Lease,
    LeaseLost,
    PartitionCountError,
    PartitionLeases,
    metadata,
)
from nonsite.db import make_engine, migrate

TABLES = {"partition_leases", "cluster_workers"}


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    migrate(engine)
    yield engine
    engine.dispose()


def worker(
    engine: Engine, worker_id: str, partitions: int = 8, ttl_s: float = 5.0
) -> PartitionLeases:
    leases = PartitionLeases(engine, worker_id, partitions, ttl_s=ttl_s)
    leases.ensure_partitions()
    return leases


def table(engine: Engine) -> dict[int, tuple[str | None, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT partition, owner, epoch FROM partition_leases"))
        return {p: (owner, epoch) for p, owner, epoch in rows}


def check(engine: Engine, workers: list[PartitionLeases]) -> None:
    """No partition in two workers' hands, and every worker's leases are the table's."""
    rows = table(engine)
    seen: dict[int, str] = {}
    for w in workers:
        for lease in w.owned():
            assert lease.partition not in seen, (lease.partition, seen, w.worker_id)
            seen[lease.partition] = w.worker_id
            assert rows[lease.partition] == (w.worker_id, lease.epoch)


def one_round(engine: Engine, workers: list[PartitionLeases]) -> int:
    """Each worker rebalances and hands back what it is asked to, checked after every step;
    the number of partitions claimed or released."""
    moved = 0
    for w in workers:
        plan = w.rebalance()
        check(engine, workers)
        for lease in plan.release:
            assert w.release(lease)
            check(engine, workers)
        moved += len(plan.claimed) + len(plan.release)
    return moved


def counts(workers: list[PartitionLeases]) -> list[int]:
    return [len(w.owned()) for w in workers]


def expire(engine: Engine, *partitions: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE partition_leases SET expires_at = clock_timestamp() - interval '1 second'"
                " WHERE partition = ANY(:ps)"
            ),
            {"ps": list(partitions)},
        )


@pytest.mark.integration
def test_two_workers_share_eight_partitions_four_and_four(pg: Engine) -> None:
    a, b = worker(pg, "a"), worker(pg, "b")
    one_round(pg, [a, b])  # a alone at first: all 8; b sees a holding them
    one_round(pg, [a, b])  # a hands back its highest four, b takes them
    assert [lease.partition for lease in a.owned()] == [0, 1, 2, 3]
    assert [lease.partition for lease in b.owned()] == [4, 5, 6, 7]
    assert one_round(pg, [a, b]) == 0  # settled: nothing moves
    assert sorted(r[0] or "" for r in table(pg).values()) == ["a"] * 4 + ["b"] * 4


@pytest.mark.integration
def test_a_third_worker_makes_it_three_three_two_moving_two_partitions(pg: Engine) -> None:
    a, b = worker(pg, "a"), worker(pg, "b")
    one_round(pg, [a, b])
    one_round(pg, [a, b])
    epochs = {lease.partition: lease.epoch for w in (a, b) for lease in w.owned()}
    c = worker(pg, "c")
    moved = [one_round(pg, [c, a, b]) for _ in range(3)]
    assert sorted(counts([a, b, c])) == [2, 3, 3]
    assert moved[-1] == 0
    assert sum(moved) == 4  # two released, the same two claimed: nothing else changed hands
    assert {lease.partition for lease in c.owned()} == {3, 7}  # a's and b's highest
    assert [lease.epoch for lease in c.owned()] == [epochs[3] + 1, epochs[7] + 1]


@pytest.mark.integration
def test_workers_starting_together_converge_without_sharing(pg: Engine) -> None:
    workers = [worker(pg, f"w{i}") for i in range(4)]
    barrier = threading.Barrier(len(workers) + 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(w: PartitionLeases) -> None:
        try:
            while True:
                barrier.wait(5)
                if stop.is_set():
                    return
                plan = w.rebalance()
                for lease in plan.release:
                    w.release(lease)
                barrier.wait(5)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    rounds = 0
    for rounds in range(1, 11):  # noqa: B007 - reported below
        barrier.wait(5)  # go
        barrier.wait(5)  # all done
        check(pg, workers)
        if counts(workers) == [2, 2, 2, 2]:
            break
    stop.set()
    barrier.wait(5)
    for t in threads:
        t.join(5)
    assert errors == []
    assert counts(workers) == [2, 2, 2, 2], rounds


@pytest.mark.integration
def test_a_taken_over_lease_fails_the_fence_and_its_batch_rolls_back(pg: Engine) -> None:
    a = worker(pg, "a", partitions=2, ttl_s=0.5)
    a.rebalance()
    old = a.owned()[0]
    time.sleep(0.6)  # a paused: its leases and its heartbeat expire
    b = worker(pg, "b", partitions=2)
    assert [lease.partition for lease in b.rebalance().claimed] == [0, 1]

    with pytest.raises(LeaseLost) as lost, pg.begin() as conn:  # noqa: PT012
        record_batch(conn, "partition-0", 99, [])  # a's late batch...
        a.fence(conn, old)  # ...refused before its commit, and so rolled back
    assert (lost.value.partition, lost.value.epoch) == (0, old.epoch)
    assert load_checkpoint(pg, "partition-0") == 0
    assert old not in a.owned()

    new = b.owned()[0]
    assert new.epoch == old.epoch + 1
    with pg.begin() as conn:
        b.fence(conn, new)
        record_batch(conn, "partition-0", 99, [])
    assert load_checkpoint(pg, "partition-0") == 99


@pytest.mark.integration
def test_a_claim_waits_for_an_open_fenced_commit_and_then_finds_the_lease_extended(
    pg: Engine,
) -> None:
    """The brief's plain claim UPDATE: it blocks on the fence's row lock, and under READ
    COMMITTED re-checks its WHERE against the committed row, which the fence extended."""
    a = worker(pg, "a", partitions=1)
    (lease,) = a.rebalance().claimed
    expire(pg, 0)  # committed state: expired, claimable by anyone
    outcome: list[int] = []

    def claim() -> None:
        with pg.begin() as conn:
            outcome.append(
                conn.execute(
                    text(
                        "UPDATE partition_leases SET owner = 'b', epoch = epoch + 1,"
                        " expires_at = now() + interval '5 seconds'"
                        " WHERE partition = 0 AND (owner IS NULL OR expires_at < now())"
                    )
                ).rowcount
            )

    with pg.begin() as conn:
        a.fence(conn, lease)
        record_batch(conn, "partition-0", 42, [])
        b = threading.Thread(target=claim)
        b.start()
        b.join(0.3)
        assert b.is_alive()  # waiting for the fence's lock
    b.join(5)
    assert outcome == [0]  # the re-check saw the extended lease
    assert table(pg)[0] == ("a", lease.epoch)
    assert load_checkpoint(pg, "partition-0") == 42


@pytest.mark.integration
def test_rebalance_skips_a_lease_locked_by_an_open_commit_instead_of_waiting(pg: Engine) -> None:
    a = worker(pg, "a", partitions=2)
    a.rebalance()
    lease0 = a.owned()[0]
    b = worker(pg, "b", partitions=2)
    expire(pg, 0)
    plans = []
    with pg.begin() as conn:
        a.fence(conn, lease0)
        t = threading.Thread(target=lambda: plans.append(b.rebalance()))
        t.start()
        t.join(2)
        assert not t.is_alive()  # b's loop (and its renewals) is not held up by a's commit
    assert plans[0].claimed == []
    assert b.rebalance().claimed == []  # committed: the fence extended the lease

    expire(pg, 0)
    with pg.connect() as conn:  # a batch that fails after its fence rolls the extension back
        a.fence(conn, lease0)
        conn.rollback()
    assert b.rebalance().claimed == [Lease(0, lease0.epoch + 1)]


@pytest.mark.integration
def test_a_commit_paused_inside_its_transaction_is_ended_by_the_server(pg: Engine) -> None:
    a = worker(pg, "a", partitions=1, ttl_s=0.5)
    (lease,) = a.rebalance().claimed
    with pytest.raises(DBAPIError, match="idle-in-transaction"), pg.begin() as conn:  # noqa: PT012
        a.fence(conn, lease)
        time.sleep(1.0)  # paused longer than the lease: the lock must not outlive it
        record_batch(conn, "partition-0", 7, [])
    assert load_checkpoint(pg, "partition-0") == 0
    b = worker(pg, "b", partitions=1)
    assert [x.partition for x in b.rebalance().claimed] == [0]


@pytest.mark.integration
def test_renew_extends_leases_and_reports_the_lost_ones(pg: Engine) -> None:
    a = worker(pg, "a", partitions=4)
    a.rebalance()
    with pg.begin() as conn:
        conn.execute(
            text("UPDATE partition_leases SET owner = 'x', epoch = epoch + 1 WHERE partition = 2")
        )
        conn.execute(text("UPDATE partition_leases SET owner = NULL WHERE partition = 3"))
    expire(pg, 1)  # expired but nobody claimed it: still a's
    assert a.renew() == [2, 3]
    assert [lease.partition for lease in a.owned()] == [0, 1]
    with pg.connect() as conn:
        live = conn.execute(
            text(
                "SELECT partition FROM partition_leases"
                " WHERE owner = 'a' AND expires_at > clock_timestamp() + interval '4 seconds'"
            )
        ).scalars()
        assert sorted(live) == [0, 1]
    assert a.renew() == []


@pytest.mark.integration
def test_a_dead_worker_s_partitions_are_taken_over_and_it_learns_on_renew(pg: Engine) -> None:
    a = worker(pg, "a", ttl_s=0.5)
    b = worker(pg, "b", ttl_s=0.5)
    one_round(pg, [a, b])
    one_round(pg, [a, b])
    assert counts([a, b]) == [4, 4]
    a.heartbeat()
    assert a.renew() == []
    time.sleep(0.3)  # a stops here; b carries on
    assert b.renew() == []
    assert b.rebalance().claimed == []  # a is alive, its leases current
    time.sleep(0.3)
    assert b.renew() == []
    assert [lease.partition for lease in b.rebalance().claimed] == [0, 1, 2, 3]
    assert a.renew() == [0, 1, 2, 3]  # a wakes up: everything lost
    assert a.owned() == []


@pytest.mark.integration
def test_leave_frees_everything_and_the_others_take_over_at_once(pg: Engine) -> None:
    a, b = worker(pg, "a"), worker(pg, "b")
    one_round(pg, [a, b])
    one_round(pg, [a, b])
    a.leave()
    assert a.owned() == []
    with pg.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM partition_leases WHERE owner = 'a'")).scalar()
            == 0
        )
        assert list(conn.execute(text("SELECT worker_id FROM cluster_workers")).scalars()) == ["b"]
    assert len(b.rebalance().claimed) == 4
    assert counts([b]) == [8]


@pytest.mark.integration
def test_a_restarted_worker_reclaims_its_rows_and_fences_out_its_old_process(pg: Engine) -> None:
    old = worker(pg, "a", partitions=2)
    old.rebalance()
    stale = old.owned()[0]
    new = worker(pg, "a", partitions=2)
    assert new.rebalance().claimed == [Lease(0, stale.epoch + 1), Lease(1, stale.epoch + 1)]
    with pytest.raises(LeaseLost), pg.begin() as conn:
        old.fence(conn, stale)


@pytest.mark.integration
def test_another_partition_count_is_refused(pg: Engine) -> None:
    a = worker(pg, "a", partitions=8)
    with pytest.raises(PartitionCountError):
        worker(pg, "b", partitions=4)
    assert len(table(pg)) == 8
    b = PartitionLeases(pg, "b", 4)  # started without ensure_partitions
    with pytest.raises(PartitionCountError):
        b.rebalance()
    a.rebalance()
    with pytest.raises(ValueError, match="transaction"), pg.connect() as conn:
        a.fence(conn.execution_options(isolation_level="AUTOCOMMIT"), a.owned()[0])


def test_the_migration_creates_the_declared_tables(engine: Engine) -> None:
    """On SQLite too (every migration runs on both); the lease logic itself needs PostgreSQL."""
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # Only ours: nonsite/migrations/env.py and tests/nonsite/test_db.py list the rest.
                "include_name": lambda name, kind, _parents: kind != "table" or name in TABLES,
            },
        )
        assert compare_metadata(context, metadata) == []
    if engine.dialect.name == "sqlite":
        with pytest.raises(ValueError, match="PostgreSQL"):
            PartitionLeases(engine, "a", 8)
