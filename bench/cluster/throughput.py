"""The cluster path's throughput against single-node ``nonsite serve``, in one run on this machine.

One fleet traffic mix (the demo fleet's minute by minute, as ``bench/end_to_end.py`` uses:
CN 2011 real-time, CN 2051, 2061 and 2031 records and power JSON, with the scripted incidents
and an hourly exceedance on every tenth outlet) is queued once in one Mosquitto (loopback,
queues in memory) for every consumer: a persistent session for the single node, and one
shared-subscription group per cluster phase, whose members are the ingest nodes' sessions.
Then, one after the other:

a. **single node**: ``nonsite serve`` on PostgreSQL drains its session, timed as
   ``bench/end_to_end.py`` times it (``bench.e2e.phases.drain_serve``): from the first message
   archived until the pipeline's checkpoint reaches the archive's head.
b. **cluster**: Mosquitto → 2 ingest nodes → 3 NATS nodes (one JetStream stream, R3, file
   store) → 2 workers → PostgreSQL, each a real ``nonsite serve --role`` process. The workers
   are running and hold their partitions before the ingest nodes start; timed from the first
   message in the stream until every partition's checkpoint is at its last message.
c. **ingest alone**: two more ingest nodes drain their group's copy into a stream of their own
   that no worker reads (the bench counts its messages as it fills, a delivery per pack):
   MQTT → stream, from the first message stored to the last.
d. **workers alone**: two workers on a fresh database read stream (c) from its start; they hold
   back (every lease is held by a placeholder) until both are up, then the leases are freed:
   timed from then until every partition's checkpoint is at its last message.

The CPU of every process is sampled every 100 ms (psutil), and each phase reports CPU
microseconds per message by process kind over its window. PostgreSQL: the backends serving
the phase's database (``pg_stat_activity``, the bench's own connection left out), and the whole
server (all the postmaster's processes, other sessions' included) as an upper bound. Bytes per
message: the stream on disk (each node's store), its own accounting, and the database's size.

Writes bench/results/cluster_throughput.json (with the machine, its load at every phase, and
the scaling model of ``bench/cluster/model.py``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa

from bench.cluster import model
from bench.cluster.parts import (
    CheckpointPoller,
    ClusterPlace,
    CpuSampler,
    PgProcesses,
    StreamClient,
    apparent_bytes,
    create_database,
    create_shared_session,
    database_bytes,
    directory_bytes,
    drop_database,
    histograms,
    lease_owners,
    load,
    machine,
    metric_value,
    nats_pids,
    process_tree,
    role_config,
    stream_settings_of,
    url_for,
    wait_until,
)
from bench.e2e.fleet import bench_config, count_keys, service_sections, write_toml
from bench.e2e.observe import WebhookSink
from bench.e2e.phases import drain_serve, queue_for
from bench.e2e.traffic import describe, fleet_minutes, take
from bench.ingest_ratio import loopback_broker
from ingest.archive import message_digest
from nonsite.cluster.nats_servers import NatsCluster
from nonsite.db import make_engine, migrate
from nonsite.demo import history_start
from nonsite.embedded_broker import free_port
from nonsite.simulator.traffic import LOST_PREFIX, Message
from tests.brokers import Mosquitto
from tests.nonsite.cluster.harness import Role
from tests.service_process import ServiceProcess

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cluster_throughput.json"
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/test"
BENCH_APP = "nonsite-bench"  # the application_name of the bench's own connections
POLL_S = 0.1  # the stream and the checkpoints, asked this often
SAMPLE_S = 0.25  # CPU sampled this often
PHASE_TIMEOUT_S = 900.0
DECODED = "nonsite_ingest_decoded_messages_total"


@dataclass
class Run:
    """What every phase shares: the broker, NATS, the webhook, the sampler, PostgreSQL."""

    args: argparse.Namespace
    workdir: Path
    data: dict[str, Any]
    expected: int  # distinct messages: what the archive and the stream each store
    broker: Mosquitto
    sink: WebhookSink
    sampler: CpuSampler
    pg: PgProcesses
    nats: NatsCluster | None = None
    stream: StreamClient | None = None
    databases: list[str] = field(default_factory=list)
    empty_bytes: dict[str, int] = field(default_factory=dict)  # a migrated database's size

    def database(self, name: str) -> str:
        """A fresh, migrated database of its own (dropped at the end of the run)."""
        full = f"nonsite_cbench_{name}_{os.getpid()}"
        url = create_database(self.args.database_url, full)
        self.databases.append(full)
        engine = make_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        self.empty_bytes[url] = database_bytes(url)
        return url

    def growth(self, url: str) -> int:
        """What the run added to the database, in bytes."""
        return database_bytes(url) - self.empty_bytes[url]

    @property
    def cluster(self) -> tuple[NatsCluster, StreamClient]:
        assert self.nats is not None, "no NATS cluster running"
        assert self.stream is not None
        return self.nats, self.stream

    def watched(self, url: str) -> str:
        """The URL for the bench's own connections (left out of the backends' CPU)."""
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}application_name={BENCH_APP}"


def pids_of(roles: Iterable[Role]) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        return [
            pid
            for r in roles
            if r.proc is not None and r.proc.poll() is None
            for pid in process_tree(r.proc.pid)
        ]

    return pids


def per_message(
    run: Run, labels: Iterable[str], t0: float, t1: float, messages: int
) -> dict[str, float]:
    """CPU µs per message of each label over the window."""
    return {
        label: round(run.sampler.cpu(label, t0, t1) / messages * 1e6, 1)
        for label in labels
        if run.sampler.processes(label)
    }


def shares(run: Run, labels: Iterable[str], t0: float, t1: float) -> dict[str, float]:
    """Each label's CPU as a share of one core over the window."""
    return {
        label: round(run.sampler.cpu(label, t0, t1) / (t1 - t0), 3)
        for label in labels
        if run.sampler.processes(label)
    }


COMMON = ("mosquitto", "nats-0", "nats-1", "nats-2", "nats", "bench (observer)", "postgres server")
# What a message's path costs, without the bench and the server-wide upper bound.
PATH = ("mosquitto", "ingest nodes", "nats", "workers", "postgres backends")
SINGLE_PATH = ("mosquitto", "serve (service)", "serve (pipeline)", "postgres backends")


# --- a: the single node -------------------------------------------------------------------------


def single_node(run: Run) -> dict[str, Any]:
    url = run.database("single")
    name = sa.make_url(url).database
    assert name is not None
    data_dir = run.workdir / "serve"
    data_dir.mkdir()
    sections = service_sections(data_dir, run.broker.url, free_port(), run.sink.url, url)
    sections["mqtt"]["client_id"] = "bench-serve"
    path = write_toml(run.data | sections, run.workdir / "serve.toml")
    service = ServiceProcess(path, run.workdir / "serve.log")

    def main_pid() -> list[int]:
        return [service.proc.pid] if service.proc is not None else []

    def pipeline_pids() -> list[int]:
        return process_tree(service.proc.pid)[1:] if service.proc is not None else []

    run.sampler.watch("serve (service)", main_pid)
    run.sampler.watch("serve (pipeline)", pipeline_pids)
    run.sampler.watch("postgres backends", run.pg.backends(name))
    delivered_before = len(run.sink.received)
    before = load()
    try:
        drain = drain_serve(service, data_dir, run.watched(url), run.expected)
        after = load()
        archive = data_dir / "archive.sqlite3"
        db = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
        try:
            first_us = db.execute("SELECT min(received_us) FROM messages").fetchone()[0]
        finally:
            db.close()
        archive_bytes = archive.stat().st_size
        database = run.growth(url)
    finally:
        service.terminate()
    t0 = first_us / 1e6
    t1 = t0 + drain.seconds
    labels = ("serve (service)", "serve (pipeline)", "postgres backends", *COMMON)
    cpu = per_message(run, labels, t0, t1, run.expected)
    nonsite = cpu.get("serve (service)", 0.0) + cpu.get("serve (pipeline)", 0.0)
    return {
        "msgs_per_s": round(drain.rate),
        "seconds": round(drain.seconds, 2),
        "archived_msgs_per_s": round(drain.messages / drain.archive_seconds),
        "readings": int(metric_value(drain.metrics, "nonsite_ingest_readings_total")),
        "findings": int(metric_value(drain.metrics, "nonsite_findings_total")),
        "webhook_deliveries_during_run": len(run.sink.received) - delivered_before,
        "cpu_us_per_msg": cpu,
        "cpu_us_per_msg_nonsite": round(nonsite, 1),
        "cpu_us_per_msg_total": round(sum(cpu.get(k, 0.0) for k in SINGLE_PATH), 1),
        "cpu_share_of_a_core": shares(run, labels, t0, t1),
        "bytes_per_msg": {
            "archive_sqlite": round(archive_bytes / run.expected),
            "postgresql_growth": round(database / run.expected),
        },
        "load_before": before,
        "load_after": after,
    }


# --- b, c, d: the cluster ----------------------------------------------------------------------


@dataclass
class Progress:
    t_first: float = 0.0  # the first message in the stream (or the workers' start)
    t_stored: float = 0.0  # the stream holds every message
    t_done: float = 0.0  # every partition's checkpoint at its last message's position
    decoded_at_stored: float = 0.0
    # (t, received messages in the stream, decoded)
    samples: list[tuple[float, int, float]] = field(default_factory=list)


def decoded(workers: list[Role]) -> float:
    total = 0.0
    for w in workers:
        try:
            total += metric_value(w.metrics(), DECODED)
        except OSError:
            continue
    return total


def follow(
    run: Run,
    place: ClusterPlace,
    poller: CheckpointPoller | None,
    workers: list[Role],
    *,
    started: float = 0.0,
) -> Progress:
    """Poll the stream and the checkpoints until the stream holds every message (received
    messages, the members of its packs) and (with a poller) every partition's checkpoint is
    at its partition's last message (checkpoints and last messages both positions)."""
    _, stream = run.cluster
    settings = stream_settings_of(place)
    out = Progress(t_first=started)
    lasts: dict[int, int] | None = None  # each partition's last position, once all are stored
    count = 0
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    last_sample = 0.0
    while time.monotonic() < deadline:
        now = time.time()
        if not out.t_stored:
            count = stream.count(place.stream)
            if count and not out.t_first:
                out.t_first = now
            if count >= run.expected:
                out.t_stored = now
                if workers:
                    out.decoded_at_stored = decoded(workers)
                lasts = stream.last_positions(settings)
                if poller is None:
                    return out
        if lasts is not None and poller is not None:
            at = poller("ingest.p")
            if all(at.get(f"ingest.p{p}", 0) >= last for p, last in lasts.items()):
                out.t_done = time.time()
                return out
        if workers and now - last_sample >= 0.5:
            last_sample = now
            out.samples.append((round(now, 3), count, decoded(workers)))
        time.sleep(POLL_S)
    raise TimeoutError(f"{place.stream}: not done after {PHASE_TIMEOUT_S} s ({out})")


# Where a role's time goes: the ingest node's appends to the stream (its "archive commit") and
# their sizes; a worker's batches and transactions.
HISTOGRAMS = (
    "nonsite_archive_commit_seconds",
    "nonsite_archive_batch_messages",
    "nonsite_ingest_pipeline_batch_seconds",
    "nonsite_db_commit_seconds",
)


def role_histograms(roles: list[Role]) -> dict[str, dict[str, dict[str, float]]]:
    out = {}
    for r in roles:
        try:
            out[r.config.stem] = histograms(r.metrics(), HISTOGRAMS)
        except OSError:
            continue
    return out


def append_stalls(roles: list[Role]) -> dict[str, dict[str, int]]:
    """Per ingest node, from its log: appends to the stream that failed (each a wait of
    ``ack_timeout_s``, then the batch again) and NATS's 409 "duplicate message id is in
    process" answers (err_code 10158), which nats-py leaves unanswered (see appends.py)."""
    out = {}
    for r in roles:
        text = r.log.read_text(errors="replace") if r.log.exists() else ""
        out[r.config.stem] = {
            "append_failed": text.count("archive write failed"),
            "nats_409_in_process": text.count("err_code=10158"),
        }
    return out


def start_roles(run: Run, kind: str, names: list[str], place: ClusterPlace) -> list[Role]:
    roles = [Role(kind, role_config(run.data, run.workdir, n, place)) for n in names]
    for name, role in zip(names, roles, strict=True):
        run.sampler.watch(name, pids_of([role]))
    return roles


def stop_roles(roles: list[Role]) -> None:
    for role in roles:
        try:
            role.stop(30)
        except Exception:  # noqa: BLE001 - killed instead
            role.kill()


def stream_bytes(run: Run, name: str) -> dict[str, Any]:
    """The stream's size: its own accounting (one replica's stream messages, packs of many
    received messages each, and their bytes) and each node's store on disk (the stream's
    directory, and the whole store with the raft logs)."""
    nats, stream = run.cluster
    state = stream.state(name)
    nodes = []
    for i in range(nats.size):
        store = nats.store_dir(i)
        stream_dirs = list(store.glob(f"jetstream/*/streams/{name}"))
        nodes.append(
            {
                "node": nats.node_name(i),
                "stream_dir_on_disk": sum(directory_bytes(d) for d in stream_dirs),
                "stream_dir_apparent": sum(apparent_bytes(d) for d in stream_dirs),
                "store_on_disk": directory_bytes(store),
            }
        )
    return {"stream_messages": int(state.messages), "bytes": int(state.bytes), "nodes": nodes}


def with_leader(
    run: Run, cpu: dict[str, float], stream: str
) -> tuple[dict[str, float], str | None]:
    """``cpu`` with the stream leader's NATS node and the followers' mean named as such."""
    nats, _ = run.cluster
    leader = nats.stream_leader(stream)
    if leader is None:
        return cpu, None
    cpu["nats (stream leader)"] = cpu.get(f"nats-{leader}", 0.0)
    cpu["nats (each follower)"] = round(
        (cpu.get("nats", 0.0) - cpu["nats (stream leader)"]) / (nats.size - 1), 1
    )
    return cpu, nats.node_name(leader)


def cluster_path(run: Run, tag: str = "") -> dict[str, Any]:
    """Phase b: the whole cluster path (``tag`` names its roles and its broker group)."""
    nats, stream = run.cluster
    url = run.database(f"cluster{tag}")
    name = sa.make_url(url).database
    assert name is not None
    place = ClusterPlace(
        run.broker.url,
        nats.urls,
        url,
        run.sink.url,
        partitions=run.args.partitions,
        group=f"bench_b{tag}",
    )
    stream.ensure(stream_settings_of(place))
    store_before = [directory_bytes(nats.store_dir(i)) for i in range(nats.size)]
    worker_names = [f"worker-a{tag}", f"worker-b{tag}"]
    ingest_names = [f"ingest-a{tag}", f"ingest-b{tag}"]
    workers = start_roles(run, "worker", worker_names, place)
    ingest = start_roles(run, "ingest", ingest_names, place)
    run.sampler.watch("workers", pids_of(workers))
    run.sampler.watch("ingest nodes", pids_of(ingest))
    run.sampler.watch("postgres backends", run.pg.backends(name))
    poller = CheckpointPoller(run.watched(url))
    delivered_before = len(run.sink.received)
    try:
        for w in workers:
            w.start(timeout=120)
        share = run.args.partitions // len(workers)
        wait_until(
            lambda: sorted(lease_owners(poller).values()) == [share] * len(workers),
            120,
            "the workers' leases balanced",
            every=0.2,
        )
        time.sleep(2.0)  # the partitions opened (their readers subscribed)
        before = load()
        for r in ingest:
            r.start(wait_ready=False)
        progress = follow(run, place, poller, workers)
        after = load()
        time.sleep(2.0)  # the last batches' metrics
        final_decoded = decoded(workers)
        timings = role_histograms(ingest + workers)
        stalls = append_stalls(ingest)
        sizes = stream_bytes(run, place.stream)
        database = run.growth(url)
        t0, t1, ts = progress.t_first, progress.t_done, progress.t_stored
        n = run.expected
        labels = (*ingest_names, "ingest nodes", *worker_names, "workers", "postgres backends")
        labels = (*labels, *COMMON)
        cpu, leader = with_leader(run, per_message(run, labels, t0, t1, n), place.stream)
    finally:
        poller.close()
        stop_roles(ingest + workers)
    store_after = [directory_bytes(nats.store_dir(i)) for i in range(nats.size)]
    growth = [a - b for a, b in zip(store_after, store_before, strict=True)]
    tail_s = t1 - ts
    return {
        "msgs_per_s": round(n / (t1 - t0)),
        "seconds": round(t1 - t0, 2),
        "stream_filled_after_s": round(ts - t0, 2),
        "ingest_msgs_per_s_while_workers_run": round(n / (ts - t0)),
        "workers_decoded_when_stream_filled": int(progress.decoded_at_stored),
        "workers_tail_s": round(tail_s, 2),
        "workers_decoded_total": int(final_decoded),
        "stream_leader": leader,
        "partitions": run.args.partitions,
        "webhook_deliveries_during_run": len(run.sink.received) - delivered_before,
        "cpu_us_per_msg": cpu,
        "cpu_us_per_msg_total": round(sum(cpu.get(k, 0.0) for k in PATH), 1),
        "cpu_share_of_a_core": shares(run, labels, t0, t1),
        "stream": sizes,
        "store_growth_on_disk_per_node": growth,
        "bytes_per_msg": {
            "stream_accounting_one_replica": round(sizes["bytes"] / n),
            "stream_dir_on_disk_one_replica": round(
                sum(x["stream_dir_on_disk"] for x in sizes["nodes"]) / nats.size / n
            ),
            "store_growth_on_disk_one_replica": round(sum(growth) / nats.size / n),
            "postgresql_growth": round(database / n),
        },
        "histograms": timings,
        "append_stalls": stalls,
        "progress_t_stream_decoded": progress.samples,
        "load_before": before,
        "load_after": after,
    }


def ingest_alone(run: Run, place: ClusterPlace) -> dict[str, Any]:
    """Phase c: MQTT → the stream, nobody reading it."""
    _, stream = run.cluster
    stream.ensure(stream_settings_of(place))
    names = ["ingest-c", "ingest-d"]
    ingest = start_roles(run, "ingest", names, place)
    run.sampler.watch("ingest nodes", pids_of(ingest))
    before = load()
    try:
        for r in ingest:
            r.start(wait_ready=False)
        progress = follow(run, place, None, [])
        after = load()
        timings = role_histograms(ingest)
        stalls = append_stalls(ingest)
    finally:
        stop_roles(ingest)
    t0, t1 = progress.t_first, progress.t_stored
    labels = (*names, "ingest nodes", *COMMON)
    cpu, leader = with_leader(run, per_message(run, labels, t0, t1, run.expected), place.stream)
    return {
        "msgs_per_s": round(run.expected / (t1 - t0)),
        "seconds": round(t1 - t0, 2),
        "stream_leader": leader,
        "cpu_us_per_msg": cpu,
        "cpu_share_of_a_core": shares(run, labels, t0, t1),
        "histograms": timings,
        "append_stalls": stalls,
        "load_before": before,
        "load_after": after,
    }


def hold_leases(url: str, partitions: int) -> None:
    """The lease table with every partition held by a placeholder for an hour: workers that
    start find nothing to claim until the rows are freed."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM partition_leases"))
            conn.execute(
                sa.text(
                    "INSERT INTO partition_leases (partition, owner, epoch, expires_at) "
                    "SELECT p, 'bench-hold', 0, clock_timestamp() + interval '1 hour' "
                    "FROM generate_series(0, :n - 1) AS p"
                ),
                {"n": partitions},
            )
    finally:
        engine.dispose()


def workers_alone(run: Run, stream_place: ClusterPlace) -> dict[str, Any]:
    """Phase d: two workers read ``stream_place``'s stream (filled by phase c) from its start."""
    url = run.database("workers")
    name = sa.make_url(url).database
    assert name is not None
    hold_leases(url, run.args.partitions)
    place = replace(stream_place, database_url=url)
    names = ["worker-c", "worker-d"]
    workers = start_roles(run, "worker", names, place)
    run.sampler.watch("workers", pids_of(workers))
    run.sampler.watch("postgres backends", run.pg.backends(name))
    poller = CheckpointPoller(run.watched(url))
    try:
        for w in workers:
            w.start(timeout=120)

        def both_live() -> bool:
            n = poller.scalar(
                "SELECT count(*) FROM cluster_workers WHERE alive_until > clock_timestamp()"
            )
            return int(n or 0) == len(workers)

        wait_until(both_live, 60, "both workers registered", every=0.2)
        time.sleep(2.0)
        before = load()
        poller.conn.execute(sa.text("UPDATE partition_leases SET owner = NULL, expires_at = NULL"))
        released = time.time()
        progress = follow(run, place, poller, workers, started=released)
        after = load()
        database = run.growth(url)
        time.sleep(1.0)  # the last batches' metrics
        timings = role_histograms(workers)
    finally:
        poller.close()
        stop_roles(workers)
    first = next((t for t, _, d in progress.samples if d > 0), None)
    t0, t1 = released, progress.t_done
    labels = (*names, "workers", "postgres backends", *COMMON)
    return {
        "msgs_per_s": round(run.expected / (t1 - t0)),
        "seconds": round(t1 - t0, 2),
        "first_decoded_seen_after_s": None if first is None else round(first - t0, 2),
        "cpu_us_per_msg": per_message(run, labels, t0, t1, run.expected),
        "cpu_share_of_a_core": shares(run, labels, t0, t1),
        "bytes_per_msg": {"postgresql_growth": round(database / run.expected)},
        "histograms": timings,
        "load_before": before,
        "load_after": after,
    }


# --- the run -----------------------------------------------------------------------------------


def traffic(args: argparse.Namespace) -> tuple[dict[str, Any], list[Message], dict[str, Any]]:
    start = history_start(2, time.time())
    data, config, incidents, _ = bench_config(args.enterprises, 0, start, start + 3 * 86400, {})
    began = time.perf_counter()
    # What the simulator marks lost (a link down) no logger delivers: left out.
    stream = (
        m for m in fleet_minutes(config, incidents, start) if not m[0].startswith(LOST_PREFIX)
    )
    mix = take(stream, args.messages)
    if args.distinct:  # the resends (补发) left out: no message twice
        kept: dict[bytes, Message] = {}
        for m in mix:
            kept.setdefault(message_digest(*m), m)
        mix = list(kept.values())
    keys, meters = count_keys(config)
    fleet = {
        "enterprises": args.enterprises,
        "outlets": sum(len(e.outlets) for e in config.enterprises),
        "outlet_factor_keys": keys,
        "meters": meters,
        "generated_s": round(time.perf_counter() - began, 1),
    }
    return data, mix, fleet


def costs_of(result: dict[str, Any]) -> tuple[model.Costs, str]:
    """Per-message costs for the model: each side at its capacity when phases c and d ran
    (the ingest nodes and the stream's writes from c, the workers, PostgreSQL and the stream's
    deliveries from d: following live traffic, as in b, a worker commits many small batches
    and costs more per message than its capacity needs), else b's as measured."""
    b = result["cluster"]
    cpu_b = b["cpu_us_per_msg"]
    disk = b["bytes_per_msg"]
    stream_disk = max(
        disk["stream_dir_on_disk_one_replica"], disk["store_growth_on_disk_one_replica"]
    )
    c, d = result.get("ingest_alone"), result.get("workers_alone")
    if c and d:
        cc, dd = c["cpu_us_per_msg"], d["cpu_us_per_msg"]
        nats_d = [dd.get(f"nats-{i}", 0.0) for i in range(3)]
        return (
            model.Costs(
                mosquitto_us=cpu_b.get("mosquitto", 0.0),
                ingest_us=cc.get("ingest nodes", 0.0),
                nats_us=round(cc.get("nats", 0.0) + dd.get("nats", 0.0), 1),
                nats_leader_us=round(cc.get("nats (stream leader)", 0.0) + max(nats_d), 1),
                worker_us=dd.get("workers", 0.0),
                postgres_us=dd.get("postgres backends", 0.0),
                stream_disk_bytes=stream_disk,
                postgres_bytes=disk["postgresql_growth"],
                ingest_node_rate=c["msgs_per_s"] / 2,
                worker_rate=d["msgs_per_s"] / 2,
            ),
            "at capacity: ingest and stream writes from phase c, workers, PostgreSQL and "
            "deliveries from phase d; one ingest node's and one worker's rate from c and d",
        )
    return model.Costs(
        mosquitto_us=cpu_b.get("mosquitto", 0.0),
        ingest_us=cpu_b.get("ingest nodes", 0.0),
        nats_us=cpu_b.get("nats", 0.0),
        nats_leader_us=cpu_b.get("nats (stream leader)", cpu_b.get("nats", 0.0) / 3),
        worker_us=cpu_b.get("workers", 0.0),
        postgres_us=cpu_b.get("postgres backends", 0.0),
        stream_disk_bytes=stream_disk,
        postgres_bytes=disk["postgresql_growth"],
        ingest_node_rate=b["ingest_msgs_per_s_while_workers_run"] / 2,
    ), "as measured in phase b (the whole path)"


def scaling(result: dict[str, Any]) -> dict[str, Any]:
    costs, source = costs_of(result)
    return {
        **model.describe(),
        "costs_from": source,
        "costs_per_msg": {
            **{k: round(v, 1) for k, v in vars(costs).items()},
            "total_us": round(costs.total_us, 1),
        },
        "plans": model.scenarios(costs),
    }


def table(result: dict[str, Any]) -> str:
    a, b = result["single"], result["cluster"]
    c, d = result.get("ingest_alone"), result.get("workers_alone")
    b1 = result.get("cluster_gomaxprocs")
    lines = [
        f"{'path':<62}{'msgs/s':>9}",
        f"{'a. single node: nonsite serve on PostgreSQL':<62}{a['msgs_per_s']:>9,}",
        f"{'b. cluster: 2 ingest, 3 NATS (R3), 2 workers, PostgreSQL':<62}{b['msgs_per_s']:>9,}"
        f"   ratio b/a {result['ratio']:.2f} (goal ≥ 0.6)",
    ]
    if b1:
        lines.append(
            f"{'b1. the same, nats-server with GOMAXPROCS=' + str(b1['gomaxprocs']):<62}"
            f"{b1['msgs_per_s']:>9,}   ratio b1/a {b1['ratio']:.2f}"
        )
    if c:
        lines.append(f"{'c. ingest alone: MQTT → stream, 2 ingest nodes':<62}{c['msgs_per_s']:>9,}")
    if d:
        lines.append(
            f"{'d. workers alone: stream → PostgreSQL, 2 workers':<62}{d['msgs_per_s']:>9,}"
        )
    lines += [
        "",
        f"{'CPU µs per message':<32}" + "".join(f"{k:>9}" for k in ("a", "b", "b1", "c", "d")),
    ]
    phases = [a, b, b1 or {}, c or {}, d or {}]
    keys: list[str] = []
    for ph in phases:
        keys += [k for k in ph.get("cpu_us_per_msg", {}) if k not in keys]
    for k in keys:
        row = "".join(
            f"{ph['cpu_us_per_msg'][k]:>9.1f}" if k in ph.get("cpu_us_per_msg", {}) else f"{'':>9}"
            for ph in phases
        )
        lines.append(f"  {k:<30}{row}")
    lines.append(f"bytes per message: cluster {b['bytes_per_msg']}; single {a['bytes_per_msg']}")
    lines += ["", f"scaling model ({result['scaling']['costs_from']}; extrapolated):"]
    for row in result["scaling"]["plans"]:
        lines.append(
            f"  {row['scenario']:<58}{row['msgs_per_s']:>8,}/s  ingest {row['ingest']['processes']}"
            f"  workers {row['workers']['processes']} (partitions {row['workers']['partitions']})"
            f"  app nodes {row['app_nodes']}  NATS leader {row['nats']['leader_cores']} cores,"
            f" {row['nats']['stream_tb_per_node']} TB/node ({row['nats']['disks_per_node']} disks)"
            f"  PG {row['postgresql']['cores']} cores"
        )
    return "\n".join(lines)


@contextmanager
def nats_cluster(run: Run, where: Path, gomaxprocs: int = 0) -> Iterator[NatsCluster]:
    """A 3-node NATS cluster for ``run`` (``gomaxprocs``: its servers' GOMAXPROCS, 0 Go's own)."""
    nats = NatsCluster(where, 3)
    saved = os.environ.get("GOMAXPROCS")
    if gomaxprocs:
        os.environ["GOMAXPROCS"] = str(gomaxprocs)  # the servers inherit the environment
    try:
        nats.start()
    finally:
        if saved is None:
            os.environ.pop("GOMAXPROCS", None)
        else:
            os.environ["GOMAXPROCS"] = saved
    run.nats, run.stream = nats, StreamClient(nats.urls)
    try:
        yield nats
    finally:
        run.stream.close()
        run.nats = run.stream = None
        nats.stop()


def nats_watch(run: Run, i: int | None) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        if run.nats is None:
            return []
        nodes = range(run.nats.size) if i is None else [i]
        return [p for n in nodes for p in nats_pids(run.nats, n)]

    return pids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--enterprises", type=int, default=100, help="the demo fleet's size")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NONSITE_TEST_PG_URL", DEFAULT_PG),
        help="a PostgreSQL server (fresh databases are created on it and dropped)",
    )
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="leave the traffic's repeated messages (resends) out: the cluster's ingest then "
        "never has the same message in flight twice (see bench/cluster/appends.py)",
    )
    parser.add_argument("--skip-alone", action="store_true", help="no phases c and d")
    parser.add_argument(
        "--gomaxprocs",
        type=int,
        default=1,
        help="phase b again with the NATS servers' GOMAXPROCS at this (0: not again)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="work in this new directory and keep it")
    parser.add_argument(
        "--rescale",
        action="store_true",
        help="no run: recompute the scaling model of the results in --output and rewrite them",
    )
    args = parser.parse_args()
    args.database_url = url_for(args.database_url, "test")
    if args.rescale:
        done: dict[str, Any] = json.loads(args.output.read_text())
        done["scaling"] = scaling(done)
        args.output.write_text(json.dumps(done, indent=2, ensure_ascii=False) + "\n")
        print(table(done))
        return

    began = time.perf_counter()
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(args.database_url),
        "load_at_start": load(),
        "goal": {"ratio": 0.6},
        "distinct_only": args.distinct,
    }
    data, mix, result["fleet"] = traffic(args)
    expected = len({message_digest(t, p) for t, p in mix})
    result["messages"] = {"published": len(mix), "distinct": expected, "mix": describe(mix)}
    print(f"{len(mix):,} messages ({expected:,} distinct) generated", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            workdir = args.keep
        broker = loopback_broker(workdir)
        sink = WebhookSink()
        sink.start()
        sampler = CpuSampler(SAMPLE_S)
        pg = PgProcesses(args.database_url, own_app=BENCH_APP)
        run = Run(args, workdir, data, expected, broker, sink, sampler, pg)
        try:
            assert broker.proc is not None
            broker_pid = broker.proc.pid
            sampler.watch("mosquitto", lambda: [broker_pid])
            for i in range(3):
                sampler.watch(f"nats-{i}", nats_watch(run, i))
            sampler.watch("nats", nats_watch(run, None))
            sampler.watch("bench (observer)", lambda: [os.getpid()])
            sampler.watch("postgres server", pg.server)
            sampler.start()
            groups = {"bench_b": ["ingest-a", "ingest-b"], "bench_c": ["ingest-c", "ingest-d"]}
            if args.gomaxprocs:
                groups["bench_b1"] = ["ingest-a1", "ingest-b1"]
            for group, members in groups.items():
                for member in members:
                    create_shared_session(broker, member, group)
            queued = queue_for(broker, ["bench-serve"], mix)
            print(f"queued for {1 + len(groups)} consumers in {queued:.1f} s", flush=True)

            result["single"] = single_node(run)
            print(f"a. single node: {result['single']['msgs_per_s']:,} msgs/s", flush=True)
            with nats_cluster(run, workdir / "nats") as nats:
                result["cluster"] = cluster_path(run)
                result["ratio"] = round(
                    result["cluster"]["msgs_per_s"] / result["single"]["msgs_per_s"], 3
                )
                print(
                    f"b. cluster: {result['cluster']['msgs_per_s']:,} msgs/s "
                    f"(ratio {result['ratio']})",
                    flush=True,
                )
                if not args.skip_alone:
                    place_c = ClusterPlace(
                        broker.url,
                        nats.urls,
                        args.database_url,  # not used by ingest nodes; phase d has its own
                        sink.url,
                        partitions=args.partitions,
                        stream="BENCH_INGEST",
                        subject_prefix="bench.ingest",
                        group="bench_c",
                    )
                    result["ingest_alone"] = c = ingest_alone(run, place_c)
                    print(f"c. ingest alone: {c['msgs_per_s']:,} msgs/s", flush=True)
                    result["workers_alone"] = d = workers_alone(run, place_c)
                    print(f"d. workers alone: {d['msgs_per_s']:,} msgs/s", flush=True)
            if args.gomaxprocs:
                with nats_cluster(run, workdir / "nats-b1", args.gomaxprocs):
                    b1 = cluster_path(run, "1")
                b1["gomaxprocs"] = args.gomaxprocs
                b1["ratio"] = round(b1["msgs_per_s"] / result["single"]["msgs_per_s"], 3)
                result["cluster_gomaxprocs"] = b1
                print(f"b1. cluster, GOMAXPROCS={args.gomaxprocs}: {b1['msgs_per_s']:,} msgs/s")
        finally:
            sampler.stop()
            pg.close()
            sink.stop()
            broker.stop(kill=True)
            for name in run.databases:
                drop_database(args.database_url, name)
    result["scaling"] = scaling(result)
    result["load_at_end"] = load()
    result["run_s"] = round(time.perf_counter() - began)
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(result))
    print(f"run {result['run_s']} s; written to {args.output}")


if __name__ == "__main__":
    main()
