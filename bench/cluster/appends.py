"""An ingest node's appends to the stream, alone: what they cost and one way they stall.

On a local 3-node NATS cluster (stream R3, file store, 16 partitions), with the fleet traffic
of ``bench.cluster.throughput`` (the demo fleet's messages):

1. **per message** (the layout before packs): each message a stream message with its
   headers, ``publish_async`` in batches of 2,000 (``[archive] batch_max_messages``), a PubAck
   each;
2. **packed**: nonsite's ``JetStreamLog.append``, each batch's messages of a partition as one
   pack (``ingest.jetstream.pack``), a PubAck per pack;
3. **atomic batches** (nats-server ≥ 2.12, stream ``allow_atomic``): the messages of 1, at
   most 1,000 to a batch, one PubAck per batch. Not what nonsite does: a batch keeps its
   batch headers on every stored message, and is refused whole when it holds a message id
   the stream already has (a retry would need a fallback to publishing one by one).
4. **the same message in flight from two nodes**: two ``JetStreamLog``\\ s append batches that
   begin with the same messages at the same moment (a logger's resend handed to each node).
   Published one by one, NATS answered the later copy with 409 ``duplicate message id is in
   process`` (err_code 10158), which nats-py 2.16's reply handler never hands to the publish
   (``APIError.from_error`` raises rather than returns): the batch waited out
   ``ack_timeout_s``. In packs the two batches are packs with different ids, both stored (the
   rules drop the repeated record as a duplicate).

Messages/s, and CPU µs per message of the NATS servers and of this process (the publisher).
Writes bench/results/cluster_appends.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nats
from nats.js import api

from bench.cluster.parts import load, machine, nats_pids, url_for
from bench.e2e.fleet import bench_config
from bench.e2e.loadgen import process_cpu_s
from bench.e2e.traffic import fleet_minutes, take
from ingest.archive import ArchivedMessage
from ingest.jetstream.partitions import Partitioner
from ingest.jetstream.publisher import JetStreamLog
from ingest.jetstream.stream import StreamSettings, headers_of
from ingest.mqtt.topics import TopicRouter
from nonsite.cluster.nats_servers import NatsCluster
from nonsite.config.load import parse_config
from nonsite.demo import history_start
from nonsite.simulator.traffic import LOST_PREFIX
from nonsite.wiring import build_registry

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cluster_appends.json"
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/test"
PARTITIONS = 16
ATOMIC_MAX = 1000  # nats-server's limit on an atomic batch


def messages(n: int, enterprises: int) -> tuple[list[ArchivedMessage], Partitioner, TopicRouter]:
    """The fleet's traffic as an ingest node hands it to ``JetStreamLog`` (distinct messages:
    a duplicate would stall the per-message mode, see 3)."""
    start = history_start(2, time.time())
    data, _, incidents, _ = bench_config(enterprises, 0, start, start + 3 * 86400, {})
    config = parse_config(data, "(bench)", env={})
    traffic = (
        m for m in fleet_minutes(config, incidents, start) if not m[0].startswith(LOST_PREFIX)
    )
    seen: set[tuple[str, bytes]] = set()
    out: list[ArchivedMessage] = []
    now_us = int(time.time() * 1e6)
    for topic, payload in take(traffic, int(n * 1.01) + 100):
        if (topic, payload) not in seen and len(out) < n:
            seen.add((topic, payload))
            out.append(ArchivedMessage(0, now_us, topic, payload, None, None))
    router = TopicRouter([(s.kind, s.filter) for s in config.mqtt.subscriptions])
    return out, Partitioner.of(build_registry(config), PARTITIONS), router


def sender_of(router: TopicRouter) -> Any:
    def sender(topic: str) -> str:
        route = router.route(topic)
        return topic if route is None else route.sender

    return sender


def cpu_now(cluster: NatsCluster) -> tuple[float, float]:
    pids = [p for i in range(cluster.size) for p in nats_pids(cluster, i)]
    return sum(process_cpu_s(pids).values()), time.process_time()


def result_of(
    n: int, seconds: float, before: tuple[float, float], after: tuple[float, float]
) -> dict[str, Any]:
    return {
        "messages": n,
        "msgs_per_s": round(n / seconds),
        "nats_cpu_us_per_msg": round((after[0] - before[0]) / n * 1e6, 1),
        "publisher_cpu_us_per_msg": round((after[1] - before[1]) / n * 1e6, 1),
        "load": load(),
    }


def per_message(
    cluster: NatsCluster, msgs: list[ArchivedMessage], partitioner: Partitioner, router: TopicRouter
) -> dict[str, Any]:
    """Each message a stream message of its own with its headers (the layout before packs),
    batches of 2,000 published with ``publish_async``, a PubAck each."""
    settings = StreamSettings(
        name="APPEND_PER_MESSAGE", subject_prefix="append.pm", partitions=PARTITIONS
    )
    sender = sender_of(router)

    async def run() -> dict[str, Any]:
        nc = await nats.connect(servers=cluster.urls, name="bench-pm")
        try:
            js = nc.jetstream(timeout=10)
            await js.add_stream(settings.config())
            before, began = cpu_now(cluster), time.perf_counter()
            for i in range(0, len(msgs), 2000):
                futures = []
                for m in msgs[i : i + 2000]:
                    payload, headers = headers_of(m, settings.max_payload_bytes)
                    subject = settings.node_subject(partitioner.partition(sender(m.topic)), "pm")
                    futures.append(await js.publish_async(subject, payload, headers=headers))
                await asyncio.gather(*futures)
            seconds = time.perf_counter() - began
            return result_of(len(msgs), seconds, before, cpu_now(cluster))
        finally:
            await nc.close()

    return asyncio.run(run())


def packed(
    cluster: NatsCluster, msgs: list[ArchivedMessage], partitioner: Partitioner, router: TopicRouter
) -> dict[str, Any]:
    """nonsite's ``JetStreamLog.append``: a batch of 2,000 as a pack per partition."""
    settings = StreamSettings(
        name="APPEND_PACKED", subject_prefix="append.pk", partitions=PARTITIONS
    )
    log = JetStreamLog(cluster.urls, settings, partitioner, sender_of(router), name="bench-pk")
    log.start()
    try:
        before, began = cpu_now(cluster), time.perf_counter()
        for i in range(0, len(msgs), 2000):
            log.append(msgs[i : i + 2000])
        seconds = time.perf_counter() - began
        return result_of(len(msgs), seconds, before, cpu_now(cluster))
    finally:
        log.close()


def atomic(
    cluster: NatsCluster, msgs: list[ArchivedMessage], partitioner: Partitioner, router: TopicRouter
) -> dict[str, Any]:
    settings = StreamSettings(
        name="APPEND_ATOMIC", subject_prefix="append.at", partitions=PARTITIONS
    )
    sender = sender_of(router)

    async def run() -> dict[str, Any]:
        nc = await nats.connect(servers=cluster.urls, name="bench-atomic")
        try:
            js = nc.jetstream(timeout=10)
            config = settings.config()
            config.allow_atomic = True
            await js.add_stream(config)
            before, began = cpu_now(cluster), time.perf_counter()
            for i in range(0, len(msgs), ATOMIC_MAX):
                batch = msgs[i : i + ATOMIC_MAX]
                batch_id = uuid.uuid4().hex
                for k, m in enumerate(batch, 1):
                    payload, headers = headers_of(m, settings.max_payload_bytes)
                    headers[api.Header.BATCH_ID.value] = batch_id
                    headers[api.Header.BATCH_SEQUENCE.value] = str(k)
                    # settings.subject() is the partition's filter (a wildcard): publish as
                    # an ingest node named "bench" would, to its own subject of the partition.
                    partition = partitioner.partition(sender(m.topic))
                    subject = settings.node_subject(partition, "bench")
                    if k < len(batch):
                        await nc.publish(subject, payload, headers=headers)
                        continue
                    headers[api.Header.BATCH_COMMIT.value] = "1"
                    reply = json.loads(
                        (await nc.request(subject, payload, headers=headers, timeout=10)).data
                    )
                    if "error" in reply:
                        raise RuntimeError(f"atomic batch refused: {reply['error']}")
            seconds = time.perf_counter() - began
            out = result_of(len(msgs), seconds, before, cpu_now(cluster))
            info = await js.stream_info(settings.name)
            out["stored"] = info.state.messages  # published one by one: a message each
            return out
        finally:
            await nc.close()

    return asyncio.run(run())


def in_flight_twice(cluster: NatsCluster, rounds: int) -> dict[str, Any]:
    settings = StreamSettings(
        name="APPEND_TWICE", subject_prefix="append.tw", partitions=PARTITIONS
    )
    logs = [
        JetStreamLog(
            cluster.urls,
            settings,
            Partitioner({}, PARTITIONS),
            lambda t: t.split("/")[1],
            name=f"bench-node-{k}",
        )
        for k in range(2)
    ]
    for log in logs:
        log.start()
    outcomes: list[list[str]] = []
    try:
        for r in range(rounds):
            a = [
                ArchivedMessage(
                    0, 1, f"hj212/MN{i % 50:04d}", b"round %d message %d" % (r, i), None, None
                )
                for i in range(2000)
            ]
            b = a[:10] + [
                ArchivedMessage(
                    0, 1, f"hj212/MN{i % 50:04d}", b"round %d message %d" % (r, i), None, None
                )
                for i in range(2000, 3990)
            ]
            out: dict[int, str] = {}

            def append(k: int, batch: list[ArchivedMessage], out: dict[int, str]) -> None:
                began = time.perf_counter()
                try:
                    stored = logs[k].append(batch)
                    out[k] = f"stored {stored} in {time.perf_counter() - began:.2f} s"
                except Exception as exc:  # noqa: BLE001 - the outcome measured
                    out[k] = (
                        f"failed after {time.perf_counter() - began:.2f} s: {type(exc).__name__}"
                    )

            threads = [
                threading.Thread(target=append, args=(0, a, out)),
                threading.Thread(target=append, args=(1, b, out)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            outcomes.append([out[0], out[1]])
    finally:
        for log in logs:
            log.close()
    failed = sum(1 for pair in outcomes for o in pair if o.startswith("failed"))
    return {"rounds": outcomes, "appends_failed": failed, "of": 2 * rounds, "load": load()}


class _Count409(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and "10158" in str(record.exc_info[1]):
            self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--enterprises", type=int, default=100)
    parser.add_argument(
        "--rounds", type=int, default=8, help="for 3, the same message in flight twice"
    )
    parser.add_argument("--database-url", default=DEFAULT_PG, help="only to describe the machine")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    counter = _Count409()
    logging.getLogger("nats.aio.client").addHandler(counter)
    logging.getLogger("nats.aio.client").propagate = False  # its tracebacks, counted instead
    msgs, partitioner, router = messages(args.messages, args.enterprises)
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(url_for(args.database_url, "test")),
        "load_at_start": load(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        cluster = NatsCluster(Path(tmp), 3)
        cluster.start()
        try:
            result["per_message_acks"] = per_message(cluster, msgs, partitioner, router)
            print(f"per-message acks: {result['per_message_acks']}", flush=True)
            result["packed"] = packed(cluster, msgs, partitioner, router)
            print(f"packed:           {result['packed']}", flush=True)
            result["atomic_batches"] = atomic(cluster, msgs, partitioner, router)
            print(f"atomic batches:   {result['atomic_batches']}", flush=True)
            result["in_flight_twice"] = in_flight_twice(cluster, args.rounds)
            result["in_flight_twice"]["errors_409_10158"] = counter.count
            print(f"in flight twice:  {result['in_flight_twice']}", flush=True)
        finally:
            cluster.stop()
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
