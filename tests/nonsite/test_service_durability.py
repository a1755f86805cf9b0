"""No message lost or stored twice: SIGKILL of the service, broker restarts with persistence.

The real ``nonsite serve`` process, a real Mosquitto with persistence, real frames. After the
service is killed twice while thousands of frames flow, and after broker restarts, every
published message is in the raw archive exactly once.
"""

import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine

from ingest.archive import RawArchive
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from ingest.store import list_dead_letters, load_checkpoint
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess, write_config

pytestmark = pytest.mark.integration

MNS = [f"33010000A8900016F{i:07d}" for i in range(20)]
T0 = datetime(2026, 11, 21, 0, 0, tzinfo=CHINA_TZ)


def frames(start: int, n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(start, start + n):
        mn = MNS[i % len(MNS)]
        when = T0 + timedelta(seconds=30 * (i // len(MNS)))
        pollutants = {
            "a21026": {"Rtd": round(10 + i % 17 * 0.5, 2), "Flag": "N"},
            "a34013": {"Rtd": 3.5, "Flag": "N"},
        }
        [p] = data_packets(
            st="31", cn="2011", pw="123456", mn=mn, data_time=when, pollutants=pollutants, ack=False
        )
        out.append((f"hj212/{mn}", p))
    return out


def archived(data_dir) -> list[bytes]:
    path = data_dir / "archive.sqlite3"
    if not path.exists():
        return []
    archive = RawArchive(path, readonly=True)
    try:
        return [m.payload for m in archive.export()]
    finally:
        archive.close()


def wait_archived(data_dir, n: int, timeout: float = 90.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    got = archived(data_dir)
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.2)
        got = archived(data_dir)
    return got


def assert_exactly_once(published: list[tuple[str, bytes]], stored: list[bytes]) -> None:
    want = Counter(p for _, p in published)
    have = Counter(stored)
    missing = want - have
    extra = have - want
    assert not missing, f"{sum(missing.values())} published messages are not in the archive"
    assert not extra, f"{sum(extra.values())} archived messages are extra or duplicated"


def start_service(mosquitto, tmp_path, data_dir) -> ServiceProcess:
    config = write_config(
        tmp_path / "nonsite.toml", broker_url=mosquitto.url, data_dir=data_dir, mns=MNS
    )
    return ServiceProcess.started(config)


def publish_slowly(pub: Publisher, items, per_chunk: int = 100, pause: float = 0.08) -> None:
    for i in range(0, len(items), per_chunk):
        pub.publish_all(items[i : i + per_chunk])
        time.sleep(pause)


def test_service_killed_twice_while_frames_flow_loses_and_duplicates_nothing(mosquitto, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(mosquitto, tmp_path, data_dir)
    items = frames(0, 6000)
    pub = Publisher(mosquitto.host, mosquitto.port)
    publisher = threading.Thread(target=publish_slowly, args=(pub, items))
    publisher.start()
    kills_at = []
    for threshold in (1500, 3500):
        while len(archived(data_dir)) < threshold:
            time.sleep(0.05)
        kills_at.append(len(archived(data_dir)))
        service.kill()  # SIGKILL: no drain, whatever was in flight is unacknowledged
        service.start()
    publisher.join()
    pub.close()
    stored = wait_archived(data_dir, len(items))
    assert all(n < len(items) for n in kills_at), "the kills must land while frames still flow"
    assert_exactly_once(items, stored)
    # Every archived message was decoded: nothing was dead-lettered, the checkpoint is at the head.
    assert service.terminate() == 0
    engine = create_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    assert list_dead_letters(engine) == []
    assert (
        load_checkpoint(engine, "ingest")
        == RawArchive(data_dir / "archive.sqlite3", readonly=True).head_seq()
    )


def test_broker_restarts_with_persistence_lose_and_duplicate_nothing(mosquitto, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(mosquitto, tmp_path, data_dir)
    first, second, third, fourth = (
        frames(0, 1500),
        frames(1500, 1500),
        frames(3000, 1500),
        frames(4500, 1500),
    )

    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(first)
    pub.close()
    # 1. The broker restarts under a connected service that is still receiving.
    mosquitto.restart()
    assert wait_archived(data_dir, len(first))
    # 2. The service dies; frames queue in its session at the broker; the broker restarts
    #    (persistence); then the service comes back and receives the queued frames.
    service.kill()
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(second)
    pub.close()
    mosquitto.restart()
    service.start()
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(third)
    pub.close()
    stored = wait_archived(data_dir, 4500)
    # 3. The broker restarts again while frames are being published and received.
    pub = Publisher(mosquitto.host, mosquitto.port)
    publish_slowly(pub, fourth[:700], pause=0.05)
    pub.close()
    mosquitto.restart()
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(fourth[700:])
    pub.close()
    stored = wait_archived(data_dir, 6000)
    assert_exactly_once(first + second + third + fourth, stored)
    assert service.terminate() == 0


def test_sigterm_drains_everything_received_and_exits_cleanly(mosquitto, tmp_path):
    data_dir = tmp_path / "data"
    service = start_service(mosquitto, tmp_path, data_dir)
    items = frames(0, 3000)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(items)
    pub.close()
    assert service.terminate() == 0
    engine = create_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
    # Whatever was archived before the exit was also decoded and checkpointed.
    assert load_checkpoint(engine, "ingest") == archive.head_seq()
    # The rest waited in the broker session and arrives on the next start.
    service.start()
    assert_exactly_once(items, wait_archived(data_dir, len(items)))
    assert service.terminate() == 0
