"""``nonsite demo``: the service and the simulator together on one machine, with nothing else
installed. An embedded broker (or ``--broker``), SQLite in a data directory, the demo fleet,
one login per role, and a live status line until Ctrl-C or ``--duration``.

History first, then live: the run starts at midnight (China time) ``--days`` days ago, as a
real logger's data would (every past day whole), and sends the minutes that have ended
``--speed`` times faster than the clock (1200: a day in 72 s, so that the whole script is seen
within two minutes); caught up, it sends each minute as it begins, real-time data included.
Data stamped in the future would be refused by the service (it is checked against its receipt
time). The scripted incidents (``nonsite.simulator.incidents``) happen in the first day, with
the real fleet's conditions beside them (a plant stopped across a midnight, a 1-minute logger,
an intermittent discharger, a real-time-only outlet, a logger backfilling after an outage, a
pH dip); the demo prints them with the rules each should and should not raise.

What the script needs from the configuration, because history runs faster than the clock:
B8 (a silent logger) is judged on the clock, so the demo's loggers count as offline after
``DEMO_OFFLINE_AFTER_S`` (not 600 s), which still leaves live loggers, sending every minute, a
margin; and a warning whose condition ends (a constant value for three hours) stays in the
queue (``[alerts] resolve_on_clear = []``), since three hours of history pass in nine seconds.

Each run starts afresh in its data directory (``--seed`` repeats a run): a previous demo's
files there are removed; a directory holding other data is refused. The configuration it runs
with is written there (``nonsite.toml``), so that the command line reads the demo's data
(``NONSITE_CONFIG=demo-data/nonsite.toml nonsite cases list``) and ``nonsite replay`` runs its
history; the demo prints both commands.

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
import json
import logging
import math
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from alerts.schema import cases
from ingest.china_time import CHINA_TZ
from nonsite.auth import UserStore
from nonsite.config.model import ARCHIVE_FILE, DATABASE_FILE, Config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.db import make_engine, migrate
from nonsite.embedded_broker import free_port
from nonsite.errors import ListenError, StartupError
from nonsite.service import Service
from nonsite.simulator.fleet import demo_fleet
from nonsite.simulator.incidents import Incident, scripted_config
from nonsite.simulator.publisher import MessageSink, Progress, Publisher
from nonsite.simulator.tcp_fleet import MixedPublisher, TcpFleet, tcp_share
from nonsite.simulator.traffic import DEFAULT_MINUTE_INTERVAL_MIN, FleetTraffic
from rules.timebase import CHINA_OFFSET, DAY, HOUR

# One login per role; the passwords are the demo's, printed at start.
DEMO_USERS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("monitor", "monitor", "监测中心 王工", {}),
    ("supervisor", "supervisor", "监管科 李科长", {}),
    ("enforcer", "enforcer", "滨江执法大队 张队", {"brigade": "B01"}),
    ("enterprise", "enterprise", "E001 环保专员", {"enterprise_id": "E001"}),
    ("admin", "admin", "运维 赵工", {}),
    ("township", "township", "滨江区某街道环保办", {"area": "滨江区"}),  # submits clues
    ("legal", "legal", "法制科 陈科长", {}),  # reviews the major decisions
)
DEMO_PASSWORD = "nonsite-demo"  # noqa: S105 - a demo's published login, not a secret

DEFAULT_SPEED = 1200.0  # history: a day in 72 s
# B8 in the demo: seconds of silence (wall clock) before a logger is offline. Live loggers send
# every 60 s; 80 leaves them 20 s of margin and shows the scripted offline logger (silent from
# 01:00 of the first day, 3 s into the run) within two minutes (80 s and a 30 s clock tick).
DEMO_OFFLINE_AFTER_S = 80
# History waits while the pipeline has this many archived messages still to decode: a backlog
# of more than B8's threshold in wall time would make every logger look offline.
LAG_LIMIT = 3000
# History: a meter's minute samples go ten to a message (a gateway uploading what it stored),
# a tenth of the messages, without which the embedded broker could not carry 1200x.
METER_BATCH_MIN = 10
CONFIG_NAME = "nonsite.toml"
CONFIG_HEADER = "# nonsite demo: the configuration of the demo whose data are in this directory"
# What a demo leaves in its data directory (SQLite's -wal and -shm beside the databases).
DEMO_FILES = (
    *(
        f"{name}{suffix}"
        for name in (ARCHIVE_FILE, DATABASE_FILE)
        for suffix in ("", "-wal", "-shm", "-journal")
    ),
    "pipeline.lock",
    CONFIG_NAME,
)


@dataclass
class DemoSettings:
    data_dir: Path
    broker: str | None = None
    duration_s: float | None = None
    speed: float = DEFAULT_SPEED
    seed: int = 212
    enterprises: int = 200
    http_port: int = 8080
    days: int = 1  # simulated history: from 00:00 China time this many days ago
    # B8's threshold (s of the wall clock, which receipt times follow); None: the demo's.
    offline_after_s: int | None = None
    # The HJ 212 TCP gateway's port, for the part of the fleet on TCP; None: a free one.
    tcp_port: int | None = None


# In the first hours after midnight yesterday is not judged yet (its end, the grace, an hour to
# spare): its daily incidents (A4) would wait for the wall clock, past the two minutes the
# demo promises. Then the history starts a day earlier, and they are judged on that day.
EARLY_HOURS = 3


def history_start(days: int, now: float) -> int:
    """00:00 China time ``days`` days before today (a day more in its first ``EARLY_HOURS``)."""
    today = int(now) - (int(now) + CHINA_OFFSET) % DAY
    if int(now) - today < EARLY_HOURS * 3600:
        days += 1
    return today - days * DAY


# The service judges absence (B8) on its wall clock, this often.
ABSENCE_TICK_S = 30


def offline_after(s: DemoSettings) -> int:
    """B8's threshold in the demo: ``--offline-after``, else the demo's, but never below 1.5
    times the wall-clock time between a logger's records in history (10 simulated minutes at
    ``--speed``), or every logger would look offline while history is sent slowly."""
    if s.offline_after_s is not None:
        return s.offline_after_s
    between = DEFAULT_MINUTE_INTERVAL_MIN * 60 / s.speed
    return max(DEMO_OFFLINE_AFTER_S, math.ceil(1.5 * between))


def backfill_outage_s(speed: float, offline_after_s: int) -> int:
    """How long (simulated) the backfilling logger is cut off: three hours, or, when time runs
    fast, long enough in wall-clock time for B8 to see it (its threshold, a clock tick and 10 s
    to spare), in whole hours."""
    wall = offline_after_s + ABSENCE_TICK_S + 10
    return max(3 * HOUR, math.ceil(wall * speed / HOUR) * HOUR)


def demo_data(s: DemoSettings) -> dict[str, Any]:
    """The demo's configuration, as the dict a TOML file gives (without the script's orders)."""
    data: dict[str, Any] = demo_fleet(s.enterprises, seed=s.seed)
    data["service"] = {
        "data_dir": str(s.data_dir.resolve()),  # the CLI reads it from any directory
        "http_listen": f"127.0.0.1:{s.http_port}",
    }
    data["mqtt"] = {"url": s.broker or "", "embedded_port": 0 if s.broker else free_port()}
    # Part of the fleet connects over TCP, as real loggers do: serve runs the gateway.
    data["tcp"] = {"listen": f"127.0.0.1:{s.tcp_port or free_port()}"}
    # History runs faster than the clock: a warning whose condition ended stays in the queue.
    data["alerts"] = {"dashboard_url": f"http://127.0.0.1:{s.http_port}", "resolve_on_clear": []}
    data["rules"] = {"offline_after_s": offline_after(s)}
    return data


def demo_config(
    s: DemoSettings, start: int, end: int
) -> tuple[Config, list[Incident], dict[str, Any]]:
    """The configuration, the script and the configuration as data (to write down)."""
    data = demo_data(s)
    outage = backfill_outage_s(s.speed, offline_after(s))
    config, incidents = scripted_config(data, start, end, outage_s=outage)
    return config, incidents, data


# -- the data directory ------------------------------------------------------------------


def prepare_data_dir(data_dir: Path) -> bool:
    """An empty data directory for this run; True when a previous demo's data were removed.
    Another demo's files go (a run starts afresh: its history would be late data to what the
    last run left); a directory holding data that no demo wrote is refused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    present = [name for name in DEMO_FILES if (data_dir / name).exists()]
    if not present:
        return False
    if not is_demo_config(data_dir / CONFIG_NAME):
        raise StartupError(
            f"{data_dir} holds data ({', '.join(present)}) but no demo's {CONFIG_NAME} (a "
            "service's, or an older demo's): the demo starts afresh and removes only its own; "
            "choose another --data-dir, or remove these files"
        )
    for name in present:
        (data_dir / name).unlink()
    return True


def is_demo_config(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().rstrip("\n") == CONFIG_HEADER
    except OSError:
        return False


def write_config(data: dict[str, Any], data_dir: Path, cli: str) -> Path:
    """The demo's configuration as TOML beside its data, with how to use it."""
    path = data_dir / CONFIG_NAME
    where = shown_path(path)
    header = (
        f"{CONFIG_HEADER}\n"
        "# (written by `nonsite demo`, replaced at its next start). Read the demo's data with:\n"
        f"#   NONSITE_CONFIG={where} {cli} cases list\n"
        f"#   {cli} replay --config {where} {shown_path(data_dir / 'archive.sqlite3')}\n\n"
    )
    path.write_text(header + to_toml(data), encoding="utf-8")
    return path


def shown_path(path: Path) -> str:
    """A path as the user typed it from here: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def cli_name() -> str:
    """How to run this ``nonsite`` from the working directory (``.venv/bin/nonsite`` after
    ``./dev demo``, whose venv is not on PATH)."""
    exe = Path(sys.argv[0])
    if exe.name != "nonsite" or not exe.is_file():
        return "nonsite"
    found = shutil.which("nonsite")
    if found is not None and Path(found).resolve() == exe.resolve():
        return "nonsite"
    return shown_path(exe)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(data: dict[str, Any]) -> str:
    """``data`` (tables, arrays of tables, strings, numbers, booleans, lists) as TOML; what
    ``tomllib.loads`` reads back as ``data``. (Here rather than a dependency: a configuration's
    shapes are few.)"""
    lines: list[str] = []

    def key(k: str) -> str:
        return k if _BARE_KEY.fullmatch(k) else json.dumps(k, ensure_ascii=False)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"not a TOML number: {v}")
            return repr(v)
        if isinstance(v, str | Path):
            # JSON's escapes are TOML's; TOML also wants DEL escaped.
            return json.dumps(str(v), ensure_ascii=False).replace("\x7f", "\\u007f")
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"no TOML for {type(v).__name__}")

    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    def table(d: dict[str, Any], name: str, header: str) -> None:
        if header:
            lines.extend(["", header])
        for k, v in d.items():
            if not (isinstance(v, dict) or is_tables(v)):
                lines.append(f"{key(k)} = {value(v)}")
        for k, v in d.items():
            path = f"{name}.{key(k)}" if name else key(k)
            if isinstance(v, dict):
                table(v, path, f"[{path}]")
            elif is_tables(v):
                for item in v:
                    table(item, path, f"[[{path}]]")

    table(data, "", "")
    return "\n".join(lines).lstrip("\n") + "\n"


# -- running -------------------------------------------------------------------------------


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


def status_line(config: Config, progress: Progress | None, live: bool) -> str:
    """Simulated time, messages sent (this run's, never fewer), and cases: all the script has
    opened so far and those still open."""
    engine = make_engine(config.database_url())
    try:
        with engine.connect() as conn:
            opened = conn.execute(select(func.count()).select_from(cases)).scalar_one()
            still_open = conn.execute(
                select(func.count()).select_from(cases).where(cases.c.open_key.is_not(None))
            ).scalar_one()
    finally:
        engine.dispose()
    # Live, a minute is sent as it begins: its end is still ahead of the clock.
    sim = (
        datetime.fromtimestamp(min(progress.sim_time, time.time()), CHINA_TZ).strftime(
            "%m-%d %H:%M"
        )
        if progress
        else "—"
    )
    sent = progress.messages if progress else 0
    phase = "实时" if live else "追赶历史"
    return (
        f"模拟时间 {sim} {phase} · 已发送报文 {sent:,} 条 · "
        f"案件 {opened:,} 件 (未办结 {still_open:,} 件)"
    )


STATUS_SIM_TIME = re.compile(r"模拟时间 (\d\d)-(\d\d) (\d\d):(\d\d)")


def status_sim_time(output: str, start: int) -> int | None:
    """The simulated time of the last status line in ``output`` (what ``status_line`` printed,
    China time to the minute; its year from the history's ``start``), or None before the
    first. For those who watch a demo run: its tests and bench/demo_script.py."""
    found = STATUS_SIM_TIME.findall(output)
    if not found:
        return None
    month, day, hour, minute = (int(x) for x in found[-1])
    first = datetime.fromtimestamp(start, CHINA_TZ)
    year = first.year + (1 if month < first.month else 0)
    return int(datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ).timestamp())


FAST_CLOCK_S = 180  # the demo's one logger whose clock runs ahead


def tcp_loggers(config: Config, incidents: list[Incident]) -> frozenset[str]:
    """The loggers that connect over TCP: a share of the fleet, and every logger whose packets
    the script loses on the way (only a TCP logger here answers the recall that gets them)."""
    mns = {(e.id, o.id): o.mn for e in config.enterprises for o in e.outlets}
    lossy = {mns[(i.enterprise_id, i.source_id)] for i in incidents if i.kind == "link_lost"}
    return tcp_share(mns.values()) | lossy


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
    publisher: MessageSink,
    *,
    start: int,
    speed: float,
    halt: threading.Event,
    clock: Callable[[], float] = time.time,
    backlog: Callable[[], int] = lambda: 0,
    on_progress: Callable[[Progress], None] = lambda _p: None,
) -> Progress:
    """Publish minute after minute of simulated time from ``start`` until ``halt``: the
    minutes that have ended (history) ``speed`` times faster than the clock, and while the
    service's ``backlog`` is above ``LAG_LIMIT`` not at all; then, caught up, each minute as it
    begins, with real-time data. One count of messages throughout. Waits on ``halt``, so that
    a stop need not sit out a minute."""
    wall0 = time.monotonic()
    t = start - start % 60
    sent = 0
    while not halt.is_set():
        if t + 60 > clock():  # this minute has not ended: live from here on
            traffic.realtime = True
            if halt.wait(max(0.0, t - clock())):
                break
        else:
            halt.wait(max(0.0, wall0 + (t - start) / speed - time.monotonic()))
            while backlog() > LAG_LIMIT and not halt.wait(0.2):
                pass
            if halt.is_set():
                break
        sent += publisher.publish(traffic.frames(t))
        t += 60
        on_progress(Progress(t, sent))
    return Progress(t, sent)


def run_demo(s: DemoSettings, early_stop: threading.Event | None = None) -> int:
    """Run the demo until SIGTERM, Ctrl-C or ``--duration``; 0 after an orderly stop.
    ``early_stop``: set by the caller's signal handlers while the demo sets up (migrations,
    users: a few seconds), so that a stop then is orderly too (the CLI installs them)."""
    check_port(s.http_port)
    return _run_demo(s, early_stop or threading.Event())


def _run_demo(s: DemoSettings, early_stop: threading.Event) -> int:
    cleared = prepare_data_dir(s.data_dir)
    now = time.time()
    start = history_start(s.days, now)
    # The run goes on in real time after the history, so the whole script may play.
    config, incidents, data = demo_config(s, start, int(now) + DAY)
    cli = cli_name()
    config_path = write_config(data, s.data_dir, cli)
    ensure_users(config)
    if early_stop.is_set():
        print("nonsite demo stopped before it started.", flush=True)
        return 0
    service = Service(config)
    service.listen_hint = "choose another port with --port"
    # A line per logger connecting and going would bury the status line.
    logging.getLogger("ingest.tcp.gateway").setLevel(logging.WARNING)
    latest: dict[str, Progress] = {}
    halt = threading.Event()

    def backlog() -> int:
        pipeline = service.pipeline
        return 0 if pipeline is None else max(0, pipeline.head - pipeline.position)

    def simulate(broker_url: str, traffic: FleetTraffic, tcp: TcpFleet) -> None:
        publisher = MixedPublisher(
            Publisher(parse_broker_url(broker_url), client_id="nonsite-demo-simulator"), tcp
        )
        try:
            tcp.connect()
            play(
                traffic,
                publisher,
                start=start,
                speed=s.speed,
                halt=halt,
                backlog=backlog,
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
        print(
            f"演示剧本 (scripted incidents and real-fleet conditions, China time; history at "
            f"{s.speed:g}× the clock, then live; a logger is offline after "
            f"{offline_after(s)} s of silence; warnings stay in the queue when they clear):",
            flush=True,
        )
        for incident in incidents:
            print(f"  {incident.describe()}", flush=True)
        where = shown_path(config_path)
        print(
            f"{'previous demo data removed; ' if cleared else ''}data in "
            f"{shown_path(s.data_dir)}/, configuration {where}. The command line on them:\n"
            f"  NONSITE_CONFIG={where} {cli} cases list\n"
            f"  {cli} replay --config {where} {shown_path(s.data_dir / 'archive.sqlite3')}",
            flush=True,
        )
        on_tcp = tcp_loggers(config, incidents)
        fast = min(on_tcp)  # one clock runs fast: the platform reads it and sets it (校时)
        host, _, port = config.tcp.listen.rpartition(":")
        tcp = TcpFleet(host, int(port), on_tcp, clocks={fast: FAST_CLOCK_S})
        print(
            f"数采仪 {len(on_tcp)} 台经 TCP 接入 HJ 212 网关 {config.tcp.listen} (应答 9014、"
            f"补遗召回、校时; {fast} 时钟快 {FAST_CLOCK_S // 60} 分钟), 其余经 MQTT",
            flush=True,
        )
        traffic = FleetTraffic(
            config,
            seed=s.seed,
            incidents=incidents,
            since=start,
            meter_batch_min=METER_BATCH_MIN,
            acked=on_tcp,
        )
        simulator = threading.Thread(
            target=simulate, args=(broker, traffic, tcp), name="simulator", daemon=True
        )
        simulator.start()
        began = time.monotonic()
        while not stop.is_set():
            if s.duration_s is not None and time.monotonic() - began >= s.duration_s:
                break
            line = await asyncio.to_thread(status_line, config, latest.get("p"), traffic.realtime)
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
