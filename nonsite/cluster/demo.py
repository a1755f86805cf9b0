"""``nonsite demo --cluster``: the cluster on one machine, with the demo's simulated fleet.

What it starts, in this order, each on a free loopback port, in a demo directory
(``demo-data/cluster/`` unless ``--data-dir``): PostgreSQL (a private server made with the
machine's ``initdb`` and ``pg_ctl``, under ``postgres/``, trust authentication, its socket there
too; or the empty database ``--database-url`` names), 3 NATS nodes (``nonsite.cluster.
nats_servers``), Mosquitto (or the broker ``--broker`` names: it must have MQTT 5 shared
subscriptions, ``$share/...``, by which the ingest nodes share the fleet's messages; the
embedded broker of ``nonsite demo``, amqtt, has none, so it cannot serve), then 2 ingest nodes,
2 workers and a web node as child processes (``python -m nonsite serve --role ...``), each with
its configuration (``<name>.toml``) and log (``<name>.log``) in the demo directory. Then the
single-node demo's simulated fleet and script (``nonsite.demo``: the same configuration, users,
incidents and pace, ``--speed``, ``--days``, ``--enterprises``) publishes to the broker, every
logger over MQTT (the cluster has no HJ 212 TCP gateway), and it prints a table of where each
part is, the dashboard and the logins, and a status line.

History is held back while the workers are behind the stream by more than ``nonsite.demo.
LAG_LIMIT`` messages (the stream's last sequence of a partition less its checkpoint in
PostgreSQL), as the single-node demo holds it back for its pipeline.

Each run starts afresh: a previous cluster demo's directory is emptied (its PostgreSQL stopped
first if it was left running); a directory holding anything else is refused. The private
PostgreSQL runs with ``fsync=off``: a demo's data are not worth a disk flush.

Stopping: Ctrl-C (SIGINT) or SIGTERM, at any moment, stops everything in the reverse order of
its start: the simulator, the web node, the workers, the ingest nodes (each SIGTERMed and
waited for, SIGKILLed after ``STOP_GRACE_S``), the broker, the NATS nodes, PostgreSQL; a child
that died meanwhile is said and skipped. Every child runs in a session of its own, so that a
terminal's Ctrl-C reaches only the demo, which stops them in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext

from ingest.jetstream.loop import LoopThread
from ingest.jetstream.pack import split_position
from ingest.jetstream.publisher import connect
from ingest.jetstream.stream import last_position, stored
from ingest.store import checkpoints
from nonsite.cluster.nats_auth import generated_passwords
from nonsite.cluster.nats_servers import NatsCluster
from nonsite.cluster.processes import stop_all
from nonsite.cluster.scope import nats_login, stream_settings
from nonsite.cluster.worker import checkpoint_name
from nonsite.config.load import parse_config
from nonsite.config.model import Config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.db import make_engine
from nonsite.demo import (
    DEMO_PASSWORD,
    DEMO_USERS,
    LAG_LIMIT,
    METER_BATCH_MIN,
    DemoSettings,
    check_port,
    cli_name,
    demo_config,
    ensure_users,
    history_start,
    offline_after,
    play,
    shown_path,
    status_line,
    to_toml,
)
from nonsite.embedded_broker import free_port
from nonsite.errors import StartupError
from nonsite.local_postgres import (
    INSTALL_POSTGRES,
    PrivatePostgres,
    pg_temp_target,
    postgres_bin_dir,
)
from nonsite.local_postgres import (
    log_tail as _tail,
)
from nonsite.simulator.publisher import Progress, Publisher
from nonsite.simulator.traffic import FleetTraffic
from rules.timebase import DAY

log = logging.getLogger("nonsite.demo_cluster")

HOST = "127.0.0.1"
MARKER = "README.txt"
MARKER_HEADER = "nonsite demo --cluster: the demo directory of a cluster on this machine"
STOP_GRACE_S = 30.0  # a role's orderly stop (SIGTERM), before SIGKILL
READY_TIMEOUT_S = 90.0  # the roles' /readyz after their start
LOG_TAIL_CHARS = 2000
DATABASE = "nonsite"
PG_DIR = "postgres"
INSTALL_MOSQUITTO = "apt-get install mosquitto"


@dataclass
class ClusterDemoSettings:
    """The single-node demo's settings (``demo.data_dir``: the demo directory; ``demo.broker``:
    a broker with shared subscriptions instead of Mosquitto; ``demo.http_port``: the web
    node's), and what a cluster adds."""

    demo: DemoSettings
    database_url: str | None = None  # an empty PostgreSQL database instead of a private server
    nats_nodes: int = 3
    ingest_nodes: int = 2
    workers: int = 2


# -- what is installed -----------------------------------------------------------------------


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").is_file():
        found = "/usr/sbin/mosquitto"
    return found


# -- the demo directory -------------------------------------------------------------------


def prepare_cluster_dir(path: Path, pg_bin: Path | None) -> bool:
    """An empty demo directory; True when a previous cluster demo's files were removed (its
    PostgreSQL stopped first, if a demo killed outright left it running). A directory holding
    files no cluster demo wrote is refused."""
    path.mkdir(parents=True, exist_ok=True)
    entries = sorted(path.iterdir())
    if not entries:
        return False
    if not _is_marker(path / MARKER):
        names = ", ".join(e.name for e in entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise StartupError(
            f"{path} holds files that no `nonsite demo --cluster` wrote ({names}): the demo "
            "starts afresh and removes only its own; choose another --data-dir, or empty it"
        )
    pg_home = path / PG_DIR
    if pg_bin is not None and (pg_home / "data" / "postmaster.pid").exists():
        PrivatePostgres(pg_bin, pg_home, 0).stop(immediate=True)
    temp = pg_temp_target(pg_home)
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


def _is_marker(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().rstrip("\n") == MARKER_HEADER
    except OSError:
        return False


def write_marker(path: Path) -> None:
    (path / MARKER).write_text(
        f"{MARKER_HEADER}\n"
        "(written by `nonsite demo --cluster`; the next run empties this directory).\n"
        "<role>.toml and <role>.log: each role's configuration and log; nats/: the NATS nodes;\n"
        "mosquitto/: the MQTT broker; postgres/: the private PostgreSQL.\n",
        encoding="utf-8",
    )


# -- PostgreSQL ------------------------------------------------------------------------------


def refuse_used_database(url: str) -> None:
    """``--database-url`` must name an empty database (or one without a cluster's
    checkpoints): the stream starts empty, and checkpoints of a previous run would be ahead of
    it, so that the workers skipped the new data."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(checkpoints.name):
                return
            used = conn.execute(sa.select(sa.func.count()).select_from(checkpoints)).scalar_one()
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is said the same way
        raise StartupError(f"--database-url: cannot use {_hidden(url)}: {exc}") from None
    finally:
        engine.dispose()
    if used:
        raise StartupError(
            f"--database-url: {_hidden(url)} holds a previous run's stream checkpoints; the demo "
            "starts with an empty stream: give it an empty database"
        )


def _hidden(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


# -- Mosquitto ---------------------------------------------------------------------------------


class DemoMosquitto:
    """Mosquitto with a generated configuration (as ``tests/brokers.py`` runs it): loopback,
    anonymous, large queues, its log in ``workdir``."""

    def __init__(self, binary: str, workdir: Path, port: int) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.conf = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} {HOST}\n"
            "allow_anonymous true\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 0\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log_path}\n" + ("user root\n" if os.geteuid() == 0 else ""),
            # As root, Mosquitto drops to the user mosquitto, who cannot write here.
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(  # noqa: S603 - the machine's mosquitto, our config file
            [self.binary, "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartupError(
                    f"Mosquitto exited ({self.proc.returncode}) at its start:\n"
                    f"{_tail(self.log_path)}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.05)
        raise StartupError(f"Mosquitto does not listen on {HOST}:{self.port} after {timeout} s")

    def stop(self) -> None:
        _stop_process(self.proc, STOP_GRACE_S)


def _stop_process(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the roles -----------------------------------------------------------------------------------


@dataclass
class RoleProcess:
    """``python -m nonsite serve --role <role>`` with its configuration ``<name>.toml`` and
    log ``<name>.log`` in the demo directory."""

    name: str
    role: str
    config: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.config.with_suffix(".log")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, our arguments
                [
                    *(sys.executable, "-m", "nonsite", "serve"),
                    *("--role", self.role, "--config", str(self.config)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped by the demo, in order
            )

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def stop_roles(group: Sequence[RoleProcess], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM every role of ``group`` at once, then wait; SIGKILL those left after ``grace``."""
    stop_all((r.proc for r in group if r.proc is not None), grace)


def wait_ready(group: Sequence[RoleProcess], stop: threading.Event, timeout: float) -> bool:
    """Until every role of ``group`` answers /readyz with 200; False if told to stop first.
    A role that exits, or is not ready in time, is a StartupError with the end of its log."""
    deadline = time.monotonic() + timeout
    waiting = list(group)
    while waiting:
        for r in waiting:
            code = r.exit_code()
            if code is not None:
                raise StartupError(
                    f"{r.name} (nonsite serve --role {r.role}) exited with status {code} at its "
                    f"start; the end of {shown_path(r.log_path)}:\n{_tail(r.log_path)}"
                )
        waiting = [r for r in waiting if not r.ready()]
        if not waiting:
            return True
        if time.monotonic() > deadline:
            names = ", ".join(r.name for r in waiting)
            logs = "\n".join(
                f"--- {shown_path(r.log_path)}\n{_tail(r.log_path, 800)}" for r in waiting
            )
            raise StartupError(f"{names} not ready after {timeout:g} s:\n{logs}")
        if stop.wait(0.2):
            return False
    return True


def role_data(
    base: dict[str, Any],
    *,
    name: str,
    port: int,
    demo_dir: Path,
    broker: str,
    database_url: str,
    nats: Sequence[str],
    nats_login: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A role's configuration: the demo's (the fleet, the script's orders, the rules' and
    alerts' settings) with its own address, data directory and client id, and the cluster's
    parts."""
    data = copy.deepcopy(base)
    data.pop("tcp", None)  # no HJ 212 TCP gateway in the cluster
    data["service"] = {
        "data_dir": str((demo_dir / name).resolve()),
        "http_listen": f"{HOST}:{port}",
    }
    data["database"] = {"url": database_url}
    data["mqtt"] = {
        "url": broker,
        "client_id": f"nonsite-{name}",
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 2.0,
    }
    data["cluster"] = {"nats": list(nats), "replicas": min(3, len(nats)), "worker_id": name}
    for key, value in (nats_login or {}).items():  # this role's NATS user and password
        data["cluster"][f"nats_{key}"] = value
    return data


def write_role_config(data: dict[str, Any], path: Path, role: str) -> Path:
    header = (
        f"# nonsite demo --cluster: the configuration of {path.stem} (nonsite serve --role "
        f"{role}),\n# written at the demo's start; the next run replaces it.\n\n"
    )
    path.write_text(header + to_toml(data), encoding="utf-8")
    return path


# -- how far behind the workers are -------------------------------------------------------------


class StreamBacklog:
    """The messages the workers have still to judge: the received messages (members of the
    stream's packs) after each partition's checkpoint, summed over the partitions, counted by
    reading them from the stream every half second on a thread of its own. The count stops at
    ``count_max`` (a larger backlog reads as that): the history waits while the backlog is
    above ``LAG_LIMIT``, so a larger one means partitions nobody judges for a while (a worker
    stopped, its leases not yet taken over), and reading all of them every half second would
    cost more than the figure is worth. ``value`` is the last measure (0 until the first)."""

    count_max = 10 * LAG_LIMIT
    read_timeout_s = 5.0  # a partition's read; a measure that fails leaves ``value`` as it was

    def __init__(self, config: Config, engine: sa.Engine) -> None:
        self.settings = stream_settings(config)
        self.nats = config.cluster.nats
        self.login = nats_login(config)
        self.engine = engine
        self.value = 0
        self._loop = LoopThread("demo-backlog")
        self._nc: NatsClient | None = None

    def measure(self) -> int:
        # Checkpoints first: what is stored after them is still to judge, or arrived since.
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(checkpoints.c.consumer, checkpoints.c.seq)).all()
        done = {str(consumer): int(pos) for consumer, pos in rows}  # positions
        return self._loop.run(self._behind(done), 30.0)

    async def _behind(self, done: Mapping[str, int]) -> int:
        if self._nc is None:
            self._nc = await connect(self.nats, "nonsite-demo-backlog", **self.login)
        js = self._nc.jetstream()
        behind = 0
        for p in range(self.settings.partitions):
            checkpoint = done.get(checkpoint_name(p), 0)
            last = await last_position(js, self.settings, p)  # 0: the partition is empty
            if last > checkpoint:
                behind += await self._members_after(
                    js, p, checkpoint, last, self.count_max - behind
                )
            if behind >= self.count_max:
                return self.count_max
        return behind

    async def _members_after(
        self, js: JetStreamContext, partition: int, checkpoint: int, last: int, limit: int
    ) -> int:
        """The partition's members at positions in (``checkpoint``, ``last``], counted up to
        ``limit``: its stream messages read from the pack holding the checkpoint."""
        last_seq, _ = split_position(last)
        counted = 0
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_message(msg: Msg) -> None:
            nonlocal counted
            if finished.done():
                return
            meta = msg.metadata
            members = stored(meta.sequence.stream, msg.data, msg.headers)
            counted += sum(1 for m in members if checkpoint < m.message.seq <= last)
            if meta.sequence.stream >= last_seq or counted >= limit or meta.num_pending == 0:
                finished.set_result(None)

        sub = await js.subscribe(
            self.settings.subject(partition),
            stream=self.settings.name,
            ordered_consumer=True,
            cb=on_message,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=max(1, split_position(checkpoint)[0]),
            ),
        )
        try:
            await asyncio.wait_for(finished, self.read_timeout_s)
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone: ephemeral anyway
                await sub.unsubscribe()
        return min(counted, limit)

    def run(self, halt: threading.Event) -> None:
        while not halt.wait(0.5):
            try:
                self.value = self.measure()
            except Exception:
                log.debug("measuring the backlog failed", exc_info=True)

    def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                self._loop.run(self._nc.close(), 5.0)
        self._loop.stop()
        self.engine.dispose()


# -- the table -------------------------------------------------------------------------------


def table(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """Rows of (role, address, pid, log) as aligned columns under a header."""
    lines = [("role", "address", "pid", "log"), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths, strict=True))
        + "  "
        + line[3]
        for line in lines
    )


# -- running -----------------------------------------------------------------------------------


class _Ports:
    """Free loopback ports, none handed out twice (``free_port`` lets its port go)."""

    def __init__(self, taken: Iterable[int]) -> None:
        self.taken = set(taken)

    def __call__(self) -> int:
        while True:
            port = free_port(HOST)
            if port not in self.taken:
                self.taken.add(port)
                return port


def run_cluster_demo(cs: ClusterDemoSettings, stop: threading.Event) -> int:
    """Run the cluster demo until ``stop`` (set by SIGTERM or Ctrl-C: the CLI's handlers stay
    installed throughout) or ``--duration``; 0 after an orderly stop."""
    s = cs.demo
    check_port(s.http_port)
    pg_bin = None if cs.database_url else postgres_bin_dir()
    if cs.database_url is None and pg_bin is None:
        raise StartupError(
            "PostgreSQL is not installed: the cluster demo starts a private PostgreSQL with its "
            f"initdb and pg_ctl; install them (`{INSTALL_POSTGRES}`, or ./dev demo-cluster does "
            "it), or give an empty database with --database-url postgresql+psycopg://..."
        )
    mosquitto = None if s.broker else mosquitto_binary()
    if s.broker is None and mosquitto is None:
        raise StartupError(
            f"Mosquitto is not installed: install it (`{INSTALL_MOSQUITTO}`, or ./dev "
            "demo-cluster does it), or give a broker with MQTT 5 shared subscriptions with "
            "--broker mqtt://...; the single-node demo's embedded broker (amqtt) has no "
            "shared subscriptions ($share/...), by which the ingest nodes share the fleet"
        )
    if cs.database_url is not None:
        refuse_used_database(cs.database_url)
    for name in ("httpx", "nats"):  # a line per NATS health poll would bury the table
        logging.getLogger(name).setLevel(logging.WARNING)
    cleared = prepare_cluster_dir(s.data_dir, pg_bin)
    write_marker(s.data_dir)
    with contextlib.ExitStack() as stack:
        return _run(cs, stop, stack, pg_bin, mosquitto, cleared)


def _run(
    cs: ClusterDemoSettings,
    stop: threading.Event,
    stack: contextlib.ExitStack,
    pg_bin: Path | None,
    mosquitto_bin: str | None,
    cleared: bool,
) -> int:
    s = cs.demo
    demo_dir = s.data_dir
    # Each role logs in to NATS as its own user, as deploy/nats/ has it.
    nats = NatsCluster(demo_dir / "nats", cs.nats_nodes, passwords=generated_passwords())
    port = _Ports([*nats.client_ports, *nats.route_ports, *nats.http_ports, s.http_port])
    broker = (
        None
        if mosquitto_bin is None
        else DemoMosquitto(mosquitto_bin, demo_dir / "mosquitto", port())
    )
    broker_url = s.broker or (broker.url if broker else "")
    pg = None if pg_bin is None else PrivatePostgres(pg_bin, demo_dir / PG_DIR, port())
    database_url = cs.database_url or (pg.url if pg else "")

    # The single-node demo's configuration and script, on the cluster's broker.
    s = replace(s, broker=broker_url)
    now = time.time()
    start = history_start(s.days, now)
    _config, incidents, base = demo_config(s, start, int(now) + DAY)
    names = (
        [(f"ingest-{i + 1}", "ingest") for i in range(cs.ingest_nodes)]
        + [(f"worker-{i + 1}", "worker") for i in range(cs.workers)]
        + [("web", "web")]
    )
    roles: list[RoleProcess] = []
    web_data: dict[str, Any] = {}
    for name, role in names:
        http = s.http_port if role == "web" else port()
        data = role_data(
            base,
            name=name,
            port=http,
            demo_dir=demo_dir,
            broker=broker_url,
            database_url=database_url,
            nats=nats.urls,
            nats_login=nats.login(role),
        )
        path = write_role_config(data, demo_dir / f"{name}.toml", role)
        roles.append(RoleProcess(name, role, path, http))
        if role == "web":
            web_data = data
    config = parse_config(copy.deepcopy(web_data), "web.toml", env={})
    ingest = [r for r in roles if r.role == "ingest"]
    workers = [r for r in roles if r.role == "worker"]
    web = next(r for r in roles if r.role == "web")

    heading: list[str] = []

    def stopping(what: str, action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if not heading:
                heading.append(what)
                print("\nstopping, in reverse order:", end="", flush=True)
            try:
                action()
            except Exception:
                log.exception("stopping %s failed", what)
            print(f" {what}", end="", flush=True)

        return run

    def stopped_before_start() -> int:
        print("nonsite demo --cluster: stopped while it started.", end="", flush=True)
        return 0

    stack.callback(print, "\nnonsite demo --cluster stopped.", flush=True)
    print(f"nonsite demo --cluster: starting in {shown_path(demo_dir)}/ ...", flush=True)
    if pg is not None:
        stack.callback(stopping("postgresql", pg.stop))
        pg.start()
        if stop.is_set():
            return stopped_before_start()
    stack.callback(stopping("nats", nats.stop))
    nats.start()
    if stop.is_set():
        return stopped_before_start()
    if broker is not None:
        stack.callback(stopping("mosquitto", broker.stop))
        broker.start()
    ensure_users(config)  # the schema and the demo's logins, before any role starts
    if stop.is_set():
        return stopped_before_start()
    # The ingest nodes first (they make the stream), then the workers and the web node.
    stack.callback(stopping(" ".join(r.name for r in reversed(ingest)), lambda: stop_roles(ingest)))
    for r in ingest:
        r.start()
    if not wait_ready(ingest, stop, READY_TIMEOUT_S):
        return stopped_before_start()
    stack.callback(
        stopping(" ".join(r.name for r in reversed(workers)), lambda: stop_roles(workers))
    )
    stack.callback(stopping(web.name, lambda: stop_roles([web])))
    for r in [*workers, web]:
        r.start()
    if not wait_ready([*workers, web], stop, READY_TIMEOUT_S):
        return stopped_before_start()

    _print_table(cs, nats, broker, broker_url, pg, database_url, roles)
    web_url = f"{web.url}/"
    print(f"nonsite demo --cluster: dashboard {web_url}  (broker {broker_url})", flush=True)
    for username, role, name, _scope in DEMO_USERS:
        print(f"  {role:<11} {username} / {DEMO_PASSWORD}   {name}", flush=True)
    print(
        f"演示剧本 (China time; history at {s.speed:g}× the clock, then live; a logger is "
        f"offline after {offline_after(s)} s of silence; every logger over MQTT):",
        flush=True,
    )
    for incident in incidents:
        print(f"  {incident.describe()}", flush=True)
    cli = cli_name()
    print(
        f"{'previous cluster demo removed; ' if cleared else ''}configurations and logs in "
        f"{shown_path(demo_dir)}/. The command line on the cluster's database:\n"
        f"  NONSITE_CONFIG={shown_path(web.config)} {cli} cases list\n"
        "Stop a worker or an ingest node (kill <pid>) to see the others take over; "
        "Ctrl-C stops everything.",
        flush=True,
    )

    # The fleet, as the single-node demo's: history fast, then live.
    traffic = FleetTraffic(
        config, seed=s.seed, incidents=incidents, since=start, meter_batch_min=METER_BATCH_MIN
    )
    backlog = StreamBacklog(config, make_engine(database_url))
    halt = threading.Event()
    latest: dict[str, Progress] = {}
    failed: list[BaseException] = []
    measuring = threading.Thread(target=backlog.run, args=(halt,), name="backlog", daemon=True)
    measuring.start()

    def simulate() -> None:
        try:
            publisher = Publisher(parse_broker_url(broker_url), client_id="nonsite-demo-simulator")
            try:
                play(
                    traffic,
                    publisher,
                    start=start,
                    speed=s.speed,
                    halt=halt,
                    backlog=lambda: backlog.value,
                    on_progress=lambda p: latest.update(p=p),
                )
            finally:
                publisher.close()
        except Exception as exc:  # noqa: BLE001 - said on the status line's terminal
            failed.append(exc)

    simulator = threading.Thread(target=simulate, name="simulator", daemon=True)

    def stop_simulator() -> None:
        halt.set()
        simulator.join(30)
        measuring.join(15)
        backlog.close()

    stack.callback(stopping("simulator", stop_simulator))
    simulator.start()

    watched: list[tuple[str, Callable[[], int | None], Path]] = [
        (r.name, r.exit_code, r.log_path) for r in roles
    ]
    if broker is not None and broker.proc is not None:
        watched.append(("mosquitto", broker.proc.poll, broker.log_path))
    said: set[str] = set()
    began = time.monotonic()
    while not stop.is_set():
        if s.duration_s is not None and time.monotonic() - began >= s.duration_s:
            break
        for name, code_of, log_path in watched:
            code = code_of()
            if code is not None and name not in said:
                said.add(name)
                print(
                    f"\n{name} exited with status {code}; its log: {shown_path(log_path)}",
                    flush=True,
                )
        if failed and "simulator" not in said:
            said.add("simulator")
            print(f"\nthe simulator stopped: {failed[0]!r}", flush=True)
        try:
            line = status_line(config, latest.get("p"), traffic.realtime)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL stopped from outside: said, go on
            line = f"数据库无应答 ({type(exc).__name__})"
        lag = backlog.value
        behind = f" · 待处理 {lag:,} 条" if lag > LAG_LIMIT // 10 else ""
        print(f"\r{line}{behind}   ", end="", flush=True)
        stop.wait(2.0)
    return 0


def _print_table(
    cs: ClusterDemoSettings,
    nats: NatsCluster,
    broker: DemoMosquitto | None,
    broker_url: str,
    pg: PrivatePostgres | None,
    database_url: str,
    roles: Sequence[RoleProcess],
) -> None:
    rows: list[tuple[str, str, str, str]] = []
    if pg is not None:
        rows.append(("postgresql", pg.url, str(pg.pid() or "?"), shown_path(pg.log_path)))
    else:
        rows.append(("postgresql", _hidden(database_url), "-", "(--database-url)"))
    procs = nats._procs  # the pids, for the table
    for i in range(nats.size):
        proc = procs[i]
        rows.append(
            (
                f"nats-{i + 1}",
                f"{nats.url(i)} (monitor :{nats.http_ports[i]})",
                str(proc.pid) if proc is not None else "?",
                shown_path(nats.log_path(i)),
            )
        )
    if broker is not None:
        pid = str(broker.proc.pid) if broker.proc is not None else "?"
        rows.append(("mosquitto", broker.url, pid, shown_path(broker.log_path)))
    else:
        rows.append(("mqtt broker", broker_url, "-", "(--broker)"))
    for r in roles:
        address = f"{r.url}/" if r.role == "web" else r.url
        pid = str(r.proc.pid) if r.proc is not None else "?"
        rows.append((r.name, address, pid, shown_path(r.log_path)))
    print(
        f"nonsite demo --cluster: {len(rows)} processes on this machine "
        f"({cs.nats_nodes} NATS nodes, {cs.ingest_nodes} ingest nodes, {cs.workers} workers, "
        f"a web node; each role answers /readyz, /healthz and /metrics on its address):",
        flush=True,
    )
    print(table(rows), flush=True)
    print(flush=True)


__all__ = [
    "ClusterDemoSettings",
    "DemoMosquitto",
    "PrivatePostgres",
    "StreamBacklog",
    "postgres_bin_dir",
    "prepare_cluster_dir",
    "role_data",
    "run_cluster_demo",
    "table",
]
