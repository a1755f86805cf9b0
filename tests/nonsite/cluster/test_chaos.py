"""Chaos: the cluster loses nothing and doubles nothing while its parts are killed.

Mosquitto, 3 NATS nodes, 2 ingest nodes, 3 workers and PostgreSQL, as real processes; 200
enterprises send about 50,000 frames. During the run an ingest node is SIGKILLed (back after
5 s), a worker (back after 20 s), another worker (never back) and the stream's leader (back
after 5 s). Then: every frame is in the stream exactly once, the findings equal ``nonsite
replay`` over the same frames, one case per problem, every notification delivered and the keys
received are the keys queued (a send cut off by a kill is repeated at most once per kill).
A longer soak with more kills is ``bench/cluster_soak.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import cases, outbox
from ingest.archive import message_digest
from nonsite.db import make_engine
from tests.alerts.channels.receiver import Receiver
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import (
    PW,
    LocalCluster,
    behind,
    findings_json,
    replay_json,
    settled,
    stream_digests,
)
from tests.service_process import gas_packet, wait_for

pytestmark = pytest.mark.integration

ENTERPRISES = 200
HOURS = 42  # 200 × (42 × 6 + 1) = 50,600 frames
H0 = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)
ABSENCE = {"B7", "B8", "C8"}
CHANNELS = 2


def exceeds(i: int, h: int) -> bool:
    """Enterprise i's SO2 is over the limit in hour h: short episodes, different per
    enterprise, so that cases open and close all through the run."""
    return (h + i) % 9 in (3, 4) and i % 5 == 0


def so2(i: int, h: int) -> float:
    return 420.0 if exceeds(i, h) else 40.0 + i % 7


def mn(i: int) -> str:
    return f"MN{i:04d}"


def batches() -> list[list[tuple[str, bytes]]]:
    """One batch per 10 minutes of event time: every enterprise's packet for it."""
    out = []
    for h in range(HOURS):
        for k in range(6):
            at = H0 + timedelta(hours=h, minutes=10 * k)
            out.append(
                [
                    (f"hj212/{mn(i)}", gas_packet(mn(i), PW, at, so2(i, h)))
                    for i in range(ENTERPRISES)
                ]
            )
    closing = H0 + timedelta(hours=HOURS, minutes=30)
    out.append(
        [(f"hj212/{mn(i)}", gas_packet(mn(i), PW, closing, 40.0)) for i in range(ENTERPRISES)]
    )
    return out


def config_lines(hook: str) -> list[str]:
    lines = [
        "[rules]",
        f"grace_s = {int(GRACE.total_seconds())}",
        "snapshot_every_s = 2",
        "[alerts]",
        'supervisors = ["supervisors-hook"]',
        "retry_base_s = 0.2",
        "retry_max_s = 1.0",
        "flap_window_min = 0",
        'resolve_on_clear = ["warning", "alarm"]',
        "[[alerts.channels]]",
        'name = "supervisors-hook"',
        'kind = "webhook"',
        f'url = "{hook}"',
        "timeout_s = 2",
        "[[alerts.channels]]",
        'name = "enterprise-hook"',
        'kind = "webhook"',
        f'url = "{hook}"',
        "timeout_s = 2",
    ]
    for i in range(ENTERPRISES):
        lines += [
            "[[enterprises]]",
            f'id = "E{i:03d}"',
            f'name = "企业{i:03d}"',
            'notify = ["enterprise-hook"]',
            "[[enterprises.outlets]]",
            'id = "DA001"',
            'kind = "gas"',
            f'mn = "{mn(i)}"',
            f'pw = "{PW}"',
            'preset = "thermal_power_coal_boiler"',
        ]
    return lines


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rx:
        rx.respond(200, delay_s=0.05)  # a receiver that takes a moment: kills land mid-send
        yield rx


def later(delay_s: float, action: object) -> threading.Thread:
    def run() -> None:
        time.sleep(delay_s)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_kills_of_an_ingest_node_two_workers_and_the_stream_leader_lose_and_double_nothing(
    tmp_path: Path, pg_url: str, receiver: Receiver
) -> None:
    cluster = LocalCluster(
        tmp_path, pg_url, config_lines(receiver.url), partitions=12, lease_ttl_s=3.0
    ).start()
    try:
        ingest = [cluster.role("ingest", f"ingest-{n}") for n in "ab"]
        workers = [cluster.role("worker", f"worker-{n}") for n in "abc"]
        frames = batches()
        kills: list[str] = []
        restarts: list[threading.Thread] = []
        publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port, "chaos-publisher")
        started = time.monotonic()
        try:
            for n, batch in enumerate(frames):
                publisher.publish_all(batch, timeout=120)
                if n == 40:
                    ingest[0].kill()
                    kills.append("ingest-a")
                    restarts.append(later(5, lambda: ingest[0].start(wait_ready=False)))
                elif n == 80:
                    workers[0].kill()
                    kills.append("worker-a")
                    restarts.append(later(20, lambda: workers[0].start(wait_ready=False)))
                elif n == 120:
                    workers[1].kill()  # never back: its partitions go to the others
                    kills.append("worker-b")
                elif n == 160:
                    leader = cluster.nats.stream_leader("NONSITE_RAW")
                    assert leader is not None
                    cluster.nats.kill(leader)
                    kills.append(f"nats-{leader}")
                    restarts.append(later(5, lambda leader=leader: cluster.nats.restart(leader)))
        finally:
            publisher.close()
        published_s = time.monotonic() - started
        for thread in restarts:
            thread.join(60)
        published = [f for batch in frames for f in batch]

        db = make_engine(cluster.pg_url)
        try:
            assert wait_for(lambda: len(stream_digests(cluster.nats)) >= len(published), 180), (
                cluster.logs()
            )
            assert wait_for(lambda: settled(db, cluster.nats), 240), (
                behind(db, cluster.nats),
                cluster.logs(6000),
            )

            def notified() -> bool:
                with db.connect() as conn:
                    pending = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(outbox)
                        .where(outbox.c.state == "pending")
                    ).scalar_one()
                return pending == 0

            assert wait_for(notified, 120), cluster.logs()
            done_s = time.monotonic() - started

            # 1. Every published frame in the stream exactly once.
            digests = Counter(stream_digests(cluster.nats))
            assert set(digests.values()) == {1}
            assert sorted(digests) == sorted(message_digest(t, p).hex() for t, p in published)

            # 2. The findings equal the replay's (windows the data closed).
            frames_file = tmp_path / "frames.txt"
            frames_file.write_bytes(b"\n".join(p.rstrip(b"\r\n") for _, p in published) + b"\n")
            closed_by = H0 + timedelta(hours=HOURS, minutes=30)

            def judged(rows: list[dict[str, object]], closed: bool) -> set[tuple[object, ...]]:
                return {
                    (f["id"], f["state"], f["tier"])
                    for f in rows
                    if f["rule"] not in ABSENCE
                    and (
                        not closed
                        or datetime.fromisoformat(str(f["window_end"])) + GRACE <= closed_by
                    )
                }

            expected = judged(replay_json(workers[2].config, frames_file), closed=True)
            stored = judged(findings_json(workers[2].config), closed=False)
            assert stored == expected, (
                f"{len(stored - expected)} stored not replayed: {sorted(stored - expected)[:6]}; "
                f"{len(expected - stored)} replayed not stored: {sorted(expected - stored)[:6]}"
            )

            # 3. One case per problem: each SO2 exceedance episode once.
            with db.connect() as conn:
                a3_cases = conn.execute(
                    sa.select(cases.c.enterprise_id, cases.c.count).where(cases.c.rule == "A3")
                ).all()
                queued = conn.execute(sa.select(outbox.c.key, outbox.c.state)).all()
            episodes = Counter(
                f"E{i:03d}"
                for i in range(ENTERPRISES)
                for h in range(HOURS)
                if exceeds(i, h) and (h == 0 or not exceeds(i, h - 1))
            )
            assert Counter(e for e, _ in a3_cases) == episodes
            # Each A3 fire applied to its case once: none doubled by a takeover's replay.
            fires = sum(1 for f in expected if str(f[0]).startswith("A3:") and f[1] == "fire")
            assert sum(n for _, n in a3_cases) == fires

            # 4. Every notification delivered; the keys received are the keys queued.
            assert {state for _, state in queued} == {"delivered"}
            keys = [r.header("Idempotency-Key") for r in receiver.requests]
            assert set(keys) == {key for key, _ in queued}
            resent = len(keys) - len(set(keys))
            assert resent <= len(kills) * CHANNELS
            print(
                f"\nchaos: {len(published)} frames published in {published_s:.1f} s, all judged "
                f"and notified {done_s:.1f} s after the start; kills {kills}; "
                f"{len(a3_cases)} cases, {len(keys)} deliveries of {len(set(keys))} keys "
                f"({resent} resent)"
            )
        finally:
            db.dispose()
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
