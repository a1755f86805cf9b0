"""`nonsite demo` plays its script: a short accelerated run (two days of history at 1200
times the clock) through the embedded broker, the service and SQLite opens the right case,
with the right rule and tier, for every scripted incident; counts the late and duplicated
frames; keeps the corrupted one as a dead letter; and the clean enterprises raise no alarm.
It prints the dashboard and one login per role, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from nonsite.demo import DEMO_PASSWORD, DEMO_USERS, DemoSettings, demo_config, history_start
from nonsite.embedded_broker import free_port
from nonsite.simulator.incidents import Incident
from rules.timebase import DAY

pytestmark = pytest.mark.integration

SETTINGS = {"enterprises": 30, "days": 2, "speed": 1200.0, "offline_after_s": 60}


def _script(data_dir: Path, port: int) -> list[Incident]:
    now = time.time()
    settings = DemoSettings(data_dir=data_dir, http_port=port, **SETTINGS)  # type: ignore[arg-type]
    return demo_config(settings, history_start(settings.days, now), int(now) + DAY)[1]


def _cases(db: sa.Engine) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text("select enterprise_id, rule, tier, escalation from cases order by id")
            )
        )


def _fired_tiers(db: sa.Engine, enterprise: str, rule: str) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select distinct tier from findings"
                " where enterprise_id = :e and rule = :r and state = 'fire'"
            ),
            {"e": enterprise, "r": rule},
        )
        return {r[0] for r in rows}


def _outcomes(port: int) -> dict[tuple[str, str], float]:
    """(counter, outcome) → value, from the service's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("nonsite_") and '{outcome="' in line:
            name, rest = line.split('{outcome="', 1)
            out[(name, rest.split('"', 1)[0])] = float(line.rsplit(" ", 1)[1])
    return out


def test_the_demo_plays_its_script_and_stops_cleanly(tmp_path):
    port = free_port()
    script = _script(tmp_path, port)
    expected = {(i.enterprise_id, rule): tier for i in script for rule, tier in i.expect}
    assert len(expected) == 10  # every incident that should open a case is in the script
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "nonsite", "demo", "--data-dir", str(tmp_path)),
            *f"--enterprises {SETTINGS['enterprises']} --days {SETTINGS['days']}".split(),
            *f"--speed {SETTINGS['speed']} --offline-after {SETTINGS['offline_after_s']}".split(),
            *f"--port {port} --duration 600".split(),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = sa.create_engine(f"sqlite:///{tmp_path / 'nonsite.db'}")
    counted: dict[tuple[str, str], float] = {}
    try:
        deadline = time.monotonic() + 300
        opened: set[tuple[str, str]] = set()
        while time.monotonic() < deadline and demo.poll() is None:
            time.sleep(3)
            if not (tmp_path / "nonsite.db").exists():
                continue
            opened = {(c.enterprise_id, c.rule) for c in _cases(db)}
            if set(expected) <= opened:
                counted = _outcomes(port)
                break
        missing = set(expected) - opened
        assert not missing, f"no case for {sorted(missing)}"
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=60)
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, output[-3000:]
    assert f"dashboard http://127.0.0.1:{port}/" in output
    for username, _role, _name, _scope in DEMO_USERS:
        assert f"{username} / {DEMO_PASSWORD}" in output
    for incident in script:
        assert incident.describe() in output  # the script it printed is the one checked here
    assert "未办结案件" in output and "nonsite demo stopped." in output

    cases = _cases(db)
    for (enterprise, rule), tier in expected.items():
        # The rule fired at its tier; the case is at that tier unless escalated, and says why.
        assert tier in _fired_tiers(db, enterprise, rule), (enterprise, rule)
        case = next(c for c in cases if (c.enterprise_id, c.rule) == (enterprise, rule))
        assert case.tier == tier or case.escalation, case
    scripted = {i.enterprise_id for i in script if i.expect}
    clean_alarms = [c for c in cases if c.enterprise_id not in scripted and c.tier == "alarm"]
    assert clean_alarms == []
    # Late and duplicated frames are counted, not judged: a byte-identical re-delivery by the
    # archive, a backfill of data already received or of an hour already closed by the rules.
    assert counted[("nonsite_ingest_messages_total", "duplicate")] >= 1, counted
    assert counted[("nonsite_rule_readings_total", "duplicate")] >= 1, counted
    assert counted[("nonsite_rule_readings_total", "late")] >= 1, counted
    # The corrupted frame is kept with its reason.
    corrupt = next(i for i in script if i.kind == "corrupt")
    with db.connect() as conn:
        dead = list(conn.execute(sa.text("select topic, reason from dead_letters")))
    assert any(reason == "crc_mismatch" for _topic, reason in dead), dead
    assert corrupt.enterprise_id not in {c.enterprise_id for c in cases if c.tier == "alarm"}
    db.dispose()
