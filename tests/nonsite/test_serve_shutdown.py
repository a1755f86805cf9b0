"""SIGTERM stops the service promptly even while a dashboard holds its event stream open."""

import io
import socket
import subprocess
import threading
import time

import httpx
import pytest

from nonsite.cli import main
from tests.service_process import ServiceProcess, serve_once, write_config

pytestmark = pytest.mark.integration


def test_sigterm_is_not_held_up_by_an_open_event_stream(mosquitto, tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "n.toml", broker_url=mosquitto.url, data_dir=tmp_path / "d", mns=["MN1"]
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert (
        main(
            [
                "users",
                "add",
                "--config",
                str(config),
                "mon",
                "--role",
                "monitor",
                "--password-stdin",
            ]
        )
        == 0
    )
    service = ServiceProcess.started(config)
    client = httpx.Client(base_url=service.http, timeout=30)
    r = client.post("/api/v1/session", json={"username": "mon", "password": "a-long-password-1"})
    assert r.status_code == 200
    opened = threading.Event()

    def watch() -> None:
        try:
            with client.stream("GET", "/api/v1/events") as resp:
                opened.set()
                for _ in resp.iter_lines():
                    pass
        except httpx.HTTPError:
            pass  # the server ends the stream when it stops

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    assert opened.wait(10)
    began = time.monotonic()
    assert service.terminate(timeout=30) == 0
    assert time.monotonic() - began < 15
    client.close()


def test_a_taken_port_stops_serve_with_one_line_naming_it_and_the_way_out(tmp_path):
    config = write_config(
        tmp_path / "n.toml", broker_url="mqtt://127.0.0.1:1", data_dir=tmp_path / "d", mns=["MN1"]
    )
    listen = config.read_text().split('http_listen = "', 1)[1].split('"', 1)[0]
    host, _, port = listen.rpartition(":")
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        began = time.monotonic()
        try:
            done = serve_once(config, timeout=30)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"serve hangs on a taken port: {exc.stdout!r} {exc.stderr!r}")
        took = time.monotonic() - began
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if listen in line]
    assert len(errors) == 1, done.stderr
    assert "http_listen" in errors[0], errors
    assert "choose another" in errors[0], errors
    assert took < 10, f"{took:.1f} s"
