"""The README's first command is the demo, and it works on this checkout (CI runs the suite on
a fresh clone): `./dev demo` sets up what is missing, then runs `nonsite demo`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from nonsite.embedded_broker import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[1]


def first_command() -> str:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None, "the README has no shell block"
    line = block.group(1).strip().splitlines()[0]
    return line.split("#", 1)[0].strip()


def test_the_readmes_first_command_is_the_demo_and_it_runs(tmp_path):
    command = first_command()
    assert command == "./dev demo"
    port = free_port()
    run = subprocess.run(
        [
            *command.split(),
            # 10 s: about 1,900 messages archived on a 2-core machine (below, at least 500)
            *f"--data-dir {tmp_path} --duration 10 --enterprises 40 --port {port}".split(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # ./dev builds .venv first when it is missing or stale
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"dashboard http://127.0.0.1:{port}/" in run.stdout
    assert "nonsite demo stopped." in run.stdout
    archive = sa.create_engine(f"sqlite:///{tmp_path / 'archive.sqlite3'}")
    with archive.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from messages")).scalar_one()
    archive.dispose()
    assert stored > 500  # the simulator's traffic went through the broker into the archive
