"""The whole path, end to end, in one run on loopback: throughput, latency and memory.

1. Starts Mosquitto on a free port and a webhook (the monitoring centre's) on another.
2. Throughput: a fixed mix of simulated traffic (the demo fleet, its scripted incidents and an
   hourly exceedance on every tenth outlet) is queued once for every consumer; each round a
   bare paho client drains it (the baseline) and then a fresh ``nonsite serve`` does, until
   its checkpoint reaches the last message (archived, decoded, judged, cases and outbox rows
   committed). Reported: messages/s and readings/s, and the ratio to the bare client's median.
3. Latency: the last round's service, kept running, gets live traffic at a fixed rate, among
   which probe frames each close an exceeding hour of a probe outlet of its own: publish → the
   committed case (seen in the database within a millisecond) and → the webhook's delivery.
4. Memory: a fleet with the given outlet×factor keys and meters, fed its minute, hour and
   power traffic live for an hour and more of simulated time (the meters' grace hour full);
   the service's peak resident memory (both processes).

Writes bench/results/end_to_end.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy

from bench.e2e.fleet import (
    bench_config,
    count_keys,
    probe_mn,
    scaled_fleet,
    service_sections,
    write_toml,
)
from bench.e2e.observe import CaseWatch, Checkpoints, MemorySampler, WebhookSink
from bench.e2e.phases import (
    Drain,
    drain_serve,
    feed_live,
    metric_sum,
    publish_paced,
    queue_for,
    summary_ms,
    wait_until,
)
from bench.e2e.traffic import describe, fleet_minutes, probe_closer, probe_priming, take
from bench.ingest_ratio import drain_bare, loopback_broker
from ingest.archive import RawArchive
from nonsite.config.load import parse_config
from nonsite.demo import history_start
from nonsite.embedded_broker import free_port
from nonsite.simulator.traffic import FleetTraffic, Message
from rules.timebase import HOUR
from tests.brokers import Mosquitto
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess

RESULTS = Path(__file__).parent / "results" / "end_to_end.json"


def database_for(base: str | None, data_dir: Path, name: str) -> str:
    """SQLite in the data directory (the embedded default), or a fresh PostgreSQL database."""
    if not base:
        return f"sqlite:///{data_dir / 'nonsite.db'}"
    url = sqlalchemy.make_url(base)
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def count_cases(database_url: str) -> int:
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as conn:
        n = int(conn.execute(sqlalchemy.text("SELECT count(*) FROM cases")).scalar() or 0)
    engine.dispose()
    return n


def serve_round(
    args: argparse.Namespace,
    workdir: Path,
    broker: Mosquitto,
    data: dict[str, Any],
    webhook: str,
    r: int,
) -> tuple[ServiceProcess, Drain, str]:
    data_dir = workdir / f"serve-{r}"
    data_dir.mkdir()
    database_url = database_for(args.database_url, data_dir, f"nonsite_bench_{r}")
    sections = service_sections(data_dir, broker.url, free_port(), webhook, database_url)
    sections["mqtt"]["client_id"] = f"bench-serve-{r}"
    path = write_toml(data | sections, workdir / f"serve-{r}.toml")
    service = ServiceProcess(path, workdir / f"serve-{r}.log")
    drain = drain_serve(service, data_dir, database_url, args.messages)
    return service, drain, database_url


def throughput(
    args: argparse.Namespace,
    workdir: Path,
    broker: Mosquitto,
    data: dict[str, Any],
    mix: list[Message],
    webhook: str,
) -> tuple[dict[str, Any], ServiceProcess, str]:
    rounds = args.rounds
    queued = queue_for(
        broker,
        [f"bench-bare-{r}" for r in range(rounds + 1)]
        + [f"bench-serve-{r}" for r in range(rounds)],
        mix,
    )
    print(f"queued {len(mix):,} messages for {2 * rounds + 1} sessions in {queued:.1f} s")
    bare = [drain_bare(broker, "bench-bare-0", len(mix))]
    print(f"bare paho: {bare[-1]:,.0f} msg/s")
    serve: list[dict[str, Any]] = []
    service: ServiceProcess | None = None
    database_url = ""
    for r in range(rounds):
        if service is not None:
            service.terminate()
        service, drain, database_url = serve_round(args, workdir, broker, data, webhook, r)
        readings = metric_sum(drain.metrics, "nonsite_ingest_readings_total")
        serve.append(
            {
                "msgs_per_s": round(drain.rate),
                "readings_per_s": round(readings / drain.seconds),
                "archive_msgs_per_s": round(drain.messages / drain.archive_seconds),
                "seconds": round(drain.seconds, 2),
                "readings": int(readings),
                "findings": int(metric_sum(drain.metrics, "nonsite_findings_total")),
                "cases": count_cases(database_url),
                "notifications_delivered": int(
                    metric_sum(
                        drain.metrics,
                        'nonsite_notifications_total{kind="webhook",outcome="delivered"}',
                    )
                ),
            }
        )
        print(
            f"nonsite serve round {r + 1}: {drain.rate:,.0f} msg/s, "
            f"{readings / drain.seconds:,.0f} readings/s "
            f"(archived at {drain.messages / drain.archive_seconds:,.0f} msg/s)"
        )
        bare.append(drain_bare(broker, f"bench-bare-{r + 1}", len(mix)))
        print(f"bare paho: {bare[-1]:,.0f} msg/s")
    assert service is not None
    bare_median = statistics.median(bare)
    serve_median = statistics.median(s["msgs_per_s"] for s in serve)
    result = {
        "messages": len(mix),
        "mix": describe(mix),
        "bare_msgs_per_s": [round(b) for b in bare],
        "serve": serve,
        "serve_msgs_per_s_median": round(serve_median),
        "serve_readings_per_s_median": round(statistics.median(s["readings_per_s"] for s in serve)),
        "ratio": round(serve_median / bare_median, 3),
    }
    return result, service, database_url


def settled_head(archive_path: Path, quiet_s: float = 2.0, timeout: float = 120) -> int:
    """The archive's last sequence number once nothing new has been archived for ``quiet_s``.

    Counting what was published does not tell what the archive will hold: the simulated
    fleet resends stored records (补发), which the archive keeps once (one row per topic and
    payload), so the head is read, not predicted."""
    archive = RawArchive(archive_path, readonly=True)
    try:
        head, since = archive.head_seq(), time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now_head = archive.head_seq()
            if now_head != head:
                head, since = now_head, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return head
        raise TimeoutError(f"the archive still growing after {timeout} s")
    finally:
        archive.close()


def latency(
    args: argparse.Namespace,
    broker: Mosquitto,
    service: ServiceProcess,
    data_dir: Path,
    database_url: str,
    probes_config: Any,
    background: Iterator[Message],
    sink: WebhookSink,
) -> dict[str, Any]:
    hour = int(time.time()) // HOUR * HOUR - 3 * HOUR
    priming = probe_priming(probes_config, hour)
    checkpoints = Checkpoints(database_url)
    archive_path = data_dir / "archive.sqlite3"
    publisher = Publisher(broker.host, broker.port, client_id="bench-priming")
    publisher.publish_all(priming)
    publisher.close()
    position = settled_head(archive_path)
    wait_until(lambda: checkpoints() >= position, 60, "the probes' priming")
    probes = [
        (e.id, probe_closer(probe_mn(i), hour + 2 * HOUR + 60))
        for i, e in enumerate(probes_config.enterprises)
    ]
    watch = CaseWatch(database_url)
    watch.start()
    webhook_before = len(sink.received)
    paced = publish_paced(broker, background, probes, args.rate, args.latency_seconds)
    position = settled_head(archive_path)
    wait_until(lambda: checkpoints() >= position, 120, "the pipeline after the paced run")
    probe_ids = set(paced.probe_sent)
    wait_until(
        lambda: (
            len({c.enterprise_id for c in watch.seen if c.rule == "A3"} & probe_ids)
            == len(probe_ids)
        ),
        30,
        "a case for every probe",
    )
    watch.stop()
    checkpoints.close()
    if dump := os.environ.get("NONSITE_BENCH_METRICS"):
        Path(dump).write_text(service.metrics())
    opened = {}
    for c in watch.seen:
        if c.rule == "A3" and c.enterprise_id in probe_ids:
            opened.setdefault(c.enterprise_id, c.at)
    delivered: dict[str, float] = {}

    def webhook_done() -> bool:
        for at, body in sink.received[webhook_before:]:
            payload = body["payload"]
            case = (json.loads(payload) if isinstance(payload, str) else payload)["case"]
            if body["event"] == "case.opened" and case["rule"] == "A3":
                delivered.setdefault(body["enterprise_id"], at)
        return probe_ids <= delivered.keys()

    wait_until(webhook_done, 60, "a webhook delivery for every probe")
    to_case = [opened[e] - sent for e, sent in paced.probe_sent.items()]
    to_webhook = [delivered[e] - sent for e, sent in paced.probe_sent.items()]
    return {
        "rate_msgs_per_s": args.rate,
        "achieved_msgs_per_s": round(paced.published / paced.seconds),
        "seconds": round(paced.seconds, 1),
        "probes": len(probes),
        "publish_to_committed_case": summary_ms(to_case),
        "publish_to_webhook": summary_ms(to_webhook),
    }


def memory(
    args: argparse.Namespace, workdir: Path, broker: Mosquitto, start: int
) -> dict[str, Any]:
    data = scaled_fleet(args.keys, args.meters)
    data_dir = workdir / "memory"
    data_dir.mkdir()
    database_url = f"sqlite:///{data_dir / 'nonsite.db'}"
    sections = service_sections(
        data_dir, broker.url, free_port(), "http://127.0.0.1:9/", database_url
    )
    sections["mqtt"]["client_id"] = "bench-serve-memory"
    sections["alerts"] = {}
    config = parse_config(data | sections, "(bench memory)", env={})
    keys, meters = count_keys(config)
    path = write_toml(data | sections, workdir / "memory.toml")
    service = ServiceProcess(path, workdir / "memory.log")
    service.start(timeout=120)
    assert service.proc is not None
    sampler = MemorySampler(service.proc.pid)
    sampler.start()
    traffic = FleetTraffic(config, since=start)

    def minutes() -> Iterator[list[Message]]:
        for m in range(1, args.memory_minutes + 1):
            yield list(traffic.frames(start + 60 * m))

    began = time.perf_counter()
    try:
        sent = feed_live(broker, minutes())
        checkpoints = Checkpoints(database_url)
        wait_until(lambda: checkpoints() >= sent, 1800, "the memory run's pipeline")
        seconds = time.perf_counter() - began
        checkpoints.close()
        hwm = sampler.stop()
    finally:
        service.terminate(timeout=300)
    return {
        "outlet_factor_keys": keys,
        "meters": meters,
        "simulated_minutes": args.memory_minutes,
        "messages": sent,
        "msgs_per_s": round(sent / seconds),
        "peak_rss_mib_sum": round(sampler.peak_sum_kib / 1024),
        "vmhwm_mib_by_process": {pid: round(kib / 1024) for pid, kib in hwm.items()},
        "peak_mib": round(max(sampler.peak_sum_kib, sum(hwm.values())) / 1024),
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'measure':<52}{'figure':>16}  goal"]
    if t := result.get("throughput"):
        bare = statistics.median(t["bare_msgs_per_s"])
        lines.append(f"{'bare paho drain (median)':<52}{bare:>12,.0f} msg/s")
        lines.append(
            f"{'nonsite serve, whole path (median)':<52}{t['serve_msgs_per_s_median']:>12,} msg/s"
            f"  ratio {t['ratio']:.2f} (≥ 0.70)"
        )
        lines.append(f"{'  readings judged':<52}{t['serve_readings_per_s_median']:>9,} readings/s")
    if result.get("latency"):
        lat = result["latency"]
        c, w = lat["publish_to_committed_case"], lat["publish_to_webhook"]
        lines.append(
            f"{'publish → committed case at ' + format(lat['rate_msgs_per_s'], ',.0f') + ' msg/s':<52}"
            f"{'p50 ' + str(c['p50_ms']) + ' ms':>16}"
        )
        lines.append(f"{'':<52}{'p99 ' + str(c['p99_ms']) + ' ms':>16}  (≤ 50 ms)")
        lines.append(
            f"{'publish → webhook delivered':<52}{'p50 ' + str(w['p50_ms']) + ' ms':>16}"
            f"  p99 {w['p99_ms']} ms"
        )
    if result.get("memory"):
        m = result["memory"]
        lines.append(
            f"{'peak memory, ' + format(m['outlet_factor_keys'], ',') + ' keys and ' + format(m['meters'], ',') + ' meters':<52}"
            f"{m['peak_mib']:>12,} MiB  (≤ 1,024)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--enterprises", type=int, default=100, help="the demo fleet's size")
    parser.add_argument("--messages", type=int, default=60_000, help="the throughput mix")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2000.0, help="latency run, messages/s")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--memory-minutes", type=int, default=65)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="only the memory run")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to run on (fresh databases are created); default SQLite",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    start = history_start(2, time.time())
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)),
        "database": "postgresql" if args.database_url else "sqlite",
        "goals": {"ratio": 0.7, "p99_ms": 50, "peak_mib": 1024},
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = loopback_broker(workdir)
        sink = WebhookSink()
        sink.start()
        try:
            if not args.memory_only:
                throughput_and_latency(args, workdir, broker, sink, start, result)
            if not args.skip_memory:
                result["memory"] = memory(args, workdir, broker, start)
        finally:
            sink.stop()
            broker.stop(kill=True)
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(result))
    print(f"written to {args.output}")


def throughput_and_latency(
    args: argparse.Namespace,
    workdir: Path,
    broker: Mosquitto,
    sink: WebhookSink,
    start: int,
    result: dict[str, Any],
) -> None:
    data, config, incidents, probes = bench_config(
        args.enterprises, args.probes, start, start + 3 * 86400, {}
    )
    traffic = fleet_minutes(config, incidents, start)
    mix = take(traffic, args.messages)
    keys, meters = count_keys(config)
    result["fleet"] = {
        "enterprises": args.enterprises,
        "outlet_factor_keys": keys,
        "meters": meters,
    }
    result["throughput"], service, database_url = throughput(
        args, workdir, broker, data, mix, sink.url
    )
    try:
        data_dir = workdir / f"serve-{args.rounds - 1}"  # the last round's service runs on
        result["latency"] = latency(
            args, broker, service, data_dir, database_url, probes, traffic, sink
        )
    finally:
        service.terminate()


if __name__ == "__main__":
    main()
