"""Which cluster worker processes which partition: leases in PostgreSQL, with fencing.

The raw stream's subjects are split into a fixed number of partitions. A worker processes a
partition only while it holds the partition's lease (a row of ``partition_leases``), and it
commits a batch's results together with the partition's checkpoint in one transaction that
starts with :meth:`PartitionLeases.fence`. Every claim increments the row's ``epoch``, so a
worker that lost the partition (it was paused, cut off, its lease expired and another worker
claimed it) fails the fence and its transaction rolls back: its late results never land.

Why the fence is safe. The fence is an UPDATE of the lease row, so the row lock it takes is
held until the transaction ends. A claim must lock the same row, so it is ordered either
after the commit (the new owner then reads a checkpoint that includes the commit: it reads it
in a transaction begun after its claim returned) or before the fence (the fence then sees the
new owner or epoch and raises :class:`LeaseLost`). A claim does not wait for a locked row: it
skips it (``FOR UPDATE SKIP LOCKED``), as an owner's open commit is the sign the owner is alive
and the fence is extending its lease anyway; a plain ``UPDATE ... WHERE expires_at < now()``
would wait and then, under READ COMMITTED, re-check its WHERE against the committed row, which
the fence extended, and claim nothing either. The fence does not require the lease to be
unexpired: until another worker claims it, nobody else has processed the partition, and the
claim cannot happen while the fence's lock is held.

Times are the database's clock (``clock_timestamp()``: the time of the statement, not of the
transaction's start like ``now()``), never a worker's, so the workers' clock skew cannot make
two of them think they own a partition; time only decides when a partition may change owner,
never whether two owners can both commit.

A worker id must be unique to one process (host, pid and a random part): two processes with
one id would take each other's partitions on every rebalance. A worker that restarts with its
old id re-claims the rows still in its name with a new epoch, which fences out the old process.

The loop a worker runs (every ``ttl_s / 3`` or so)::

    lost = leases.renew()  # stop processing these at once
    plan = leases.rebalance()  # stop plan.lost; start plan.claimed (reading their checkpoints
    # now); finish the current batch of each of plan.release, then release() it

renew() and rebalance() belong to one thread; fence() may run in others.

The lease logic needs PostgreSQL (row locks, ``SKIP LOCKED``, ``clock_timestamp()``); the
tables are also created on SQLite, as every migration runs on both.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ingest.sqltypes import UTCDateTime

metadata = MetaData()

partition_leases = Table(
    "partition_leases",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(128), nullable=True),  # a worker_id; NULL when free
    Column("epoch", BigInteger, nullable=False, server_default="0"),  # +1 on every claim
    Column("expires_at", UTCDateTime(), nullable=True),  # NULL when free
)

cluster_workers = Table(
    "cluster_workers",
    metadata,
    Column("worker_id", String(128), primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    # heartbeat_at + the worker's own worker_ttl_s: every worker judges liveness by the same
    # stored instant, so all compute the same shares even when configured differently.
    Column("alive_until", UTCDateTime(), nullable=False),
)

# A crashed worker's row goes after this long without a heartbeat (ids are per process, so the
# table would otherwise grow by one row per crash); it stops counting as live long before.
DEAD_WORKER_KEPT_S = 3600.0


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    epoch: int


class LeaseLost(Exception):  # noqa: N818 - reads as what happened: except LeaseLost
    """The lease is no longer this worker's: another worker claimed the partition since."""

    def __init__(self, partition: int, epoch: int) -> None:
        super().__init__(f"lease of partition {partition} (epoch {epoch}) lost")
        self.partition = partition
        self.epoch = epoch


class PartitionCountError(Exception):
    """The lease table holds another number of partitions than this worker was configured
    with: the workers would map enterprises to partitions differently, which no fence can
    make safe, so the worker must not run."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What :meth:`PartitionLeases.rebalance` did and asks for."""

    claimed: list[Lease] = field(default_factory=list)  # newly ours: read their checkpoints
    release: list[Lease] = field(default_factory=list)  # finish the batch, then release()
    lost: list[int] = field(default_factory=list)  # no longer ours: stop at once
    target: int = 0  # this worker's share
    live_workers: int = 1


def _db_now() -> ColumnElement[datetime]:
    return func.clock_timestamp(type_=DateTime(timezone=True))


def targets(partitions: int, live: set[str], held: Counter[str]) -> dict[str, int]:
    """Each live worker's share: ``partitions // len(live)``, one more for the first
    ``partitions % len(live)`` workers when ordered by how many they hold (most first, then by
    id). Every worker computes the same shares from the same table, and those that hold the
    most keep the larger shares, so a rebalance moves as few partitions as it can."""
    order = sorted(live, key=lambda w: (-held[w], w))
    base, extra = divmod(partitions, len(order))
    return {w: base + (1 if i < extra else 0) for i, w in enumerate(order)}


class PartitionLeases:
    """One worker's leases. Thread-safe: :meth:`fence` may run in the processing threads while
    another thread renews and rebalances."""

    def __init__(
        self,
        engine: Engine,
        worker_id: str,
        partitions: int,
        *,
        ttl_s: float = 6.0,
        worker_ttl_s: float | None = None,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"partition leases need PostgreSQL, not {engine.dialect.name}")
        if not 0 < len(worker_id) <= 128:
            raise ValueError("a worker id has 1 to 128 characters")
        if partitions < 1 or ttl_s <= 0:
            raise ValueError("partitions and ttl_s must be positive")
        self.engine = engine
        self.worker_id = worker_id
        self.partitions = partitions
        self.ttl = timedelta(seconds=ttl_s)
        self.worker_ttl = timedelta(seconds=ttl_s if worker_ttl_s is None else worker_ttl_s)
        self._owned: dict[int, int] = {}  # partition -> epoch
        self._lock = threading.Lock()

    def _expiry(self) -> ColumnElement[datetime]:
        return _db_now() + self.ttl

    def ensure_partitions(self) -> None:
        """Create the partitions' rows on the cluster's first start; refuse another count."""
        with self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(partition_leases)).scalar_one() == 0:
                rows = [{"partition": p} for p in range(self.partitions)]
                # Workers starting together race here: the rows are inserted once.
                conn.execute(pg_insert(partition_leases).values(rows).on_conflict_do_nothing())
        with self.engine.connect() as conn:
            stats = conn.execute(
                select(func.count(), func.min(partition_leases.c.partition)).select_from(
                    partition_leases
                )
            ).one()
            self._check_count(stats[0], stats[1])

    def _check_count(self, count: int, lowest: int | None) -> None:
        # The partition column is the primary key: count N with lowest 0 and all < N is 0..N-1.
        if count != self.partitions or lowest != 0:
            raise PartitionCountError(
                f"the lease table has {count} partitions, this worker is configured with "
                f"{self.partitions}"
            )

    def heartbeat(self) -> None:
        """Say this worker is alive (:meth:`rebalance` does it too), and drop the rows of
        workers dead for long."""
        alive_until = _db_now() + self.worker_ttl
        stmt = pg_insert(cluster_workers).values(
            worker_id=self.worker_id,
            started_at=_db_now(),
            heartbeat_at=_db_now(),
            alive_until=alive_until,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[cluster_workers.c.worker_id],
            set_={"heartbeat_at": _db_now(), "alive_until": alive_until},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
            conn.execute(
                delete(cluster_workers).where(
                    cluster_workers.c.heartbeat_at
                    < _db_now() - timedelta(seconds=DEAD_WORKER_KEPT_S)
                )
            )

    def rebalance(self) -> Plan:
        """Heartbeat, claim free or expired partitions up to this worker's share, and say which
        owned partitions to hand back (the highest-numbered beyond the share) and which were
        lost. Claims skip rows locked by an owner's open commit rather than wait for them."""
        self.heartbeat()
        with self.engine.connect() as conn:
            # One snapshot for the workers and the leases: the shares add up.
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                live = set(
                    conn.execute(
                        select(cluster_workers.c.worker_id).where(
                            cluster_workers.c.alive_until >= _db_now()
                        )
                    ).scalars()
                )
                lapsed = or_(
                    partition_leases.c.expires_at.is_(None),
                    partition_leases.c.expires_at < _db_now(),
                )
                rows = conn.execute(
                    select(
                        partition_leases.c.partition,
                        partition_leases.c.owner,
                        partition_leases.c.epoch,
                        lapsed.label("lapsed"),
                    ).order_by(partition_leases.c.partition)
                ).all()
        # Also stops a worker still running with the count another worker's start refused.
        self._check_count(len(rows), rows[0].partition if rows else None)
        live.add(self.worker_id)
        by_partition = {r.partition: r for r in rows}
        with self._lock:
            lost = sorted(
                p
                for p, e in self._owned.items()
                if by_partition[p].owner != self.worker_id or by_partition[p].epoch != e
            )
            for p in lost:
                del self._owned[p]
            mine = dict(self._owned)
        held = Counter(r.owner for r in rows if r.owner in live and not r.lapsed)
        target = targets(self.partitions, live, held)[self.worker_id]
        claimed: list[Lease] = []
        release: list[Lease] = []
        if len(mine) < target:
            for r in sorted(
                (
                    r
                    for r in rows
                    if r.partition not in mine
                    and (r.owner is None or r.lapsed or r.owner == self.worker_id)
                ),
                key=lambda r: (self._claim_rank(r.owner, live), r.partition),
            ):
                if len(mine) + len(claimed) >= target:
                    break
                lease = self._claim(r.partition)
                if lease is not None:
                    claimed.append(lease)
        elif len(mine) > target:
            release = [Lease(p, e) for p, e in sorted(mine.items())[target:]]
        return Plan(claimed, release, lost, target, len(live))

    def _claim_rank(self, owner: str | None, live: set[str]) -> int:
        # Ours from an earlier process first, then free rows, then those of dead workers; a live
        # worker's expired lease last (it may only be late to renew).
        if owner == self.worker_id:
            return 0
        if owner is None:
            return 1
        return 2 if owner not in live else 3

    def _claim(self, partition: int) -> Lease | None:
        t = partition_leases
        claimable = (
            select(t.c.partition)
            .where(
                t.c.partition == partition,
                or_(t.c.owner.is_(None), t.c.expires_at < _db_now(), t.c.owner == self.worker_id),
            )
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with self.engine.begin() as conn:
            epoch = conn.execute(
                update(t)
                .where(t.c.partition == claimable)
                .values(owner=self.worker_id, epoch=t.c.epoch + 1, expires_at=self._expiry())
                .returning(t.c.epoch)
            ).scalar_one_or_none()
        if epoch is None:
            return None
        with self._lock:
            self._owned[partition] = epoch
        return Lease(partition, epoch)

    def renew(self) -> list[int]:
        """Extend every owned lease; return the partitions found no longer ours (stop them).
        An expired lease nobody claimed is still ours and is extended."""
        with self._lock:
            mine = dict(self._owned)
        if not mine:
            return []
        t = partition_leases
        with self.engine.begin() as conn:
            kept = set(
                conn.execute(
                    update(t)
                    .where(
                        t.c.owner == self.worker_id,
                        tuple_(t.c.partition, t.c.epoch).in_(list(mine.items())),
                    )
                    .values(expires_at=self._expiry())
                    .returning(t.c.partition)
                ).scalars()
            )
        lost = sorted(set(mine) - kept)
        self._forget(Lease(p, mine[p]) for p in lost)
        return lost

    def _forget(self, leases: Iterable[Lease]) -> None:
        with self._lock:
            for lease in leases:
                if self._owned.get(lease.partition) == lease.epoch:
                    del self._owned[lease.partition]

    def release(self, lease: Lease) -> bool:
        """Hand the partition back (after its last batch committed); whether it was still ours.
        The epoch stays: the next claim increments it."""
        t = partition_leases
        with self.engine.begin() as conn:
            count = conn.execute(
                update(t)
                .where(
                    t.c.partition == lease.partition,
                    t.c.owner == self.worker_id,
                    t.c.epoch == lease.epoch,
                )
                .values(owner=None, expires_at=None)
            ).rowcount
        self._forget([lease])
        return count == 1

    def fence(self, conn: Connection, lease: Lease) -> None:
        """Call first in the transaction that commits the partition's results and checkpoint:
        raises :class:`LeaseLost` (roll back) unless the lease is still ours, and otherwise
        locks the lease row until the commit and extends the lease.

        A transaction that commits several partitions fences them in ascending order, so
        that two such transactions cannot deadlock on the lease rows.
        The transaction is also limited to ``ttl_s`` idle between its statements: a worker
        paused inside it would otherwise hold the row lock, and so the partition, for as long
        as its connection lives; PostgreSQL ends the session instead, which rolls it back."""
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            raise ValueError("fence needs a transaction: the lock must last until the commit")
        t = partition_leases
        count = conn.execute(
            update(t)
            .where(
                t.c.partition == lease.partition,
                t.c.owner == self.worker_id,
                t.c.epoch == lease.epoch,
            )
            .values(expires_at=self._expiry())
        ).rowcount
        if count != 1:
            self._forget([lease])
            raise LeaseLost(lease.partition, lease.epoch)
        timeout_ms = max(1, int(self.ttl.total_seconds() * 1000))
        conn.execute(
            select(func.set_config("idle_in_transaction_session_timeout", str(timeout_ms), True))
        )

    def owned(self) -> list[Lease]:
        with self._lock:
            return [Lease(p, e) for p, e in sorted(self._owned.items())]

    def leave(self) -> None:
        """On a clean shutdown, after the last commit: free every lease in this worker's name
        and remove the worker, so the others take the partitions over at once."""
        with self.engine.begin() as conn:
            conn.execute(
                update(partition_leases)
                .where(partition_leases.c.owner == self.worker_id)
                .values(owner=None, expires_at=None)
            )
            conn.execute(
                delete(cluster_workers).where(cluster_workers.c.worker_id == self.worker_id)
            )
        with self._lock:
            self._owned.clear()
