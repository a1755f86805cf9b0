"""A marking declared online (POST /api/v1/markings) reaches the dashboard's series as it
reaches the rules: the hours the series draws are the hours the service judged, and a replay
of the archive judges them the same way.

One flue-gas outlet, 08:00-16:00: SO2 40 mg/m³ at 6 % O2 (under the limits), except 10:00 and
11:00 at 150 (over the 100 mg/m³ hour limit) and 12:00, whose records are mostly flagged D,
all three inside a declared 停产 marking; 14:00 is at 150 again, outside it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from nonsite.auth import passwords
from nonsite.config.load import parse_config
from nonsite.config.model import Config
from nonsite.db import make_engine
from nonsite.replay import load_messages, replay
from nonsite.web.quality import QualityBook
from rules.store import list_findings
from tests.nonsite.web.conftest import api_login, serving, web_context
from tests.nonsite.worker import pipeline_worker

MN = "33010000A8900016F0000301"
SO2, O2 = "a21026", "a19001"
H = datetime(2026, 11, 20, tzinfo=CHINA_TZ)
HOURS = range(8, 16)
MARKED = (10, 11, 12)
DECLARED = {
    "outlet": "DA001",
    "type": "stopped",
    "start": (H + timedelta(hours=10)).isoformat(),
    "end": (H + timedelta(hours=13)).isoformat(),
    "reason": "停产检修",
}


def so2(h: int, i: int) -> tuple[float, str]:
    if h in (10, 11, 14):
        return 150.0 + i * 0.1, "N"
    if h == 12 and i < 4:
        return 999.0, "D"
    return 40.0 + i * 0.1, "N"


def messages() -> list[IncomingMessage]:
    """Six 10-minute records an hour, each received a minute after its window; two records
    of 16:00 close the last hour."""
    out = []
    for h in [*HOURS, 16]:
        for i in range(6 if h < 16 else 2):
            t = H + timedelta(hours=h, minutes=10 * i)
            value, flag = so2(h, i)
            [packet] = data_packets(
                st="31",
                cn="2051",
                pw="123456",
                mn=MN,
                data_time=t,
                pollutants={
                    SO2: {"Avg": value, "Flag": flag},
                    O2: {"Avg": 6.0, "Flag": "N"},
                },
                ack=False,
            )
            out.append(IncomingMessage(to_us(t + timedelta(minutes=11)), f"hj212/{MN}", packet))
    return out


def site_config(data_dir: Path) -> Config:
    return parse_config(
        {
            "service": {"data_dir": str(data_dir)},
            "rules": {"grace_s": 60},
            "enterprises": [
                {
                    "id": "E1",
                    "name": "华能示范电厂",
                    "outlets": [
                        {
                            "id": "DA001",
                            "kind": "gas",
                            "mn": MN,
                            "pw": "123456",
                            "preset": "thermal_power_coal_boiler",  # SO2 100 mg/m³ @ 6 % O2
                        }
                    ],
                }
            ],
        },
        "test.toml",
        env={},
    )


def service_findings(config: Config) -> list:
    """What the service's rule stage finds over the archive (it takes up the declared
    markings when it starts)."""
    with pipeline_worker(config) as worker:
        worker.drain()
        return list_findings(worker.engine, limit=10_000)


@pytest.fixture
def client(tmp_path, monkeypatch) -> Iterator[tuple[Config, httpx.Client]]:
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)  # fast hashes for tests only
    config = site_config(tmp_path)
    archive = RawArchive(tmp_path / "archive.sqlite3")
    archive.append(messages())
    archive.close()
    users = {"ent1": ("enterprise", {"enterprise_id": "E1"}), "monitor": ("monitor", {})}
    ctx = web_context(config, config.database_url(), users=users, display_name=lambda _: "")
    with serving(ctx) as (_server, http):
        yield config, http


def exceeding(found) -> set[int]:
    """The hours (of H) in which SO2 exceeded, as the rules judged them (A3 fires for every
    hour its condition holds). Stored findings start at a datetime, the engine's at epoch
    seconds."""
    starts = (
        f.window_start if isinstance(f.window_start, int) else int(f.window_start.timestamp())
        for f in found
        if f.rule == "A3" and f.factor == SO2 and f.state == "fire"
    )
    return {(t - int(H.timestamp())) // 3600 for t in starts}


def test_series_hours_agree_with_the_findings_under_a_marking_declared_online(client):
    config, http = client
    r = api_login(http, "ent1").post("/api/v1/markings", json=DECLARED)
    assert r.status_code == 201, r.text

    found = service_findings(config)
    archived = load_messages([str(config.service.data_dir / "archive.sqlite3")], config)
    replayed = replay(config, archived, absence=False).findings

    r = api_login(http, "monitor").get(
        "/api/v1/enterprises/E1/outlets/DA001/series",
        params={
            "since": (H + timedelta(hours=8)).isoformat(),
            "until": (H + timedelta(hours=16)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    limit = doc["limits"][SO2]["hour_warning"]
    hours = {int(p["t"][11:13]): p for p in doc["hourly"][SO2]}
    over = {h for h, p in hours.items() if p["valid"] and p["converted"] > limit}

    assert exceeding(found) == {14}  # the service excused the marked hours
    assert over == exceeding(found), "the series draws other hours than the rules judged"
    assert exceeding(replayed) == exceeding(found), "replay judges otherwise than the service"
    for h in MARKED:
        point = hours[h]
        assert (point["marked"], point["valid"], point["n_marked"]) == (True, False, 6), h
        assert point["flag"] == "F", h  # inside a 停产 marking the data count as stopped
    assert hours[12]["flags"]["D"] == 4
    assert not any(hours[h]["marked"] for h in HOURS if h not in MARKED)
    assert [(m["type"], m["reason"]) for m in doc["marked"]] == [("stopped", "停产检修")]


def test_data_quality_leaves_out_the_hours_of_a_stopped_marking_declared_online(client):
    """The transmission figures count no hour due that lies wholly inside a 停产 marking, a
    declared one as a configured one; a book that had counted them counts again."""
    config, http = client
    book = QualityBook(config, config.service.archive_path)
    db = make_engine(config.database_url())
    lo, hi = int((H + timedelta(hours=8)).timestamp()), int((H + timedelta(hours=16)).timestamp())
    now = hi + 3 * 86400  # long settled: what the book caches stays cached

    def due_hours() -> int:
        hours = book.hours(lo, hi, now)
        return sum(hours[h][("E1", "DA001")].due_hours for h in range(lo, hi, 3600))

    try:
        book.quality(db, "24h", datetime.fromtimestamp(now, CHINA_TZ))  # takes up the markings
        factors = len(book.judged[("E1", "DA001")].factors)  # the preset's
        assert due_hours() == 8 * factors
        r = api_login(http, "ent1").post("/api/v1/markings", json=DECLARED)
        assert r.status_code == 201, r.text
        book.quality(db, "24h", datetime.fromtimestamp(now, CHINA_TZ))
        assert due_hours() == 5 * factors  # 10:00-13:00 are not due
    finally:
        db.dispose()
