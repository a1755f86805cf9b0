"""``nonsite demo``: the service and the simulator together on one machine, with nothing else
installed. An embedded broker (or ``--broker``), SQLite in a data directory, the demo fleet,
one login per role, and a live status line until Ctrl-C or ``--duration``.

Simulated time runs ``--speed`` times faster than the wall clock, and it ends at the present:
data stamped in the future would be refused by the service (it is checked against its
receipt time), so the run starts at midnight (China time) ``--days`` days ago, catches up,
and then follows the clock. Starting at midnight gives every past day all its data, as a
real logger's would have. The scripted incidents (``nonsite.simulator.incidents``) happen
in the first day, with the real fleet's conditions beside them (a plant stopped across a
midnight, a 1-minute logger, an intermittent discharger, a real-time-only outlet, a logger
backfilling after an outage, a pH dip); the demo prints them with the rules each should and
should not raise.

Stopping: SIGTERM and Ctrl-C (SIGINT) stop it in an orderly way within seconds, whenever they
come (while it starts, catches up or follows the clock): the simulator stops, the service
drains, and the exit status is 0. (Only a SIGTERM in the first tenth of a second, while the
interpreter itself starts, ends it with the default status 143: nothing has started then.) A
taken port is an error of one line naming the address and ``--port``, exit status 1, before
anything starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from alerts.schema import cases
from ingest.hj212.timefmt import CHINA_TZ
from nonsite.auth.users import UserStore
from nonsite.config.model import Config, RulesSection
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.db import make_engine, migrate
from nonsite.embedded_broker import free_port
from nonsite.errors import ListenError
from nonsite.service import Service
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import Incident, scripted_config
from nonsite.simulator.publisher import Progress, Publisher
from nonsite.simulator.traffic import FleetTraffic
from rules.store import findings
from rules.timebase import CHINA_OFFSET, DAY, HOUR

# One login per role; the passwords are the demo's, printed at start.
DEMO_USERS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("monitor", "monitor", "监测中心 王工", {}),
    ("supervisor", "supervisor", "监管科 李科长", {}),
    ("enforcer", "enforcer", "滨江执法大队 张队", {"brigade": "B01"}),
    ("enterprise", "enterprise", "E001 环保专员", {"enterprise_id": "E001"}),
    ("admin", "admin", "运维 赵工", {}),
)
DEMO_PASSWORD = "nonsite-demo"  # noqa: S105 - a demo's published login, not a secret


@dataclass
class DemoSettings:
    data_dir: Path
    broker: str | None = None
    duration_s: float | None = None
    speed: float = 60.0
    seed: int = 212
    enterprises: int = 200
    http_port: int = 8080
    days: int = 1  # simulated history: from 00:00 China time this many days ago
    # B8's threshold (s of the wall clock, which receipt times follow); None: the default.
    offline_after_s: int | None = None


def history_start(days: int, now: float) -> int:
    """00:00 China time ``days`` days before today."""
    today = int(now) - (int(now) + CHINA_OFFSET) % DAY
    return today - days * DAY


# The service judges absence (B8) on its wall clock, this often.
ABSENCE_TICK_S = 30


def backfill_outage_s(speed: float, offline_after_s: int | None) -> int:
    """How long (simulated) the backfilling logger is cut off: three hours, or, when time runs
    fast, long enough in wall-clock time for B8 to see it (its threshold, a clock tick and 10 s
    to spare), in whole hours."""
    wall = (offline_after_s or RulesSection().offline_after_s) + ABSENCE_TICK_S + 10
    return max(3 * HOUR, math.ceil(wall * speed / HOUR) * HOUR)


def demo_config(s: DemoSettings, start: int, end: int) -> tuple[Config, list[Incident]]:
    data: dict[str, Any] = demo_fleet(s.enterprises, seed=s.seed)
    data["service"] = {"data_dir": str(s.data_dir), "http_listen": f"127.0.0.1:{s.http_port}"}
    data["mqtt"] = {"url": s.broker or "", "embedded_port": 0 if s.broker else free_port()}
    data["alerts"] = {"dashboard_url": f"http://127.0.0.1:{s.http_port}"}
    if s.offline_after_s is not None:
        data["rules"] = {"offline_after_s": s.offline_after_s}
    outage = backfill_outage_s(s.speed, s.offline_after_s)
    return scripted_config(data, start, end, outage_s=outage)


def ensure_users(config: Config) -> None:
    engine = make_engine(config.database_url())
    try:
        migrate(engine)
        users = UserStore(engine)
        for username, role, name, scope in DEMO_USERS:
            if users.get(username) is None:
                users.add(username, DEMO_PASSWORD, role, display_name=name, by="demo", **scope)
    finally:
        engine.dispose()


def status_line(config: Config, progress: Progress | None) -> str:
    engine = make_engine(config.database_url())
    try:
        with engine.connect() as conn:
            found = conn.execute(select(func.count()).select_from(findings)).scalar_one()
            open_cases = conn.execute(
                select(func.count()).select_from(cases).where(cases.c.open_key.is_not(None))
            ).scalar_one()
    finally:
        engine.dispose()
    sim = (
        datetime.fromtimestamp(progress.sim_time, CHINA_TZ).strftime("%m-%d %H:%M")
        if progress
        else "—"
    )
    sent = progress.messages if progress else 0
    return f"模拟时间 {sim} · 报文 {sent:,} · 发现 {found:,} · 未办结案件 {open_cases:,}"


def check_port(port: int) -> None:
    """A taken dashboard port is an error at once, naming the address and the way out (the
    service would find it only after the set-up, and the demo then waited for it forever)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ListenError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another port with "
                f"--port (e.g. --port {free_port()})"
            ) from None


def play(
    traffic: FleetTraffic,
    publisher: Publisher,
    *,
    start: int,
    speed: float,
    halt: threading.Event,
    until: int | None = None,
    sent: int = 0,
    on_progress: Callable[[Progress], None] = lambda _p: None,
) -> Progress:
    """Publish minute after minute of simulated time from ``start`` at ``speed`` until
    ``until`` (or forever), as ``simulator.publisher.run`` does, but waiting on ``halt``
    between minutes: following the clock, a minute is a minute's wait, and a stop must not
    sit it out."""
    wall0 = time.monotonic()
    t = start - start % 60
    while not halt.is_set() and (until is None or t < until):
        sent += publisher.publish(traffic.frames(t))
        t += 60
        on_progress(Progress(t, sent))
        halt.wait(max(0.0, wall0 + (t - start) / speed - time.monotonic()))
    return Progress(t, sent)


def run_demo(s: DemoSettings, early_stop: threading.Event | None = None) -> int:
    """Run the demo until SIGTERM, Ctrl-C or ``--duration``; 0 after an orderly stop.
    ``early_stop``: set by the caller's signal handlers while the demo sets up (migrations,
    users: a few seconds), so that a stop then is orderly too (the CLI installs them)."""
    check_port(s.http_port)
    return _run_demo(s, early_stop or threading.Event())


def _run_demo(s: DemoSettings, early_stop: threading.Event) -> int:
    s.data_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    start = history_start(s.days, now)
    # The run goes on in real time after the history, so the whole script may play.
    config, incidents = demo_config(s, start, int(now) + DAY)
    ensure_users(config)
    if early_stop.is_set():
        print("nonsite demo stopped before it started.", flush=True)
        return 0
    service = Service(config)
    service.listen_hint = "choose another port with --port"
    latest: dict[str, Progress] = {}
    halt = threading.Event()

    def simulate(broker_url: str) -> None:
        publisher = Publisher(parse_broker_url(broker_url), client_id="nonsite-demo-simulator")
        traffic = FleetTraffic(config, seed=s.seed, incidents=incidents, since=start)
        try:
            # Catch up to the present at --speed, then follow the wall clock.
            done = play(
                traffic,
                publisher,
                start=start,
                speed=s.speed,
                until=int(time.time()),
                halt=halt,
                on_progress=lambda p: latest.update(p=p),
            )
            traffic.realtime = True  # live now: real-time data (CN 2011) every minute
            play(
                traffic,
                publisher,
                start=done.sim_time,
                speed=1.0,
                halt=halt,
                sent=done.messages,
                on_progress=lambda p: latest.update(p=p),
            )
        finally:
            publisher.close()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if early_stop.is_set():
            stop.set()
        runner = asyncio.create_task(service.run(stop))
        started = asyncio.create_task(service.status.started.wait())
        await asyncio.wait({runner, started}, return_when=asyncio.FIRST_COMPLETED)
        if not service.status.started.is_set():
            started.cancel()
            await runner  # raises why it could not start (a taken port: one line, exit 1)
            return
        if stop.is_set():  # stopped while starting: nothing to show
            await runner
            print("nonsite demo stopped.", flush=True)
            return
        broker = s.broker or (service.embedded.url if service.embedded else "")
        print(f"nonsite demo: dashboard {service.status.http_url}/  (broker {broker})", flush=True)
        for username, role, name, _scope in DEMO_USERS:
            print(f"  {role:<11} {username} / {DEMO_PASSWORD}   {name}", flush=True)
        print("演示剧本 (scripted incidents and real-fleet conditions, China time):", flush=True)
        for incident in incidents:
            print(f"  {incident.describe()}", flush=True)
        simulator = threading.Thread(target=simulate, args=(broker,), name="simulator", daemon=True)
        simulator.start()
        began = time.monotonic()
        while not stop.is_set():
            if s.duration_s is not None and time.monotonic() - began >= s.duration_s:
                break
            line = await asyncio.to_thread(status_line, config, latest.get("p"))
            print(f"\r{line}   ", end="", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
        halt.set()
        await asyncio.to_thread(simulator.join, 30)
        stop.set()
        await runner
        print("\nnonsite demo stopped.", flush=True)

    asyncio.run(main())
    return 0
