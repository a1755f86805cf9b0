"""The benchmark's measurements, each on a broker the caller started.

throughput  the same queued mix drained by a bare paho client (baseline) and by
            ``nonsite serve``: until the pipeline's checkpoint reaches the last message,
            i.e. archived, decoded, judged, cases and outbox rows committed
latency     live traffic at a fixed rate, with probe frames that each close an exceeding hour:
            publish → the case committed (seen in the database) and → the webhook delivery
memory      a fleet of the given size fed live; the service's peak resident memory
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.e2e.observe import Checkpoints
from bench.ingest_ratio import create_session, queue_traffic
from ingest.archive import RawArchive
from nonsite.pipeline_worker import METRICS_EVERY_S
from nonsite.simulator.traffic import Message
from tests.brokers import Mosquitto
from tests.service_process import ServiceProcess

SERVE_CLIENT = "bench-serve"


def metric_sum(text: str, prefix: str) -> float:
    """The sum of a family's samples whose line starts with ``prefix``."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


@dataclass
class Drain:
    messages: int
    seconds: float  # first message archived → checkpoint at the last
    archive_seconds: float  # first message archived → last archived
    metrics: str  # the service's /metrics at the end

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def queue_for(broker: Mosquitto, client_ids: list[str], messages: list[Message]) -> float:
    """Persistent sessions for every consumer, then the mix queued once for all of them."""
    for cid in client_ids:
        create_session(broker, cid)
    began = time.perf_counter()
    queue_traffic(broker, messages)
    return time.perf_counter() - began


def drain_serve(
    service: ServiceProcess, data_dir: Path, database_url: str, n: int, timeout: float = 600
) -> Drain:
    """Start the service on its queued session and time it through the whole path."""
    checkpoints = Checkpoints(database_url)
    # Started beside the watch: it archives while it still reports itself not ready.
    starting = threading.Thread(target=service.start, daemon=True)
    starting.start()
    archive_path = data_dir / "archive.sqlite3"
    reader: RawArchive | None = None
    first = archived_at = 0.0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if reader is None and archive_path.exists():
                reader = RawArchive(archive_path, readonly=True)
            try:
                head = reader.head_seq() if reader is not None else 0
            except sqlite3.OperationalError:  # created, its tables not yet
                head = 0
            now = time.perf_counter()
            if head and not first:
                first = now
            if head >= n and not archived_at:
                archived_at = now
            if archived_at and checkpoints() >= n:
                break
            time.sleep(0.005)
        else:
            raise TimeoutError(f"the service did not get through {n} messages in {timeout} s")
        done = time.perf_counter()
        starting.join(30)
    finally:
        checkpoints.close()
        if reader is not None:
            reader.close()
    # The pipeline reports its counters to the service once a second (METRICS_EVERY_S): a
    # fetch right at the end could miss the last batches' readings.
    time.sleep(2 * METRICS_EVERY_S)
    return Drain(n, done - first, archived_at - first, service.metrics())


@dataclass
class Paced:
    rate: float
    seconds: float
    published: int = 0
    probe_sent: dict[str, float] = field(default_factory=dict)  # enterprise → perf_counter


def publish_paced(
    broker: Mosquitto,
    background: Iterator[Message],
    probes: list[tuple[str, Message]],
    rate: float,
    seconds: float,
) -> Paced:
    """``rate`` messages/s for ``seconds`` (QoS 1, ticks of 5 ms), the probes spread evenly
    among them; each probe's publish time is noted just before it is handed to the client."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paced")
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    out = Paced(rate, seconds)
    total = int(rate * seconds)
    every = total // (len(probes) + 1)
    queue = list(probes)
    began = time.perf_counter()
    try:
        while out.published < total:
            due = min(total, int((time.perf_counter() - began) * rate))
            while out.published < due:
                if queue and out.published % every == every - 1:
                    enterprise, (topic, payload) = queue.pop(0)
                    out.probe_sent[enterprise] = time.perf_counter()
                else:
                    topic, payload = next(background)
                client.publish(topic, payload, qos=1)
                out.published += 1
            time.sleep(0.005)
        out.seconds = time.perf_counter() - began
    finally:
        client.loop_stop()
        client.disconnect()
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p90_ms": round(percentile(ms, 90), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(0.05)


def feed_live(broker: Mosquitto, messages: Iterator[list[Message]]) -> int:
    """Publish minute after minute as fast as the broker takes it."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-memory-feed")
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    sent = 0
    try:
        for minute in messages:
            infos = [client.publish(topic, payload, qos=1) for topic, payload in minute]
            for info in infos:
                info.wait_for_publish(60)
            sent += len(infos)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent
