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
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import threading
import time
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
from nonsite.service import Service
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import Incident, scripted_config
from nonsite.simulator.publisher import Progress, Publisher, run
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


def run_demo(s: DemoSettings) -> int:
    s.data_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    start = history_start(s.days, now)
    # The run goes on in real time after the history, so the whole script may play.
    config, incidents = demo_config(s, start, int(now) + DAY)
    ensure_users(config)
    service = Service(config)
    latest: dict[str, Progress] = {}
    halt = threading.Event()

    def simulate(broker_url: str) -> None:
        publisher = Publisher(parse_broker_url(broker_url), client_id="nonsite-demo-simulator")
        traffic = FleetTraffic(config, seed=s.seed, incidents=incidents, since=start)
        try:
            # Catch up to the present at --speed, then follow the wall clock.
            done = run(
                traffic,
                publisher,
                start=start,
                speed=s.speed,
                until=int(time.time()),
                stop=halt.is_set,
                on_progress=lambda p: latest.update(p=p),
            )
            traffic.realtime = True  # live now: real-time data (CN 2011) every minute
            run(
                traffic,
                publisher,
                start=done.sim_time,
                speed=1.0,
                stop=halt.is_set,
                on_progress=lambda p: latest.update(p=p),
            )
        finally:
            publisher.close()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(service.run(stop))
        await service.status.started.wait()
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
