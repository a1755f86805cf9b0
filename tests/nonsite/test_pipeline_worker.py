"""The pipeline worker: markings declared online reach the rule engine at its clock tick, and
the notification dispatcher is woken only once new cases are committed."""

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import outbox
from ingest.archive import IncomingMessage, RawArchive
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.stages import RuleEngines
from rules.stage import RuleStage
from tests.nonsite.worker import pipeline_worker
from tests.rules.scenario import declare_day


def test_declared_markings_reach_the_rule_engine(tmp_path):
    config = parse_config(
        {
            "service": {"data_dir": str(tmp_path)},
            "enterprises": [
                {
                    "id": "E1",
                    "name": "甲",
                    "outlets": [{"id": "DA001", "kind": "gas", "mn": "MN1", "pw": "123456"}],
                }
            ],
        },
        "test.toml",
        env={},
    )
    RawArchive(tmp_path / "archive.sqlite3").close()
    db = make_engine(config.database_url())
    migrate(db)
    with pipeline_worker(config) as worker:
        engines = RuleEngines(config)
        with db.connect() as conn:
            engines.build(conn)
            assert engines.if_changed(conn) is None  # nothing declared yet
        with db.begin() as conn:
            declare_day(conn, "maintenance", "检修")
        with db.connect() as conn:
            assert engines.if_changed(conn) is not None
            assert engines.if_changed(conn) is None  # taken up once
        # The running engine takes it up at the clock's tick.
        assert worker.pipeline is not None
        [rules] = [s for s in worker.pipeline.stages if isinstance(s, RuleStage)]
        t = int(datetime(2026, 11, 24, 6, tzinfo=UTC).timestamp())
        assert rules.engine._markings.marking_at("E1", "DA001", "a21026", t) is None
        worker.pipeline.tick(time.time())
        assert rules.engine._markings.marking_at("E1", "DA001", "a21026", t) is not None
    db.dispose()


class _WakeThatLooks(threading.Event):
    """The dispatcher's wake-up, counting at each ``set`` the outbox rows another connection
    sees: what the dispatcher would find if it ran at that moment."""

    def __init__(self, db: sa.Engine) -> None:
        super().__init__()
        self.db = db
        self.rows_seen: list[int] = []

    def set(self) -> None:
        with self.db.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
        self.rows_seen.append(count)
        super().set()


def _exceeding_hour(mn: str, hour: datetime) -> list[IncomingMessage]:
    """Six ten-minute frames at 1.5 times the SO2 limit, then two of the next hour (the
    second is past the grace period, and closes the hour)."""
    frames = []
    for minute in range(0, 80, 10):
        at = hour + timedelta(minutes=minute)
        value = 150.0 + minute % 3 if minute < 60 else 40.0
        [packet] = data_packets(
            st="31",
            cn="2051",
            pw="123456",
            mn=mn,
            data_time=at,
            pollutants={
                "a21026": {"Avg": value, "Flag": "N"},
                "a19001": {"Avg": 6.0 + minute / 100, "Flag": "N"},
            },
            ack=False,
        )
        received_us = int(at.timestamp() * 1_000_000) + 5_000_000
        frames.append(IncomingMessage(received_us, f"hj212/{mn}", packet))
    return frames


@pytest.mark.parametrize("run", ["step", "drain"])
def test_the_dispatcher_is_woken_after_the_new_case_is_committed(tmp_path: Path, run: str) -> None:
    # Woken inside the transaction, it would look before the commit, find nothing and sleep
    # until the next wake-up: an alarm's notification late by up to a second. The drain at
    # shutdown wakes it too: the last cases' notifications go out before the process ends.
    mn = "33010000000000000000001"
    config = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'nonsite.sqlite3'}"},
            "service": {"data_dir": str(tmp_path)},
            "rules": {"grace_s": 60},
            "alerts": {
                "supervisors": ["hook"],
                "channels": [{"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/"}],
            },
            "enterprises": [
                {
                    "id": "E1",
                    "name": "甲",
                    "outlets": [
                        {
                            "id": "DA001",
                            "kind": "gas",
                            "mn": mn,
                            "pw": "123456",
                            "preset": "thermal_power_coal_boiler",
                        }
                    ],
                }
            ],
        },
        "test.toml",
        env={},
    )
    archive = RawArchive(tmp_path / "archive.sqlite3")
    archive.append(_exceeding_hour(mn, datetime(2026, 11, 20, 8, tzinfo=CHINA_TZ)))
    db = make_engine(config.database_url())
    migrate(db)
    with pipeline_worker(config) as worker:
        wake = _WakeThatLooks(db)
        worker.dispatcher.wake = wake
        if run == "step":
            assert worker.step() == 8
        else:
            worker.drain()
            assert worker.pipeline.position == 8
        assert wake.rows_seen, "a new case must wake the dispatcher"
        assert wake.rows_seen[0] >= 1, "woken before the notification row was committed"
    archive.close()
    db.dispose()
