"""`nonsite demo` starts the service, the embedded broker and the simulator, prints the
dashboard and one login per role, shows its status and stops by itself after --duration."""

import subprocess
import sys

import pytest
import sqlalchemy as sa

from nonsite.demo import DEMO_PASSWORD, DEMO_USERS
from nonsite.embedded_broker import free_port

pytestmark = pytest.mark.integration


def test_the_demo_runs_for_its_duration_and_stops_cleanly(tmp_path):
    port = free_port()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "nonsite",
            "demo",
            "--data-dir",
            str(tmp_path),
            "--duration",
            "15",
            "--speed",
            "600",
            "--enterprises",
            "40",
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"dashboard http://127.0.0.1:{port}/" in run.stdout
    for username, role, _name, _scope in DEMO_USERS:
        assert f"{username} / {DEMO_PASSWORD}" in run.stdout, role
    assert "未办结案件" in run.stdout and "nonsite demo stopped." in run.stdout
    archive = sa.create_engine(f"sqlite:///{tmp_path / 'archive.sqlite3'}")
    with archive.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from messages")).scalar_one()
    archive.dispose()
    assert stored > 1000  # the simulator's traffic went through the broker into the archive
