"""What the cluster benches share: the machine and its load, CPU per process over a window,
PostgreSQL databases and their backends, the stream seen from a client, role configurations.

The cluster itself is the test harness's (``tests/nonsite/cluster/harness.py``: ``Role``,
``LocalCluster``) and the single machine's drain is ``bench/e2e/phases.py``'s; this module only
adds what a benchmark needs beside them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import platform
import re
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.errors import NotFoundError
from prometheus_client.parser import text_string_to_metric_families

from bench.e2e.fleet import service_sections, write_toml
from bench.ingest_ratio import session_props, v5_client
from ingest.jetstream.loop import LoopThread
from ingest.jetstream.publisher import connect
from ingest.jetstream.stream import StreamSettings, ensure_stream, last_position, stored
from nonsite.cluster.nats_servers import NatsCluster, nats_server_binary
from nonsite.embedded_broker import free_port
from tests.brokers import Mosquitto, mosquitto_binary

ADMIN_DATABASE = "test"  # the machine's PostgreSQL: trust auth, this database exists


# --- the machine ------------------------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def machine(pg_url: str) -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            pg_version = str(conn.execute(sa.text("SHOW server_version")).scalar())
            fsync = str(conn.execute(sa.text("SHOW fsync")).scalar())
            sync_commit = str(conn.execute(sa.text("SHOW synchronous_commit")).scalar())
    finally:
        engine.dispose()
    disk = psutil.disk_partitions(all=False)
    root = next((d for d in disk if d.mountpoint == "/"), None)
    return {
        "platform": platform.platform(),
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "root_filesystem": None if root is None else f"{root.device} {root.fstype}",
        "python": platform.python_version(),
        "mosquitto": _first_line([mosquitto_binary(), "-h"]),
        "nats_server": _first_line([nats_server_binary(), "--version"]),
        "postgresql": pg_version,
        "postgresql_fsync": fsync,
        "postgresql_synchronous_commit": sync_commit,
        "shared": "yes: other sessions run tests on the same cores (see load)",
    }


def load() -> dict[str, Any]:
    """The machine's load now: the 1, 5 and 15 minute averages and ``uptime``'s line."""
    one, five, fifteen = os.getloadavg()
    return {
        "loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)],
        "uptime": _first_line(["uptime"]),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --- CPU per process over a window --------------------------------------------------------------


@dataclass
class _Track:
    born: float  # the process's start (wall clock)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall time, CPU s)


class CpuSampler:
    """User + system CPU seconds of labelled processes, sampled every ``every`` seconds on a
    thread of its own, so that the CPU of any window can be read afterwards (interpolated
    between samples). A label's processes are asked of a function at every round: processes
    that start later (a pipeline child, a new database backend) are picked up, and one that
    started after the sampler counts from zero at its start. A process that ended keeps its
    last sample (its last ``every`` seconds are lost)."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.started = time.time()
        self._sources: dict[str, Callable[[], Iterable[int]]] = {}
        self._members: dict[str, set[tuple[int, float]]] = defaultdict(set)
        self._tracks: dict[tuple[int, float], _Track] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def watch(self, label: str, pids: Callable[[], Iterable[int]]) -> None:
        with self._lock:
            self._sources[label] = pids

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        with self._lock:
            sources = list(self._sources.items())
        wanted: dict[int, set[str]] = defaultdict(set)
        for label, pids in sources:
            try:
                for pid in pids():
                    wanted[pid].add(label)
            except Exception:  # noqa: BLE001 - a source that fails this round is asked again
                continue
        for pid, labels in wanted.items():
            proc = self._procs.get(pid)
            try:
                if proc is None or not proc.is_running():
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    born = proc.create_time()
                    cpu = proc.cpu_times()
                now = time.time()
            except psutil.Error:
                continue
            key = (pid, born)
            with self._lock:
                track = self._tracks.setdefault(key, _Track(born))
                track.samples.append((now, cpu.user + cpu.system))
                for label in labels:
                    self._members[label].add(key)

    def _at(self, track: _Track, t: float) -> float:
        samples = track.samples
        if not samples:
            return 0.0
        if t <= samples[0][0]:
            if track.born >= self.started:  # started while watched: nothing before its start
                t0, c0 = samples[0]
                if t <= track.born:
                    return 0.0
                return c0 * (t - track.born) / max(t0 - track.born, 1e-9)
            return samples[0][1]
        if t >= samples[-1][0]:
            return samples[-1][1]
        i = bisect.bisect_right(samples, (t, float("inf")))
        (ta, ca), (tb, cb) = samples[i - 1], samples[i]
        return ca + (cb - ca) * (t - ta) / max(tb - ta, 1e-9)

    def cpu(self, label: str, t0: float, t1: float) -> float:
        """CPU seconds the label's processes spent between wall times ``t0`` and ``t1``."""
        with self._lock:
            tracks = [self._tracks[k] for k in self._members.get(label, ())]
            return sum(self._at(tr, t1) - self._at(tr, t0) for tr in tracks)

    def processes(self, label: str) -> int:
        with self._lock:
            return len(self._members.get(label, ()))

    def labels(self) -> list[str]:
        with self._lock:
            return list(self._sources)


def process_tree(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.Error:
        return []


def nats_pids(nats: NatsCluster, i: int) -> list[int]:
    """Node i's nats-server process (found by its config file among this process's children)."""
    conf = str(nats.config_path(i))
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if conf in child.cmdline():
                out.append(child.pid)
        except psutil.Error:
            continue
    return out


# --- PostgreSQL ------------------------------------------------------------------------------


def url_for(base: str, database: str) -> str:
    return sa.make_url(base).set(database=database).render_as_string(hide_password=False)


def create_database(base: str, name: str) -> str:
    """A fresh database ``name`` on ``base``'s server; its URL."""
    engine = sa.create_engine(url_for(base, ADMIN_DATABASE), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url_for(base, name)


def drop_database(base: str, name: str) -> None:
    engine = sa.create_engine(url_for(base, ADMIN_DATABASE), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def database_bytes(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    finally:
        engine.dispose()


class PgProcesses:
    """The PostgreSQL server's processes, for the CPU sampler: the backends serving one
    database (from ``pg_stat_activity``, asked every ``every`` seconds, without the bench's
    own connections), and the whole server (the postmaster and all its children: other
    databases' backends, the WAL writer, the checkpointer), an upper bound."""

    def __init__(self, base: str, every: float = 0.5, *, own_app: str = "nonsite-bench") -> None:
        self.own_app = own_app  # the application_name of the bench's connections: left out
        self.engine = sa.create_engine(url_for(base, ADMIN_DATABASE))
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        own = int(self.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        self.postmaster = psutil.Process(own).ppid()
        self.excluded: set[int] = {own}
        self.every = every
        self._cache: dict[str, tuple[float, list[int]]] = {}
        self._lock = threading.Lock()

    def exclude(self, pid: int) -> None:
        self.excluded.add(pid)

    def backends(self, database: str) -> Callable[[], list[int]]:
        def pids() -> list[int]:
            with self._lock:
                at, found = self._cache.get(database, (0.0, []))
                if time.monotonic() - at < self.every:
                    return found
                rows = self.conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                        "AND application_name IS DISTINCT FROM :app"
                    ),
                    {"db": database, "app": self.own_app},
                ).scalars()
                found = [int(p) for p in rows if int(p) not in self.excluded]
                self._cache[database] = (time.monotonic(), found)
                return found

        return pids

    def server(self) -> list[int]:
        return process_tree(self.postmaster)

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


class CheckpointPoller:
    """Every checkpoint of a database (consumer → position: a pack's stream sequence × 1024 +
    the member's index, ``ingest.jetstream.pack``) over one connection of its own, whose
    backend the CPU figures leave out."""

    def __init__(self, url: str, pg: PgProcesses | None = None) -> None:
        self.engine = sa.create_engine(url)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if pg is not None:
            pg.exclude(int(self.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()))

    def __call__(self, prefix: str = "ingest") -> dict[str, int]:
        try:
            rows = self.conn.execute(
                sa.text("SELECT consumer, seq FROM ingest_checkpoints WHERE consumer LIKE :p"),
                {"p": prefix + "%"},
            ).all()
        except sa.exc.ProgrammingError:  # not migrated yet
            self.conn.rollback()
            return {}
        return {str(c): int(s) for c, s in rows}

    def scalar(self, sql: str) -> Any:
        return self.conn.execute(sa.text(sql)).scalar()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


# --- the stream, from a client ----------------------------------------------------------------


@dataclass
class _Tally:
    """The received messages counted so far in one stream, by a subscription that reads it
    from its start as it fills."""

    members: int = 0


class StreamClient:
    """A NATS connection on a loop thread of its own, for the bench's questions.

    A stream message may be a pack of many received messages (``ingest.jetstream.pack``):
    what the bench counts and compares are the members (``ingest.jetstream.stream.stored``),
    never the stream's own message count or ``Nats-Msg-Id`` headers."""

    def __init__(self, urls: list[str], login: dict[str, str] | None = None) -> None:
        """``login``: ``connect``'s user and password where the servers require one."""
        self.loop = LoopThread("bench-nats")
        self.nc = self.loop.run(connect(urls, "bench", **(login or {})), 30.0)
        self.js = self.nc.jetstream(timeout=5.0)
        self._tallies: dict[str, _Tally] = {}
        self._subscriptions: list[Subscription] = []

    def ensure(self, settings: StreamSettings) -> None:
        self.loop.run(ensure_stream(self.js, settings), 30.0)

    def state(self, name: str) -> Any:
        return self.loop.run(self.js.stream_info(name), 10.0).state

    def count(self, name: str) -> int:
        """The received messages (pack members) stream ``name`` holds, as far as this client
        has read it: the first call starts a subscription that reads the stream from its start
        and counts as it fills, so the count lags the stream by a delivery (0 while the stream
        does not exist). Polling it costs nothing; reading the stream costs NATS a delivery
        per stream message (a pack)."""
        tally = self._tallies.get(name)
        if tally is None:
            try:
                tally = self.loop.run(self._tally(name), 30.0)
            except NotFoundError:  # not created yet: asked again at the next call
                return 0
            self._tallies[name] = tally
        return tally.members

    async def _tally(self, name: str) -> _Tally:
        tally = _Tally()

        async def on_message(msg: Msg) -> None:
            tally.members += len(stored(msg.metadata.sequence.stream, msg.data, msg.headers))

        self._subscriptions.append(
            await self.js.subscribe(
                ">",
                stream=name,
                ordered_consumer=True,
                idle_heartbeat=2.0,  # re-created after a server's death (the soak kills leaders)
                cb=on_message,
                config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL),
            )
        )
        return tally

    def last_positions(self, settings: StreamSettings) -> dict[int, int]:
        """Each partition's last position in the stream (its last member's: the pack's stream
        sequence × 1024 + its index), partitions without messages left out. A partition is
        caught up when its checkpoint is at least this."""

        async def ask() -> dict[int, int]:
            out = {}
            for p in range(settings.partitions):
                if last := await last_position(self.js, settings, p):
                    out[p] = last
            return out

        return self.loop.run(ask(), 60.0)

    def digests(self, name: str, after: int, until: int, timeout: float = 300.0) -> list[str]:
        """The digest (of topic and full payload, hex) of every received message held by the
        stream messages of stream ``name`` with a sequence in (``after``, ``until``]: each
        pack's members', read whole (a pack's ``Nats-Msg-Id`` is the pack's, not a message's)."""
        if until <= after:
            return []

        async def read() -> list[str]:
            out: list[str] = []
            done = asyncio.Event()

            async def on_message(msg: Msg) -> None:
                seq = msg.metadata.sequence.stream
                if seq <= until:
                    out.extend(m.digest.hex() for m in stored(seq, msg.data, msg.headers))
                if seq >= until:
                    done.set()

            sub = await self.js.subscribe(
                ">",
                stream=name,
                ordered_consumer=True,
                cb=on_message,
                config=api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=after + 1,
                ),
            )
            try:
                await asyncio.wait_for(done.wait(), timeout)
            finally:
                await sub.unsubscribe()
            return out

        return self.loop.run(read(), timeout + 10.0)

    def close(self) -> None:
        async def end() -> None:
            for sub in self._subscriptions:  # their heartbeat tasks end with them
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            await self.nc.close()

        try:
            self.loop.run(end(), 10.0)
        finally:
            self.loop.stop()


def directory_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (``du``'s figure: blocks, not apparent sizes)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


def apparent_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


# --- MQTT sessions and role configurations ------------------------------------------------------


def create_shared_session(broker: Mosquitto, client_id: str, group: str) -> None:
    """A persistent session for ``client_id`` in the shared-subscription group ``group`` (as an
    ingest node subscribes): the broker queues this member's share of what is published while
    the node is not there, and hands it over when the node connects with the same client id."""
    client = v5_client(client_id)
    done = threading.Event()
    client.on_subscribe = lambda *_a: done.set()
    client.connect(broker.host, broker.port, clean_start=False, properties=session_props())
    client.loop_start()
    client.subscribe([(f"$share/{group}/hj212/+", 1), (f"$share/{group}/power/+", 1)])
    if not done.wait(10):
        raise TimeoutError(f"no SUBACK for {client_id}")
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True)
class ClusterPlace:
    """Where a role's configuration points: the broker, NATS, the database, the webhook."""

    broker_url: str
    nats_urls: list[str]
    database_url: str
    webhook: str
    partitions: int = 16
    replicas: int = 3
    lease_ttl_s: float = 3.0
    stream: str = "NONSITE_RAW"
    subject_prefix: str = "nonsite.raw"
    group: str = "nonsite"


def role_config(data: dict[str, Any], workdir: Path, name: str, place: ClusterPlace) -> Path:
    """The fleet ``data`` with the sections a cluster role (``nonsite serve --role``) needs,
    written as ``<workdir>/<name>.toml``; the role logs to ``<name>.log`` beside it."""
    sections = service_sections(
        workdir / name, place.broker_url, free_port(), place.webhook, place.database_url
    )
    sections["mqtt"] |= {
        "client_id": name,
        "shared_group": place.group,
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
    }
    sections["cluster"] = {
        "nats": place.nats_urls,
        "stream": place.stream,
        "subject_prefix": place.subject_prefix,
        "partitions": place.partitions,
        "replicas": place.replicas,
        "lease_ttl_s": place.lease_ttl_s,
        "worker_id": name,
    }
    return write_toml(data | sections, workdir / f"{name}.toml")


def stream_settings_of(place: ClusterPlace, max_payload_bytes: int = 256 * 1024) -> StreamSettings:
    """The stream as the roles of ``place`` create it (``nonsite.cluster.scope.stream_settings``
    with the configuration's defaults for retention and the duplicate window)."""
    return StreamSettings(
        name=place.stream,
        subject_prefix=place.subject_prefix,
        partitions=place.partitions,
        replicas=place.replicas,
        max_age_s=90 * 86400.0,
        duplicate_window_s=600.0,
        max_payload_bytes=max_payload_bytes,
    )


def lease_owners(poller: CheckpointPoller) -> dict[str, int]:
    """Live leases per worker."""
    rows = poller.conn.execute(
        sa.text(
            "SELECT owner, count(*) FROM partition_leases WHERE owner IS NOT NULL "
            "AND expires_at > clock_timestamp() GROUP BY owner"
        )
    ).all()
    return {str(o): int(n) for o, n in rows}


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout} s")
        time.sleep(every)


def histograms(text: str, families: Iterable[str]) -> dict[str, dict[str, float]]:
    """Count and mean of each histogram family named (labels summed over), from /metrics."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "histogram" or family.name not in families:
            continue
        count = sum(s.value for s in family.samples if s.name.endswith("_count"))
        total = sum(s.value for s in family.samples if s.name.endswith("_sum"))
        out[family.name.removeprefix("nonsite_")] = {
            "count": count,
            "mean": round(total / count, 4) if count else 0.0,
        }
    return out


def metric_value(text: str, name: str) -> float:
    """The sum of a family's samples (``name`` without labels, or a full sample line's start)."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ")
    for line in text.splitlines():
        if pattern.match(line):
            total += float(line.rsplit(" ", 1)[1])
    return total
