"""The HJ 212 TCP gateway: throughput into the archive as a ratio to the MQTT path, and memory
per idle connection.

1. Throughput. One Mosquitto (persistence off) and one ``nonsite serve`` (SQLite) with a fleet
   of loggers, each its own MN and PW. Rounds alternate between two paths carrying the same
   number of distinct packets (CN=2011, 8 factors, Flag with the A bit):

     mqtt  the loggers publish straight to ``hj212/{MN}`` at QoS 1 from this process: by
           default one paho client publishing on every logger's topic, every packet sent at
           once (no in-flight limit). One client per logger would cost this process a thread
           each; and paho with a window rescans its in-flight table on every PUBACK
           (``Client._update_inflight``), which at 1,000 costs this process some 45 µs more
           per frame on the same two cores: either would slow the baseline by the bench's
           own cost. ``--mqtt-inflight 1000`` gives it the gateway's own window.
     tcp   the same loggers each open a TCP connection to the gateway (opened before the
           clock starts), push all their packets at once and read the 9014 replies

   A round's figure is frames/s from the first send to the moment the raw archive holds all of
   them (polling ``RawArchive.head_seq``); between rounds the decode pipeline is let catch up,
   so no round pays for its predecessor's backlog. A 9014 still missing 30 s after its round
   is stored (the gateway gave up on the PUBACK: the logger would resend) is counted, not
   waited for; this bench does not resend. Reported: every round, the medians, and the
   median of the per-pair ratios tcp/mqtt (goal >= 0.8). Also the CPU each process spent per
   frame in the round, and the platform's share (serve, its pipeline, Mosquitto, the
   gateway: what the loggers do not pay), which says where the time goes whatever the
   machine's load. Two layouts, each with its own serve and its own MQTT baseline:

     in_serve  the gateway inside ``nonsite serve`` ([tcp] listen)
     separate  ``nonsite gateway`` as its own process (the layout for big fleets)

2. Memory per idle connection. A standalone ``nonsite gateway`` configured with one outlet
   per connection. After a warm-up (a few connections bound and closed, so first-use
   allocations are not charged to connections), its VmRSS with no connection; then with N
   connections open and silent (unbound); then with each having sent one packet (bound to its
   own logger, answered, then idle). Reported: (RSS - RSS before) / N, goal <= 20 KB bound.

Writes bench/results/gateway.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.e2e.observe import memory_kib, process_tree
from bench.e2e.phases import metric_sum, wait_until
from bench.ingest_ratio import loopback_broker
from bench.traffic import FACTORS_8
from ingest.archive import RawArchive
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from ingest.tcp.runtime import raise_open_file_limit
from nonsite.embedded_broker import free_port
from tests.brokers import Mosquitto, mosquitto_binary, wait_port
from tests.service_process import ServiceProcess

HOST = "127.0.0.1"
GOAL_RATIO = 0.8
GOAL_BYTES_PER_IDLE = 20 * 1024
# Once the archive holds a round, its acknowledgements have this long to arrive: the gateway
# gives up on a PUBACK after ack_timeout_s (10 s) and then sends no 9014 at all.
ACK_GRACE_S = 30.0
# DataTimes of the run: a day back, one second per packet, so every round's packets differ
# (the archive stores a topic and payload once).
BASE_TIME = datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
DECODED = "nonsite_ingest_decoded_messages_total{"


# -- the fleet -------------------------------------------------------------------------------


def logger_mn(i: int) -> str:
    return f"33010000B8900016G{i:07d}"


def logger_pw(i: int) -> str:
    return f"pw-{i:05d}-{i * 7919 % 100_000:05d}"  # a PW of its own: no logger speaks for another


def upload(logger: int, at: int) -> bytes:
    """A CN=2011 real-time upload asking for a reply; ``at`` seconds after BASE_TIME."""
    when = BASE_TIME + timedelta(seconds=at)
    pollutants: dict[str, dict[str, float | str]] = {
        code: {"Rtd": round(10.0 + (logger * 7 + at + k * 13) % 900 / 10, 2), "Flag": "N"}
        for k, code in enumerate(FACTORS_8)
    }
    [packet] = data_packets(
        st="31",
        cn="2011",
        pw=logger_pw(logger),
        mn=logger_mn(logger),
        data_time=when,
        pollutants=pollutants,
        ack=True,
    )
    return packet


def round_traffic(loggers: int, packets: int, round_no: int) -> list[list[bytes]]:
    """Each logger's packets for one round, distinct from every other round's."""
    first = round_no * packets
    return [[upload(i, first + k) for k in range(packets)] for i in range(loggers)]


def write_config(
    path: Path,
    *,
    broker_url: str,
    data_dir: Path,
    loggers: int,
    tcp_listen: str = "",
    metrics_listen: str = "",
    per_address: int = 64,
) -> Path:
    lines = [
        "[service]",
        f'data_dir = "{data_dir}"',
        f'http_listen = "{HOST}:{free_port()}"',
        "[mqtt]",
        f'url = "{broker_url}"',
        'client_id = "bench-serve"',
        "[tcp]",
        f'listen = "{tcp_listen}"',
        f'metrics_listen = "{metrics_listen}"',
        f"max_connections_per_address = {per_address}",
        "[commands]",
        "time_check_every_h = 0",  # the daily clock checks would reach the bench's loggers
        "[[enterprises]]",
        'id = "E1"',
        'name = "网关基准企业"',
    ]
    for i in range(loggers):
        lines += ["[[enterprises.outlets]]", f'id = "DA{i:05d}"', 'kind = "gas"']
        lines += [f'mn = "{logger_mn(i)}"', f'pw = "{logger_pw(i)}"']
    path.write_text("\n".join(lines) + "\n")
    return path


# -- processes ---------------------------------------------------------------------------------


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


class GatewayProcess:
    """``nonsite gateway`` as a child process, with its /metrics."""

    def __init__(self, config: Path, listen: str, metrics_listen: str, log: Path) -> None:
        self.config, self.listen, self.log = config, listen, log
        self.metrics_url = f"http://{metrics_listen}/metrics"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "NONSITE_LOG_LEVEL": "WARNING"}
        cmd = [sys.executable, "-m", "nonsite", "gateway", "--config", str(self.config)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*cmd, "--listen", self.listen], stdout=out, stderr=subprocess.STDOUT, env=env
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"nonsite gateway exited: {self.log.read_text()[-2000:]}")
            try:
                return self.metric("nonsite_gateway_mqtt_connected") == 1
            except (urllib.error.URLError, ConnectionError):
                return False

        wait_until(up, timeout, "nonsite gateway not connected to the broker")
        host, _, port = self.listen.rpartition(":")
        wait_port(host, int(port))

    def metric(self, prefix: str) -> float:
        return metric_sum(scrape(self.metrics_url), prefix)

    def rss_kib(self) -> int:
        return memory_kib(self.pid, "VmRSS")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


# -- the two paths -----------------------------------------------------------------------------


class Sender(threading.Thread):
    """Sends one round's traffic on its own thread; ``ready`` once connected (the clock starts
    at the first send, ``t0``), ``t_acked`` when every packet is acknowledged (PUBACK, 9014),
    or never: the round then ``abandon``s the wait and reports what is missing."""

    def __init__(self, traffic: list[list[bytes]]) -> None:
        super().__init__(daemon=True)
        self.traffic = traffic
        self.frames = sum(len(p) for p in traffic)
        self.ready = threading.Event()
        self.t0 = 0.0
        self.t_acked = 0.0
        self.acked = 0  # PUBACKs or replies so far
        self.replies_9014 = 0
        self.error: Exception | None = None
        self.abandoned = False

    def run(self) -> None:
        try:
            self.send()
        except Exception as exc:  # noqa: BLE001 (re-raised by the round, on the main thread)
            self.error = exc
            self.ready.set()

    def send(self) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        """Stop waiting for the acknowledgements still missing."""
        raise NotImplementedError


class MqttLoggers(Sender):
    def __init__(
        self, traffic: list[list[bytes]], broker: Mosquitto, clients: int, inflight: int
    ) -> None:
        super().__init__(traffic)
        self.broker = broker
        self.clients = clients
        self.inflight = inflight
        self._done = threading.Event()

    def abandon(self) -> None:
        self.abandoned = True
        self._done.set()

    def send(self) -> None:
        lock = threading.Lock()
        done = self._done

        def on_publish(*_: Any) -> None:
            with lock:
                self.acked += 1
                if self.acked == self.frames:
                    done.set()

        clients = []
        for k in range(self.clients):
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-loggers-{k}")
            c.max_inflight_messages_set(self.inflight)
            c.on_publish = on_publish
            c.connect(self.broker.host, self.broker.port)
            c.loop_start()
            clients.append(c)
        wait_until(lambda: all(c.is_connected() for c in clients), 10, "MQTT loggers connecting")
        topics = [f"hj212/{logger_mn(i)}" for i in range(len(self.traffic))]
        # Interleaved as the TCP loggers' packets arrive: packet k of every logger, then k + 1.
        order = [
            (clients[i % self.clients], topics[i], p)
            for k in range(max(len(p) for p in self.traffic))
            for i, packets in enumerate(self.traffic)
            if k < len(packets)
            for p in (packets[k],)
        ]
        self.ready.set()
        self.t0 = time.perf_counter()
        for client, topic, payload in order:
            client.publish(topic, payload, qos=1)
        if not done.wait(600):
            raise TimeoutError(f"MQTT path: {self.acked} of {self.frames} PUBACKs")
        if not self.abandoned:
            self.t_acked = time.perf_counter()
        for c in clients:
            c.disconnect()
            c.loop_stop()


class TcpLoggers(Sender):
    def __init__(self, traffic: list[list[bytes]], port: int, window: int) -> None:
        super().__init__(traffic)
        self.port = port
        # Packets sent ahead of their 9014; 0: all at once. A logger with a window stalls on a
        # 9014 that never comes (this bench does not resend), and its round times out.
        self.window = window
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def abandon(self) -> None:
        self.abandoned = True
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)

    def send(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        conns = [await asyncio.open_connection(HOST, self.port) for _ in self.traffic]
        self.ready.set()
        self.t0 = time.perf_counter()
        try:
            async with asyncio.timeout(600):
                await asyncio.gather(
                    *(self._logger(r, w, p) for (r, w), p in zip(conns, self.traffic, strict=True))
                )
            self.t_acked = time.perf_counter()
        except asyncio.CancelledError:
            if not self.abandoned:
                raise
        finally:
            for _, writer in conns:
                writer.close()

    async def _logger(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, packets: list[bytes]
    ) -> None:
        """One logger: its packets out (its first binds the connection), its replies in."""
        n = len(packets)
        sent = min(n, self.window) if self.window else n
        writer.write(b"".join(packets[:sent]))
        await writer.drain()
        lines = 0
        buf = b""
        while lines < n:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError(f"the gateway closed a connection after {lines} replies")
            buf += data
            end = buf.rfind(b"\r\n") + 2
            if end >= 2:  # count whole replies only: one may be split across reads
                done, buf = buf[:end], buf[end:]
                replies = done.count(b"\r\n")
                lines += replies
                self.acked += replies  # one event loop thread: no lock needed
                self.replies_9014 += done.count(b"CN=9014")
            if sent < n and (target := min(n, lines + self.window)) > sent:
                writer.write(b"".join(packets[sent:target]))
                sent = target
                await writer.drain()


# -- throughput --------------------------------------------------------------------------------


@dataclass
class RoundResult:
    round: int
    path: str
    frames: int
    seconds: float  # first send → the archive holds every frame
    frames_per_s: float
    acked_s: float | None  # first send → every PUBACK (mqtt) / every 9014 (tcp); None: some never
    replies_9014: int | None
    acks_missing: int  # PUBACKs / 9014s not there ACK_GRACE_S after the archive held the round
    # CPU each process spent in the round (start → archived), per frame: where the time goes
    cpu_us_per_frame: dict[str, float]
    platform_cpu_us_per_frame: float  # all but the bench (the loggers)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 for one that has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Serve:
    """The service under test, watched through its archive and /metrics."""

    def __init__(self, service: ServiceProcess, archive_path: Path, others: dict[str, int]) -> None:
        self.service = service
        wait_until(archive_path.exists, 30, "the archive not created")
        self.archive = RawArchive(archive_path, readonly=True)
        self.archived = self.archive.head_seq()
        assert service.proc is not None
        serve, *pipeline = process_tree(service.proc.pid)
        self.pids = {"serve": [serve], "pipeline": pipeline, "bench": [os.getpid()]}
        self.pids |= {name: [pid] for name, pid in others.items()}

    def cpu(self) -> dict[str, float]:
        return {name: sum(cpu_s(p) for p in pids) for name, pids in self.pids.items()}

    def run_round(self, sender: Sender, path: str, round_no: int) -> RoundResult:
        # Frames are counted in the archive's rows, not as rows: a gateway apart carries the
        # packets of one read in one message (ingest/tcp/gateway.py).
        seq, stored = self.archived, 0
        cpu0 = self.cpu()
        sender.start()
        sender.ready.wait(120)
        deadline = time.monotonic() + 600
        while stored < sender.frames:
            if sender.error is not None:
                raise sender.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: archive at {stored} of {sender.frames} frames")
            rows = self.archive.read_after(seq, 5000)
            if rows:
                stored += sum(m.payload.count(b"##") for m in rows)
                seq = rows[-1].seq
            else:
                time.sleep(0.005)
        t_end = time.perf_counter()
        cpu = {name: (s - cpu0[name]) * 1e6 / sender.frames for name, s in self.cpu().items()}
        sender.join(ACK_GRACE_S)
        if sender.is_alive():  # stored, yet not acknowledged: counted, not waited for
            sender.abandon()
            sender.join(30)
        if sender.error is not None:
            raise sender.error
        if stored != sender.frames:
            raise RuntimeError(f"{path}: {stored - sender.frames} more frames than sent stored")
        self.archived = seq
        seconds = t_end - sender.t0
        self.wait_decoded()
        return RoundResult(
            round=round_no,
            path=path,
            frames=sender.frames,
            seconds=round(seconds, 3),
            frames_per_s=round(sender.frames / seconds),
            acked_s=round(sender.t_acked - sender.t0, 3) if sender.t_acked else None,
            replies_9014=sender.replies_9014 if path == "tcp" else None,
            acks_missing=sender.frames - sender.acked,
            cpu_us_per_frame={name: round(us, 1) for name, us in cpu.items()},
            platform_cpu_us_per_frame=round(sum(cpu.values()) - cpu["bench"], 1),
        )

    def wait_decoded(self) -> None:
        """The next round starts with the decode pipeline at the archive's head."""
        wait_until(
            lambda: metric_sum(self.service.metrics(), DECODED) >= self.archived,
            600,
            "the pipeline not at the archive's head",
        )

    def outcomes(self) -> dict[str, float]:
        text = self.service.metrics()
        return {
            line.split('"')[1]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(DECODED)
        }


def throughput(
    layout: str, args: argparse.Namespace, broker: Mosquitto, workdir: Path
) -> dict[str, Any]:
    print(f"\n== throughput, gateway {layout.replace('_', ' ')} ==")
    tcp_port = free_port()
    listen = f"{HOST}:{tcp_port}"
    metrics_listen = f"{HOST}:{free_port()}"
    data = workdir / f"{layout}-data"
    config = write_config(
        workdir / f"{layout}.toml",
        broker_url=broker.url,
        data_dir=data,
        loggers=args.loggers,
        tcp_listen=listen if layout == "in_serve" else "",
        metrics_listen=metrics_listen if layout == "separate" else "",
        per_address=args.loggers + 10,  # every logger connects from loopback
    )
    service = ServiceProcess(config, workdir / f"{layout}-serve.log")
    gateway = None
    rounds: list[RoundResult] = []
    try:
        service.start(timeout=60)
        if layout == "separate":
            gateway = GatewayProcess(
                config, listen, metrics_listen, workdir / f"{layout}-gateway.log"
            )
            gateway.start()
        assert broker.proc is not None
        others = {"mosquitto": broker.proc.pid} | ({"gateway": gateway.pid} if gateway else {})
        serve = Serve(service, data / "archive.sqlite3", others)
        # A warm-up round on each path, not reported: imports, caches, the first connections.
        warm = [[upload(i, -1 - k) for k in range(5)] for i in range(args.loggers)]
        serve.run_round(
            MqttLoggers(warm[: args.loggers // 2], broker, args.mqtt_clients, args.mqtt_inflight),
            "",
            0,
        )
        serve.run_round(TcpLoggers(warm[args.loggers // 2 :], tcp_port, args.window), "", 0)
        for r in range(args.rounds):
            for path in ("mqtt", "tcp") if r % 2 == 0 else ("tcp", "mqtt"):
                round_no = 2 * r + (path == "tcp") + 2 * args.rounds * (layout == "separate")
                traffic = round_traffic(args.loggers, args.packets, round_no)
                sender: Sender = (
                    MqttLoggers(traffic, broker, args.mqtt_clients, args.mqtt_inflight)
                    if path == "mqtt"
                    else TcpLoggers(traffic, tcp_port, args.window)
                )
                res = serve.run_round(sender, path, r + 1)
                if path == "tcp" and res.replies_9014 != res.frames - res.acks_missing:
                    raise RuntimeError(f"replies other than 9014: {res}")
                rounds.append(res)
                acked = (
                    f"acknowledged after {res.acked_s:.2f} s"
                    if res.acked_s is not None
                    else f"{res.acks_missing:,} NEVER ACKNOWLEDGED"
                )
                print(
                    f"round {r + 1} {path:<4}: {res.frames:,} frames in {res.seconds:.2f} s = "
                    f"{res.frames_per_s:,.0f} frames/s ({acked}); CPU µs/frame "
                    + ", ".join(f"{k} {v:.0f}" for k, v in res.cpu_us_per_frame.items())
                )
        outcomes = serve.outcomes()
        gw_text = scrape(gateway.metrics_url) if gateway else service.metrics()
        unacked = metric_sum(gw_text, 'nonsite_gateway_pieces_total{outcome="unacknowledged"')
        junk = metric_sum(gw_text, 'nonsite_gateway_pieces_total{outcome="junk"')
        serve.archive.close()
    finally:
        if gateway is not None:
            gateway.stop()
        service.terminate()
    by_round: dict[int, dict[str, float]] = {}
    for res in rounds:
        by_round.setdefault(res.round, {})[res.path] = res.frames_per_s
    ratios = [round(x["tcp"] / x["mqtt"], 3) for x in by_round.values()]

    def median_of(path: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in rounds if r.path == path))

    summary = {
        "mqtt_frames_per_s_median": median_of("mqtt", "frames_per_s"),
        "tcp_frames_per_s_median": median_of("tcp", "frames_per_s"),
        "ratios_tcp_vs_mqtt": ratios,
        "ratio_tcp_vs_mqtt_median": statistics.median(ratios),
        "mqtt_platform_cpu_us_per_frame_median": median_of("mqtt", "platform_cpu_us_per_frame"),
        "tcp_platform_cpu_us_per_frame_median": median_of("tcp", "platform_cpu_us_per_frame"),
        "tcp_9014s_missing": sum(r.acks_missing for r in rounds if r.path == "tcp"),
        "decoded_outcomes": outcomes,
        "gateway_pieces_unacknowledged": unacked,
        "gateway_pieces_junk": junk,
        "rounds": [asdict(r) for r in rounds],
    }
    print(
        f"median: mqtt {summary['mqtt_frames_per_s_median']:,.0f} frames/s, tcp "
        f"{summary['tcp_frames_per_s_median']:,.0f} frames/s, ratio "
        f"{summary['ratio_tcp_vs_mqtt_median']:.2f} (per round {ratios}); platform CPU "
        f"{summary['mqtt_platform_cpu_us_per_frame_median']:.0f} µs/frame mqtt, "
        f"{summary['tcp_platform_cpu_us_per_frame_median']:.0f} tcp; 9014s never sent: "
        f"{summary['tcp_9014s_missing']:,} (the gateway counted {unacked:,.0f} unacknowledged)"
    )
    return summary


# -- memory per idle connection ------------------------------------------------------------------


async def open_many(port: int, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """n connections, at most 100 handshakes at a time (the listen backlog is 1024)."""
    gate = asyncio.Semaphore(100)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with gate:
            return await asyncio.open_connection(HOST, port)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def bind_all(
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]], first: int
) -> None:
    """Each connection sends one packet of its own logger and reads the 9014."""
    gate = asyncio.Semaphore(200)

    async def one(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with gate:
            writer.write(upload(first + i, 0))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)
            if b"CN=9014" not in reply:
                raise RuntimeError(f"logger {first + i}: {reply!r}")

    await asyncio.gather(*(one(i, r, w) for i, (r, w) in enumerate(conns)))


async def close_all(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(0)


def settle(gateway: GatewayProcess, what: str, value: int, seconds: float) -> int:
    """The gateway's RSS (KiB) once its metric ``what`` reads ``value`` and it has had a few
    seconds to finish (buffers freed, the sweeper's pass); the lowest of a few readings."""
    wait_until(lambda: gateway.metric(what) == value, 120, f"{what} != {value}")
    time.sleep(seconds)
    readings = []
    for _ in range(5):
        readings.append(gateway.rss_kib())
        time.sleep(0.2)
    return min(readings)


def idle_memory(args: argparse.Namespace, broker: Mosquitto, workdir: Path) -> dict[str, Any]:
    n, warm = args.idle_connections, 50
    print(f"\n== memory per idle connection, {n:,} connections ==")
    print(f"bench open-file limit raised to {raise_open_file_limit():,}")
    listen = f"{HOST}:{free_port()}"
    metrics_listen = f"{HOST}:{free_port()}"
    config = write_config(
        workdir / "memory.toml",
        broker_url=broker.url,
        data_dir=workdir / "memory-data",  # unused: the gateway has no archive
        loggers=n + warm,
        metrics_listen=metrics_listen,
        per_address=n + warm + 1000,
    )
    gateway = GatewayProcess(config, listen, metrics_listen, workdir / "memory-gateway.log")
    port = int(listen.rpartition(":")[2])
    gateway.start()
    bound_metric = "nonsite_gateway_connections_bound "
    open_metric = "nonsite_gateway_connections "

    async def run() -> dict[str, int]:
        kib: dict[str, int] = {"started": gateway.rss_kib()}
        conns = await open_many(port, warm)
        await bind_all(conns, n)  # loggers n.. n + warm: the measured ones stay unbound
        await close_all(conns)
        kib["before"] = await asyncio.to_thread(settle, gateway, open_metric, 0, args.settle_s)
        conns = await open_many(port, n)
        kib["unbound"] = await asyncio.to_thread(settle, gateway, open_metric, n, args.settle_s)
        await bind_all(conns, 0)
        kib["bound"] = await asyncio.to_thread(settle, gateway, bound_metric, n, args.settle_s)
        await close_all(conns)
        kib["closed"] = await asyncio.to_thread(settle, gateway, open_metric, 0, args.settle_s)
        return kib

    try:
        kib = asyncio.run(run())
    finally:
        gateway.stop()
    per_unbound = (kib["unbound"] - kib["before"]) * 1024 / n
    per_bound = (kib["bound"] - kib["before"]) * 1024 / n
    result = {
        "connections": n,
        "warm_up_connections": warm,
        "rss_kib": kib,
        "bytes_per_idle_connection_unbound": round(per_unbound),
        "bytes_per_idle_connection_bound": round(per_bound),
        "goal_bytes_per_idle_connection": GOAL_BYTES_PER_IDLE,
    }
    print(
        f"RSS {kib['before']:,} KiB before, {kib['unbound']:,} KiB with {n:,} unbound, "
        f"{kib['bound']:,} KiB bound, {kib['closed']:,} KiB after closing them"
    )
    print(
        f"per idle connection: unbound {per_unbound / 1024:.1f} KiB, "
        f"bound {per_bound / 1024:.1f} KiB (goal <= 20 KiB)"
    )
    return result


# -- main ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    help_text = subprocess.run(
        [mosquitto_binary(), "-h"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "os": platform.platform(),
        "python": platform.python_version(),
        "mosquitto": help_text[0] if help_text else None,
        # The machine is shared: what else ran says how noisy the wall-clock figures are.
        "load_average_1m_at_start": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loggers", type=int, default=200, help="loggers (TCP connections)")
    parser.add_argument("--packets", type=int, default=100, help="packets per logger per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per path and layout")
    parser.add_argument(
        "--window",
        type=int,
        default=0,
        help="TCP: packets a logger sends ahead of its 9014s; 0: all",
    )
    parser.add_argument("--mqtt-clients", type=int, default=1, help="MQTT path: paho clients")
    parser.add_argument(
        "--mqtt-inflight", type=int, default=0, help="MQTT path: QoS 1 window per client; 0: none"
    )
    parser.add_argument(
        "--layouts", default="in_serve,separate", help="gateway layouts to measure, or none"
    )
    parser.add_argument("--idle-connections", type=int, default=5000, help="0: skip memory")
    parser.add_argument("--settle-s", type=float, default=3.0)
    args = parser.parse_args()
    layouts = [x for x in args.layouts.split(",") if x and x != "none"]
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": {
            "loggers": args.loggers,
            "packets_per_logger_per_round": args.packets,
            "rounds": args.rounds,
            "tcp_window": args.window or "all packets at once",
            "mqtt_clients": args.mqtt_clients,
            "mqtt_inflight_per_client": args.mqtt_inflight or "unlimited",
            "packet": "CN=2011, 8 factors, Flag with the A bit (a 9014 per packet), "
            f"{len(upload(0, 0))} bytes",
            "archive": "SQLite, durability full (fsync per group commit)",
            "broker": "Mosquitto, persistence off, loopback",
        },
        "throughput": {},
        "goal_ratio": GOAL_RATIO,
        "memory": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = loopback_broker(workdir)
        try:
            for layout in layouts:
                result["throughput"][layout] = throughput(layout, args, broker, workdir)
            if args.idle_connections:
                result["memory"] = idle_memory(args, broker, workdir)
        finally:
            broker.stop(kill=True)
    result["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    for t in result["throughput"].values():
        t["goal_met"] = t["ratio_tcp_vs_mqtt_median"] >= GOAL_RATIO
    if result["memory"]:
        m = result["memory"]
        m["goal_met"] = m["bytes_per_idle_connection_bound"] <= GOAL_BYTES_PER_IDLE
    out = Path(__file__).parent / "results" / "gateway.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"{'gateway':<12}{'mqtt frames/s':>16}{'tcp frames/s':>16}{'ratio':>8}")
    for layout, t in result["throughput"].items():
        print(
            f"{layout:<12}{t['mqtt_frames_per_s_median']:>16,.0f}"
            f"{t['tcp_frames_per_s_median']:>16,.0f}{t['ratio_tcp_vs_mqtt_median']:>8.2f}"
        )
    if result["memory"]:
        m = result["memory"]
        print(
            f"idle connection: {m['bytes_per_idle_connection_bound']:,} B bound, "
            f"{m['bytes_per_idle_connection_unbound']:,} B unbound"
        )
    print(f"goals: ratio >= {GOAL_RATIO}, <= 20 KB per idle connection; written to {out}")


if __name__ == "__main__":
    main()
