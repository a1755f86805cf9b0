"""A cluster on this machine for tests: Mosquitto, NATS nodes, PostgreSQL, and nonsite's roles
as real child processes (``nonsite serve --role ingest|worker``), each killable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from ingest.jetstream.stream import StreamSettings, stored
from nonsite.cluster.nats_auth import generated_passwords
from nonsite.cluster.nats_servers import NatsCluster
from nonsite.embedded_broker import free_port
from tests.brokers import Mosquitto
from tests.service_config import write_lines
from tests.service_process import gas_packet

PW = "123456"


def enterprise_lines(n: int, *, meters: bool = False) -> list[str]:
    """``n`` enterprises E000.., each with a coal boiler's gas outlet MN{i:04d} (the preset's
    SO2 limit) and, with ``meters``, a production meter m{i:04d}."""
    lines: list[str] = []
    for i in range(n):
        lines += [
            "[[enterprises]]",
            f'id = "E{i:03d}"',
            f'name = "企业{i:03d}"',
            "[[enterprises.outlets]]",
            'id = "DA001"',
            'kind = "gas"',
            f'mn = "MN{i:04d}"',
            f'pw = "{PW}"',
            'preset = "thermal_power_coal_boiler"',
        ]
        if meters:
            lines += ["[[enterprises.meters]]", f'id = "m{i:04d}"', 'role = "production"']
    return lines


def hour_frames(
    enterprises: int, hour0: datetime, hours: int, so2_of: dict[int, float]
) -> list[tuple[str, bytes]]:
    """Six 10-minute packets an hour from every enterprise's outlet, one more that closes
    the last hour; enterprise i sends ``so2_of.get(i, 40)`` mg/m³."""
    out = []
    for h in range(hours):
        for k in range(6):
            at = hour0 + timedelta(hours=h, minutes=10 * k)
            for i in range(enterprises):
                out.append(
                    (f"hj212/MN{i:04d}", gas_packet(f"MN{i:04d}", PW, at, so2_of.get(i, 40.0)))
                )
    closing = hour0 + timedelta(hours=hours, minutes=10)
    for i in range(enterprises):
        out.append((f"hj212/MN{i:04d}", gas_packet(f"MN{i:04d}", PW, closing, 40.0)))
    return out


class Role:
    """``nonsite serve --role <role>`` as a child process, with its own configuration."""

    def __init__(self, role: str, config: Path) -> None:
        self.role = role
        self.config = config
        self.log = config.with_suffix(".log")
        text = config.read_text()
        self.http = "http://" + text.split('http_listen = "', 1)[1].split('"', 1)[0]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, *, wait_ready: bool = True) -> Role:
        env = {**os.environ, "NONSITE_LOG_LEVEL": "INFO"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nonsite",
                    "serve",
                    "--role",
                    self.role,
                    "--config",
                    str(self.config),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if not wait_ready:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited with {self.proc.returncode}: {self.tail()}")
            if self.ready():
                return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.role} not ready after {timeout} s: {self.tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http}/readyz", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class LocalCluster:
    """Mosquitto, a NATS cluster and a PostgreSQL schema; roles added with :meth:`role`."""

    def __init__(
        self,
        workdir: Path,
        pg_url: str,
        enterprise_config: Iterable[str],
        *,
        nats_nodes: int = 3,
        partitions: int = 8,
        lease_ttl_s: float = 3.0,
    ) -> None:
        self.workdir = workdir
        self.pg_url = pg_url
        self.mosquitto = Mosquitto(workdir / "mosquitto")
        # The deploy files' logins and permissions (nonsite.cluster.nats_auth): every role
        # logs in as its own user, so a permission a role lacks fails the tests.
        self.nats = NatsCluster(workdir / "nats", nats_nodes, passwords=generated_passwords())
        self.partitions = partitions
        self.lease_ttl_s = lease_ttl_s
        self.replicas = min(3, nats_nodes)
        self.enterprise_config = list(enterprise_config)
        self.roles: list[Role] = []

    def start(self) -> LocalCluster:
        self.mosquitto.start()
        self.nats.start()
        return self

    def config(self, name: str, extra: Iterable[str] = (), *, role: str = "worker") -> Path:
        urls = ", ".join(f'"{u}"' for u in self.nats.urls)
        lines = [
            "[database]",
            f'url = "{self.pg_url}"',
            "[service]",
            f'data_dir = "{self.workdir / name}"',
            f'http_listen = "127.0.0.1:{free_port()}"',
            "[mqtt]",
            f'url = "{self.mosquitto.url}"',
            f'client_id = "{name}"',
            "reconnect_min_s = 0.2",
            "reconnect_max_s = 1.0",
            "[cluster]",
            f"nats = [{urls}]",
            f"partitions = {self.partitions}",
            f"replicas = {self.replicas}",
            f"lease_ttl_s = {self.lease_ttl_s}",
            f'worker_id = "{name}"',
            *(f'nats_{key} = "{value}"' for key, value in self.nats.login(role).items()),
            *extra,
            *self.enterprise_config,
        ]
        return write_lines(self.workdir / f"{name}.toml", lines)

    def role(self, role: str, name: str, *, start: bool = True) -> Role:
        process = Role(role, self.config(name, role=role))
        self.roles.append(process)
        return process.start() if start else process

    def stop(self) -> None:
        for process in self.roles:
            try:
                process.stop(30)
            except Exception:  # noqa: BLE001 - killed instead; the test has its result
                process.kill()
        self.nats.stop()
        self.mosquitto.stop(kill=True)

    def logs(self, chars: int = 3000) -> str:
        """The end of each role's log, without the lines every run repeats."""
        out = []
        for r in self.roles:
            lines = [
                line
                for line in r.tail(200_000).splitlines()
                if "httpx:" not in line and "shared with" not in line
            ]
            out.append(f"=== {r.role} {r.config.stem}\n" + "\n".join(lines)[-chars:])
        return "\n".join(out)


def checkpoints(db: sa.Engine) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT consumer, seq FROM ingest_checkpoints WHERE consumer LIKE 'ingest.p%'")
        ).all()
    return {str(c): int(p) for c, p in rows}


def stream_digests(nats: NatsCluster, stream: str = "NONSITE_RAW") -> list[str]:
    """Every received message's digest (of its topic and payload) the stream holds, each as
    many times as it is stored."""
    return [digest for _, _, digest in stream_messages(nats, stream)]


def settled(db: sa.Engine, nats: NatsCluster, stream: str = "NONSITE_RAW") -> bool:
    """Whether every partition's checkpoint has reached its last message in the stream."""
    return not behind(db, nats, stream)


def behind(db: sa.Engine, nats: NatsCluster, stream: str = "NONSITE_RAW") -> dict[str, object]:
    """The partitions whose checkpoint is short of their last message: (checkpoint, last),
    and the leases, for a failure's message."""
    last: dict[str, int] = {}
    settings = StreamSettings(name=stream)
    for subject, position, _ in stream_messages(nats, stream):
        name = f"ingest.p{settings.partition_of(subject)}"
        last[name] = max(position, last.get(name, 0))
    done = checkpoints(db)
    short = {n: (done.get(n, 0), seq) for n, seq in last.items() if done.get(n, 0) < seq}
    if not short:
        return {}
    with db.connect() as conn:
        leases = conn.execute(sa.text("SELECT * FROM partition_leases ORDER BY 1")).all()
    return {"behind": short, "leases": [tuple(r) for r in leases]}


def stream_messages(nats: NatsCluster, stream: str = "NONSITE_RAW") -> list[tuple[str, int, str]]:
    """(subject, position, digest in hex) of every received message the stream holds, in
    order (the members of its packs)."""
    import asyncio

    import nats as nats_client
    from nats.js import api

    async def read() -> list[tuple[str, int, str]]:
        nc = await nats_client.connect(servers=nats.urls, **nats.login("web"))
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            sub = await js.subscribe(
                ">",
                stream=stream,
                ordered_consumer=True,
                config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL),
            )
            ids = []
            for _ in range(info.state.messages):
                msg = await sub.next_msg(timeout=10)
                seq = msg.metadata.sequence.stream
                for member in stored(seq, msg.data, msg.headers):
                    ids.append((msg.subject, member.message.seq, member.digest.hex()))
            await sub.unsubscribe()
            return ids
        finally:
            await nc.close()

    return asyncio.run(read())


def findings_json(config: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nonsite",
            "findings",
            "--config",
            str(config),
            "--json",
            "--limit",
            "1000000",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


def replay_json(config: Path, frames_file: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nonsite",
            "replay",
            "--config",
            str(config),
            "--no-absence",
            str(frames_file),
        ],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines()]
