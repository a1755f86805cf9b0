"""Takeover time: a worker SIGKILLed, until its partitions are judged again elsewhere.

A local cluster (Mosquitto, 3 NATS nodes, an ingest node, two workers, PostgreSQL; the test
harness's ``LocalCluster``) serves a fleet of 2,000 loggers (one gas outlet each) whose packets
arrive continuously. Once every partition is being judged, one worker is SIGKILLed; from that
moment each of its partitions is watched until its checkpoint moves again, which only the new
owner can make it do (the dead worker commits nothing more, and the fence would refuse it).
The takeover time is the slowest of them: the lease's remaining life (``[cluster]
lease_ttl_s``, 6 s by default), the survivor's next rebalance (a third of that), and the
opening of the partition (its rule snapshot restored, the stream replayed from the snapshot's
position up to the checkpoint).

    python -m bench.cluster_takeover [--loggers 2000] [--rounds 3] [--output F]

Writes bench/results/cluster_takeover.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from nonsite.cluster.leases import partition_leases
from nonsite.db import make_engine
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import LocalCluster, checkpoints, enterprise_lines
from tests.service_process import gas_packet

PG_ADMIN = os.environ.get(
    "NONSITE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULT = Path(__file__).parent / "results" / "cluster_takeover.json"
H0 = datetime(2026, 9, 1, tzinfo=UTC)


class Traffic:
    """Every logger's 10-minute packet, round after round, at ``rate`` messages/s."""

    def __init__(self, cluster: LocalCluster, loggers: int, rate: float) -> None:
        self.publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port, "takeover-pub")
        self.loggers = loggers
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        step = 0
        while not self.stop.is_set():
            at = H0 + timedelta(minutes=10 * step)
            began = time.monotonic()
            batch = [
                (f"hj212/MN{i:04d}", gas_packet(f"MN{i:04d}", "123456", at, 40.0 + i % 9))
                for i in range(self.loggers)
            ]
            for at_ in range(0, len(batch), 200):
                self.publisher.publish_all(batch[at_ : at_ + 200], timeout=120)
                self.sent += len(batch[at_ : at_ + 200])
                pause = began + (at_ + 200) / self.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            step += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.publisher.close()


def owned_by(db: sa.Engine, worker: str) -> list[int]:
    with db.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(partition_leases.c.partition).where(partition_leases.c.owner == worker)
            ).scalars()
        )


def one_round(workdir: Path, pg_url: str, loggers: int, rate: float) -> dict[str, object]:
    cluster = LocalCluster(
        workdir, pg_url, enterprise_lines(loggers), partitions=16, lease_ttl_s=6.0
    ).start()
    db = make_engine(pg_url)
    traffic: Traffic | None = None
    try:
        cluster.role("ingest", "ingest-a")
        victim = cluster.role("worker", "worker-a")
        cluster.role("worker", "worker-b")
        traffic = Traffic(cluster, loggers, rate)
        # Warm: every partition judged, both workers at work, a rule snapshot taken.
        deadline = time.monotonic() + 120
        while len(checkpoints(db)) < 16 or not owned_by(db, "worker-a"):
            if time.monotonic() > deadline:
                raise TimeoutError(cluster.logs())
            time.sleep(0.5)
        time.sleep(10)
        partitions = owned_by(db, "worker-a")
        at_kill = checkpoints(db)
        killed = time.monotonic()
        victim.kill()
        judged_again: dict[int, float] = {}
        while len(judged_again) < len(partitions):
            now = checkpoints(db)
            for p in partitions:
                name = f"ingest.p{p}"
                if p not in judged_again and now.get(name, 0) > at_kill.get(name, 0):
                    judged_again[p] = time.monotonic() - killed
            if time.monotonic() - killed > 120:
                raise TimeoutError(f"not taken over after 120 s: {judged_again}\n{cluster.logs()}")
            time.sleep(0.05)
        return {
            "partitions_taken_over": len(partitions),
            "takeover_s": round(max(judged_again.values()), 2),
            "first_s": round(min(judged_again.values()), 2),
            "messages_sent": traffic.sent,
        }
    finally:
        if traffic is not None:
            traffic.close()
        db.dispose()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loggers", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0, help="messages/s of live traffic")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    admin = make_engine(PG_ADMIN)
    rounds = []
    for n in range(args.rounds):
        schema = f"takeover_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_ADMIN else "?"
        try:
            with tempfile.TemporaryDirectory(prefix="takeover-") as tmp:
                result = one_round(
                    Path(tmp),
                    f"{PG_ADMIN}{sep}options=-csearch_path%3D{schema}",
                    args.loggers,
                    args.rate,
                )
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        print(f"round {n + 1}: {result}", flush=True)
        rounds.append(result)
    admin.dispose()
    times = [float(r["takeover_s"]) for r in rounds]  # type: ignore[arg-type]
    out = {
        "what": "SIGKILL of a worker → every one of its partitions judged again by another",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, load {os.getloadavg()}",
        "loggers": args.loggers,
        "live_rate_msgs_per_s": args.rate,
        "lease_ttl_s": 6.0,
        "partitions": 16,
        "rounds": rounds,
        "takeover_s_median": statistics.median(times),
        "takeover_s_max": max(times),
        "goal_s": 10.0,
    }
    args.output.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"takeover: median {out['takeover_s_median']} s, max {out['takeover_s_max']} s")


if __name__ == "__main__":
    main()
