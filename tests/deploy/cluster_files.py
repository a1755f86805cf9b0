"""Readers of the cluster-mode deployment files, for tests/deploy/test_cluster.py and
tests/deploy/test_nats.py: the NATS servers' configuration (deploy/nats/), the cluster's
compose file and the start script of its nonsite nodes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tests.deploy.test_compose import SECRETS, interpolate

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
NATS = DEPLOY / "nats"
NATS_NODES = ("nats-1", "nats-2", "nats-3")
CLUSTER_COMPOSE = DEPLOY / "docker-compose.cluster.yml"
CLUSTER_EXAMPLE = DEPLOY / "nonsite.cluster.example.toml"
# The nonsite nodes of the compose stack and their roles.
NODES = {
    "ingest-1": "ingest",
    "ingest-2": "ingest",
    "worker-1": "worker",
    "worker-2": "worker",
    "web-1": "web",
}
CLUSTER_SECRETS = {
    **{k: SECRETS[k] for k in ("NONSITE_MQTT_PASSWORD", "POSTGRES_PASSWORD")},
    "NONSITE_NATS_INGEST_PASSWORD": "nats-ingest-secret",
    "NONSITE_NATS_WORKER_PASSWORD": "nats-worker-secret",
    "NONSITE_NATS_WEB_PASSWORD": "nats-web-secret",
}
# mosquitto.conf's max_packet_size and nats-common.conf's max_payload: nonsite's payload
# limit plus this, for the packet's or message's own bytes (docs/ingest.md).
PACKET_MARGIN = 4096


# -- NATS configuration ----------------------------------------------------------------------


def _nats_text(path: Path) -> str:
    """The file with its includes in place (an include is relative to the including file)."""

    def include(m: re.Match[str]) -> str:
        return _nats_text(path.parent / m[1])

    return re.sub(r"^include\s+(\S+)\s*$", include, path.read_text(), flags=re.M)


def parse_nats(text: str) -> dict[str, Any]:
    """The subset of the NATS configuration format the deploy files use: ``key: value``,
    ``name { ... }`` blocks and ``[ ... ]`` arrays (one line, or one item a line); comments
    from # to the end of the line. Values stay strings."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    root: dict[str, Any] = {}
    stack = [root]
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if line.endswith("{"):
            block: dict[str, Any] = {}
            stack[-1][line[:-1].strip()] = block
            stack.append(block)
            continue
        if line == "}":
            stack.pop()
            continue
        m = re.fullmatch(r"(\w+)\s*[:=]\s*(.+)", line)
        assert m, f"not a setting: {line!r}"
        key, value = m[1], m[2]
        assert key not in stack[-1], f"{key} set twice"
        if value == "[":
            items = []
            while lines[i] != "]":
                items += [v.strip() for v in lines[i].split(",") if v.strip()]
                i += 1
            i += 1
            stack[-1][key] = items
        elif value.startswith("["):
            stack[-1][key] = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        else:
            stack[-1][key] = value
    assert stack == [root], "unbalanced braces"
    return root


def nats_settings(node: str) -> dict[str, Any]:
    """The settings of one server of deploy/nats/ (its file and the included common one)."""
    return parse_nats(_nats_text(NATS / f"{node}.conf"))


def nats_size(value: str) -> int:
    """A NATS size: bytes, or KB/MB/GB/TB (powers of 1024, as the server reads them)."""
    m = re.fullmatch(r"(\d+)\s*(KB|MB|GB|TB)?", value)
    assert m, value
    return int(m[1]) * 1024 ** ("", "KB", "MB", "GB", "TB").index(m[2] or "")


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def routes(settings: dict[str, Any]) -> list[tuple[str, int]]:
    out = []
    for route in settings["cluster"]["routes"]:
        m = re.fullmatch(r"nats-route://([\w.-]+):(\d+)", route)
        assert m, route
        out.append((m[1], int(m[2])))
    return out


def nats_sizing() -> dict[str, int]:
    """The fleet and retention the JetStream store is sized for (nats-common.conf's comment)."""
    text = (NATS / "nats-common.conf").read_text()
    names = ("loggers", "interval_s", "frame_b", "retention_days", "stored_b")
    pattern = rf"^#\s+({'|'.join(names)})\s+=\s+(\d+)"
    found = dict(re.findall(pattern, text, flags=re.M))
    assert set(found) == set(names)
    return {k: int(v) for k, v in found.items()}


# -- the cluster's compose file --------------------------------------------------------------


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(CLUSTER_COMPOSE.read_text())
    return interpolate(raw, CLUSTER_SECRETS if env is None else env)


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
    return {
        target: (DEPLOY / source).resolve()
        for source, target, _ in mounts(service)
        if source.startswith((".", "/"))
    }


def host_path(service: str, container_path: str) -> Path:
    path = PurePosixPath(container_path)
    for target, source in bind_mounts(service).items():
        if path == PurePosixPath(target):
            return source
        if PurePosixPath(target) in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted from the repository in {service}")


def published(service: str) -> dict[int, int]:
    out = {}
    for entry in services()[service].get("ports", []):
        *_, host, container = str(entry).split(":")
        out[int(host)] = int(container.split("/")[0])
    return out


def node_start(service: str, workdir: Path) -> tuple[list[str], Path]:
    """Run a nonsite node's start command (compose/cluster/node-start.sh) with its container
    paths moved into ``workdir`` and a stand-in ``nonsite`` that records its arguments:
    (the arguments after ``nonsite``, the configuration file the script wrote)."""
    sh, script, *args = services()[service]["command"]
    assert sh == "sh"
    text = host_path(service, script).read_text()
    for path in ("/etc/nonsite/node.toml", "/etc/nonsite/cluster.toml", "/tmp/nonsite.toml"):
        assert path in text, f"node-start.sh no longer uses {path}"
    etc = workdir / "etc"
    (workdir / "bin").mkdir(parents=True)
    etc.mkdir()
    for name in ("node.toml", "cluster.toml"):
        shutil.copy(host_path(service, f"/etc/nonsite/{name}"), etc / name)
    written = workdir / "nonsite.toml"
    text = text.replace("/etc/nonsite/", f"{etc}/").replace("/tmp/nonsite.toml", str(written))
    (workdir / "start.sh").write_text(text)
    argv_file = workdir / "argv"
    stand_in = workdir / "bin" / "nonsite"
    stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{argv_file}"\n')
    stand_in.chmod(0o755)
    env = {"PATH": f"{workdir / 'bin'}:/usr/bin:/bin"}
    subprocess.run(["sh", str(workdir / "start.sh"), *args], env=env, check=True)
    return argv_file.read_text().splitlines(), written
