"""The cluster path end to end: Mosquitto → ingest nodes → JetStream (3 nodes) → workers →
PostgreSQL, as real processes; the findings equal ``nonsite replay`` over the same frames."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.archive import message_digest
from nonsite.db import make_engine
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import (
    LocalCluster,
    enterprise_lines,
    findings_json,
    hour_frames,
    replay_json,
    settled,
    stream_digests,
)
from tests.service_process import wait_for

pytestmark = pytest.mark.integration

ENTERPRISES = 24
H0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
ABSENCE = {"B7", "B8", "C8"}  # the clock's rules: judged by wall time, not by the data
GRACE = timedelta(hours=1)  # [rules] grace_s


def judged(
    findings: list[dict[str, object]], closed_by: datetime | None = None
) -> set[tuple[object, ...]]:
    """The findings of the data rules, as comparable tuples; with ``closed_by``, only those
    of windows the stream has closed when its latest data is of that time (the replay judges
    every window at the end of its input, the stream those its watermark passed by the grace
    period, 1 h by default)."""
    return {
        (f["id"], f["rule"], f["state"], f["tier"], f["enterprise_id"], f["window_start"])
        for f in findings
        if f["rule"] not in ABSENCE
        and (closed_by is None or datetime.fromisoformat(str(f["window_end"])) + GRACE <= closed_by)
    }


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[LocalCluster]:
    parts = LocalCluster(tmp_path, pg_url, enterprise_lines(ENTERPRISES)).start()
    try:
        yield parts
    except BaseException:
        print(parts.logs())
        raise
    finally:
        parts.stop()


def test_frames_through_two_ingest_nodes_and_two_workers_match_replay(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster.role("ingest", "ingest-a")
    cluster.role("ingest", "ingest-b")
    worker_a = cluster.role("worker", "worker-a")
    cluster.role("worker", "worker-b")
    # Hours over the SO2 limit (the preset's) for a quarter of the fleet.
    frames = hour_frames(ENTERPRISES, H0, 3, dict.fromkeys(range(0, ENTERPRISES, 4), 400.0))
    publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port)
    try:
        publisher.publish_all(frames)
    finally:
        publisher.close()

    db = make_engine(cluster.pg_url)
    try:
        # Every frame in the stream, and each partition's checkpoint at its last message.
        assert wait_for(lambda: len(stream_digests(cluster.nats)) == len(frames), 60)
        assert wait_for(lambda: settled(db, cluster.nats), timeout=90), cluster.logs()
        digests = stream_digests(cluster.nats)
        assert sorted(digests) == sorted(message_digest(t, p).hex() for t, p in frames)

        frames_file = tmp_path / "frames.txt"
        frames_file.write_bytes(b"\n".join(p.rstrip(b"\r\n") for _, p in frames) + b"\n")
        last_data = H0 + timedelta(hours=3, minutes=10)
        expected = judged(replay_json(worker_a.config, frames_file), closed_by=last_data)
        assert any(f[1] == "A3" for f in expected)  # the exceedances are there to be found

        assert wait_for(lambda: judged(findings_json(worker_a.config)) == expected, 60), (
            sorted(expected ^ judged(findings_json(worker_a.config)))[:5],
            cluster.logs(),
        )
        with db.connect() as conn:
            cases = conn.execute(
                sa.text("SELECT enterprise_id, rule, count(*) FROM cases GROUP BY 1, 2")
            ).all()
        # One case per problem: every fourth enterprise's SO2 exceedance, once.
        a3 = sorted(e for e, rule, n in cases if rule == "A3" and n == 1)
        assert a3 == [f"E{i:03d}" for i in range(0, ENTERPRISES, 4)]
    finally:
        db.dispose()


def test_workers_answer_loggers_and_send_them_commands(cluster: LocalCluster) -> None:
    """What one machine sends to loggers, a cluster sends too: 9014 for a frame that asks for
    one, from the worker that judged it, and a command requested on the command line (a clock
    check, CN 1011), from the worker that owns the logger's partition, exactly once."""
    import subprocess
    import sys
    import threading
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.service_process import gas_packet

    cluster.role("ingest", "ingest-a")
    worker = cluster.role("worker", "worker-a")
    cluster.role("worker", "worker-b")
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reply-listener")

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        with lock:
            got.append((m.topic, m.payload))

    listener.on_message = on_message
    listener.connect(cluster.mosquitto.host, cluster.mosquitto.port)
    listener.subscribe("hj212/+/reply", qos=1)
    listener.loop_start()
    publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port)
    try:
        frames = [
            (f"hj212/MN{i:04d}", gas_packet(f"MN{i:04d}", "123456", H0, 40.0, ack=True))
            for i in range(6)
        ]
        publisher.publish_all(frames)

        def replied(mn: str, cn: str) -> int:
            with lock:
                return sum(
                    1 for t, p in got if t == f"hj212/{mn}/reply" and f"CN={cn}".encode() in p
                )

        assert wait_for(lambda: all(replied(f"MN{i:04d}", "9014") for i in range(6)), 30), got
        asked = subprocess.run(
            [
                sys.executable,
                "-m",
                "nonsite",
                "logger",
                "time-check",
                "--config",
                str(worker.config),
                "--as",
                "值班员",
                "MN0003",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert asked.returncode == 0, asked.stderr.decode()
        assert wait_for(lambda: replied("MN0003", "1011") == 1, 30), got
        time.sleep(2)  # and not a second time, by the other worker
        assert replied("MN0003", "1011") == 1
    finally:
        publisher.close()
        listener.loop_stop()
        listener.disconnect()
