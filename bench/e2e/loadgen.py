"""A load generator that is not the bottleneck: paced QoS 1 publishers in processes of their own.

One Python process cannot publish 5,000 QoS 1 messages a second and also watch cases and take
webhooks: its paho network thread, the pacing loop and the watchers share one GIL, and what is
measured is then its own client-side queue. Here the background traffic is split over
``processes`` spawned publishers, each sending its share pre-encoded (bench/e2e/rawmqtt.py:
the kernel's work, not the interpreter's, so the generator leaves the machine's CPU to what is
measured) in pacing ticks of 5 ms, and the probes come from a publisher of their own that
sends nothing else: a probe's publish time is taken just before its packet is handed to the
kernel, so no client-side queue is in it.

Every publisher reports what it achieved and its own CPU time, and the delay from handing a
message to the kernel to the broker's PUBACK for one message in a hundred: the client-side
queue is at most that (it also holds a loopback round trip), so a rate at which it stays at
a millisecond or two is a rate the generator really produced.

A worker prepares (loads and encodes its share), says ``("ready",)`` and waits for the
moment to start, so that the preparation of a large share is never in the measured run.
Times are ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, the same clock in every process
of the machine, so the parent compares them with what it saw.
"""

from __future__ import annotations

import gc
import pickle
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import psutil

from bench.e2e.rawmqtt import RawPublisher, mid_of, publish_packet

Message = tuple[str, bytes]
TICK_S = 0.005
SAMPLE_EVERY = 100  # publish → PUBACK measured for one message in this many


@dataclass
class PublisherReport:
    name: str
    published: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    puback_ms: list[float] = field(default_factory=list)  # handed to the kernel → PUBACK
    probe_sent: dict[str, float] = field(default_factory=dict)  # key → perf_counter


def _start_at(ctl: Connection) -> float:
    # The prepared share is hundreds of thousands of objects: a full collection pass over
    # them paused a publisher 100-230 ms, after which it sent the missed messages at once.
    gc.collect()
    gc.freeze()
    gc.disable()  # the run allocates little; the process ends after it
    ctl.send(("ready",))
    start_at: float = ctl.recv()
    while time.perf_counter() < start_at:
        time.sleep(0.0005)
    return start_at


def publish_worker(
    host: str,
    port: int,
    name: str,
    messages_file: Path,
    rate: float,
    seconds: float,
    ctl: Connection,
) -> None:
    """Publish the file's messages at ``rate``/s for ``seconds`` from the moment ``ctl``
    gives."""
    messages: list[Message] = pickle.loads(messages_file.read_bytes())
    total = min(len(messages), int(rate * seconds))
    packets = [publish_packet(mid_of(i), t, p) for i, (t, p) in enumerate(messages[:total])]
    del messages
    report = PublisherReport(name)
    sampled = range(0, total, SAMPLE_EVERY)
    client = RawPublisher(host, port, f"bench-load-{name}", {mid_of(i) for i in sampled})
    cpu0 = time.process_time()
    began = _start_at(ctl)
    sent_at: dict[int, list[float]] = {}  # sampled mid → each send's time, in order
    n = 0
    while n < total:
        due = min(total, int((time.perf_counter() - began) * rate) + 1)
        if due > n:
            at = time.perf_counter()
            client.send(b"".join(packets[n:due]))
            for i in range(-(-n // SAMPLE_EVERY) * SAMPLE_EVERY, due, SAMPLE_EVERY):
                sent_at.setdefault(mid_of(i), []).append(at)
            n = due
        time.sleep(TICK_S)
    report.seconds = time.perf_counter() - began
    report.published = n
    client.wait_acked(n, 60)  # every PUBACK: the broker has all of it
    client.close()
    report.cpu_s = time.process_time() - cpu0
    report.puback_ms = [
        (ack - at) * 1000
        for mid, ats in sent_at.items()
        for at, ack in zip(ats, client.ack_times.get(mid, []), strict=False)
    ]
    ctl.send(report)
    ctl.close()


def probe_worker(
    host: str,
    port: int,
    probes: list[tuple[str, Message]],
    seconds: float,
    ctl: Connection,
) -> None:
    """The probes spread evenly over the run, each timed as it is handed to the kernel."""
    report = PublisherReport("probes")
    packets = [publish_packet(mid_of(i), t, p) for i, (_, (t, p)) in enumerate(probes)]
    client = RawPublisher(host, port, "bench-probes")
    cpu0 = time.process_time()
    start_at = _start_at(ctl)
    step = seconds / (len(probes) + 1)
    for i, ((key, _), packet) in enumerate(zip(probes, packets, strict=True), start=1):
        while time.perf_counter() < start_at + i * step:
            time.sleep(0.0005)
        report.probe_sent[key] = time.perf_counter()
        client.send(packet)
    report.published = len(probes)
    report.seconds = time.perf_counter() - start_at
    client.wait_acked(len(probes), 60)
    client.close()
    report.cpu_s = time.process_time() - cpu0
    ctl.send(report)
    ctl.close()


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
