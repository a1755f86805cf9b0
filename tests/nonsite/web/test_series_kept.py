"""Charts from the values the rules kept: the same answer as the explanation from raw frames,
ranges of a year, and hours still shown once the raw frames are gone.

The historical archive of ``test_series`` judged by the service's own pipeline and stages
(``nonsite.stages``) into a real database (SQLite and PostgreSQL), then read by a
``SeriesReader`` on that database and by one without it (which explains from raw frames).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomlkit
from prometheus_client import CollectorRegistry

from ingest.archive import RawArchive
from ingest.pipeline import IngestPipeline
from ingest.processor import MessageProcessor
from nonsite.auth import passwords
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.retention import prune_database
from nonsite.stages import StageMetrics, build_stages
from nonsite.web.quality import QualityBook
from nonsite.web.series import RangeError, SeriesReader
from nonsite.wiring import build_policy, build_registry, build_router
from rules.store import hour_values, minute_detail
from tests.nonsite.web.conftest import api_login, serving, web_context
from tests.nonsite.web.test_series import SO2, D, config_doc, historical_messages, recent_messages
from tests.service_process import run_nonsite


def judge_archive(config, archive_path: Path, db: sa.Engine) -> int:
    """The service's pipeline over the archive: the rules keep hour and day values."""
    stages = build_stages(config, db, StageMetrics(CollectorRegistry()), lambda: None)
    processor = MessageProcessor(build_registry(config), build_router(config), build_policy(config))
    archive = RawArchive(archive_path)
    try:
        return IngestPipeline(archive, db, processor, stages).drain()
    finally:
        archive.close()


@pytest.fixture
def judged(tmp_path, db_url):
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    now = datetime.now(UTC)
    messages = sorted(historical_messages() + recent_messages(now), key=lambda m: m.received_us)
    archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
    archive.append(messages)
    archive.close()
    config = parse_config(config_doc(data_dir), "test.toml", env={})
    db = make_engine(db_url)
    migrate(db)
    assert judge_archive(config, data_dir / "archive.sqlite3", db) == len(messages)
    yield config, data_dir, db
    db.dispose()


def without_times(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("latest",)}


def test_kept_hours_and_days_answer_as_the_raw_explanation(judged):
    config, data_dir, db = judged
    with db.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(hour_values)).scalar_one()
    assert kept > 2 * 24  # SO2 and O2 of the day, and more
    span = {"since": D, "until": D + timedelta(hours=30), "raw": False}
    from_raw = SeriesReader(config, data_dir / "archive.sqlite3").outlet_series(
        "E1", "DA001", **span
    )
    from_kept = SeriesReader(config, data_dir / "archive.sqlite3", db=db).outlet_series(
        "E1", "DA001", **span
    )
    assert from_kept.hourly == from_raw.hourly
    assert from_kept.daily == from_raw.daily
    # With the minute readings (read for the whole range anyway): each hour once, the same.
    with_raw = SeriesReader(config, data_dir / "archive.sqlite3", db=db).outlet_series(
        "E1", "DA001", **{**span, "raw": True}
    )
    assert with_raw.hourly == from_kept.hourly and with_raw.raw
    assert from_kept.hourly[SO2][7].valid is False  # 07:00: 40 valid minutes < 45


def test_a_year_of_kept_values_is_one_query_and_raw_ranges_stay_at_31_days(judged):
    config, data_dir, db = judged
    reader = SeriesReader(config, data_dir / "archive.sqlite3", db=db)
    year = reader.outlet_series(
        "E1", "DA001", D - timedelta(days=300), D + timedelta(days=60), raw=False
    )
    assert len(year.hourly[SO2]) >= 24
    [day] = [d for d in year.daily[SO2] if d.t == D]
    assert (day.valid_hours, day.required_hours) == (22, 20)  # 05:00 marked, 07:00 too few
    with pytest.raises(RangeError):
        reader.outlet_series("E1", "DA001", D - timedelta(days=300), D, raw=True)


def test_kept_values_are_shown_once_the_raw_frames_are_gone(judged):
    config, data_dir, db = judged
    span = {"since": D, "until": D + timedelta(hours=30), "raw": False}
    before = SeriesReader(config, data_dir / "archive.sqlite3", db=db).outlet_series(
        "E1", "DA001", **span
    )
    archive = RawArchive(data_dir / "archive.sqlite3")
    archive.prune(datetime.now(UTC) + timedelta(days=1))  # retention took every raw frame
    archive.close()
    after = SeriesReader(config, data_dir / "archive.sqlite3", db=db).outlet_series(
        "E1", "DA001", **span
    )
    assert after.hourly[SO2] == before.hourly[SO2]
    assert after.daily == before.daily
    gone = SeriesReader(config, data_dir / "archive.sqlite3").outlet_series("E1", "DA001", **span)
    assert gone.hourly == {}  # nothing left to explain: only the kept values remain


def test_data_quality_counts_the_kept_hours_as_it_counted_the_raw_ones(judged):
    config, data_dir, db = judged
    lo, hi = int(D.timestamp()), int((D + timedelta(hours=28)).timestamp())
    now = hi + 3 * 86400  # long settled

    def book() -> QualityBook:
        return QualityBook(config, data_dir / "archive.sqlite3")

    from_raw = book().hours(lo, hi, now)
    from_kept = book().hours(lo, hi, now, db)
    assert from_kept == from_raw
    e1 = [from_kept[h][("E1", "DA001")] for h in range(lo, hi, 3600)]
    assert sum(c.valid_hours for c in e1) > 20
    archive = RawArchive(data_dir / "archive.sqlite3")
    archive.prune(datetime.now(UTC) + timedelta(days=1))
    archive.close()
    assert book().hours(lo, hi, now, db) == from_raw  # the raw frames are gone


def test_a_web_node_shows_the_kept_minute_detail_once_the_raw_frames_are_gone(judged):
    """A cluster's web node reads the minute readings of kept hours from the kept detail (no
    scan of the stream): the records the rules took; not the late one, nor the real-time
    records of an outlet that sends minute data (the rules take its minute data)."""
    config, data_dir, db = judged
    span = {"since": D, "until": D + timedelta(hours=30), "raw": True}
    from_archive = SeriesReader(config, data_dir / "archive.sqlite3").outlet_series(
        "E1", "DA001", **span
    )
    archive = RawArchive(data_dir / "archive.sqlite3")
    archive.prune(datetime.now(UTC) + timedelta(days=1))
    archive.close()
    detail = SeriesReader(
        config, data_dir / "archive.sqlite3", db=db, raw_from_detail=True
    ).outlet_series("E1", "DA001", **span)
    late = D + timedelta(hours=11, minutes=50)  # test_series's record that came a day late
    expected = [p for p in from_archive.raw[SO2] if p.t != late and p.interval != "rtd"]
    assert [(p.t, p.interval, p.value) for p in detail.raw[SO2]] == [
        (p.t, p.interval, p.value) for p in expected
    ]
    assert detail.hourly == from_archive.hourly


def test_replay_from_the_store_finds_what_the_replay_of_the_archive_finds(judged, tmp_path):
    _config, data_dir, db = judged
    config_file = tmp_path / "replay.toml"
    doc = config_doc(data_dir)
    doc["database"] = {"url": db.url.render_as_string(hide_password=False)}
    config_file.write_text(tomlkit.dumps(doc))
    archived = run_nonsite(
        "replay", "--config", str(config_file), "--no-absence", str(data_dir / "archive.sqlite3")
    )
    stored = run_nonsite(
        "replay", "--config", str(config_file), "--from-store",
        (D - timedelta(days=1)).isoformat(), (D + timedelta(days=3)).isoformat(),
    )  # fmt: skip
    assert archived.returncode == 0 and stored.returncode == 0, stored.stderr
    assert b"readings/s" in stored.stderr

    def hour_and_day(out: bytes) -> set[tuple[str, str]]:
        found = [json.loads(line) for line in out.splitlines()]
        return {(f["id"], f["state"]) for f in found if f["rule"] in ("A3", "A4", "B9", "B2")}

    assert hour_and_day(stored.stdout) == hour_and_day(archived.stdout)


def test_retention_drops_the_minute_detail_with_the_raw_data_and_the_values_years_later(judged):
    config, _data_dir, db = judged

    def counts() -> tuple[int, int]:
        with db.connect() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (minute_detail, hour_values)
            )

    detail, values = counts()
    assert detail > 24 and values > 48
    later = D + timedelta(days=config.archive.retention_days + 2)
    prune_database(db, config, later)
    assert counts()[0] < detail  # D's detail is past the raw retention
    assert counts()[1] == values  # the values are kept for years
    much_later = D + timedelta(days=config.archive.values_retention_days + 40)
    prune_database(db, config, much_later)
    assert counts()[1] < values


def test_a_meters_kept_hours_come_with_its_samples(judged):
    # test_series's M1: 100 + k kW every 5 minutes from 08:00 (k = 0..24), rated 200 kW: on.
    config, data_dir, db = judged
    series = SeriesReader(config, data_dir / "archive.sqlite3", db=db).meter_series(
        "E1", "M1", D + timedelta(hours=8), D + timedelta(hours=10)
    )
    by_hour = {h.t: h for h in series.hourly}
    eight = by_hour[D + timedelta(hours=8)]
    assert (eight.samples, eight.on_minutes, eight.off_minutes) == (12, 60.0, 0.0)
    assert eight.energy_kwh == pytest.approx(sum(100.5 + k for k in range(12)) / 12)
    assert (eight.max_kw, eight.mean_kw) == (111.0, pytest.approx(105.5))
    assert D + timedelta(hours=9) in by_hour


@pytest.mark.parametrize("raw", [False, True])
def test_the_apis_fast_answer_is_the_validated_one(judged, raw):
    """The API writes the hour points from their columns with polars (a year is 43,800): the
    JSON validating them into models first gives, kept hours and explained ones alike, every
    value's text the same."""
    config, data_dir, db = judged
    for kwargs in (
        {"since": D, "until": D + timedelta(hours=30)},
        {"since": D + timedelta(hours=5, minutes=30), "until": D + timedelta(days=3)},
    ):
        reader = SeriesReader(config, data_dir / "archive.sqlite3", db=db)
        now = D + timedelta(days=4)
        fast = reader.outlet_series_json("E1", "DA001", raw=raw, now=now, **kwargs)
        slow = reader.outlet_series("E1", "DA001", raw=raw, now=now, **kwargs)
        model = slow.model_dump_json()
        assert json.loads(fast) == json.loads(model)
        assert fast.startswith(model.split(',"hourly":')[0].encode())  # the rest: the model's
        # every value's text as the model writes it (floats, times, nulls): "hourly" moved last
        assert slow.hourly
        assert _texts(fast) == _texts(model.encode())


def _texts(body: bytes) -> list[str]:
    """Every scalar of the answer as written (numbers and times as text), sorted."""
    return sorted(re.findall(rb'"[a-z_A-Z]+":("[^"]*"|[-0-9.eE+]+|null|true|false)', body))


def test_an_outlets_hours_export_as_csv_for_a_spreadsheet(judged, monkeypatch):
    config, _data_dir, db = judged
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    ctx = web_context(config, db.url.render_as_string(hide_password=False))
    with serving(ctx) as (_server, client):
        api_login(client, "monitor")
        r = client.get(
            "/api/v1/enterprises/E1/outlets/DA001/hours.csv",
            params={"since": (D - timedelta(days=200)).isoformat(), "until": D.isoformat()},
        )
        assert r.status_code == 200  # a range of 200 days: the kept values
        r = client.get(
            "/api/v1/enterprises/E1/outlets/DA001/hours.csv",
            params={"since": D.isoformat(), "until": (D + timedelta(days=1)).isoformat()},
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        text = r.content.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:3] == ["时间（北京时间）", "因子", "小时均值"]
        seven = [
            row for row in rows if row[0] == "2026-03-02 07:00" and row[1].endswith("(a21026)")
        ]
        assert seven and seven[0][5] == "无效" and seven[0][6] == "维护"  # 40 valid minutes, M
        five = [row for row in rows if row[0] == "2026-03-02 05:00" and "a21026" in row[1]]
        assert five[0][9] == "是"  # the declared maintenance marking
        assert all(len(row) == 10 for row in rows)
