"""deploy/patroni run for real: one etcd (from deploy/patroni/etcd.conf) and two Patroni
members (from deploy/patroni/patroni.yml) on the loopback address. nonsite's database is
written through the multi-host URL (``target_session_attrs=read-write``), the primary's
host "fails" (its Patroni and its PostgreSQL SIGKILLed at once), and Patroni alone promotes
the synchronous standby: every acknowledged commit is there, writes go on, and the killed
member, started again, rejoins as a replica (pg_rewind, no new copy). Then the operator's
commands: ``patronictl list``, and a switchover back (refused without the REST API's
password).

The configurations are the shipped ones with only the addresses, paths, watchdog, archive
command and timings changed (``render_patroni_config``), so the production settings that
matter (synchronous_mode, use_pg_rewind, the parameters, pg_hba with passwords, the
post-bootstrap script) are what runs here.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from nonsite.db import make_engine, migrate
from nonsite.embedded_broker import free_port
from nonsite.local_postgres import HOST, PrivatePostgres, alive, log_tail, postgres_bin_dir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DEPLOY = Path(__file__).parents[2] / "deploy" / "patroni"
PATRONI_TEMPLATE = DEPLOY / "patroni.yml"
ETCD_TEMPLATE = DEPLOY / "etcd.conf"
POST_BOOTSTRAP = DEPLOY / "post-bootstrap.sh"
INSTALL_HINT = (
    "`./dev test` installs them (apt-get install patroni etcd-server postgresql; "
    "Debian bookworm: patroni 3.0.2, etcd 3.4.23, PostgreSQL 15)"
)

# Test timings, not production's (ttl 30, loop_wait 10, retry_timeout 10): a failover within
# seconds. They keep Patroni's rule loop_wait + 2 * retry_timeout <= ttl.
TEST_TIMINGS = {"ttl": 10, "loop_wait": 2, "retry_timeout": 4}
PASSWORDS = {
    "PATRONI_SUPERUSER_PASSWORD": "test-superuser",
    "PATRONI_REPLICATION_PASSWORD": "test-replicator",
    "PATRONI_REWIND_PASSWORD": "test-rewind",
    "PATRONI_RESTAPI_USERNAME": "patroni",
    "PATRONI_RESTAPI_PASSWORD": "test-restapi",
    "NONSITE_DB_PASSWORD": "test-nonsite",
}
# The production addresses in the shipped files (db1-db3 and nonsite's network).
PRODUCTION_NETWORK = re.compile(r"10\.0\.0\.\d+/\d+")


def fail_without_tools() -> Path:
    """PostgreSQL's bin directory; the test fails (never skips) without Patroni or etcd."""
    missing = [tool for tool in ("patroni", "patronictl", "etcd") if not find_program(tool)]
    bin_dir = postgres_bin_dir()
    if bin_dir is None or not (bin_dir / "pg_rewind").exists():
        missing.append("PostgreSQL (initdb, pg_rewind)")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: {INSTALL_HINT}")
    assert bin_dir is not None
    return bin_dir


def find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")


@dataclass
class PostgresUser:
    """How to run Patroni: as root, as the user postgres (PostgreSQL refuses root);
    otherwise as ourselves."""

    prefix: list[str] = field(default_factory=list)
    owner: tuple[int, int] | None = None

    @classmethod
    def for_this_process(cls) -> PostgresUser:
        if os.geteuid() != 0:
            return cls()
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(f"running as root, Patroni runs as the user postgres: {INSTALL_HINT}")
        runuser = find_program("runuser") or "/usr/sbin/runuser"
        return cls([runuser, "-u", "postgres", "--"], (user.pw_uid, user.pw_gid))

    def give(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, *self.owner)


@dataclass
class Member:
    """One database host: a Patroni and the PostgreSQL it runs, its files in ``home``."""

    name: str
    home: Path
    pg_port: int
    rest_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.home / "patroni.yml"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "patroni.log"

    def start(self, user: PostgresUser, env: dict[str, str]) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*user.prefix, find_program("patroni") or "patroni", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: killed as one
            )

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """A host's loss: Patroni and PostgreSQL (Patroni starts it in a session of its
        own) SIGKILLed, each with its whole process group, no chance to hand over."""
        postmaster = self.postmaster_pid()
        groups = [self.process.pid] if self.process is not None else []
        if postmaster is not None:
            with contextlib.suppress(ProcessLookupError):
                groups.append(os.getpgid(postmaster))  # the session Patroni made for it
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while postmaster is not None and alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.05)

    def rest(self, path: str) -> tuple[int, Any]:
        """GET on this member's REST API: the status (0: no answer) and the JSON body."""
        url = f"http://{HOST}:{self.rest_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None
        except (OSError, ValueError):
            return 0, None

    def roles(self) -> dict[str, tuple[str, str]]:
        """Each member's role and state as this member's Patroni sees the cluster."""
        status, cluster = self.rest("/cluster")
        if status != 200 or not cluster:
            return {}
        return {m["name"]: (m["role"], m["state"]) for m in cluster.get("members", [])}


def render_patroni_config(
    template: dict[str, Any],
    member: Member,
    *,
    etcd_client: str,
    bin_dir: Path,
    archive: Path,
    post_bootstrap: Path,
    peer_auth: bool,
) -> dict[str, Any]:
    """The shipped configuration for ``member`` on the loopback address: only addresses,
    paths, the watchdog, the archive command and the timings changed."""
    config = copy.deepcopy(template)
    config["name"] = member.name
    rest = f"{HOST}:{member.rest_port}"
    config["restapi"].update(listen=rest, connect_address=rest)
    config["etcd3"]["hosts"] = [etcd_client]
    dcs = config["bootstrap"]["dcs"]
    dcs.update(TEST_TIMINGS)
    hba = [PRODUCTION_NETWORK.sub(f"{HOST}/32", line) for line in dcs["postgresql"]["pg_hba"]]
    if not peer_auth:  # not root: Patroni runs as this user, whom peer would not take as postgres
        hba = [line.replace(" peer", " trust") for line in hba]
    dcs["postgresql"]["pg_hba"] = list(dict.fromkeys(hba))  # db1-db3 are all 127.0.0.1 here
    # pgBackRest is deploy/pgbackrest's (and its test's): here a plain copy, shared by both.
    # One command, no shell: Patroni runs it itself before a pg_rewind.
    dcs["postgresql"]["parameters"]["archive_command"] = f"cp %p {archive}/%f"
    config["bootstrap"]["post_bootstrap"] = str(post_bootstrap)
    postgresql = config["postgresql"]
    postgresql.update(
        listen=f"{HOST}:{member.pg_port}",
        connect_address=f"{HOST}:{member.pg_port}",
        data_dir=str(member.data),
        bin_dir=str(bin_dir),
        pgpass=str(member.home / "pgpass"),
    )
    postgresql["parameters"].update(
        unix_socket_directories=str(member.home), log_directory=str(member.home / "log")
    )
    config["watchdog"] = {"mode": "off"}  # never arm this machine's watchdog
    # No pgBackRest repository here: replicas are copied from the primary, and a replica's
    # missing WAL comes from the same plain copy the archive_command makes.
    postgresql["create_replica_methods"] = ["basebackup"]
    postgresql.pop("pgbackrest")
    postgresql["recovery_conf"] = {"restore_command": f"cp {archive}/%f %p"}
    return config


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as systemd's EnvironmentFile reads them (no trailing comments)."""
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def start_etcd(home: Path, client_port: int, peer_port: int) -> subprocess.Popen[bytes]:
    """One etcd member configured by the shipped /etc/default/etcd, addresses changed."""
    home.mkdir()
    settings = read_env_file(ETCD_TEMPLATE)
    client, peer = f"http://{HOST}:{client_port}", f"http://{HOST}:{peer_port}"
    settings.update(
        ETCD_NAME="test",
        ETCD_DATA_DIR=str(home / "data"),
        ETCD_LISTEN_CLIENT_URLS=client,
        ETCD_ADVERTISE_CLIENT_URLS=client,
        ETCD_LISTEN_PEER_URLS=peer,
        ETCD_INITIAL_ADVERTISE_PEER_URLS=peer,
        ETCD_INITIAL_CLUSTER=f"test={peer}",
    )
    with (home / "etcd.log").open("ab") as log:
        process = subprocess.Popen(
            [find_program("etcd") or "etcd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", **settings},
            start_new_session=True,
        )

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    wait_until(healthy, 30, "etcd healthy", home / "etcd.log")
    used = re.findall(
        r"recognized and used environment variable (ETCD_\w+)=", log_tail(home / "etcd.log", 20_000)
    )
    assert set(settings) <= set(used), f"etcd ignored {set(settings) - set(used)}"
    return process


def wait_until(check: Callable[[], bool], timeout: float, what: str, *logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log}\n{log_tail(log, 3000)}" for log in logs)
            pytest.fail(f"no {what} within {timeout} s\n{tails}")
        time.sleep(0.2)


@dataclass
class Cluster:
    members: list[Member]
    user: PostgresUser
    env: dict[str, str]
    etcd_client: str
    archive: Path

    @property
    def logs(self) -> list[Path]:
        return [m.log_path for m in self.members]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def roles(self) -> dict[str, tuple[str, str]]:
        for member in self.members:
            seen = member.roles()
            if seen:
                return seen
        return {}

    def leader_with_sync_standby(self) -> tuple[Member, Member] | None:
        """The primary and its synchronous standby, once both run and the primary
        (REST ``/primary``) and PostgreSQL (``pg_stat_replication``) agree."""
        roles = self.roles()
        leaders = [
            n for n, (role, state) in roles.items() if role == "leader" and state == "running"
        ]
        syncs = [
            n
            for n, (role, state) in roles.items()
            if role == "sync_standby" and state in ("running", "streaming")
        ]
        if len(leaders) != 1 or not syncs:
            return None
        leader, standby = self.member(leaders[0]), self.member(syncs[0])
        if leader.rest("/primary")[0] != 200 or standby.rest("/replica")[0] != 200:
            return None
        status, info = leader.rest("/patroni")
        replication = (info or {}).get("replication", [])
        streaming_sync = [
            r
            for r in replication
            if r.get("sync_state") == "sync" and r.get("state") == "streaming"
        ]
        return (leader, standby) if status == 200 and streaming_sync else None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    bin_dir = fail_without_tools()
    user = PostgresUser.for_this_process()
    # The members' files in a short directory of /tmp (sockets' paths are at most 107 bytes;
    # the user postgres cannot enter /tmp/pytest-of-root), linked from tmp_path.
    base = Path(tempfile.mkdtemp(prefix="nonsite-patroni-"))
    (tmp_path / "patroni").symlink_to(base, target_is_directory=True)
    user.give(base)
    etcd = None
    members: list[Member] = []
    try:
        etcd_port = free_port()
        etcd = start_etcd(tmp_path / "etcd", etcd_port, free_port())
        archive = base / "archive"
        post_bootstrap = base / POST_BOOTSTRAP.name  # where the user postgres can read it
        shutil.copy(POST_BOOTSTRAP, post_bootstrap)
        post_bootstrap.chmod(0o755)
        template = yaml.safe_load(PATRONI_TEMPLATE.read_text())
        for name in ("db1", "db2"):
            member = Member(name, base / name, free_port(), free_port())
            member.home.mkdir()
            members.append(member)
            config = render_patroni_config(
                template,
                member,
                etcd_client=f"{HOST}:{etcd_port}",
                bin_dir=bin_dir,
                archive=archive,
                post_bootstrap=post_bootstrap,
                peer_auth=user.owner is not None,
            )
            member.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        archive.mkdir()
        for path in [archive, *(m.home for m in members)]:
            user.give(path)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **PASSWORDS}
        yield Cluster(members, user, env, f"{HOST}:{etcd_port}", archive)
    finally:
        for member in members:
            member.kill()
        if etcd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(etcd.pid, signal.SIGKILL)
            etcd.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def patronictl(cluster: Cluster, *args: str) -> str:
    """The operator's command, on the shipped configuration and Patroni's environment file
    (it reads the REST API's password from PATRONI_RESTAPI_*, as Patroni does)."""
    config = str(cluster.members[0].config_path)
    done = subprocess.run(
        [find_program("patronictl") or "patronictl", "-c", config, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=cluster.env,
    )
    assert done.returncode == 0, f"patronictl {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def post_without_password(member: Member, path: str, body: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://{HOST}:{member.rest_port}{path}", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def write_until_acknowledged(engine: sa.Engine, i: int, timeout: float) -> int:
    """Insert row ``i`` through the multi-host URL, again until a primary acknowledges it;
    the port of the server that did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text("INSERT INTO acked VALUES (:i) ON CONFLICT DO NOTHING"), {"i": i}
                )
                return int(conn.execute(sa.text("SELECT inet_server_port()")).scalar_one())
        except sa.exc.OperationalError:
            assert time.monotonic() < deadline, f"no primary took a write within {timeout} s"
            time.sleep(0.05)


def test_patroni_promotes_the_synchronous_standby_on_its_own_and_the_old_primary_rejoins(
    cluster: Cluster,
) -> None:
    started = time.monotonic()
    for member in cluster.members:
        member.start(cluster.user, cluster.env)
    pair: tuple[Member, Member] | None = None

    def formed() -> bool:
        nonlocal pair
        pair = cluster.leader_with_sync_standby()
        return pair is not None

    wait_until(formed, 60, "leader with a streaming synchronous standby", *cluster.logs)
    assert pair is not None
    lost, survivor = pair  # the primary's host will fail; its synchronous standby stays
    print(f"cluster formed in {time.monotonic() - started:.1f} s: {lost.name} leads")

    hosts = "&".join(f"host={HOST}:{m.pg_port}" for m in cluster.members)
    url = (
        f"postgresql+psycopg://nonsite:{PASSWORDS['NONSITE_DB_PASSWORD']}@/nonsite"
        f"?{hosts}&target_session_attrs=read-write"
    )
    engine = make_engine(url)
    try:
        migrate(engine)  # nonsite's own schema, as its role, through the multi-host URL
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE acked (i integer PRIMARY KEY)"))
            rows = conn.execute(
                sa.text(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('synchronous_standby_names', 'wal_level', 'archive_mode')"
                )
            ).all()
        settings = {str(name): str(value) for name, value in rows}
        # Patroni names the standby; the shipped parameters are in force.
        assert survivor.name in settings["synchronous_standby_names"]
        assert (settings["wal_level"], settings["archive_mode"]) == ("replica", "on")

        acked: list[int] = []
        commits: list[float] = []
        stop = threading.Event()

        def write() -> None:
            for i in itertools.count(1):
                while not stop.is_set():  # the same row until its commit is acknowledged
                    try:
                        with engine.begin() as conn:
                            conn.execute(
                                sa.text("INSERT INTO acked VALUES (:i) ON CONFLICT DO NOTHING"),
                                {"i": i},
                            )
                    except sa.exc.OperationalError:
                        time.sleep(0.05)  # no primary (yet): try again
                        continue
                    acked.append(i)
                    commits.append(time.monotonic())
                    break
                if stop.is_set():
                    return

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        wait_until(lambda: len(acked) >= 100, 30, "100 commits on the primary", *cluster.logs)

        killed = time.monotonic()
        lost.kill()
        dead = time.monotonic()  # commits acknowledged after this are the new primary's
        before = len(acked)

        def promoted() -> bool:
            return survivor.rest("/primary")[0] == 200

        wait_until(promoted, 60, f"{survivor.name} promoted by Patroni", *cluster.logs)
        promoted_after = time.monotonic() - killed
        wait_until(lambda: len(acked) >= before + 100, 60, "100 commits after the failover")
        stop.set()
        writer.join(30)
        first_write_after = min(t for t in commits if t > dead) - killed
        print(
            f"failover: {survivor.name} promoted {promoted_after:.1f} s after the kill, "
            f"first write {first_write_after:.1f} s after it (ttl {TEST_TIMINGS['ttl']} s, "
            f"loop_wait {TEST_TIMINGS['loop_wait']} s)"
        )
        assert first_write_after < TEST_TIMINGS["ttl"] + 3 * TEST_TIMINGS["loop_wait"] + 5

        with engine.connect() as conn:
            stored = [row[0] for row in conn.execute(sa.text("SELECT i FROM acked ORDER BY i"))]
            in_recovery = conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one()
        assert in_recovery is False
        # Every acknowledged commit, those before the kill included, once, no gap.
        assert stored == sorted(set(acked)) == list(range(1, len(stored) + 1))
        assert len(stored) >= before + 100

        # The killed host comes back: Patroni rewinds it and it follows the new primary.
        rejoin_started = time.monotonic()
        log_before = lost.log_path.stat().st_size
        lost.start(cluster.user, cluster.env)

        def rejoined() -> bool:
            return cluster.leader_with_sync_standby() == (survivor, lost)

        wait_until(rejoined, 90, f"{lost.name} back as the synchronous standby", *cluster.logs)
        print(f"{lost.name} rejoined as a replica in {time.monotonic() - rejoin_started:.1f} s")
        rejoin_log = lost.log_path.read_bytes()[log_before:].decode(errors="replace")
        assert "pg_rewind exit code=0" in rejoin_log, rejoin_log[-3000:]
        assert "basebackup" not in rejoin_log  # rewound, not copied anew
        replica = sa.create_engine(
            f"postgresql+psycopg://nonsite:{PASSWORDS['NONSITE_DB_PASSWORD']}"
            f"@{HOST}:{lost.pg_port}/nonsite"
        )
        try:
            with replica.connect() as conn:
                assert conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one() is True
                on_replica = conn.execute(sa.text("SELECT count(*) FROM acked")).scalar_one()
        finally:
            replica.dispose()
        assert on_replica == len(stored)

        # The operator's commands (docs/patroni.md) on the shipped configuration.
        listing = patronictl(cluster, "list")
        assert re.search(rf"\b{survivor.name}\b.*\bLeader\b", listing), listing
        assert re.search(rf"\b{lost.name}\b.*\bSync Standby\b", listing), listing
        # A switchover is refused without the REST API's password, done with it.
        switch = {"leader": survivor.name, "candidate": lost.name}
        assert post_without_password(survivor, "/switchover", switch) == 401
        switch_started = time.monotonic()
        patronictl(cluster, "switchover", "nonsite", "--leader", survivor.name,
                   "--candidate", lost.name, "--force")  # fmt: skip
        port = write_until_acknowledged(engine, len(stored) + 1, timeout=30)
        print(
            f"switchover to {lost.name}: first write {time.monotonic() - switch_started:.1f} s "
            "after `patronictl switchover` began"
        )
        assert port == lost.pg_port  # the same URL found the new primary

        def switched() -> bool:
            return cluster.leader_with_sync_standby() == (lost, survivor)

        wait_until(switched, 60, f"{survivor.name} back as the synchronous standby", *cluster.logs)
    finally:
        engine.dispose()

    # The promoted member archived its new timeline's history (archive_mode on).
    assert any(p.name.endswith(".history") for p in cluster.archive.iterdir())
    print(f"total {time.monotonic() - started:.1f} s")


def test_the_post_bootstrap_script_may_run_again(tmp_path: Path) -> None:
    """Patroni runs it after a bootstrap from a backup too, where the role and database came
    back with the restore: a second run changes nothing and does not fail."""
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None, "PostgreSQL's programs"
    server = PrivatePostgres(bin_dir, tmp_path / "pg", free_port(), database="postgres_extra")
    server.start()
    try:
        dsn = f"host={HOST} port={server.port} user=postgres dbname=postgres"
        env = {**os.environ, "NONSITE_DB_PASSWORD": "n0nsite-secret"}
        for _ in range(2):
            done = subprocess.run(
                ["sh", str(POST_BOOTSTRAP), dsn], env=env, capture_output=True, text=True,
                timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        url = f"postgresql+psycopg://nonsite:n0nsite-secret@{HOST}:{server.port}/nonsite"
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "nonsite"
        finally:
            engine.dispose()
    finally:
        server.stop(immediate=True)
