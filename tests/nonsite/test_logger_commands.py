"""Platform → logger commands through a running ``nonsite serve`` and its TCP gateway, with a
simulated data logger that answers as real ones do (nonsite.simulator.tcp_logger).

- A missing hour of minute data (B7) makes the platform recall it: the logger answers from
  its history, the data are stored, and the command's audit row says what came back and
  names the B7 case it was for.
- A logger whose clock is five minutes fast has it read (1011), the drift recorded, and set
  (1012).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import cases
from ingest.archive import RawArchive
from ingest.china_time import CHINA_TZ
from ingest.commands.store import logger_commands
from ingest.hj212.encoder import data_packets
from nonsite.db import make_engine
from nonsite.embedded_broker import free_port
from nonsite.simulator.tcp_logger import TcpLogger
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess

pytestmark = pytest.mark.integration

MN = "33010000000000000000R0001"
PW = "Rcl-5521"
HOUR0 = datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)


def write_config(path: Path, broker_url: str, data_dir: Path, tcp_port: int, extra: str) -> Path:
    outlet = ['factors = ["a21026", "a19001"]', "minute_interval_min = 10"]
    lines = [
        *service_lines(broker_url=broker_url, data_dir=data_dir, client_id="nonsite-commands-test"),
        "[tcp]",
        f'listen = "127.0.0.1:{tcp_port}"',
        "[rules]",
        "grace_s = 60",
        "snapshot_every_s = 0.5",
        "[alerts]",
        "flap_window_min = 0",
        extra,
        *gas_enterprise("RCL", "召回测试企业", MN, PW, outlet_settings=outlet),
    ]
    return write_lines(path, lines)


def minute_packet(at: datetime) -> bytes:
    wobble = at.minute // 10 % 3  # never constant (B2)
    pollutants = {
        "a21026": {"Avg": 20.0 + wobble, "Flag": "N"},
        "a19001": {"Avg": 6.0 + 0.1 * wobble, "Flag": "N"},
    }
    [packet] = data_packets(
        st="31", cn="2051", pw=PW, mn=MN, data_time=at, pollutants=pollutants, ack=True
    )
    return packet


def hour_of_minutes(h: int) -> list[bytes]:
    return [minute_packet(HOUR0 + timedelta(hours=h, minutes=10 * k)) for k in range(6)]


def commands(db: sa.Engine, **where: str) -> list[sa.Row]:
    c = logger_commands.c
    query = sa.select(logger_commands).order_by(c.id)
    for key, value in where.items():
        query = query.where(c[key] == value)
    with db.connect() as conn:
        return list(conn.execute(query).all())


async def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.25)
    return False


@pytest.fixture
def serve(mosquitto, tmp_path):
    started: list[ServiceProcess] = []

    def start(extra: str = "") -> tuple[ServiceProcess, sa.Engine, int, Path]:
        port = free_port()
        data_dir = tmp_path / "d"
        config = write_config(tmp_path / "n.toml", mosquitto.url, data_dir, port, extra)
        service = ServiceProcess.started(config)
        started.append(service)
        return service, make_engine(f"sqlite:///{data_dir / 'nonsite.db'}"), port, data_dir

    yield start
    for service in started:
        service.terminate()


@asynccontextmanager
async def logger_of(serve, settings: str, **options: float) -> AsyncIterator[tuple]:
    """A service started with ``settings`` and a simulated logger connected to its gateway:
    (service, database, data directory, logger)."""
    service, db, port, data_dir = await asyncio.to_thread(serve, settings)
    logger = TcpLogger("127.0.0.1", port, mn=MN, **options)
    await logger.connect()
    try:
        yield service, db, data_dir, logger
    finally:
        await logger.close()
        db.dispose()


async def test_a_missing_hour_is_recalled_and_the_data_come_back(serve):
    settings = "[commands]\ntime_check_every_h = 0"
    async with logger_of(serve, settings, over_time_s=3.0) as (service, db, data_dir, logger):
        lost = hour_of_minutes(1)
        for packet in lost:
            logger.remember(packet)  # measured and kept, never delivered (a lost link)
        sent = [p for h in (0, 2, 3, 4) for p in hour_of_minutes(h)]
        assert await logger.upload(sent) == len(sent), service.log_text()

        def recalled() -> bool:
            rows = commands(db, kind="recall")
            return bool(rows) and rows[0].status == "done"

        if not await wait_for(recalled):
            pytest.fail(f"{[dict(r._mapping) for r in commands(db)]}\n{service.log_text()}")
        [row] = commands(db, kind="recall")
        assert (row.cn, row.requested_by, row.filled, row.qn_rtn, row.exe_rtn) == (
            "2051", "auto:B7", 6, 1, 1
        )  # fmt: skip
        params = json.loads(row.params)
        begin = datetime.fromisoformat(params["BeginTime"]).astimezone(CHINA_TZ)
        assert begin == HOUR0 + timedelta(hours=1)
        # The request the logger got, exactly as audited.
        [request] = [r for r in logger.requests if r.cn == "2051"]
        assert request.qn == row.qn
        assert request.fields["BeginTime"] == HOUR0 + timedelta(hours=1)
        assert request.fields["EndTime"] == HOUR0 + timedelta(hours=1, minutes=59, seconds=59)
        # The B7 case it was for.
        with db.connect() as conn:
            case = conn.execute(sa.select(cases).where(cases.c.id == row.case_id)).one()
        assert (case.rule, case.enterprise_id, case.source_id) == ("B7", "RCL", "DA001")
        # The recalled packets are stored (each answered with 9014: none given up).
        archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
        try:
            stored = {m.payload for m in archive.read_after(0, 10_000)}
        finally:
            archive.close()
        assert all(p in stored for p in lost)
        assert logger.unanswered == 0


async def test_a_drifting_clock_is_read_recorded_and_set(serve):
    settings = "[commands]\nrecall = false\nclock_tolerance_s = 60"
    async with logger_of(serve, settings, clock_offset_s=300.0) as (service, db, _, logger):
        await logger.upload(hour_of_minutes(0)[:1])  # heard from: its clock is read

        def set_done() -> bool:
            return any(r.status == "done" for r in commands(db, kind="time_set"))

        assert await wait_for(set_done), (commands(db), service.log_text())
        [read] = commands(db, kind="time_get")
        assert read.status == "done" and read.requested_by == "auto:clock"
        assert read.drift_s == pytest.approx(300.0, abs=5.0)
        [setting] = commands(db, kind="time_set")
        assert setting.requested_by == "auto:clock" and "300" in setting.reason
        assert abs(logger.clock_offset_s) < 5.0  # the logger's clock was set right
