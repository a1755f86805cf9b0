"""Ingest throughput through Mosquitto into the raw archive, as a ratio to a bare paho client.

One run, one broker (started here on a free loopback port). For each measured consumer a
persistent session is created, then the same fixed traffic mix is queued for all of them, so
every consumer drains an identical backlog from the same broker:

  bare     paho-mqtt, auto-acknowledge, counts messages: the baseline
  archive  nonsite's MQTT source + archiver + raw archive (fsync per group commit), PUBACK
           only after the commit: the ingest contract, in-process
  serve    the real `nonsite serve` process (archive, and the decode pipeline running
           alongside it on the same cores)

Rounds alternate (bare, archive, bare, archive, ...) because the machine is shared and noisy;
the ratio reported is the median of per-round ratios. Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.traffic import mix, mn
from ingest.archive import RawArchive
from ingest.archiver import Archiver
from ingest.mqtt.settings import MqttSettings
from ingest.mqtt.source import MqttSource
from tests.brokers import Mosquitto
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess, write_config

SUBSCRIPTIONS = (("hj212/+", 1), ("power/+", 1))


def loopback_broker(workdir: Path) -> Mosquitto:
    """A started Mosquitto on a free loopback port, keeping its queues in memory only."""
    broker = Mosquitto(workdir / "mosquitto")
    broker.conf.write_text(broker.conf.read_text().replace("persistence true", "persistence false"))
    broker.start()
    return broker


def v5_client(client_id: str, manual_ack: bool = False) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )


def session_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 1000
    return props


def create_session(broker: Mosquitto, client_id: str) -> None:
    c = v5_client(client_id)
    c.connect(broker.host, broker.port, clean_start=False, properties=session_props())
    c.loop_start()
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(list(SUBSCRIPTIONS))
    done.wait(10)
    c.disconnect()
    c.loop_stop()


def queue_traffic(broker: Mosquitto, items) -> None:
    pub = Publisher(broker.host, broker.port, client_id="bench-publisher")
    for i in range(0, len(items), 2000):
        pub.publish_all(items[i : i + 2000])
    pub.close()


def drain_bare(broker: Mosquitto, client_id: str, n: int) -> float:
    c = v5_client(client_id)
    got = 0
    first = last = 0.0
    done = threading.Event()

    def on_message(_c, _u, _m) -> None:
        nonlocal got, first, last
        if got == 0:
            first = time.perf_counter()
        got += 1
        if got == n:
            last = time.perf_counter()
            done.set()

    c.on_message = on_message
    c.connect(broker.host, broker.port, clean_start=False, properties=session_props())
    c.loop_start()
    if not done.wait(300):
        raise TimeoutError(f"bare client got {got} of {n}")
    c.disconnect()
    c.loop_stop()
    return n / (last - first)


def drain_archive(broker: Mosquitto, client_id: str, n: int, workdir: Path) -> float:
    archive = RawArchive(workdir / f"{client_id}.sqlite3", durability="full")
    settings = MqttSettings(
        host=broker.host,
        port=broker.port,
        client_id=client_id,
        subscriptions=SUBSCRIPTIONS,
        receive_maximum=1000,
    )
    done = threading.Event()
    first = 0.0

    def committed() -> None:
        if archiver.archived + archiver.duplicates >= n:
            done.set()

    source: MqttSource | None = None
    archiver = Archiver(
        archive,
        ack=lambda batch: source.ack(batch) if source else 0,
        on_commit=committed,
        batch_max=2000,
    )

    def on_delivery(d) -> None:
        nonlocal first
        if first == 0.0:
            first = time.perf_counter()
        archiver.submit(d)

    source = MqttSource(settings, on_delivery)
    archiver.start()
    source.start()
    if not done.wait(300):
        raise TimeoutError(f"archive path stored {archiver.archived} of {n}")
    last = time.perf_counter()
    source.stop()
    archiver.stop()
    assert archive.count() == n, archive.count()
    archive.close()
    return n / (last - first)


def drain_serve(broker: Mosquitto, n: int, workdir: Path) -> tuple[float, float]:
    """(archive rate, decode rate) of the real service draining its queued session."""
    data = workdir / "serve-data"
    config = write_config(
        workdir / "serve.toml",
        broker_url=broker.url,
        data_dir=data,
        mns=[mn(i) for i in range(200)],
        meters=[f"M{i:03d}" for i in range(100)],
        extra='client_id = "bench-serve"\nreply_topic = ""',
    )
    # write_config sets its own client id; the last one in the file would clash, so patch it.
    text = config.read_text().replace('client_id = "nonsite-test"\n', "")
    config.write_text(text)
    service = ServiceProcess(config, workdir / "serve.log")
    path = data / "archive.sqlite3"
    service.start()
    first = last = 0.0
    deadline = time.monotonic() + 300
    reader: RawArchive | None = None
    while time.monotonic() < deadline:
        if reader is None and path.exists():
            reader = RawArchive(path, readonly=True)
        count = reader.head_seq() if reader else 0
        now = time.perf_counter()
        if count and not first:
            first = now
        if count >= n:
            last = now
            break
        time.sleep(0.01)
    archive_rate = n / (last - first)
    # Decoding continues behind the archive: wait for the pipeline to reach the head.
    while time.monotonic() < deadline:
        text = service.metrics()
        decoded = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(
                (
                    'nonsite_ingest_decoded_messages_total{outcome="accepted"',
                    'nonsite_ingest_decoded_messages_total{outcome="partial"',
                    'nonsite_ingest_decoded_messages_total{outcome="dead_letter"',
                )
            )
        )
        if decoded >= n:
            break
        time.sleep(0.05)
    decode_rate = n / (time.perf_counter() - first)
    assert service.terminate() == 0
    return archive_rate, decode_rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-serve", action="store_true", help="skip the full-service run")
    args = parser.parse_args()
    n = args.messages
    items = mix(n)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = loopback_broker(workdir)
        try:
            rounds = []
            consumers = []
            for r in range(args.rounds):
                consumers += [f"bench-bare-{r}", f"bench-archive-{r}"]
            if not args.no_serve:
                consumers.append("bench-serve")
            for cid in consumers:
                create_session(broker, cid)
            t0 = time.perf_counter()
            queue_traffic(broker, items)
            print(
                f"queued {n:,} messages for {len(consumers)} sessions in {time.perf_counter() - t0:.1f} s"
            )
            for r in range(args.rounds):
                bare = drain_bare(broker, f"bench-bare-{r}", n)
                archived = drain_archive(broker, f"bench-archive-{r}", n, workdir)
                rounds.append(
                    {
                        "bare_msgs_per_s": round(bare),
                        "archive_msgs_per_s": round(archived),
                        "ratio": round(archived / bare, 3),
                    }
                )
                print(
                    f"round {r + 1}: bare {bare:,.0f} msg/s, archive path {archived:,.0f} msg/s, "
                    f"ratio {archived / bare:.2f}"
                )
            serve = None
            if not args.no_serve:
                serve_archive, serve_decoded = drain_serve(broker, n, workdir)
                bare_median = statistics.median(x["bare_msgs_per_s"] for x in rounds)
                serve = {
                    "archive_msgs_per_s": round(serve_archive),
                    "decoded_msgs_per_s": round(serve_decoded),
                    "ratio_archive_vs_bare_median": round(serve_archive / bare_median, 3),
                }
        finally:
            broker.stop(kill=True)
    ratio = statistics.median(x["ratio"] for x in rounds)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "messages": n,
        "mix": "80% CN=2011 8-factor frames, 15% CN=2051 minute frames, 5% power JSON",
        "archive_durability": "full (fsync per group commit)",
        "rounds": rounds,
        "ratio_archive_vs_bare_median": ratio,
        "serve": serve,
        "goal_ratio": 0.7,
    }
    out = Path(__file__).parent / "results" / "ingest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"{'consumer':<34}{'msg/s':>12}{'ratio':>8}")
    print(
        f"{'bare paho (median)':<34}{statistics.median(x['bare_msgs_per_s'] for x in rounds):>12,.0f}{1:>8.2f}"
    )
    print(
        f"{'nonsite archive path (median)':<34}{statistics.median(x['archive_msgs_per_s'] for x in rounds):>12,.0f}{ratio:>8.2f}"
    )
    if serve:
        print(
            f"{'nonsite serve: archived':<34}{serve['archive_msgs_per_s']:>12,}{serve['ratio_archive_vs_bare_median']:>8.2f}"
        )
        print(f"{'nonsite serve: decoded':<34}{serve['decoded_msgs_per_s']:>12,}")
    print(f"goal: ratio >= 0.7; written to {out}")


if __name__ == "__main__":
    main()
