"""``nonsite demo --cluster`` as a user runs it: it prints where each of its parts is (a table:
role, address, pid, log), every role answers /readyz, the web node serves the dashboard in
Chinese and the cases the simulated fleet's incidents open (in PostgreSQL and through the
API), both ingest nodes take a share of the broker's messages (a shared subscription), and a
terminal's Ctrl-C stops it with status 0 leaving no process behind, a worker killed before
included."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from alerts.schema import cases
from nonsite.demo import DEMO_PASSWORD
from nonsite.embedded_broker import free_port
from tests.service_process import wait_for

pytestmark = pytest.mark.integration

ROW = re.compile(r"^  (\S+(?: broker)?)\s{2,}(\S+)(?: \(monitor :\d+\))?\s{2,}(\d+|-)\s{2,}(\S+)$")
ROLES = {"ingest-1", "ingest-2", "worker-1", "worker-2", "web"}
PARTS = {"postgresql", "nats-1", "nats-2", "nats-3", "mosquitto"}


def _table(output: str) -> dict[str, tuple[str, int, str]]:
    """The printed table: role → (address, pid, log)."""
    _head, _, rest = output.partition("\n  role ")
    assert rest, output[-2000:]
    rows: dict[str, tuple[str, int, str]] = {}
    for line in rest.split("\n\n", 1)[0].splitlines()[1:]:
        m = ROW.match(line)
        assert m, line
        rows[m[1]] = (m[2], int(m[3]), m[4])
    return rows


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _processes_naming(text: str) -> list[str]:
    """Processes whose command line names ``text`` (the demo directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and _running(int(proc.name)):
            found.append(f"{proc.name}: {cmdline}")
    return found


def _ingested(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nonsite_ingest_messages_total{") and 'outcome="archived"' in line
    )


@pytest.mark.timeout(150)
def test_the_cluster_demo_starts_every_role_opens_cases_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo-cluster"
    port = free_port()
    log_path = tmp_path / "demo.log"
    began = time.monotonic()
    with log_path.open("w") as log:
        demo = subprocess.Popen(
            [
                *(sys.executable, "-m", "nonsite", "demo", "--cluster"),
                *("--data-dir", str(demo_dir), "--port", str(port), "--enterprises", "20"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as in a terminal
        )

    def output() -> str:
        return log_path.read_text(errors="replace")

    code = None
    try:
        assert wait_for(lambda: "dashboard http" in output() or demo.poll() is not None, 90), (
            output()[-3000:]
        )
        assert demo.poll() is None, output()[-3000:]
        started_s = time.monotonic() - began
        rows = _table(output())
        assert set(rows) == ROLES | PARTS, rows
        web_url = f"http://127.0.0.1:{port}"
        assert rows["web"][0] == f"{web_url}/"
        assert f"dashboard {web_url}/" in output()
        assert f"monitor / {DEMO_PASSWORD}" in output()
        for name in ROLES:
            address, _pid, log_file = rows[name]
            assert httpx.get(f"{address.rstrip('/')}/readyz", timeout=5).status_code == 200, name
            assert Path(log_file).resolve().parent == demo_dir.resolve()

        # The dashboard, in Chinese, with the demo's login.
        client = httpx.Client(base_url=web_url, timeout=10)
        login = client.get("/login")
        assert login.status_code == 200 and "登录" in login.text, login.text[:500]
        r = client.post("/api/v1/session", json={"username": "monitor", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        page = client.get("/")
        assert page.status_code == 200 and re.search(r"[\u4e00-\u9fff]", page.text)

        # The script's incidents open cases: in PostgreSQL, and through the web node.
        db = sa.create_engine(rows["postgresql"][0])
        try:

            def opened() -> set[tuple[str, str]]:
                with db.connect() as conn:
                    found = conn.execute(sa.select(cases.c.enterprise_id, cases.c.rule)).all()
                return {(str(e), str(rule)) for e, rule in found}

            # E001's SO2 over its limit (A3) from 02:00 of the first day: judged within the
            # first 20 s of history at 1200x.
            assert wait_for(lambda: ("E001", "A3") in opened(), 60, every=1), opened()
        finally:
            db.dispose()
        listed = client.get("/api/v1/cases", params={"limit": 500}).json()
        assert listed["total"] >= 1
        assert ("E001", "A3") in {(c["enterprise_id"], c["rule"]) for c in listed["items"]}
        client.close()

        # The ingest nodes share the subscription: each takes part of the fleet's messages.
        shares = [_ingested(rows[name][0]) for name in ("ingest-1", "ingest-2")]
        assert all(n > 0 for n in shares), shares
        pids = {name: pid for name, (_a, pid, _l) in rows.items()}
        print(f"started in {started_s:.1f} s; ingest shares {shares}")

        # A child that dies is said, and the stop goes on without it.
        os.kill(pids["worker-2"], signal.SIGKILL)
        assert wait_for(lambda: "worker-2 exited with status -9" in output(), 10), output()[-500:]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in its terminal: the whole group
        try:
            code = demo.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    text = output()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "stopping, in reverse order: simulator web worker-2 worker-1 ingest-2 ingest-1 " in text
    assert text.rstrip().endswith("nonsite demo --cluster stopped."), text[-1000:]
    assert not [name for name, pid in pids.items() if _running(pid)], pids
    assert not _processes_naming(str(demo_dir.resolve())), _processes_naming(str(demo_dir))
    assert not (demo_dir / "postgres").is_symlink()  # a temporary PostgreSQL home is removed
