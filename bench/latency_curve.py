"""Latency against rate: the service and a bare baseline, fed live by the same generator.

For each rate (1,000, 2,000, 3,500, 5,000, 7,500, 10,000, … messages/s) and each target, on a
fresh Mosquitto (loopback, queues in memory) and a fresh data directory:

1. the demo fleet's traffic (100 enterprises: minute, hour, real-time and power messages) is
   published for ``--seconds`` by ``--processes`` paced publishers of their own, pre-encoded
   so that they cost the kernel rather than the interpreter (bench/e2e/loadgen.py), and
   ``--probes-per-second`` probes (default 5: 300 in a minute, so that p99 is not the one
   worst probe) by a publisher that sends nothing else; each probe closes an exceeding hour
   of a probe outlet of its own (primed beforehand);
2. **service**: ``nonsite serve`` receives it; a probe's latency ends when its case is
   committed (seen in the database within a millisecond) and when the webhook receives it;
   on the way, the moment the service's MQTT client had it (the archive's receive time)
   splits the first into broker + socket (``received``) and the service's own work
   (``received_to_case``: archive commit, decoding, rules, the case);
   **baseline**: a bare paho subscriber that stores each message in SQLite with the archive's
   durability and acknowledges it after the commit (bench/e2e/baseline.py); a probe's latency
   ends at its commit;
3. afterwards the bench waits for the target to have everything stored (the service: its
   checkpoint at the archive's settled head): the time that takes is the **backlog** at the
   end of the run. A rate is kept when p99 ≤ 50 ms and the backlog drains within 2 s; the
   **knee** is the highest rate kept. The curve stops at the first rate that is not.

Each process's CPU (service, pipeline, baseline, each publisher, and this process, which
watches cases and takes webhooks) is reported as a share of one core over the run. The
service's database is SQLite in its data directory, or with ``--database-url`` a fresh
PostgreSQL database for each rate. Writes bench/results/latency_curve.json (or
latency_curve_postgresql.json) and prints a table; ``python -m bench.plot_latency_curve``
draws it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.e2e.baseline import baseline_worker
from bench.e2e.fleet import bench_config, probe_mn, service_sections, write_toml
from bench.e2e.loadgen import PublisherReport, probe_worker, process_cpu_s, publish_worker
from bench.e2e.observe import CaseWatch, Checkpoints, WebhookSink, process_tree
from bench.e2e.phases import summary_ms, wait_until
from bench.e2e.traffic import fleet_minutes, probe_closer, probe_priming, take
from bench.end_to_end import database_for, settled_head
from bench.ingest_ratio import loopback_broker
from ingest.archive import RawArchive
from nonsite.demo import history_start
from nonsite.embedded_broker import free_port
from nonsite.simulator.traffic import LOST_PREFIX
from rules.timebase import HOUR
from tests.brokers import Mosquitto
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess

RESULTS = Path(__file__).parent / "results" / "latency_curve.json"
RESULTS_POSTGRESQL = RESULTS.with_name("latency_curve_postgresql.json")
RATES = (1000, 2000, 3500, 5000, 7500, 10000, 12500, 15000)
P99_GOAL_MS = 50.0
BACKLOG_GOAL_S = 2.0
SPAWN = multiprocessing.get_context("spawn")
# Where a probe waits in the service: the archive's group commits, the pipeline's batches and
# its database transactions (histograms on /metrics).
STALL_FAMILIES = (
    "nonsite_archive_commit_seconds",
    "nonsite_ingest_pipeline_batch_seconds",
    "nonsite_db_commit_seconds",
)


class Target:
    """What receives the load: started before it, asked for its latencies after it."""

    name = ""

    def start(self, broker: Mosquitto, probes: dict[str, str]) -> list[int]:
        """Start; the pids whose CPU is counted. ``probes``: probe MN → enterprise."""
        raise NotImplementedError

    def caught_up(self, published: int) -> float | None:
        """The moment (perf_counter) everything published was stored, once it has been."""
        raise NotImplementedError

    def progress(self) -> str:
        """How far it got (for a run that does not finish)."""
        raise NotImplementedError

    def latencies(self, sent: dict[str, float]) -> dict[str, list[float]]:
        """Per end point, each probe's latency in seconds (``sent``: MN → publish time)."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class Baseline(Target):
    name = "baseline"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ctl: Connection | None = None
        self.proc: Any = None
        self.cpu_s = 0.0
        self.slow_commits_ms: list[float] = []

    def start(self, broker: Mosquitto, probes: dict[str, str]) -> list[int]:
        self.ctl, child = SPAWN.Pipe()
        self.proc = SPAWN.Process(
            target=baseline_worker,
            args=(
                broker.host,
                broker.port,
                self.workdir / "bare.sqlite3",
                frozenset(probes),
                child,
            ),
            daemon=True,
        )
        self.proc.start()
        time.sleep(1.0)  # connected and subscribed
        return [self.proc.pid]

    def _ask(self) -> tuple[int, dict[str, float], float, list[float]]:
        assert self.ctl is not None
        self.ctl.send(("stored",))
        answer: tuple[int, dict[str, float], float, list[float]] = self.ctl.recv()
        return answer

    def caught_up(self, published: int) -> float | None:
        return time.perf_counter() if self._ask()[0] >= published else None

    def progress(self) -> str:
        return f"{self._ask()[0]} stored"

    def latencies(self, sent: dict[str, float]) -> dict[str, list[float]]:
        _, stored, self.cpu_s, self.slow_commits_ms = self._ask()
        return {"stored": [stored[mn] - at for mn, at in sent.items() if mn in stored]}

    def stop(self) -> None:
        if self.ctl is not None:
            self.ctl.send(("stop",))
        if self.proc is not None:
            self.proc.join(10)


class Service(Target):
    name = "service"

    def __init__(
        self,
        workdir: Path,
        data: dict[str, Any],
        probes_config: Any,
        sink: WebhookSink,
        database_base: str | None,
    ) -> None:
        self.workdir, self.data, self.probes_config, self.sink = workdir, data, probes_config, sink
        self.database_base = database_base
        self.service: ServiceProcess | None = None
        self.watch: CaseWatch | None = None
        self.checkpoints: Checkpoints | None = None
        self.data_dir = workdir / "serve"
        self.webhook_from = 0
        self.probes: dict[str, str] = {}
        self.first_probe_seq = 0
        self.stalls: dict[str, dict[str, float]] = {}

    def start(self, broker: Mosquitto, probes: dict[str, str]) -> list[int]:
        self.probes = probes
        self.data_dir.mkdir()
        database_url = database_for(
            self.database_base,
            self.data_dir,
            f"nonsite_curve_{self.workdir.name.replace('-', '_')}",
        )
        sections = service_sections(
            self.data_dir, broker.url, free_port(), self.sink.url, database_url
        )
        path = write_toml(self.data | sections, self.workdir / "serve.toml")
        self.service = ServiceProcess(path, self.workdir / "serve.log")
        self.service.start()
        self.checkpoints = Checkpoints(database_url)
        hour = _probe_hour()
        publisher = Publisher(broker.host, broker.port, client_id="bench-priming")
        publisher.publish_all(probe_priming(self.probes_config, hour))
        publisher.close()
        head = settled_head(self.data_dir / "archive.sqlite3")
        checkpoints = self.checkpoints
        wait_until(lambda: checkpoints() >= head, 120, "the probes' priming")
        self.first_probe_seq = head
        self.watch = CaseWatch(database_url)
        self.watch.start()
        self.webhook_from = len(self.sink.received)
        assert self.service.proc is not None
        return process_tree(self.service.proc.pid)

    def caught_up(self, published: int) -> float | None:
        """When the checkpoint reached the archive's head, the head then unchanged for half a
        second (the broker has delivered everything; 补发 resends are stored once, so the
        archive holds fewer rows than were published)."""
        assert self.checkpoints is not None
        archive = RawArchive(self.data_dir / "archive.sqlite3", readonly=True)
        try:
            reached: float | None = None
            head = -1
            while True:
                now_head = archive.head_seq()
                if now_head != head:
                    head, reached = now_head, None
                if reached is None and self.checkpoints() >= head:
                    reached = time.perf_counter()
                if reached is not None and time.perf_counter() - reached >= 0.5:
                    return reached
                if reached is None:
                    return None  # asked again by the caller's wait
                time.sleep(0.01)
        finally:
            archive.close()

    def progress(self) -> str:
        assert self.checkpoints is not None
        archive = RawArchive(self.data_dir / "archive.sqlite3", readonly=True)
        try:
            return f"checkpoint {self.checkpoints()} of {archive.head_seq()} archived"
        finally:
            archive.close()

    def latencies(self, sent: dict[str, float]) -> dict[str, list[float]]:
        assert self.watch is not None
        by_ent = {self.probes[mn]: at for mn, at in sent.items()}
        opened: dict[str, float] = {}
        delivered: dict[str, float] = {}

        def all_seen() -> bool:
            assert self.watch is not None
            for c in self.watch.seen:
                if c.rule == "A3" and c.enterprise_id in by_ent:
                    opened.setdefault(c.enterprise_id, c.at)
            for at, body in self.sink.received[self.webhook_from :]:
                payload = body["payload"]
                case = (json.loads(payload) if isinstance(payload, str) else payload)["case"]
                if body["event"] == "case.opened" and case["rule"] == "A3":
                    delivered.setdefault(body["enterprise_id"], at)
            return by_ent.keys() <= opened.keys() and by_ent.keys() <= delivered.keys()

        wait_until(all_seen, 60, "a case and a webhook for every probe")
        self.stalls = self._stalls()
        received = self._received(sent)
        return {
            "case": [opened[e] - at for e, at in by_ent.items()],
            "webhook": [delivered[e] - at for e, at in by_ent.items()],
            # Where the time goes: publish → the service's MQTT client had it (broker, socket,
            # paho), and from there → the committed case (archive, pipeline, rules, case).
            "received": [received[mn] - at for mn, at in sent.items() if mn in received],
            "received_to_case": [
                opened[self.probes[mn]] - received[mn] for mn in sent if mn in received
            ],
        }

    def _stalls(self) -> dict[str, dict[str, float]]:
        """From the service's /metrics: how many of its archive commits, pipeline batches and
        database transactions took longer than 25 and 50 ms (where a probe's tail comes
        from), with their count and mean."""
        assert self.service is not None
        out: dict[str, dict[str, float]] = {}
        for family in text_string_to_metric_families(self.service.metrics()):
            if family.type != "histogram" or not family.name.startswith(STALL_FAMILIES):
                continue
            for key in sorted({s.labels.get("transaction", "") for s in family.samples}):
                mine = [s for s in family.samples if s.labels.get("transaction", "") == key]
                count = next(s.value for s in mine if s.name.endswith("_count"))
                total = next(s.value for s in mine if s.name.endswith("_sum"))
                le = {float(s.labels["le"]): s.value for s in mine if s.name.endswith("_bucket")}
                name = family.name.removeprefix("nonsite_") + (f"[{key}]" if key else "")
                out[name] = {
                    "count": count,
                    "mean_ms": round(1000 * total / count, 2) if count else 0.0,
                    "over_25ms": count - le.get(0.025, count),
                    "over_50ms": count - le.get(0.05, count),
                }
        return out

    def _received(self, sent: dict[str, float]) -> dict[str, float]:
        """Each probe's receive time as the archive stored it, on the perf_counter clock (the
        archive's is the wall clock; both are read here to relate them)."""
        offset = time.time() - time.perf_counter()
        topics = [f"hj212/{mn}" for mn in sent]
        db = sqlite3.connect(f"file:{self.data_dir / 'archive.sqlite3'}?mode=ro", uri=True)
        try:
            last = dict(
                db.execute(
                    "SELECT topic, MAX(received_us) FROM messages WHERE seq > ? AND topic IN "
                    f"({','.join('?' * len(topics))}) GROUP BY topic",
                    (self.first_probe_seq, *topics),
                )
            )
        finally:
            db.close()
        return {topic[6:]: us / 1e6 - offset for topic, us in last.items()}

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        if self.checkpoints is not None:
            self.checkpoints.close()
        if self.service is not None:
            self.service.terminate()


def _role(pid: int, main: int) -> str:
    """The service's processes by what they are: the service, its pipeline, the tracker."""
    if pid == main:
        return "service"
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return str(pid)
    return "tracker" if "resource_tracker" in cmdline else "pipeline"


def _probe_hour() -> int:
    return int(time.time()) // HOUR * HOUR - 3 * HOUR


def write_shares(messages: list[tuple[str, bytes]], processes: int, workdir: Path) -> list[Path]:
    """Each publisher's share of the traffic, in a file it loads (not pickled through a pipe
    at every run)."""
    paths = []
    for i in range(processes):
        path = workdir / f"share-{i}.pickle"
        path.write_bytes(pickle.dumps(messages[i::processes]))
        paths.append(path)
    return paths


def run_once(
    target: Target,
    rate: float,
    args: argparse.Namespace,
    shares: list[Path],
    probes_config: Any,
    workdir: Path,
) -> dict[str, Any]:
    broker = loopback_broker(workdir)
    try:
        probes = {probe_mn(i): e.id for i, e in enumerate(probes_config.enterprises)}
        pids = target.start(broker, probes)
        hour = _probe_hour()
        closers = [(mn, probe_closer(mn, hour + 2 * HOUR + 60)) for mn in probes]
        pipes, procs = [], []
        for i, share in enumerate(shares):
            mine, theirs = SPAWN.Pipe()
            procs.append(
                SPAWN.Process(
                    target=publish_worker,
                    args=(
                        broker.host,
                        broker.port,
                        f"p{i}",
                        share,
                        rate / len(shares),
                        args.seconds,
                        theirs,
                    ),
                    daemon=True,
                )
            )
            pipes.append(mine)
        mine, theirs = SPAWN.Pipe()
        procs.append(
            SPAWN.Process(
                target=probe_worker,
                args=(broker.host, broker.port, closers, args.seconds, theirs),
                daemon=True,
            )
        )
        pipes.append(mine)
        for p in procs:
            p.start()
        for pipe in pipes:
            if not pipe.poll(120) or pipe.recv() != ("ready",):
                raise RuntimeError("a publisher did not get ready")
        cpu_before = process_cpu_s(pids)
        # The bench's own process watches cases and takes webhooks: its CPU is the machine's too.
        observer_before = process_cpu_s([os.getpid()])[os.getpid()]
        start_at = time.perf_counter() + 0.5
        for pipe in pipes:
            pipe.send(start_at)
        reports: list[PublisherReport] = [pipe.recv() for pipe in pipes]
        for p in procs:
            p.join(10)
        ended = time.perf_counter()
        published = sum(r.published for r in reports)
        caught: list[float] = []

        def stored_all() -> bool:
            at = target.caught_up(published)
            if at is not None:
                caught.append(at)
            return bool(caught)

        try:
            wait_until(stored_all, 120, f"{target.name} to store everything")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {target.progress()} of {published} published") from None
        backlog_s = max(0.0, caught[0] - ended)
        cpu_after = process_cpu_s(pids)
        wall = time.perf_counter() - start_at
        observer_s = process_cpu_s([os.getpid()])[os.getpid()] - observer_before
        sent = reports[-1].probe_sent
        latencies = target.latencies(sent)
        seconds = max(r.seconds for r in reports[:-1])
        cpu = {
            _role(pid, pids[0]): round((cpu_after[pid] - cpu_before[pid]) / wall, 3) for pid in pids
        }
        if isinstance(target, Baseline):
            cpu = {"baseline": round(target.cpu_s / wall, 3)}
        puback = [ms / 1000 for r in reports[:-1] for ms in r.puback_ms]
        ends = {k: summary_ms(v) for k, v in latencies.items()}
        first = next(iter(ends.values()))
        return {
            "target": target.name,
            "rate": rate,
            "achieved": round((published - len(sent)) / seconds),
            "seconds": round(seconds, 1),
            "probes": len(sent),
            "latency": ends,
            "backlog_s": round(backlog_s, 2),
            "cpu": cpu,
            "generator_cpu": {r.name: round(r.cpu_s / max(r.seconds, 1e-9), 3) for r in reports},
            "observer_cpu": round(observer_s / wall, 3),
            "generator_puback_ms": summary_ms(puback) if puback else {},
            "ok": first["p99_ms"] <= P99_GOAL_MS and backlog_s <= BACKLOG_GOAL_S,
            **({"service_histograms": target.stalls} if isinstance(target, Service) else {}),
            **(
                {"baseline_commits_over_25ms": target.slow_commits_ms}
                if isinstance(target, Baseline)
                else {}
            ),
        }
    finally:
        target.stop()
        broker.stop(kill=True)


def line(run: dict[str, Any]) -> str:
    lat = "  ".join(
        f"{end} p50 {v['p50_ms']:.1f} p99 {v['p99_ms']:.1f} ms" for end, v in run["latency"].items()
    )
    gen = run["generator_puback_ms"]
    return (
        f"{run['target']:<8} {run['rate']:>7,.0f}/s achieved {run['achieved']:>7,}/s  {lat}  "
        f"backlog {run['backlog_s']:.1f} s  cpu {run['cpu']}  "
        f"generator PUBACK p99 {gen.get('p99_ms', 0):.1f} ms  {'ok' if run['ok'] else 'KNEE PASSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=3, help="background publishers")
    parser.add_argument("--enterprises", type=int, default=100)
    parser.add_argument("--probes-per-second", type=float, default=5.0)
    parser.add_argument("--targets", default="baseline,service")
    parser.add_argument(
        "--database-url",
        help="the service's database on this PostgreSQL server (a fresh database for each "
        "rate); default SQLite in the data directory",
    )
    parser.add_argument("--output", type=Path, default=None, help=f"default {RESULTS.name}")
    parser.add_argument(
        "--keep", type=Path, help="work in this (new) directory and keep it, to look inside"
    )
    args = parser.parse_args()
    database = "PostgreSQL" if args.database_url else "SQLite"
    if args.output is None:
        args.output = RESULTS if not args.database_url else RESULTS_POSTGRESQL
    rates = [float(r) for r in args.rates.split(",")]
    probes_n = max(1, int(args.seconds * args.probes_per_second))
    start = history_start(2, time.time())
    data, config, incidents, probes_config = bench_config(
        args.enterprises, probes_n, start, start + 3 * 86400, {}
    )
    need = int(max(rates) * args.seconds)
    began = time.perf_counter()
    # What the simulator marks lost (a link down) is what no logger delivers: left out.
    traffic = (
        m for m in fleet_minutes(config, incidents, start) if not m[0].startswith(LOST_PREFIX)
    )
    messages = take(traffic, need)
    print(f"generated {len(messages):,} messages in {time.perf_counter() - began:.0f} s")
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)),
        "seconds": args.seconds,
        "publishers": args.processes,
        "probes_per_second": args.probes_per_second,
        "database": database,
        "goals": {"p99_ms": P99_GOAL_MS, "backlog_s": BACKLOG_GOAL_S},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            workdir = args.keep
        shares = write_shares(messages, args.processes, workdir)
        del messages
        sink = WebhookSink()
        sink.start()
        try:
            for name in args.targets.split(","):
                for rate in rates:
                    rundir = workdir / f"{name}-{rate:.0f}"
                    rundir.mkdir()
                    target: Target = (
                        Baseline(rundir)
                        if name == "baseline"
                        else Service(rundir, data, probes_config, sink, args.database_url)
                    )
                    run = run_once(target, rate, args, shares, probes_config, rundir)
                    result["runs"].append(run)
                    print(line(run), flush=True)
                    if not run["ok"]:
                        break
        finally:
            sink.stop()
    knees: dict[str, float] = {}
    for run in result["runs"]:
        if run["ok"]:
            knees[run["target"]] = max(knees.get(run["target"], 0), run["rate"])
    result["knee"] = knees
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"knee: {knees}; written to {args.output}")


if __name__ == "__main__":
    main()
