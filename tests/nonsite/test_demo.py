"""`nonsite demo` as the README runs it plays its script: the README's own command line (read
from README.md; only where its data go and its dashboard's port are added) through the
embedded broker, the service and SQLite opens the right case, with the right rule and tier,
for every scripted incident (how soon is bench/demo_script.py's to measure), and the cases
stay in the queue; counts the late and duplicated frames; keeps the corrupted one as a dead
letter. The real fleet's conditions (a plant stopped across a midnight, a 1-minute logger,
an intermittent discharger, a real-time-only outlet, a backfilling logger, a pH dip) raise
what they should and none of the rules they must not; the stopped plant shows as stopped,
the silent logger as offline; and no enterprise without a scripted alarm has an alarm-tier
case. It prints the dashboard, one login per role and how to point the command line at its
data, which then reads them (cases, replay of its history); a terminal's Ctrl-C stops it
with no error. The parts (the pace of history and live, the configuration written down, a
fresh data directory) are tested without a broker first."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from nonsite.config.load import load_config, parse_config
from nonsite.demo import (
    CONFIG_HEADER,
    CONFIG_NAME,
    DEMO_PASSWORD,
    DEMO_USERS,
    LAG_LIMIT,
    DemoSettings,
    demo_config,
    history_start,
    play,
    prepare_data_dir,
    status_sim_time,
    to_toml,
    write_config,
)
from nonsite.embedded_broker import free_port
from nonsite.errors import StartupError
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import ALL_OUTLETS, FOREVER, NO_ALARM, Incident
from nonsite.simulator.traffic import FleetTraffic
from rules.timebase import DAY, HOUR
from tests.test_readme import first_command

GRACE_S = 3600  # the demo's [rules] grace_s (the default)


# -- the parts, without a broker ---------------------------------------------------------------


class _Publisher:
    def __init__(self) -> None:
        self.sent = 0

    def publish(self, messages) -> int:
        n = len(list(messages))
        self.sent += n
        return n


def test_history_goes_at_speed_then_each_minute_live_with_one_count_of_messages():
    now = time.time()
    start = int(now) - int(now) % 60 - 3 * HOUR
    config = parse_config(demo_fleet(5), "(test)", env={})
    traffic = FleetTraffic(config, since=start)
    halt = threading.Event()
    seen: list[tuple[int, int, bool]] = []

    def progress(p) -> None:
        seen.append((p.sim_time, p.messages, traffic.realtime))
        if traffic.realtime:
            halt.set()  # the first live minute is enough

    began = time.monotonic()
    done = play(traffic, _Publisher(), start=start, speed=1e9, halt=halt, on_progress=progress)
    assert time.monotonic() - began < 30  # three hours of history did not wait for the clock
    times = [t for t, _n, _live in seen]
    assert times == list(range(start + 60, done.sim_time + 1, 60))
    counts = [n for _t, n, _live in seen]
    assert counts == sorted(counts) and counts[-1] == done.messages > 0  # never drops
    live = [t - 60 for t, _n, is_live in seen if is_live]
    # Live from the minute the clock is in: every minute before it had ended when it was sent.
    assert len(live) == 1 and live[0] <= time.time() < live[0] + 120
    assert all(t <= live[0] for t in times[:-1])


def test_history_waits_while_the_service_has_a_backlog():
    now = time.time()
    start = int(now) - int(now) % 60 - 10 * 60
    traffic = FleetTraffic(parse_config(demo_fleet(5), "(test)", env={}), since=start)
    backlog = iter([LAG_LIMIT + 1] * 5 + [0] * 100_000)
    halt = threading.Event()
    began = time.monotonic()
    play(
        traffic,
        _Publisher(),
        start=start,
        speed=1e9,
        halt=halt,
        backlog=lambda: next(backlog),
        on_progress=lambda _p: halt.set(),
    )
    assert time.monotonic() - began >= 5 * 0.2 * 0.9  # it waited for the backlog to shrink


def test_the_configuration_written_down_is_the_one_the_demo_runs(tmp_path):
    settings = DemoSettings(data_dir=tmp_path, enterprises=35)
    start = history_start(1, time.time())
    config, incidents, data = demo_config(settings, start, start + 3 * DAY)
    assert any(e.orders for e in config.enterprises)  # the script's emergency order is in it
    assert tomllib.loads(to_toml(data)) == json.loads(json.dumps(data))
    path = write_config(data, tmp_path, "nonsite")
    assert path == tmp_path / CONFIG_NAME
    assert path.read_text().splitlines()[0] == CONFIG_HEADER
    assert load_config(path, env={}) == config
    # What the script needs: silence seen within two minutes; warnings kept in the queue.
    assert config.rules.offline_after_s <= 80 and config.alerts.resolve_on_clear == []
    assert config.service.data_dir == tmp_path.resolve()
    assert incidents


def test_each_run_starts_afresh_removing_only_a_previous_demos_files(tmp_path):
    assert prepare_data_dir(tmp_path / "new") is False
    demo = tmp_path / "demo"
    demo.mkdir()
    for name in ("archive.sqlite3", "nonsite.db", "nonsite.db-wal", "pipeline.lock"):
        (demo / name).write_text("old")
    (demo / CONFIG_NAME).write_text(f"{CONFIG_HEADER}\n")
    (demo / "notes.txt").write_text("mine")
    assert prepare_data_dir(demo) is True
    assert [p.name for p in demo.iterdir()] == ["notes.txt"]
    other = tmp_path / "service-data"
    other.mkdir()
    (other / "nonsite.db").write_text("precious")
    with pytest.raises(StartupError, match=r"holds data \(nonsite.db\) but no demo's"):
        prepare_data_dir(other)
    assert (other / "nonsite.db").read_text() == "precious"


# -- the README's command, end to end -----------------------------------------------------------


def readme_demo_args() -> list[str]:
    """The options the README's demo command gives `nonsite demo` (`./dev demo ARGS` sets up
    .venv, then runs `nonsite demo ARGS`)."""
    words = first_command().split()
    assert words[:2] == ["./dev", "demo"], words
    return words[2:]


def _script(data_dir: Path, port: int) -> tuple[list[Incident], int, int]:
    """The script of a demo run with the README's settings, the history's start and the time
    it is computed at (the demo's history reaches at least that far)."""
    args = readme_demo_args()
    assert not args, f"the README's demo has options {args}: give them to DemoSettings here"
    now = time.time()
    settings = DemoSettings(data_dir=data_dir, http_port=port)
    start = history_start(settings.days, now)
    return demo_config(settings, start, int(now) + DAY)[1], start, int(now)


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
                    "select id, enterprise_id, source_id, rule, tier, escalation,"
                    " open_key is not null as open from cases order by id"
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


def _status(port: int, enterprise: str) -> str:
    """The enterprise's status on the fleet page, as the monitoring centre's API gives it."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        login = {"username": "monitor", "password": DEMO_PASSWORD}
        assert client.post("/api/v1/session", json=login).status_code == 200
        return str(client.get(f"/api/v1/enterprises/{enterprise}").json()["status"])


@pytest.mark.integration
@pytest.mark.timeout(420)  # about 200 s; failing, it waits 300 s for cases that never open
def test_the_readmes_demo_plays_its_script_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "demo-data"
    port = free_port()
    script, start, now = _script(data_dir, port)
    expected = {(i.enterprise_id, rule): tier for i in script for rule, tier in i.expect}
    assert len(expected) == 14  # every incident that should open a case is in the script
    stop = next(i for i in script if i.kind == "stopped")
    offline = next(i for i in script if i.kind == "offline")
    # Run until every scripted window has been judged (its end, the grace and two spare
    # hours) or the history has reached the present.
    judged_by = min(now, max(i.end for i in script if i.end < FOREVER) + GRACE_S + 2 * HOUR)
    log_path = tmp_path / "demo.log"
    log = log_path.open("w+")
    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "nonsite", "demo", *readme_demo_args()),
            *("--data-dir", str(data_dir), "--port", str(port)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
    )
    db = sa.create_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    counted: dict[tuple[str, str], float] = {}
    # Whether the stopped plant showed as producing, polled while its stop went on (an hour
    # after it began, so the service has its data, until an hour before it ended).
    shown_during_stop: list[bool | None] = []
    reached: int | None = None
    appeared: dict[tuple[str, str], float] = {}  # wall seconds after the dashboard was shown
    offline_shown: str | None = None
    try:
        deadline = time.monotonic() + 300
        shown_at: float | None = None
        while time.monotonic() < deadline and demo.poll() is None:
            time.sleep(2)
            if shown_at is None:
                if "dashboard http" not in log_path.read_text(errors="replace"):
                    continue
                shown_at = time.monotonic()
            reached = status_sim_time(log_path.read_text(errors="replace"), start)
            if reached is not None and stop.start + HOUR <= reached < stop.end - HOUR:
                shown_during_stop.append(_producing(db, stop.enterprise_id))
            for c in _cases(db):
                appeared.setdefault((c.enterprise_id, c.rule), time.monotonic() - shown_at)
            if (offline.enterprise_id, "B8") in appeared and offline_shown is None:
                offline_shown = _status(port, offline.enterprise_id)
            if set(expected) <= set(appeared) and reached is not None and reached >= judged_by:
                break
        with contextlib.suppress(OSError):  # the service's counters, while it runs
            counted = _outcomes(port)
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in its terminal: the whole group
        code = demo.wait(timeout=60)
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, output[-3000:]
    assert "ERROR" not in output and "Traceback" not in output, output[-3000:]
    assert f"dashboard http://127.0.0.1:{port}/" in output
    for username, _role, _name, _scope in DEMO_USERS:
        assert f"{username} / {DEMO_PASSWORD}" in output
    for incident in script:
        assert incident.describe() in output  # the script it printed is the one checked here
    assert "已发送报文" in output and "nonsite demo stopped." in output
    sent = [int(n.replace(",", "")) for n in re.findall(r"已发送报文 ([\d,]+)", output)]
    assert sent == sorted(sent), "the count of messages sent went down"
    assert reached is not None and reached >= judged_by, (reached, judged_by)

    cases = _cases(db)
    problems: list[str] = []
    for (enterprise, rule), tier in expected.items():
        # The rule fired at its tier; the case is at that tier unless escalated, and says why;
        # and it is still in the queue (open), where the monitoring centre looks.
        case = next((c for c in cases if (c.enterprise_id, c.rule) == (enterprise, rule)), None)
        if case is None:
            problems.append(f"{enterprise}: no {rule} case")
            continue
        if tier not in _fired_tiers(db, enterprise, rule):
            problems.append(f"{enterprise}: {rule} never fired at {tier}")
        if not (case.tier == tier or case.escalation):
            problems.append(f"{enterprise}: {rule} case at {case.tier}, not {tier}: {case}")
        if not case.open:
            problems.append(f"{enterprise}: the {rule} case left the queue: {case}")
    if offline_shown != "offline":
        problems.append(f"{offline.enterprise_id} offline, its status: {offline_shown}")
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
    # When each case appeared is reported, not judged here: the pace on a shared host is
    # bench/demo_script.py's to measure (the README's two minutes).
    shown = {f"{e} {r}": round(t) for (e, r), t in sorted(appeared.items()) if (e, r) in expected}
    assert not problems, "\n".join([*problems, f"appeared (s after the dashboard): {shown}"])
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
    # The part of the fleet on TCP: the hour packet the link lost was recalled (补遗) from the
    # logger's history for its B7 case, and the clock running fast was read and set (校时).
    with db.connect() as conn:
        commands = list(conn.execute(sa.text("select * from logger_commands")).mappings())
    recalls = [c for c in commands if c["kind"] == "recall" and c["status"] == "done"]
    assert recalls and recalls[0]["filled"] >= 1 and recalls[0]["case_id"], commands[:5]
    lossy = next(i for i in script if i.kind == "link_lost")
    b7 = next(c for c in cases if (c.enterprise_id, c.rule) == (lossy.enterprise_id, "B7"))
    assert recalls[0]["case_id"] == b7.id
    assert any(c["kind"] == "time_set" and c["status"] == "done" for c in commands), commands
    assert "经 TCP 接入 HJ 212 网关" in output
    db.dispose()

    # The command line reads the demo's data with the configuration it wrote, as it printed.
    [(config, cli)] = re.findall(r"^  NONSITE_CONFIG=(\S+) (\S+) cases list$", output, re.M)
    [(cli_again, config_again, archive)] = re.findall(
        r"^  (\S+) replay --config (\S+) (\S+)$", output, re.M
    )
    assert (cli_again, config_again) == (cli, config)
    assert Path(config).resolve() == (data_dir / CONFIG_NAME).resolve()
    nonsite = [sys.executable, "-m", "nonsite"]
    listed = subprocess.run(
        [*nonsite, "cases", "list", "--json", "--limit", "1000"],
        env={**os.environ, "NONSITE_CONFIG": config},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    listed_cases = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(listed_cases) == len(cases)
    constant = next(i for i in script if i.kind == "constant")
    replayed = subprocess.run(
        [*nonsite, "replay", "--config", config, archive],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    found = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert any(
        (f["rule"], f["enterprise_id"], f["state"]) == ("B2", constant.enterprise_id, "fire")
        for f in found
    ), replayed.stderr[-500:]


def _demo(tmp_path: Path, port: int, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "nonsite", "demo", "--data-dir", str(tmp_path / "data")),
        *f"--enterprises 5 --port {port}".split(),
        *extra,
    ]


@pytest.mark.integration
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
            reached = status_sim_time(log_path.read_text(errors="replace"), start)
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


@pytest.mark.integration
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


@pytest.mark.integration
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
