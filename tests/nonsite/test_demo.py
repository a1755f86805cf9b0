"""`nonsite demo` plays its script: a short accelerated run (two days of history at 1200
times the clock) through the embedded broker, the service and SQLite opens the right case,
with the right rule and tier, for every scripted incident; counts the late and duplicated
frames; keeps the corrupted one as a dead letter. The real fleet's conditions (a plant
stopped across a midnight, a 1-minute logger, an intermittent discharger, a real-time-only
outlet, a backfilling logger, a pH dip) raise what they should and none of the rules they
must not; the stopped plant shows as stopped; and no enterprise without a scripted alarm has
an alarm-tier case. It prints the dashboard and one login per role, and stops cleanly on
Ctrl-C."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.hj212.timefmt import CHINA_TZ
from nonsite.demo import DEMO_PASSWORD, DEMO_USERS, DemoSettings, demo_config, history_start
from nonsite.embedded_broker import free_port
from nonsite.simulator.incidents import ALL_OUTLETS, FOREVER, NO_ALARM, Incident
from rules.timebase import DAY, HOUR

pytestmark = pytest.mark.integration

# 35 enterprises: the smallest demo fleet with an enterprise of its own for every condition.
SETTINGS = {"enterprises": 35, "days": 2, "speed": 1200.0, "offline_after_s": 60}
GRACE_S = 3600  # the demo's [rules] grace_s (the default)
SIM_TIME = re.compile(r"模拟时间 (\d\d)-(\d\d) (\d\d):(\d\d)")


def _script(data_dir: Path, port: int) -> tuple[list[Incident], int, int]:
    """The script, the history's start and the time it is computed at (the demo's history
    reaches at least that far)."""
    now = time.time()
    settings = DemoSettings(data_dir=data_dir, http_port=port, **SETTINGS)  # type: ignore[arg-type]
    start = history_start(settings.days, now)
    return demo_config(settings, start, int(now) + DAY)[1], start, int(now)


def _sim_time(log: Path, start: int) -> int | None:
    """The simulated time of the demo's last status line (China time, to the minute)."""
    found = SIM_TIME.findall(log.read_text(errors="replace"))
    if not found:
        return None
    month, day, hour, minute = (int(x) for x in found[-1])
    first = datetime.fromtimestamp(start, CHINA_TZ)
    year = first.year + (1 if month < first.month else 0)
    return int(datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ).timestamp())


def _producing(db: sa.Engine, enterprise: str) -> bool | None:
    """Whether the service shows the enterprise producing (None: no state yet)."""
    with db.connect() as conn:
        value = conn.execute(
            sa.text("select producing from production where enterprise_id = :e"),
            {"e": enterprise},
        ).scalar()
    return None if value is None else bool(value)


def _fired(db: sa.Engine, enterprise: str) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "select distinct source_id, rule, tier from findings"
                    " where enterprise_id = :e and state = 'fire'"
                ),
                {"e": enterprise},
            )
        )


def _cases(db: sa.Engine) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "select enterprise_id, source_id, rule, tier, escalation from cases order by id"
                )
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


@pytest.mark.timeout(480)  # about 150 s; failing, it waits 360 s for cases that never open
def test_the_demo_plays_its_script_and_stops_cleanly(tmp_path):
    port = free_port()
    script, start, now = _script(tmp_path, port)
    expected = {(i.enterprise_id, rule): tier for i in script for rule, tier in i.expect}
    assert len(expected) == 13  # every incident that should open a case is in the script
    stop = next(i for i in script if i.kind == "stopped")
    # Run until every scripted window has been judged (its end, the grace and two spare
    # hours), which the two days of history always reach.
    judged_by = min(now, max(i.end for i in script if i.end < FOREVER) + GRACE_S + 2 * HOUR)
    log_path = tmp_path / "demo.log"
    log = log_path.open("w+")
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
    # Whether the stopped plant showed as producing, polled while its stop went on (an hour
    # after it began, so the service has its data, until an hour before it ended).
    shown_during_stop: list[bool | None] = []
    reached: int | None = None
    try:
        deadline = time.monotonic() + 360
        opened: set[tuple[str, str]] = set()
        while time.monotonic() < deadline and demo.poll() is None:
            time.sleep(3)
            if not (tmp_path / "nonsite.db").exists():
                continue
            reached = _sim_time(log_path, start)
            if reached is not None and stop.start + HOUR <= reached < stop.end - HOUR:
                shown_during_stop.append(_producing(db, stop.enterprise_id))
            opened = {(c.enterprise_id, c.rule) for c in _cases(db)}
            if set(expected) <= opened and reached is not None and reached >= judged_by:
                break
        with contextlib.suppress(OSError):  # the service's counters, while it runs
            counted = _outcomes(port)
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
    assert reached is not None and reached >= judged_by, (reached, judged_by)

    cases = _cases(db)
    problems: list[str] = []
    for (enterprise, rule), tier in expected.items():
        # The rule fired at its tier; the case is at that tier unless escalated, and says why.
        case = next((c for c in cases if (c.enterprise_id, c.rule) == (enterprise, rule)), None)
        if case is None:
            problems.append(f"{enterprise}: no {rule} case")
            continue
        if tier not in _fired_tiers(db, enterprise, rule):
            problems.append(f"{enterprise}: {rule} never fired at {tier}")
        if not (case.tier == tier or case.escalation):
            problems.append(f"{enterprise}: {rule} case at {case.tier}, not {tier}: {case}")
    # The real fleet's conditions raise none of the rules they must not, at any tier.
    for i in script:
        if not i.expect_not:
            continue
        fired = [
            f for f in _fired(db, i.enterprise_id) if i.source_id in (f.source_id, ALL_OUTLETS)
        ]
        for rule in i.expect_not:
            if rule == NO_ALARM:
                wrong = [(f.source_id, f.rule) for f in fired if f.tier == "alarm"]
                wrong += [
                    (c.source_id, f"{c.rule} case")
                    for c in cases
                    if c.enterprise_id == i.enterprise_id and c.tier == "alarm"
                ]
            else:
                wrong = [(f.source_id, f.tier) for f in fired if f.rule == rule]
            if wrong:
                problems.append(
                    f"{i.enterprise_id} {i.name}: {rule} must not fire: {sorted(set(wrong))}"
                )
    if False not in shown_during_stop:
        problems.append(
            f"{stop.enterprise_id} {stop.name}: never shown as stopped during its stop "
            f"(producing: {shown_during_stop})"
        )
    # The clean part of the fleet: no alarm-tier case where the script has no alarm.
    alarmed = {i.enterprise_id for i in script for _rule, tier in i.expect if tier == "alarm"}
    clean_alarms = [
        (c.enterprise_id, c.rule, c.escalation)
        for c in cases
        if c.enterprise_id not in alarmed and c.tier == "alarm"
    ]
    if clean_alarms:
        problems.append(f"alarm-tier cases without a scripted alarm: {clean_alarms}")
    assert not problems, "\n".join(problems)
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


def _demo(tmp_path: Path, port: int, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "nonsite", "demo", "--data-dir", str(tmp_path / "data")),
        *f"--enterprises 5 --port {port}".split(),
        *extra,
    ]


@pytest.mark.timeout(240)
def test_sigterm_stops_the_demo_within_seconds_with_exit_code_0(tmp_path):
    # Caught up with the clock, the simulator waits for each next minute: a SIGTERM then
    # must not wait for that minute (nor for a 30 s join after it).
    port = free_port()
    start = history_start(0, time.time())
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        demo = subprocess.Popen(
            _demo(tmp_path, port, *["--days", "0", "--speed", "100000"]),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 150
        live = False
        while time.monotonic() < deadline and demo.poll() is None:
            reached = _sim_time(log_path, start)
            if reached is not None and reached >= time.time() - 120:
                live = True
                break
            time.sleep(0.5)
        assert live, log_path.read_text(errors="replace")[-3000:]
        time.sleep(3)  # well into the wait for the next minute
        demo.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = demo.wait(timeout=90)
        took = time.monotonic() - began
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    output = log_path.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f} s to stop the demo"
    assert "nonsite demo stopped." in output


@pytest.mark.timeout(120)
def test_a_taken_port_stops_the_demo_with_one_line_naming_it_and_the_way_out(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        try:
            done = subprocess.run(
                _demo(tmp_path, port), capture_output=True, text=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the demo hangs on a taken port: {exc.stdout!r} {exc.stderr!r}")
        took = time.monotonic() - began
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if f"127.0.0.1:{port}" in line]
    assert len(errors) == 1, done.stderr
    assert "--port" in errors[0], errors
    assert took < 10, f"{took:.1f} s"


@pytest.mark.timeout(120)
def test_sigterm_while_the_demo_sets_up_stops_it_in_order(tmp_path):
    # The set-up (migrations, users) takes seconds before the service runs: a SIGTERM then
    # used to kill it (status -15).
    demo = subprocess.Popen(
        _demo(tmp_path, free_port()), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "data").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert demo.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "nonsite demo stopped" in output, output[-3000:]
