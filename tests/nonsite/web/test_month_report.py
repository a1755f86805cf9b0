"""The fleet's month report from what the rules kept: exceedance hours and days as the rules
fired them, transmission figures by B10's count, silent days due in full (SQLite and
PostgreSQL; the archive judged by the service's own pipeline)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx
import pytest

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.rule_wiring import rule_setup
from nonsite.web.month_report import month_bounds, month_report
from nonsite.web.quality import QualityBook
from tests.nonsite.web.conftest import PASSWORD, serving, web_context
from tests.nonsite.web.test_series_kept import judge_archive
from tests.service_process import gas_packet

MONTH = date(2026, 3, 1)
DAY1 = datetime(2026, 3, 10, tzinfo=CHINA_TZ)
OVER_HOURS = (3, 4, 5)  # E1's SO2 over the hourly limit on day 1; all of day 2 over


def so2(enterprise: int, day: int, hour: int) -> float:
    if enterprise == 1 and (day == 1 or (day == 0 and hour in OVER_HOURS)):
        return 150.0
    return 40.0


def messages() -> list[IncomingMessage]:
    out = []
    for day in range(3):
        for hour in range(24):
            for k in range(6):
                t = DAY1 + timedelta(days=day, hours=hour, minutes=10 * k)
                for e in (1, 2):
                    if e == 2 and day == 2:
                        continue  # E2 silent on day 3: due in full
                    mn = f"MN{e}"
                    packet = gas_packet(mn, "123456", t, so2(e, day, hour))
                    out.append(
                        IncomingMessage(to_us(t + timedelta(minutes=1)), f"hj212/{mn}", packet)
                    )
    # The next morning closes day 3 (E1; E2 follows: a message of its own)
    t = DAY1 + timedelta(days=3, hours=2)
    for e in (1, 2):
        packet = gas_packet(f"MN{e}", "123456", t, 40.0)
        out.append(IncomingMessage(to_us(t + timedelta(minutes=1)), f"hj212/MN{e}", packet))
    return sorted(out, key=lambda m: m.received_us)


def config_doc(data_dir) -> dict:
    return {
        "service": {"data_dir": str(data_dir)},
        "enterprises": [
            {
                "id": f"E{e}",
                "name": name,
                "outlets": [
                    {
                        "id": "DA001",
                        "kind": "gas",
                        "mn": f"MN{e}",
                        "pw": "123456",
                        "preset": "thermal_power_coal_boiler",
                        "limits": {"a21026": {"day_alarm": 90}},
                    }
                ],
            }
            for e, name in ((1, "华能示范电厂"), (2, "城东热电"))
        ],
    }


@pytest.fixture
def reported(tmp_path, db_url):
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
    sent = messages()
    archive.append(sent)
    archive.close()
    config = parse_config(config_doc(data_dir), "test.toml", env={})
    db = make_engine(db_url)
    migrate(db)
    assert judge_archive(config, data_dir / "archive.sqlite3", db) == len(sent)
    yield config, data_dir, db
    db.dispose()


def test_the_month_counts_exceedances_as_fired_and_silent_days_as_due(reported):
    config, _data_dir, db = reported
    rules = rule_setup(config)
    report = month_report(db, config, rules, MONTH)
    by_id = {m.figures.enterprise_id: m for m in report.enterprises}
    e1, e2 = by_id["E1"], by_id["E2"]
    assert (e1.alarm_hours, e1.exceeded_days) == (len(OVER_HOURS) + 24, 1)
    assert (e2.alarm_hours, e2.warning_hours, e2.exceeded_days) == (0, 0, 0)
    assert report.enterprises[0] is e1  # the most exceedance hours first
    configured = rules.params[("E1", "DA001")].factors
    factors = len(configured)
    reported_factors = len({"a21026", "a19001"} & set(configured))  # the others silent
    assert reported_factors >= 1
    days = 31
    for m, sending_days in ((e1, 3), (e2, 2)):
        c = m.figures.counts
        assert c.expected == days * 24 * 6 * factors, m
        assert c.received == c.valid == sending_days * 24 * 6 * reported_factors, m
        assert c.due_hours == days * 24 * factors
    rate = 2 * reported_factors / (31 * factors)
    assert e2.figures.transmission_rate == pytest.approx(rate, abs=1e-6)


def test_the_month_agrees_with_the_data_quality_count_of_its_hours(reported):
    config, data_dir, db = reported
    rules = rule_setup(config)
    report = month_report(db, config, rules, MONTH)
    lo, hi = month_bounds(MONTH)
    book = QualityBook(config, data_dir / "archive.sqlite3")
    hours = {}
    week = 7 * 86400  # the book keeps a week and a day of hours
    for start in range(lo, hi, week):
        end = min(start + week, hi)
        hours.update(book.hours(start, end, end + 86400, db))
    for m in report.enterprises:
        key = (m.figures.enterprise_id, "DA001")
        hourly = [hours[h][key] for h in range(lo, hi, 3600)]
        assert m.figures.counts.expected == sum(c.expected for c in hourly)
        assert m.figures.counts.received == sum(c.received for c in hourly)
        assert m.figures.counts.valid == sum(c.valid for c in hourly)
        assert m.figures.counts.valid_hours == sum(c.valid_hours for c in hourly)


def test_the_month_report_api_and_its_csv(reported, monkeypatch):
    config, _data_dir, db = reported
    from nonsite.auth import passwords

    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    ctx = web_context(config, str(db.url.render_as_string(hide_password=False)))
    with serving(ctx) as (_server, client):
        assert isinstance(client, httpx.Client)
        r = client.post("/api/v1/session", json={"username": "monitor", "password": PASSWORD})
        assert r.status_code == 200
        r = client.get("/api/v1/reports/month", params={"month": "2026-03"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["month"] == "2026-03"
        first = body["enterprises"][0]
        assert (first["enterprise_id"], first["alarm_hours"], first["exceeded_days"]) == (
            "E1",
            27,
            1,
        )
        csv = client.get("/api/v1/reports/month", params={"month": "2026-03", "format": "csv"})
        assert csv.status_code == 200
        text = csv.content.decode("utf-8-sig")
        assert text.splitlines()[0].startswith("企业编号,企业名称,")
        assert "华能示范电厂" in text
        r = client.get("/api/v1/reports/month", params={"month": "2026-13"})
        assert r.status_code == 422
        client.cookies.clear()
        r = client.post("/api/v1/session", json={"username": "ent1", "password": PASSWORD})
        assert client.get("/api/v1/reports/month", params={"month": "2026-03"}).status_code == 403
