"""Run ``nonsite serve`` as a real child process for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from ingest.hj212.encoder import data_packets
from tests.service_config import service_lines, write_lines


def gas_packet(mn: str, pw: str, at: datetime, so2: float, *, ack: bool = False) -> bytes:
    """A CN 2051 minute packet of SO2 and O2 whose values wobble with the minute, as a live
    analyser's do (never a constant run, B2)."""
    wobble = at.minute // 10 % 3
    pollutants = {
        "a21026": {"Avg": so2 + wobble, "Flag": "N"},
        "a19001": {"Avg": 6.0 + 0.1 * wobble, "Flag": "N"},
    }
    [packet] = data_packets(
        st="31", cn="2051", pw=pw, mn=mn, data_time=at, pollutants=pollutants, ack=ack
    )
    return packet


def gas_hours(
    mn: str, pw: str, hour0: datetime, n: int, so2: float, *, ack: bool = False
) -> list[bytes]:
    """Six 10-minute packets of ``so2`` for each of ``n`` hours from ``hour0``, plus one of
    40 mg/m³ that closes the last hour."""
    out = [
        gas_packet(mn, pw, hour0 + timedelta(hours=h, minutes=10 * k), so2, ack=ack)
        for h in range(n)
        for k in range(6)
    ]
    out.append(gas_packet(mn, pw, hour0 + timedelta(hours=n, minutes=10), 40.0, ack=ack))
    return out


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, every: float = 0.25) -> bool:
    """Poll ``predicate`` every ``every`` seconds until it is true; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def count(db: sa.Engine, query: sa.Select) -> int:
    with db.connect() as conn:
        return int(conn.execute(query).scalar_one())


def run_nonsite(
    *args: str, stdin: bytes = b"", env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """``nonsite`` with ``args`` as a child process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "nonsite", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def serve_once(config: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``nonsite serve`` run to its end (for a start that must fail), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "nonsite", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(
    path: Path,
    *,
    broker_url: str,
    data_dir: Path,
    mns: list[str],
    meters: list[str] = (),  # type: ignore[assignment]
    extra: str = "",
) -> Path:
    lines = [
        *service_lines(broker_url=broker_url, data_dir=data_dir, client_id="nonsite-test"),
        extra,
        "[[enterprises]]",
        'id = "E1"',
        'name = "测试企业"',
    ]
    for i, mn in enumerate(mns):
        lines += ["[[enterprises.outlets]]", f'id = "DA{i:03d}"', 'kind = "gas"', f'mn = "{mn}"']
        lines += ['pw = "123456"']
    for m in meters:
        lines += ["[[enterprises.meters]]", f'id = "{m}"', 'role = "production"']
    return write_lines(path, lines)


class ServiceProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        text = config.read_text()
        self.http = "http://" + text.split('http_listen = "', 1)[1].split('"', 1)[0]

    @classmethod
    def started(cls, config: Path) -> ServiceProcess:
        """A service of ``config``, logging to ``service.log`` beside it, started and ready."""
        service = cls(config, config.parent / "service.log")
        service.start()
        return service

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "NONSITE_LOG_LEVEL": "WARNING"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nonsite", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nonsite serve exited with {self.proc.returncode}: {self.log_text()}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"nonsite serve not ready after {timeout} s: {self.log_text()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http}/readyz", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def metric(self, name: str) -> float | None:
        """The value of the first sample called ``name`` in ``/metrics``; None if there is none."""
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name:
                    return sample.value
        return None

    def readiness(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"{self.http}/readyz", timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))

    def pipeline_child(self) -> psutil.Process:
        """The pipeline process that serve spawned."""
        assert self.proc is not None
        children = psutil.Process(self.proc.pid).children()
        [child] = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        return child

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]
