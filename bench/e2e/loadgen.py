"""A load generator that is not the bottleneck: paced QoS 1 publishers in processes of their own.

One Python process cannot publish 5,000 QoS 1 messages a second and also watch cases and take
webhooks: its paho network thread, the pacing loop and the watchers share one GIL, and what is
measured is then its own client-side queue. Here the background traffic is split over
``processes`` spawned publishers (each its own interpreter and paho client), each pacing its
share in ticks of 5 ms, and the probes come from a publisher of their own that sends nothing
else, so its client queue is empty when a probe is handed over: the probe's publish time is
taken at the ``publish`` call, a few microseconds before the packet leaves.

Every publisher reports what it achieved and its own CPU time, and the delay from the
``publish`` call to the broker's PUBACK of every hundredth message: the client-side queue is
at most that (it also holds a loopback round trip), so a rate at which it stays at a
millisecond or two is a rate the generator really produced.

Times are ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, the same clock in every process
of the machine, so the parent compares them with what it saw.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

Message = tuple[str, bytes]
TICK_S = 0.005
SAMPLE_EVERY = 100  # publish → PUBACK measured for one message in this many


@dataclass
class PublisherReport:
    name: str
    published: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    puback_ms: list[float] = field(default_factory=list)  # publish call → PUBACK, sampled
    probe_sent: dict[str, float] = field(default_factory=dict)  # key → perf_counter


def _client(host: str, port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client


def publish_worker(
    host: str,
    port: int,
    name: str,
    messages_file: Path,
    rate: float,
    start_at: float,
    seconds: float,
    out: Connection,
) -> None:
    """Publish the file's messages at ``rate``/s from ``start_at`` for ``seconds``."""
    messages: list[Message] = pickle.loads(messages_file.read_bytes())
    report = PublisherReport(name)
    # Sampled by message id (known to both sides; ids wrap at 65,535, so each id's sends and
    # PUBACKs are paired in order).
    sent: dict[int, list[float]] = {}
    acked: dict[int, list[float]] = {}
    acks = [0]

    def on_publish(_c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        acks[0] += 1
        if mid % SAMPLE_EVERY == 0:
            acked.setdefault(mid, []).append(time.perf_counter())

    client = _client(host, port, f"bench-load-{name}")
    client.on_publish = on_publish
    cpu0 = time.process_time()
    total = min(len(messages), int(rate * seconds))
    while time.perf_counter() < start_at:
        time.sleep(0.001)
    began = time.perf_counter()
    n = 0
    while n < total:
        due = min(total, int((time.perf_counter() - began) * rate) + 1)
        while n < due:
            topic, payload = messages[n]
            at = time.perf_counter()
            mid = client.publish(topic, payload, qos=1).mid
            if mid % SAMPLE_EVERY == 0:
                sent.setdefault(mid, []).append(at)
            n += 1
        time.sleep(TICK_S)
    report.seconds = time.perf_counter() - began
    report.published = n
    deadline = time.monotonic() + 60
    while acks[0] < n and time.monotonic() < deadline:
        time.sleep(0.01)  # every PUBACK: a message still in the client's queue is not sent yet
    client.loop_stop()
    client.disconnect()
    report.cpu_s = time.process_time() - cpu0
    report.puback_ms = [
        (ack - at) * 1000
        for mid, ats in sent.items()
        for at, ack in zip(ats, acked.get(mid, []), strict=False)  # unacked at the end: left
    ]
    out.send(report)
    out.close()


def probe_worker(
    host: str,
    port: int,
    probes: list[tuple[str, Message]],
    start_at: float,
    seconds: float,
    out: Connection,
) -> None:
    """The probes spread evenly over the run, each timed at its publish call."""
    report = PublisherReport("probes")
    client = _client(host, port, "bench-probes")
    cpu0 = time.process_time()
    step = seconds / (len(probes) + 1)
    for i, (key, (topic, payload)) in enumerate(probes, start=1):
        while time.perf_counter() < start_at + i * step:
            time.sleep(0.0005)
        report.probe_sent[key] = time.perf_counter()
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    report.published = len(probes)
    report.seconds = time.perf_counter() - start_at
    client.loop_stop()
    client.disconnect()
    report.cpu_s = time.process_time() - cpu0
    out.send(report)
    out.close()


def process_cpu_s(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process so far (0 for one that is gone)."""
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.Error:
            out[pid] = 0.0
    return out


__all__ = ["PublisherReport", "probe_worker", "process_cpu_s", "publish_worker"]
