"""``nonsite replay --from-store --workers N [--processes]``: the enterprises shared out among
threads (or spawned processes), each reading and judging its own share of the kept minute
detail; the findings are the single worker's, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import tomlkit

from ingest.china_time import CHINA_TZ
from ingest.readings import Measurement
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.replay import enterprise_shares, replay_store
from nonsite.rule_wiring import rule_setup
from rules.history_store import Partitions, detail_volume, record_history
from rules.stream import StreamEngine
from tests.rules.scenario import reading
from tests.service_process import run_nonsite

START = datetime(2026, 11, 2, tzinfo=CHINA_TZ)
HOURS = 60
BASE = {"a21026": 40.0, "a21002": 60.0, "a34013": 10.0, "a19001": 9.0, "a00000": 80.0}
# enterprise → its outlets; E3's two outlets report the same SO2 series (B8-8 across outlets)
FLEET = {"E1": ["DA001"], "E2": ["DA001"], "E3": ["DA001", "DA002"], "E4": ["DA001"],
         "E5": ["DA001"], "E6": ["DA001", "DA002", "DA003"]}  # fmt: skip


def config_doc(data_dir: Path, url: str) -> dict:
    return {
        "service": {"data_dir": str(data_dir)},
        "database": {"url": url},
        "enterprises": [
            {
                "id": e,
                "name": f"企业{e}",
                "outlets": [
                    {
                        "id": o,
                        "kind": "gas",
                        "mn": f"MN{e}{o}",
                        "pw": "123456",
                        "preset": "thermal_power_coal_boiler",
                    }
                    for o in outlets
                ],
            }
            for e, outlets in FLEET.items()
        ],
    }


def readings(k: int, enterprise: str, outlet: str) -> list[Measurement]:
    """10-minute data of five factors: SO2 over its limit some hours, constant some others,
    a fault-flagged stretch, a silent hour; E3's outlets alike in SO2."""
    out = []
    for minute in range(0, HOURS * 60, 10):
        hour = minute // 60
        if (hour + k) % 29 == 5:
            continue  # a silent hour (B7)
        at = START + timedelta(minutes=minute)
        for code, base in BASE.items():
            value = base + (minute % 70) * 0.05 + (0 if enterprise == "E3" else k * 0.01)
            flag = "N"
            if code == "a21026" and (hour + k) % 13 == 0:
                value = 180.0 + k  # 超标
            if code == "a21002" and (hour + 2 * k) % 17 < 2:
                value = 60.0  # 恒值
            if code == "a34013" and 3 <= (hour + k) % 23 <= 6:
                flag = "D"
            out.append(reading(code, at, value, flag=flag, outlet=(enterprise, outlet)))
    return out


@pytest.fixture
def stored(tmp_path, db_url):
    """The fleet's readings through the stream engine, its kept history in the database."""
    config_file = tmp_path / "replay.toml"
    doc = config_doc(tmp_path, db_url)
    config_file.write_text(tomlkit.dumps(doc))
    config = parse_config(doc, str(config_file), env={})
    engine = StreamEngine(rule_setup(config).params, grace_s=600)
    k = 0
    for enterprise, outlets in FLEET.items():
        for outlet in outlets:
            engine.process_measurements(readings(k, enterprise, outlet))
            k += 1
    engine.flush()
    db = make_engine(db_url)
    migrate(db)
    with db.begin() as conn:
        record_history(conn, engine.take_history(), Partitions())
    db.dispose()
    return config, config_file


def test_the_workers_find_what_one_process_finds(stored):
    config, _ = stored
    until = START + timedelta(hours=HOURS)
    one = replay_store(config, START, until, workers=1)
    rules = {f.rule for f in one.findings}
    assert {"A3", "B2", "B6", "B7", "B8-8", "B9", "B10"} <= rules, (
        rules
    )  # the fleet is not a quiet one
    outlets = [(e, o) for e, os in FLEET.items() for o in os]
    assert one.readings == sum(len(readings(k, e, o)) for k, (e, o) in enumerate(outlets))
    for workers, processes in ((2, False), (3, False), (2, True), (3, True)):
        shared = replay_store(config, START, until, workers=workers, processes=processes)
        assert [f.to_json() for f in shared.findings] == [f.to_json() for f in one.findings]
        assert (shared.readings, shared.late) == (one.readings, one.late)
        assert (shared.workers, shared.in_processes) == (workers, processes)


def test_the_command_takes_workers(stored):
    _, config_file = stored
    until = START + timedelta(hours=HOURS)
    span = (START.replace(tzinfo=None).isoformat(), until.replace(tzinfo=None).isoformat())
    command = ("replay", "--config", str(config_file), "--from-store", *span, "--workers")
    one, two = run_nonsite(*command, "1"), run_nonsite(*command, "2")
    spawned = run_nonsite(*command, "2", "--processes")
    default = run_nonsite(*command[:-1])
    for run in (one, two, spawned, default):
        assert run.returncode == 0, run.stderr
        assert run.stdout == one.stdout
    assert one.stdout.count(b"\n") > 100
    assert b"1 worker)" in one.stderr and b"1 worker)" in default.stderr
    assert b"2 threads" in two.stderr
    assert b"2 processes" in spawned.stderr
    bad = run_nonsite(*command, "0")
    assert bad.returncode == 2 and b"--workers" in bad.stderr


def test_the_shares_are_balanced_by_the_detail_they_hold(stored):
    config, _ = stored
    engine = make_engine(config.database_url())
    with engine.connect() as conn:
        span = (int(START.timestamp()), int((START + timedelta(hours=HOURS)).timestamp()))
        volume = detail_volume(conn, *span)
        assert detail_volume(conn, span[1], span[1] + 86400) == {}
    engine.dispose()
    outlets = {e: len(o) for e, o in FLEET.items()}
    assert set(volume) == set(FLEET)
    # each outlet holds about as much: the volume follows the outlets
    per_outlet = [volume[e] / outlets[e] for e in FLEET]
    assert max(per_outlet) < 1.1 * min(per_outlet)
    shares = enterprise_shares(volume, 2)
    assert sorted(e for share in shares for e in share) == sorted(FLEET)
    assert sorted(sum(outlets[e] for e in share) for share in shares) == [4, 5]  # of 9
    assert shares[0] == sorted(shares[0]) and len(enterprise_shares(volume, 20)) == 6
    assert enterprise_shares(volume, 1) == [sorted(FLEET)]
    assert enterprise_shares({"A": 10, "B": 3, "C": 3, "D": 3}, 2) == [["A"], ["B", "C", "D"]]
    assert enterprise_shares({"A": 4, "B": 3, "C": 3}, 2) == [["B", "C"], ["A"]]  # largest first
