"""Issue 16 through the real interface: MQTT to a real Mosquitto, into ``nonsite serve``.

- An oversized message (above ingest.max_payload_bytes) is neither archived nor dead-lettered
  whole: both keep its first 4 KiB with its size and SHA-256. Every other dead letter's stored
  payload is bounded too.
- A data logger configured ``encoding = "gbk"`` has its GBK text accepted; the same packet from
  a logger left at UTF-8 is a dead letter that names the setting to change.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ingest.archive import RawArchive
from ingest.store import DEAD_LETTER_PAYLOAD_BYTES, list_dead_letters
from nonsite.embedded_broker import free_port
from tests.ingest.hj212.frames import packet
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess, serve_once

pytestmark = pytest.mark.integration

MN_UTF8 = "33010000A8900016F0000201"
MN_GBK = "33010000A8900016F0000202"


def data_frame(mn: str, i: int) -> bytes:
    return packet(
        f"QN=20261121080000{i:03d};ST=31;CN=2011;PW=123456;MN={mn};Flag=4;"
        f"CP=&&DataTime=2026112108{i % 60:02d}00;a21026-Rtd={i}.5,a21026-Flag=N&&"
    )


def gbk_frames(mn: str) -> list[bytes]:
    """A CN 2011 upload and a CN 3020 field-device log, both with GBK text."""
    upload = (
        f"QN=20261121080000001;ST=31;CN=2011;PW=123456;MN={mn};Flag=4;"
        "CP=&&DataTime=20261121080000;EntName=杭州滨江热电有限公司;"
        "a21026-Rtd=12.5,a21026-Flag=N&&"
    )
    log = (
        f"QN=20261121080000002;ST=31;CN=3020;PW=123456;MN={mn};Flag=4;"
        "CP=&&DataTime=20261121080000;PolId=a21026;i11001-Info=//现场端信息：清洗管路//&&"
    )
    return [packet(upload, encoding="gbk"), packet(log, encoding="gbk")]


def nonsite(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "nonsite", *args], capture_output=True, timeout=60, check=True
    )


def archived(data_dir: Path):
    archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
    try:
        return list(archive.export())
    finally:
        archive.close()


def wait_archived(data_dir: Path, n: int, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (data_dir / "archive.sqlite3").exists() and len(got := archived(data_dir)) >= n:
            return got
        time.sleep(0.1)
    raise TimeoutError(f"fewer than {n} messages archived after {timeout} s")


@pytest.fixture
def services() -> Iterator[list[ServiceProcess]]:
    """Services started by the test, killed afterwards if a failed assertion left them running."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        if service.proc is not None and service.proc.poll() is None:
            service.kill()


def serve(tmp_path: Path, mosquitto, *, outlets: dict[str, str]) -> tuple[Path, Path]:
    """A configuration with one outlet per MN, each with the given extra settings."""
    data_dir = tmp_path / "data"
    lines = [
        "[service]",
        f'data_dir = "{data_dir}"',
        f'http_listen = "127.0.0.1:{free_port()}"',
        "[mqtt]",
        f'url = "{mosquitto.url}"',
        'client_id = "nonsite-test"',
        "[[enterprises]]",
        'id = "E1"',
        'name = "测试企业"',
    ]
    for i, (mn, extra) in enumerate(outlets.items()):
        lines += ["[[enterprises.outlets]]", f'id = "DA{i:03d}"', 'kind = "gas"', f'mn = "{mn}"']
        lines += ['pw = "123456"', extra]
    config = tmp_path / "nonsite.toml"
    config.write_text("\n".join(lines) + "\n")
    return data_dir, config


def test_an_oversized_message_is_kept_bounded_in_the_archive_and_as_a_dead_letter(
    mosquitto, tmp_path, services
):
    data_dir, config = serve(tmp_path, mosquitto, outlets={MN_UTF8: ""})
    service = ServiceProcess(config, tmp_path / "service.log")
    services.append(service)
    service.start()
    # 3 MB of valid packets (the default limit is 256 KiB): none of them may be used.
    big = b"".join(data_frame(MN_UTF8, i) for i in range(20_000))
    assert len(big) > 3_000_000
    garbage = b"x" * 200_000  # under the limit, undecodable: a dead letter, bounded too
    items = [
        (f"hj212/{MN_UTF8}", big),
        (f"hj212/{MN_UTF8}", garbage),
        (f"hj212/{MN_UTF8}", big),  # the same message again: recognised, stored once
        (f"hj212/{MN_UTF8}", data_frame(MN_UTF8, 7)),
    ]
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(items)
    pub.close()
    stored = wait_archived(data_dir, 3)
    assert service.terminate() == 0  # drains: everything archived is decoded

    assert len(stored) == 3
    row = stored[0]
    assert len(row.payload) == 4096 and big.startswith(row.payload)
    assert row.full_size == len(big)
    assert row.full_sha256 == hashlib.sha256(big).digest()
    assert stored[1].payload == garbage and stored[1].full_size is None  # under the limit: whole
    assert stored[2].payload == data_frame(MN_UTF8, 7)

    engine = create_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    letters = {d.reason: d for d in list_dead_letters(engine)}
    engine.dispose()
    assert set(letters) == {"oversize_payload", "no_header"}
    over = letters["oversize_payload"]
    assert over.payload == big[:4096]
    assert over.archive_seq == row.seq
    assert f"{len(big)} bytes" in over.detail
    assert hashlib.sha256(big).hexdigest() in over.detail
    bad = letters["no_header"]
    assert bad.payload == garbage[:DEAD_LETTER_PAYLOAD_BYTES]
    assert hashlib.sha256(garbage).hexdigest() in bad.detail and "200000 bytes" in bad.detail
    assert "Traceback" not in (tmp_path / "service.log").read_text()

    # Readers of the archive cope: the export says what it left out instead of printing the
    # first 4 KiB as if they were the message.
    export = nonsite("archive", "export", "--config", str(config))
    assert export.stdout.splitlines() == [garbage, data_frame(MN_UTF8, 7).rstrip(b"\r\n")]
    assert f"{len(big)} bytes" in export.stderr.decode()
    as_json = nonsite("archive", "export", "--format", "json", "--config", str(config))
    first = json.loads(as_json.stdout.splitlines()[0])
    assert first["truncated"] is True and first["size"] == len(big)
    assert first["sha256"] == hashlib.sha256(big).hexdigest()


def test_gbk_text_is_accepted_from_a_logger_set_to_gbk_and_a_clear_dead_letter_otherwise(
    mosquitto, tmp_path, services
):
    data_dir, config = serve(tmp_path, mosquitto, outlets={MN_UTF8: "", MN_GBK: 'encoding = "gbk"'})
    service = ServiceProcess(config, tmp_path / "service.log")
    services.append(service)
    service.start()
    items = [(f"hj212/{MN_GBK}", p) for p in gbk_frames(MN_GBK)]
    items += [(f"hj212/{MN_UTF8}", p) for p in gbk_frames(MN_UTF8)]
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(items)
    pub.close()
    wait_archived(data_dir, len(items))
    deadline = time.monotonic() + 30
    metrics = ""
    while time.monotonic() < deadline:
        metrics = service.metrics()
        if 'nonsite_ingest_frames_total{outcome="dead_letter"} 2.0' in metrics:
            break
        time.sleep(0.2)
    assert service.terminate() == 0

    # The archive keeps the bytes as received (GBK), whatever the logger's setting.
    assert [m.payload for m in archived(data_dir)] == [p for _, p in items]
    assert 'nonsite_ingest_frames_total{outcome="accepted"} 2.0' in metrics
    assert 'nonsite_ingest_readings_total{kind="measurement"} 1.0' in metrics
    engine = create_engine(f"sqlite:///{data_dir / 'nonsite.db'}")
    letters = list_dead_letters(engine)
    engine.dispose()
    assert sorted(d.mn or "" for d in letters) == [MN_UTF8, MN_UTF8]
    for letter in letters:
        assert letter.reason == "not_utf8"
        assert 'encoding = "gbk"' in letter.detail, letter.detail
        assert "outlet DA000" in letter.detail, letter.detail


def test_an_unknown_encoding_name_stops_the_start_with_a_clear_error(mosquitto, tmp_path):
    _, config = serve(tmp_path, mosquitto, outlets={MN_GBK: 'encoding = "gbkk"'})
    run = serve_once(config)
    assert run.returncode != 0
    assert "encoding" in run.stderr and "'gbkk'" in run.stderr, run.stderr
    assert "gbk" in run.stderr and "gb18030" in run.stderr
