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
from pathlib import Path

from nonsite.embedded_broker import free_port


def write_config(
    path: Path,
    *,
    broker_url: str,
    data_dir: Path,
    mns: list[str],
    meters: list[str] = (),  # type: ignore[assignment]
    extra: str = "",
) -> Path:
    http_port = free_port()
    lines = [
        "[service]",
        f'data_dir = "{data_dir}"',
        f'http_listen = "127.0.0.1:{http_port}"',
        "[mqtt]",
        f'url = "{broker_url}"',
        'client_id = "nonsite-test"',
        "reconnect_min_s = 0.2",
        "reconnect_max_s = 1.0",
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
    path.write_text("\n".join(lines) + "\n")
    return path


class ServiceProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        text = config.read_text()
        self.http = "http://" + text.split('http_listen = "', 1)[1].split('"', 1)[0]

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

    def readiness(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"{self.http}/readyz", timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))

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
