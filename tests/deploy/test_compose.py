"""The deployment files agree with each other, with the documentation and with the code.

No Docker engine is needed: the compose file is read as YAML with Compose's variable
interpolation applied, and every path it mounts, every service it names and every port it
publishes is checked against the repository, docs/operations.md and nonsite's own
configuration loader. Mosquitto's configuration and the systemd units are parsed and checked
for the settings the guide promises (tests/deploy/test_mosquitto.py runs the broker itself).
"""

from __future__ import annotations

import configparser
import inspect
import json
import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from nonsite.cli import build_parser
from nonsite.config.load import ENV_OVERRIDES, load_config
from nonsite.config.model import ChannelConfig, MqttSection
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.pipeline_process import PipelineProcess
from nonsite.report.pdf import FONT_CANDIDATES

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
MOSQUITTO_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
SYSTEMD = DEPLOY / "systemd"

SERVICES = {"mosquitto", "postgres", "nonsite", "prometheus", "grafana"}
# What deploy/.env provides; any value will do for reading the file.
SECRETS = {
    "NONSITE_MQTT_PASSWORD": "mqtt-secret",
    "POSTGRES_PASSWORD": "pg-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}
# The SIGTERM drain's own limits (nonsite/service.py: archiver flush 30 s; the pipeline's
# drain, PipelineProcess.stop; then its exit: 10 s + the longest channel timeout, at most the
# configuration's bound, for a notification in flight; 5 s to terminate).
PIPELINE_STOP_S = inspect.signature(PipelineProcess.stop).parameters["timeout"].default
CHANNEL_TIMEOUT_MAX_S = ChannelConfig.model_fields["timeout_s"].metadata[-1].le
DRAIN_S = 30 + PIPELINE_STOP_S + 10 + CHANNEL_TIMEOUT_MAX_S + 5

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation: $$, $VAR, ${VAR}, ${VAR:?err}, ${VAR:-default}; any
    other $ is an error, as it is for Compose."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        if m["invalid"] is not None:
            raise ValueError(f"invalid interpolation at {value[m.start() :]!r}")
        name = m["braced"] or m["plain"]
        op, arg = m["op"], m["arg"]
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if missing and op is not None and op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        if missing and op is not None and op.endswith("-"):
            return arg
        return current or ""

    return _VARIABLE.sub(one, value)


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(raw_compose(), SECRETS if env is None else env)


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def mounts(service: str) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each volume entry (short syntax)."""
    out = []
    for entry in services()[service].get("volumes", []):
        source, target, *mode = entry.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path → repository path of the service's bind mounts."""
    return {
        target: (DEPLOY / source).resolve()
        for source, target, _ in mounts(service)
        if source.startswith((".", "/"))
    }


def host_path(service: str, container_path: str) -> Path:
    """The repository file a container path of a service comes from (through a bind mount)."""
    path = PurePosixPath(container_path)
    for target, source in bind_mounts(service).items():
        if path == PurePosixPath(target):
            return source
        if PurePosixPath(target) in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted from the repository in {service}")


def published(service: str) -> dict[int, int]:
    """Host port → container port."""
    out = {}
    for entry in services()[service].get("ports", []):
        *_, host, container = str(entry).split(":")
        out[int(host)] = int(container.split("/")[0])
    return out


def documented_ports() -> dict[str, set[int]]:
    text = OPERATIONS.read_text()
    section = text.split("### Ports", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| ([a-z]+) \| (\d+|not published) \|", section, flags=re.M)
    assert rows, "no ports table in docs/operations.md"
    table: dict[str, set[int]] = {}
    for service, port in rows:
        table.setdefault(service, set())
        if port != "not published":
            table[service].add(int(port))
    return table


def nonsite_environment() -> dict[str, str]:
    env = services()["nonsite"]["environment"]
    return {k: str(v) for k, v in env.items()}


def seconds(text: str) -> float:
    """A Compose or systemd duration: 3m, 180s, 1m30s, 2h."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(a + b for a, b in parts) == text.replace(" ", ""), text
    return sum(float(n) * units[u] for n, u in parts)


# -- compose ---------------------------------------------------------------------------------


def test_compose_is_yaml_with_the_five_services_and_declared_volumes():
    doc = raw_compose()
    assert set(doc["services"]) == SERVICES
    named = {s for svc in SERVICES for s, _, _ in mounts(svc) if not s.startswith((".", "/"))}
    assert named == set(doc["volumes"])


def test_compose_refuses_to_start_without_its_secrets():
    for name in SECRETS:
        env = {k: v for k, v in SECRETS.items() if k != name}
        with pytest.raises(KeyError, match=name):
            compose(env)


def test_published_ports_are_the_documented_ones():
    documented = documented_ports()
    assert set(documented) == SERVICES
    for service in SERVICES:
        ports = published(service)
        assert set(ports) == documented[service], service
        for host, container in ports.items():
            assert host == container, f"{service}: {host}:{container}"


def test_every_mounted_file_exists_in_the_repository():
    for service in SERVICES:
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{service}: {source} (mounted at {target})"
            assert ROOT in source.parents, f"{service}: {source} is outside the repository"
    build = services()["nonsite"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()


def test_depends_on_names_services_with_the_healthchecks_they_wait_for():
    svcs = services()
    for name, service in svcs.items():
        depends = service.get("depends_on", {})
        items = depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)
        for target, spec in items:
            assert target in svcs, f"{name} depends on unknown {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in svcs[target], f"{target} has no healthcheck"
    assert svcs["nonsite"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_nonsite_configuration_loads_with_the_compose_environment():
    svc = services()["nonsite"]
    env = nonsite_environment()
    cluster_only = {"NONSITE_NATS_USER", "NONSITE_NATS_PASSWORD"}  # the cluster stack's
    assert set(ENV_OVERRIDES) - cluster_only <= set(env)
    config_path = env["NONSITE_CONFIG"]
    config = load_config(host_path("nonsite", config_path), env)

    host, _, port = config.service.http_listen.rpartition(":")
    assert (host, int(port)) == ("0.0.0.0", 8080)
    assert published("nonsite") == {8080: 8080}
    assert f"127.0.0.1:{port}/healthz" in " ".join(svc["healthcheck"]["test"])

    broker = parse_broker_url(config.mqtt.url)
    assert (broker.host, broker.username, broker.password) == (
        "mosquitto",
        "nonsite",
        SECRETS["NONSITE_MQTT_PASSWORD"],
    )
    assert broker.port in published("mosquitto").values()
    assert config.mqtt.receive_maximum == MqttSection().receive_maximum

    db = config.database_url()
    assert db == f"postgresql+psycopg://nonsite:{SECRETS['POSTGRES_PASSWORD']}@postgres/nonsite"
    pg = services()["postgres"]["environment"]
    assert (pg["POSTGRES_DB"], pg["POSTGRES_USER"]) == ("nonsite", "nonsite")

    volumes = {target for source, target, _ in mounts("nonsite") if source == "nonsite-data"}
    assert volumes == {str(config.service.data_dir)} == {env["NONSITE_DATA_DIR"]}


def test_nonsite_configuration_is_the_example_but_for_service_mqtt_and_database():
    def sections(text: str) -> dict[str, str]:
        parts = re.split(r"^(?=\[)", text, flags=re.M)
        out: dict[str, str] = {}
        for part in parts[1:]:
            head = part.split("\n", 1)[0].split("#")[0].strip()
            out[head] = out.get(head, "") + part
        return out

    example = sections((DEPLOY / "nonsite.example.toml").read_text())
    composed = sections((DEPLOY / "compose" / "nonsite.toml").read_text())
    changed = {k for k in example.keys() | composed.keys() if example.get(k) != composed.get(k)}
    assert changed == {"[service]", "[mqtt]", "[database]"}


def test_nonsite_image_runs_the_mounted_configuration_and_drains_before_it_is_killed():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, flags=re.M)
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "fonts-wqy-microhei" in dockerfile  # the font the report's PDF embeds
    assert FONT_CANDIDATES[0].startswith("/usr/share/fonts/truetype/wqy/")
    [cmd] = re.findall(r"^CMD (\[.*\])$", dockerfile, flags=re.M)
    argv = json.loads(cmd)
    args = build_parser().parse_args(argv[1:])
    assert (argv[0], args.command) == ("nonsite", "serve")
    assert str(args.config) == nonsite_environment()["NONSITE_CONFIG"]
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    svc = services()["nonsite"]
    assert svc["init"] is True
    assert seconds(svc["stop_grace_period"]) >= DRAIN_S


def test_prometheus_in_compose_scrapes_nonsite_and_loads_the_alert_rules():
    svc = services()["prometheus"]
    [flag] = [c for c in svc["command"] if c.startswith("--config.file=")]
    config_file = flag.split("=", 1)[1]
    config = yaml.safe_load(host_path("prometheus", config_file).read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "nonsite"]
    assert job["metrics_path"] == "/metrics"
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == ["nonsite:8080"]
    for rule_file in config["rule_files"]:
        mounted = host_path("prometheus", str(PurePosixPath(config_file).parent / rule_file))
        assert mounted == DEPLOY / "prometheus" / "nonsite-alerts.yml"
    ours = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert {k: v for k, v in config.items() if k != "scrape_configs"} == {
        k: v for k, v in ours.items() if k != "scrape_configs"
    }


def test_grafana_is_provisioned_with_the_dashboard_bound_to_its_data_source(tmp_path):
    svc = services()["grafana"]
    provisioning = host_path("grafana", "/etc/grafana/provisioning/datasources")
    [source] = yaml.safe_load((provisioning / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert 9090 in published("prometheus").values()
    providers = host_path("grafana", "/etc/grafana/provisioning/dashboards")
    [provider] = yaml.safe_load((providers / "nonsite.yml").read_text())["providers"]
    folder = provider["options"]["path"]

    # Run the entrypoint's shell script with the container's paths mapped into the
    # repository and a temporary directory, and Grafana itself left out.
    [sh, flag, script] = svc["entrypoint"]
    assert (sh, flag) == ("sh", "-c")
    assert script.rstrip().endswith("exec /run.sh")
    script = script.replace("exec /run.sh", "true").replace("/var/lib/grafana", str(tmp_path))
    for target, source_path in bind_mounts("grafana").items():
        script = script.replace(target, str(source_path))
    subprocess.run(["sh", "-c", script], check=True)
    written = tmp_path / PurePosixPath(folder).relative_to("/var/lib/grafana")
    [dashboard_file] = written.iterdir()
    text = dashboard_file.read_text()
    assert "${DS_PROMETHEUS}" not in text
    uids = {m for m in re.findall(r'"uid": "([^"]*)"', text) if m != "-- Grafana --"}
    dashboard = json.loads(text)
    uids.discard(dashboard["uid"])
    assert uids == {source["uid"]}


def test_mosquitto_runs_the_production_configuration_opened_to_the_stack():
    svc = services()["mosquitto"]
    assert svc["image"] == "eclipse-mosquitto:2"
    [sh, script_path] = svc["command"]
    assert sh == "sh"
    script = host_path("mosquitto", script_path).read_text()
    src = re.search(r"^src=(\S+)$", script, flags=re.M)[1]
    assert host_path("mosquitto", src) == DEPLOY / "mosquitto"
    assert r"sed -i 's/^listener 1883 127\.0\.0\.1$/listener 1883/'" in script
    lines = MOSQUITTO_CONF.read_text().splitlines()
    assert lines.count("listener 1883 127.0.0.1") == 1
    assert published("mosquitto") == {1883: 1883, 8883: 8883}
    assert re.search(r"^#listener 8883$", MOSQUITTO_CONF.read_text(), flags=re.M)
    assert seconds(svc["stop_grace_period"]) >= 60


# -- mosquitto.conf --------------------------------------------------------------------------


def mosquitto_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in MOSQUITTO_CONF.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            out.setdefault(key, []).append(value)
    return out


def sizing() -> dict[str, int]:
    """The fleet the file is sized for, from its comment block (name = value)."""
    text = MOSQUITTO_CONF.read_text()
    found = dict(re.findall(r"^#\s+(loggers|interval_s|outage_h|frame_b)\s+=\s+(\d+)", text, re.M))
    assert set(found) == {"loggers", "interval_s", "outage_h", "frame_b"}
    return {k: int(v) for k, v in found.items()}


def test_mosquitto_persists_and_refuses_anonymous_clients():
    conf = mosquitto_settings()
    assert conf["persistence"] == ["true"]
    assert conf["persistence_location"][0].endswith("/")
    assert 0 < int(conf["autosave_interval"][0]) <= 300
    assert conf["allow_anonymous"] == ["false"]
    assert conf["password_file"] == ["/etc/mosquitto/passwd"]
    assert conf["acl_file"] == ["/etc/mosquitto/acl"]
    assert (DEPLOY / "mosquitto" / "acl").is_file()
    assert conf["listener"] == ["1883 127.0.0.1"]
    for value in (v for values in conf.values() for v in values):
        assert "#" not in value, f"Mosquitto takes no comment after a value: {value}"


def test_mosquitto_queues_hours_of_the_documented_fleet_for_nonsite():
    conf = mosquitto_settings()
    fleet = sizing()
    rate = fleet["loggers"] / fleet["interval_s"]
    queued = int(conf["max_queued_messages"][0])
    assert queued >= rate * fleet["outage_h"] * 3600
    assert fleet["outage_h"] >= 6
    assert int(conf["max_queued_bytes"][0]) >= queued * fleet["frame_b"]
    assert conf["queue_qos0_messages"] == ["true"]
    # The broker's window for MQTT 3.1.1 sessions is nonsite's receive_maximum.
    assert int(conf["max_inflight_messages"][0]) == MqttSection().receive_maximum
    # Sessions outlive the outage and nonsite's own session expiry.
    expiry = conf["persistent_client_expiration"][0]
    days = int(expiry[:-1]) * {"d": 1, "w": 7}[expiry[-1]]
    assert days * 86400 >= MqttSection().session_expiry_s
    assert days * 24 >= fleet["outage_h"]
    # The guide quotes the same numbers.
    guide = OPERATIONS.read_text()
    assert f"`max_queued_messages {queued}`" in guide
    assert f"{fleet['loggers']:,} loggers" in guide


def test_mosquitto_tls_listener_example_is_complete():
    text = MOSQUITTO_CONF.read_text()
    for option in ("cafile", "certfile", "keyfile", "require_certificate"):
        assert re.search(rf"^#{option} \S+$", text, flags=re.M), option
    assert "mosquitto_passwd" in text


def test_acl_lets_loggers_publish_only_their_own_topics():
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    rules = [line.split() for line in acl.splitlines() if line and not line.startswith("#")]
    assert ["pattern", "write", "hj212/%u"] in rules
    assert ["pattern", "write", "power/%u"] in rules
    nonsite = rules[rules.index(["user", "nonsite"]) + 1 :]
    nonsite = nonsite[: next((i for i, r in enumerate(nonsite) if r[0] == "user"), len(nonsite))]
    assert ["topic", "read", "hj212/#"] in nonsite
    assert ["topic", "read", "power/#"] in nonsite
    assert ["topic", "write", "hj212/+/reply"] in nonsite
    assert ["topic", "readwrite", "alerts/#"] in nonsite


# -- systemd ---------------------------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def exec_args(command: str) -> Any:
    argv = shlex.split(command)
    assert argv[0] == "/opt/nonsite/.venv/bin/nonsite"
    return build_parser().parse_args(argv[1:])


def test_systemd_service_runs_serve_hardened_with_time_to_drain():
    svc = unit("nonsite.service")["Service"]
    assert svc["User"] == "nonsite"
    args = exec_args(svc["ExecStart"])
    assert args.command == "serve"
    assert str(args.config) == "/etc/nonsite/nonsite.toml"
    assert svc["Restart"] == "on-failure"
    assert svc["KillMode"] == "mixed"
    assert seconds(svc["TimeoutStopSec"]) >= DRAIN_S
    assert svc["EnvironmentFile"] == "-/etc/nonsite/env"
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["ProtectSystem"] == "strict"
    assert svc["ReadWritePaths"].split() == ["/var/lib/nonsite"]
    assert svc["PrivateTmp"] == "yes"
    assert unit("nonsite.service")["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("job", ["prune", "backup"])
def test_systemd_timers_start_their_oneshot_services(job):
    timer = unit(f"nonsite-{job}.timer")
    assert timer["Timer"]["Unit"] == f"nonsite-{job}.service"
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    svc = unit(f"nonsite-{job}.service")["Service"]
    assert svc["Type"] == "oneshot"
    assert svc["User"] == "nonsite"
    assert svc["EnvironmentFile"] == "-/etc/nonsite/env"
    assert svc["ProtectSystem"] == "strict"
    assert "/var/lib/nonsite" in svc["ReadWritePaths"].split()


def test_systemd_prune_runs_archive_prune():
    args = exec_args(unit("nonsite-prune.service")["Service"]["ExecStart"])
    assert (args.command, args.archive_command) == ("archive", "prune")


def test_systemd_backup_runs_the_backup_script_where_it_may_write():
    parser = unit("nonsite-backup.service")
    svc = parser["Service"]
    script = PurePosixPath(svc["ExecStart"])
    assert script == PurePosixPath("/opt/nonsite/src/deploy/backup.sh")
    local = DEPLOY / "backup.sh"
    assert local.is_file() and local.stat().st_mode & 0o111
    # configparser keeps the last of repeated keys: read every Environment= line.
    lines = (SYSTEMD / "nonsite-backup.service").read_text().splitlines()
    env = dict(line.split("=", 2)[1:] for line in lines if line.startswith("Environment="))
    assert env["NONSITE_BACKUP_DIR"] in svc["ReadWritePaths"].split()
