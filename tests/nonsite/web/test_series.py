"""The data-series API over a real raw archive: HJ 212 minute, hour and real-time frames and
power JSON written with ``RawArchive``, served by the live API.

One historical natural day (2026-03-02, China time) of one flue-gas outlet, built so that each
hour tests one thing (see ``so2``), the first hours of the next day, a meter's samples, and a
little recent traffic for the latest values and the default range."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.archive_topics import TOPIC_INDEX
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from nonsite.config.load import parse_config
from nonsite.web.context import WebContext
from nonsite.web.series import RangeError, SeriesReader, resolve_range
from tests.nonsite.web.conftest import BOILER, api_login, serving, web_context

D = datetime(2026, 3, 2, tzinfo=CHINA_TZ)  # the historical day
SO2, O2 = "a21026", "a19001"
PERF_OUTLETS = 10
PERF_START = D - timedelta(days=3)


def config_doc(data_dir: Path) -> dict:
    return {
        "service": {"data_dir": str(data_dir)},
        "brigades": [{"id": "B1", "name": "滨江执法大队"}],
        "gateways": [  # a park gateway for MN1, a power gateway for M1 and M2
            {"id": "GW1", "mns": ["MN1"]},
            {"id": "GW01", "meters": ["M1", "M2"]},
        ],
        "enterprises": [
            {
                "id": "E1",
                "name": "华能示范电厂",
                "brigade": "B1",
                # the preset: SO2 hour 100 mg/m3 @ 6 % O2
                "outlets": [{**BOILER, "limits": {SO2: {"day_alarm": 90}}}],
                "meters": [
                    {"id": "M1", "name": "1号磨煤机", "role": "production", "rated_kw": 200},
                    {"id": "M2", "role": "control", "rated_kw": 50, "serves": ["M1"]},
                ],
                "markings": [
                    {
                        "outlet": "DA001",
                        "type": "maintenance",
                        "start": "2026-03-02T05:00:00+08:00",
                        "end": "2026-03-02T06:00:00+08:00",
                        "reason": "脱硫检修",
                    }
                ],
            },
            {
                "id": "E2",
                "name": "城东化工",
                "outlets": [{"id": "DA001", "kind": "gas", "mn": "MN2", "pw": "123456"}],
            },
            {
                "id": "E3",
                "name": "压测企业",
                "outlets": [
                    {
                        "id": f"P{k}",
                        "kind": "gas",
                        "mn": f"MNP{k}",
                        "pw": "123456",
                        "preset": "thermal_power_coal_boiler",
                        "minute_interval_min": 1,
                    }
                    for k in range(PERF_OUTLETS)
                ],
            },
        ],
    }


# -- the historical day, hour by hour ----------------------------------------------------
# Every hour of D has six 10-minute records: SO2 = 40 + h + 0.1 i, O2 = 9 %, flag N, except
#   02:00  record 3 is flagged D (999): 5 valid records = 50 minutes, still a valid hour
#   05:00  inside the declared maintenance marking: nothing valid, marked
#   07:00  records 4 and 5 are flagged M: 40 valid minutes < 45, no hourly value
#   09:00  also real-time frames (CN 2011)
#   11:00  record 5 arrives a day late: raw shows it, the hour (as the rules saw it) has 5
# Next day: 00:00-04:00 the same way (04:00 through a gateway topic), 05:00 only the device's
# own hour value (CN 2061). 00:00 of D also has a CN 2061 hour value.
FLAG_D = (2, 3)
FLAGS_M = {(7, 4), (7, 5)}
LATE = (11, 5)
RTD_TIMES = [D + timedelta(hours=9, seconds=30), D + timedelta(hours=9, minutes=5)]


def so2(h: int, i: int) -> float:
    return round(40 + h + 0.1 * i, 6)


def frame(
    mn: str, cn: str, t: datetime, pollutants: dict, *, key: str = "Avg", flag: str = "N"
) -> bytes:
    pol = {code: {key: value, "Flag": flag} for code, value in pollutants.items()}
    [packet] = data_packets(
        st="31", cn=cn, pw="123456", mn=mn, data_time=t, pollutants=pol, ack=False
    )
    return packet


def minute_frame(mn: str, t: datetime, so2_value: float, flag: str = "N", o2: float = 9.0) -> bytes:
    pol = {SO2: {"Avg": so2_value, "Flag": flag}, O2: {"Avg": o2, "Flag": "N"}}
    [packet] = data_packets(
        st="31", cn="2051", pw="123456", mn=mn, data_time=t, pollutants=pol, ack=False
    )
    return packet


def historical_messages() -> list[IncomingMessage]:
    out: list[IncomingMessage] = []

    def add(received: datetime, topic: str, payload: bytes) -> None:
        out.append(IncomingMessage(to_us(received), topic, payload))

    for day, hours in ((D, range(24)), (D + timedelta(days=1), range(4))):
        for h in hours:
            for i in range(6):
                t = day + timedelta(hours=h, minutes=10 * i)
                hh = h if day == D else 24 + h
                flag = "N"
                value = so2(hh, i)
                if day == D and (h, i) == FLAG_D:
                    flag, value = "D", 999.0
                if day == D and (h, i) in FLAGS_M:
                    flag = "M"
                received = t + timedelta(minutes=10)
                if day == D and (h, i) == LATE:
                    received = D + timedelta(days=1, hours=8)
                add(received, "hj212/MN1", minute_frame("MN1", t, value, flag))
    # 04:00 of the next day through a gateway topic, in one message with another outlet's frame
    d1 = D + timedelta(days=1)
    gateway = b"".join(
        minute_frame("MN1", d1 + timedelta(hours=4, minutes=10 * i), so2(28, i)) for i in range(6)
    )
    gateway += minute_frame("MN2", d1 + timedelta(hours=4), 7.0)
    add(d1 + timedelta(hours=5), "hj212/GW1", gateway)
    # a topic no subscription routes: the pipeline never decodes it, neither does the reader
    add(d1 + timedelta(hours=5), "junk/MN1", minute_frame("MN1", d1 + timedelta(hours=4), 999.0))
    # device hour values
    add(D + timedelta(hours=1, minutes=1), "hj212/MN1", frame("MN1", "2061", D, {SO2: 40.3}))
    add(
        d1 + timedelta(hours=6, minutes=1),
        "hj212/MN1",
        frame("MN1", "2061", d1 + timedelta(hours=5), {SO2: 55.0, O2: 9.0}),
    )
    for k, t in enumerate(RTD_TIMES):
        add(
            t + timedelta(seconds=5),
            "hj212/MN1",
            frame("MN1", "2011", t, {SO2: 70.0 + k}, key="Rtd"),
        )
    # meter M1 every 5 minutes 08:00-10:00 on its own topic; M2 (and one M1 sample) via a gateway
    for k in range(25):
        t = D + timedelta(hours=8, minutes=5 * k)
        doc = {"ts": t.isoformat(), "p_kw": 100.0 + k, "switch": "on"}
        add(t + timedelta(seconds=3), "power/M1", json.dumps(doc).encode())
    batch = [
        {"meter": "M2", "ts": (D + timedelta(hours=8)).isoformat(), "p_kw": 30.0},
        {"meter": "M1", "ts": (D + timedelta(hours=10, minutes=2)).isoformat(), "p_kw": 7.5},
    ]
    add(D + timedelta(hours=10, minutes=3), "power/GW01", json.dumps(batch).encode())
    return out


def recent_messages(now: datetime) -> list[IncomingMessage]:
    now = now.replace(microsecond=0)
    out = []
    for minutes, value in ((30, 61.0), (20, 62.0)):
        t = now - timedelta(minutes=minutes)
        out.append(
            IncomingMessage(
                to_us(t + timedelta(seconds=5)), "hj212/MN1", minute_frame("MN1", t, value, o2=9.1)
            )
        )
    t = now - timedelta(minutes=2)
    out.append(
        IncomingMessage(
            to_us(t + timedelta(seconds=1)),
            "hj212/MN1",
            frame("MN1", "2011", t, {SO2: 63.5}, key="Rtd"),
        )
    )
    t = now - timedelta(minutes=15)
    out.append(IncomingMessage(to_us(t), "hj212/MN2", minute_frame("MN2", t, 8.0)))
    t = now - timedelta(minutes=1)
    doc = {"ts": t.isoformat(), "p_kw": 123.4, "e_kwh": 5000.5}
    out.append(
        IncomingMessage(to_us(t + timedelta(seconds=2)), "power/M1", json.dumps(doc).encode())
    )
    return out


def perf_messages() -> list[IncomingMessage]:
    """48 h of 1-minute records of 3 factors for each of the E3 outlets."""
    out = []
    for minute in range(48 * 60):
        t = PERF_START + timedelta(minutes=minute)
        for k in range(PERF_OUTLETS):
            pol = {
                SO2: {"Avg": 30.0 + minute % 7, "Flag": "N"},
                O2: {"Avg": 8.0, "Flag": "N"},
                "a34013": {"Avg": 3.5, "Flag": "N"},
            }
            [p] = data_packets(
                st="31",
                cn="2051",
                pw="123456",
                mn=f"MNP{k}",
                data_time=t,
                pollutants=pol,
                ack=False,
            )
            out.append(IncomingMessage(to_us(t + timedelta(minutes=1)), f"hj212/MNP{k}", p))
    return out


@dataclass
class SeriesSite:
    app: FastAPI
    ctx: WebContext
    client: httpx.Client
    archive: Path
    now: datetime

    def login(self, username: str) -> httpx.Client:
        return api_login(self.client, username)


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory) -> tuple[Path, datetime]:
    data_dir = tmp_path_factory.mktemp("series")
    now = datetime.now(UTC)
    messages = historical_messages() + recent_messages(now) + perf_messages()
    messages.sort(key=lambda m: m.received_us)  # archive order is arrival order
    archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
    archive.append(messages)
    archive.close()
    return data_dir, now


@pytest.fixture(scope="module")
def series_site(archive_dir, fast_hashes) -> Iterator[SeriesSite]:
    data_dir, now = archive_dir
    config = parse_config(config_doc(data_dir), "test.toml", env={})
    ctx = web_context(config, f"sqlite:///{data_dir / 'nonsite.db'}", display_name=str)
    with serving(ctx) as (server, client):
        yield SeriesSite(server.app, ctx, client, data_dir / "archive.sqlite3", now)


@pytest.fixture(scope="module")
def day_series(series_site) -> dict:
    """The outlet's series over the historical day and the next morning, as a monitor."""
    client = series_site.login("monitor")
    r = client.get(
        "/api/v1/enterprises/E1/outlets/DA001/series",
        params={"since": D.isoformat(), "until": (D + timedelta(hours=30)).isoformat()},
    )
    assert r.status_code == 200, r.text
    return r.json()


def hour(doc: dict, code: str, at: datetime) -> dict:
    [point] = [p for p in doc["hourly"][code] if p["t"] == at.isoformat()]
    return point


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


# -- hourly values ------------------------------------------------------------------------


def test_valid_hourly_means_are_the_means_of_the_valid_minutes(day_series):
    for h in (0, 1, 3, 23):
        point = hour(day_series, SO2, D + timedelta(hours=h))
        expected = mean([so2(h, i) for i in range(6)])
        assert point["value"] == pytest.approx(expected, abs=1e-6)
        assert point["valid"] is True
        assert point["n"] == point["n_valid"] == 6
        assert point["valid_minutes"] == 60
        assert point["source"] == "minutes"
        # limits apply to values converted to 6 % O2: value × (21 − 6) / (21 − 9)
        assert point["converted"] == pytest.approx(expected * 15 / 12, abs=1e-6)
    o2 = hour(day_series, O2, D)
    assert o2["value"] == 9.0
    assert o2["converted"] is None  # O2 itself is not converted


def test_an_invalid_flag_is_left_out_and_counted(day_series):
    point = hour(day_series, SO2, D + timedelta(hours=2))
    assert point["value"] == pytest.approx(mean([so2(2, i) for i in (0, 1, 2, 4, 5)]), abs=1e-6)
    assert point["valid"] is True  # 5 × 10 min = 50 ≥ 45
    assert (point["n"], point["n_valid"], point["valid_minutes"]) == (6, 5, 50)
    assert point["flags"] == {"D": 1, "M": 0, "C": 0, "B": 0, "T": 0, "F": 0}


def test_an_hour_with_too_few_valid_minutes_has_no_value(day_series):
    point = hour(day_series, SO2, D + timedelta(hours=7))
    assert point["value"] is None
    assert point["converted"] is None
    assert point["valid"] is False
    assert (point["n"], point["n_valid"], point["valid_minutes"]) == (6, 4, 40)
    assert point["flags"]["M"] == 2
    assert point["flag"] == "M"


def test_a_marked_hour_is_excluded_and_flagged(day_series):
    point = hour(day_series, SO2, D + timedelta(hours=5))
    assert point["value"] is None
    assert point["marked"] is True
    assert (point["n_marked"], point["n_valid"]) == (6, 0)
    assert hour(day_series, SO2, D + timedelta(hours=4))["marked"] is False
    assert day_series["marked"] == [
        {
            "start": "2026-03-02T05:00:00+08:00",
            "end": "2026-03-02T06:00:00+08:00",
            "type": "maintenance",
            "factor": None,
            "reason": "脱硫检修",
            "over_cap_from": None,
        }
    ]


def test_late_data_is_raw_but_not_in_the_hour_the_rules_judged(day_series):
    point = hour(day_series, SO2, D + timedelta(hours=11))
    assert point["n"] == 5  # the sixth record arrived a day after the hour closed
    assert point["value"] == pytest.approx(mean([so2(11, i) for i in range(5)]), abs=1e-6)
    late_t = (D + timedelta(hours=11, minutes=50)).isoformat()
    assert [p["value"] for p in day_series["raw"][SO2] if p["t"] == late_t] == [so2(11, 5)]


def test_device_hour_values(day_series):
    first = hour(day_series, SO2, D)
    assert (first["device_value"], first["device_flag"]) == (40.3, "N")
    assert first["source"] == "minutes"  # minute data wins over the device's own value
    device_only = hour(day_series, SO2, D + timedelta(days=1, hours=5))
    assert device_only["source"] == "device"
    assert device_only["value"] == 55.0
    assert device_only["converted"] == pytest.approx(55.0 * 15 / 12)
    assert device_only["n"] == 0


def test_hours_outside_the_range_are_left_out(day_series):
    times = [p["t"] for p in day_series["hourly"][SO2]]
    assert times[0] == D.isoformat()
    assert times[-1] == (D + timedelta(days=1, hours=5)).isoformat()
    assert times == sorted(times)


# -- daily values, limits, raw points ---------------------------------------------------


def test_daily_value_is_the_mean_of_the_valid_hours(day_series):
    first, second = day_series["daily"][SO2]
    valid = [
        mean([so2(2, i) for i in (0, 1, 2, 4, 5)])
        if h == 2
        else mean([so2(11, i) for i in range(5)])
        if h == 11
        else mean([so2(h, i) for i in range(6)])
        for h in range(24)
        if h not in (5, 7)
    ]
    assert first["t"] == D.isoformat()
    assert first["valid_hours"] == 22
    assert first["required_hours"] == 20
    assert first["value"] == pytest.approx(mean(valid), abs=1e-6)
    assert first["converted"] == pytest.approx(mean(valid) * 15 / 12, abs=1e-6)
    assert first["complete"] is True
    assert second["t"] == (D + timedelta(days=1)).isoformat()
    assert second["valid_hours"] == 6  # 00:00-04:00 and the device's 05:00
    assert second["value"] is None  # fewer than 20 valid hours


def test_limits_come_with_units_and_the_reference_o2(day_series):
    limits = day_series["limits"][SO2]
    assert limits["unit"] == "mg/m3"
    assert (limits["hour_alarm"], limits["hour_warning"]) == (100.0, 80.0)
    assert (limits["day_alarm"], limits["day_warning"]) == (90.0, 72.0)  # warning derived
    assert limits["reference_o2"] == 6.0
    assert "GB 13223" in limits["source"]
    factors = {f["code"]: f for f in day_series["factors"]}
    assert factors[SO2]["configured"] is True
    assert factors[O2]["configured"] is False  # reported, not judged
    assert factors[O2]["unit"]


def test_raw_points_are_in_time_order_with_intervals_and_flags(day_series):
    raw = day_series["raw"][SO2]
    times = [datetime.fromisoformat(p["t"]) for p in raw]
    assert times == sorted(times)
    assert {p["interval"] for p in raw} == {"minute", "hour", "rtd"}
    rtd = [p for p in raw if p["interval"] == "rtd"]
    assert [(p["t"], p["value"]) for p in rtd] == [
        (RTD_TIMES[0].isoformat(), 70.0),
        (RTD_TIMES[1].isoformat(), 71.0),
    ]
    flagged = [p for p in raw if p["flag"] == "D"]
    assert [(p["t"], p["value"]) for p in flagged] == [
        ((D + timedelta(hours=2, minutes=30)).isoformat(), 999.0)
    ]
    # 24 h × 6 + 5 h × 6 minute records (04:00 via the gateway), 2 device hours, 2 real-time
    assert len(raw) == 24 * 6 + 5 * 6 + 2 + 2


def test_gateway_topics_are_read_and_unrouted_topics_are_not(day_series):
    at_four = D + timedelta(days=1, hours=4)
    point = hour(day_series, SO2, at_four)
    assert point["n"] == 6  # all six records came through hj212/GW1
    assert point["value"] == pytest.approx(mean([so2(28, i) for i in range(6)]), abs=1e-6)
    assert 999.0 not in {
        p["value"] for p in day_series["raw"][SO2] if p["t"] >= at_four.isoformat()
    }


def test_latest_of_a_series_is_its_newest_reading(day_series):
    latest = day_series["latest"]
    assert latest[SO2]["t"] == (D + timedelta(days=1, hours=5)).isoformat()
    assert (latest[SO2]["interval"], latest[SO2]["value"]) == ("hour", 55.0)
    assert latest[O2]["value"] == 9.0


def test_raw_can_be_left_out(series_site):
    client = series_site.login("monitor")
    r = client.get(
        "/api/v1/enterprises/E1/outlets/DA001/series",
        params={
            "since": D.isoformat(),
            "until": (D + timedelta(days=1)).isoformat(),
            "raw": "false",
        },
    )
    assert r.status_code == 200
    doc = r.json()
    assert doc["raw"] == {}
    assert len(doc["hourly"][SO2]) == 24


def test_the_default_range_is_the_last_48_hours(series_site):
    client = series_site.login("monitor")
    doc = client.get("/api/v1/enterprises/E1/outlets/DA001/series").json()
    until = datetime.fromisoformat(doc["until"])
    assert until - datetime.fromisoformat(doc["since"]) == timedelta(hours=48)
    assert abs((until - datetime.now(UTC)).total_seconds()) < 60
    assert [p["value"] for p in doc["raw"][SO2]] == [61.0, 62.0, 63.5]
    assert doc["latest"][SO2]["value"] == 63.5
    assert doc["marked"] == []


# -- meters and the latest values -------------------------------------------------------


def test_meter_series_has_samples_and_thresholds(series_site):
    client = series_site.login("supervisor")
    r = client.get(
        "/api/v1/enterprises/E1/meters/M1/series",
        params={"since": D.isoformat(), "until": (D + timedelta(days=1)).isoformat()},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["rated_kw"], doc["on_kw"], doc["off_kw"]) == (200.0, 20.0, 10.0)
    samples = doc["samples"]
    assert len(samples) == 26  # 25 on its own topic, one through the gateway
    assert [s["p_kw"] for s in samples[:3]] == [100.0, 101.0, 102.0]
    assert samples[0]["t"] == (D + timedelta(hours=8)).isoformat()
    assert samples[0]["switch_on"] is True
    assert (samples[-1]["t"], samples[-1]["p_kw"]) == (
        (D + timedelta(hours=10, minutes=2)).isoformat(),
        7.5,
    )
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)
    assert doc["latest"]["p_kw"] == 7.5
    m2 = client.get(
        "/api/v1/enterprises/E1/meters/M2/series",
        params={"since": D.isoformat(), "until": (D + timedelta(days=1)).isoformat()},
    ).json()
    assert [s["p_kw"] for s in m2["samples"]] == [30.0]
    assert m2["role"] == "control"


def test_latest_values_of_an_enterprise(series_site):
    client = series_site.login("ent1")
    r = client.get("/api/v1/enterprises/E1/latest")
    assert r.status_code == 200, r.text
    doc = r.json()
    [outlet] = doc["outlets"]
    assert outlet["outlet_id"] == "DA001"
    assert outlet["mn"] == "MN1"
    so2_latest = outlet["factors"][SO2]
    assert (so2_latest["interval"], so2_latest["value"]) == ("rtd", 63.5)
    assert outlet["factors"][O2]["value"] == 9.1
    meters = {m["meter_id"]: m for m in doc["meters"]}
    assert meters["M1"]["sample"]["p_kw"] == 123.4
    assert meters["M1"]["sample"]["energy_kwh"] == 5000.5
    assert meters["M2"]["sample"] is None  # nothing in the last hours
    e2 = series_site.login("ent2").get("/api/v1/enterprises/E2/latest").json()
    assert e2["outlets"][0]["factors"][SO2]["value"] == 8.0


# -- access and validation ----------------------------------------------------------------

SERIES_PATHS = [
    "/api/v1/enterprises/{e}/outlets/DA001/series",
    "/api/v1/enterprises/{e}/meters/M1/series",
    "/api/v1/enterprises/{e}/latest",
]


@pytest.mark.parametrize("path", SERIES_PATHS)
def test_an_enterprise_user_never_sees_another_enterprise(series_site, path):
    client = series_site.login("ent2")
    r = client.get(path.format(e="E1"))
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    client = series_site.login("ent1")
    assert client.get(path.format(e="E1")).status_code == 200


@pytest.mark.parametrize("user", ["monitor", "supervisor", "enforcer1", "enforcer2", "admin"])
def test_every_other_role_may_read(series_site, user):
    client = series_site.login(user)
    for path in SERIES_PATHS:
        assert client.get(path.format(e="E1")).status_code == 200, (user, path)


def test_unknown_sources_and_anonymous_callers(series_site):
    client = series_site.login("monitor")
    assert client.get("/api/v1/enterprises/E9/latest").status_code == 404
    assert client.get("/api/v1/enterprises/E1/outlets/DA009/series").status_code == 404
    assert client.get("/api/v1/enterprises/E1/meters/M9/series").status_code == 404
    assert client.get("/api/v1/enterprises/E2/meters/M1/series").status_code == 404
    client.cookies.clear()
    r = client.get("/api/v1/enterprises/E1/latest")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"since": "2026-03-02T00:00:00+08:00", "until": "2026-03-01T00:00:00+08:00"}, "bad_range"),
        ({"since": "2026-03-02T00:00:00+08:00", "until": "2026-03-02T00:00:00+08:00"}, "bad_range"),
        (
            {"since": "2026-01-01T00:00:00+08:00", "until": "2026-02-02T00:00:01+08:00"},
            "range_too_long",
        ),
        ({"since": "1990-01-01T00:00:00Z", "until": "1990-01-02T00:00:00Z"}, "bad_range"),
        ({"until": "0001-01-01T00:00:00"}, "bad_range"),
    ],
)
@pytest.mark.parametrize("path", SERIES_PATHS[:2])
def test_bad_ranges_are_refused(series_site, params, code, path):
    client = series_site.login("monitor")
    r = client.get(path.format(e="E1"), params=params)
    assert r.status_code == 422, r.text
    assert r.json() == {"code": code, "message": r.json()["message"]}


def test_unreadable_times_and_hours_are_refused(series_site):
    client = series_site.login("monitor")
    r = client.get("/api/v1/enterprises/E1/outlets/DA001/series", params={"since": "yesterday"})
    assert r.status_code == 422
    assert client.get("/api/v1/enterprises/E1/latest", params={"hours": 0}).status_code == 422
    assert client.get("/api/v1/enterprises/E1/latest", params={"hours": 49}).status_code == 422


def test_a_31_day_range_is_allowed_and_naive_times_are_china_time(series_site):
    client = series_site.login("monitor")
    r = client.get(
        "/api/v1/enterprises/E1/outlets/DA001/series",
        params={"since": "2026-02-01T00:00:00", "until": "2026-03-04T00:00:00", "raw": "false"},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["since"] == "2026-02-01T00:00:00+08:00"
    assert len(doc["daily"][SO2]) == 31


def test_the_openapi_document_describes_the_series(series_site):
    r = series_site.client.get("/api/openapi.json")
    assert r.status_code == 200, r.text[:2000]
    spec = r.json()
    paths = spec["paths"]
    for path in (
        "/api/v1/enterprises/{enterprise_id}/outlets/{outlet_id}/series",
        "/api/v1/enterprises/{enterprise_id}/meters/{meter_id}/series",
        "/api/v1/enterprises/{enterprise_id}/latest",
    ):
        get = paths[path]["get"]
        assert "series" in get["tags"]
        assert "$ref" in get["responses"]["200"]["content"]["application/json"]["schema"]
        assert "404" in get["responses"]
    schemas = spec["components"]["schemas"]
    for name in ("OutletSeriesOut", "HourPoint", "DayPoint", "LimitsOut", "MeterSeriesOut"):
        assert name in schemas


# -- the reader itself --------------------------------------------------------------------


def test_resolve_range():
    now = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    span = resolve_range(None, None, now)
    assert span.until == now and span.until - span.since == timedelta(hours=48)
    naive = resolve_range(datetime(2026, 3, 1), datetime(2026, 3, 2), now)
    assert naive.since == datetime(2026, 3, 1, tzinfo=CHINA_TZ)
    assert naive.lo == int(datetime(2026, 3, 1, tzinfo=CHINA_TZ).timestamp())
    with pytest.raises(RangeError) as info:
        resolve_range(now, now - timedelta(seconds=1))
    assert info.value.code == "bad_range"
    assert (
        resolve_range(now - timedelta(days=31), now).hi
        - resolve_range(now - timedelta(days=31), now).lo
        == 31 * 86400
    )


def test_the_topic_index_is_added_and_the_answers_do_not_depend_on_it(series_site, tmp_path):
    copy = tmp_path / "archive.sqlite3"
    with sqlite3.connect(series_site.archive) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {TOPIC_INDEX}")
    config = series_site.ctx.config
    plain = SeriesReader(config, copy, build_index=False)
    assert plain.ensure_topic_index() is False
    span = {"since": D, "until": D + timedelta(hours=30)}
    without = plain.outlet_series("E1", "DA001", **span).model_dump()
    indexed = SeriesReader(config, copy)
    assert indexed.ensure_topic_index(wait=True) is True
    with sqlite3.connect(copy) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {TOPIC_INDEX, "messages_received"} <= names
    assert indexed.outlet_series("E1", "DA001", **span).model_dump() == without
    meter = {"since": D, "until": D + timedelta(days=1)}
    assert (
        indexed.meter_series("E1", "M1", **meter).model_dump()
        == plain.meter_series("E1", "M1", **meter).model_dump()
    )


def test_a_missing_archive_gives_empty_series(series_site, tmp_path):
    reader = SeriesReader(series_site.ctx.config, tmp_path / "none.sqlite3")
    doc = reader.outlet_series("E1", "DA001", D, D + timedelta(days=1))
    assert doc.raw == {} and doc.hourly == {} and doc.latest == {}
    assert doc.limits[SO2].hour_alarm == 100.0
    assert reader.latest("E1").outlets[0].factors == {}


def test_answer_time_for_48_hours_of_minute_data(series_site):
    """Timing is printed, not asserted (the machines are shared): see bench/series_latency.py."""
    client = series_site.login("monitor")
    params = {
        "since": PERF_START.isoformat(),
        "until": (PERF_START + timedelta(hours=48)).isoformat(),
    }
    client.get("/api/v1/enterprises/E3/outlets/P0/series", params=params)  # builds the index
    assert series_site.app.state.series_reader.ensure_topic_index(wait=True)
    timings = []
    for k in range(PERF_OUTLETS):
        started = time.perf_counter()
        r = client.get(f"/api/v1/enterprises/E3/outlets/P{k}/series", params=params)
        timings.append(time.perf_counter() - started)
        assert r.status_code == 200
        doc = r.json()
        assert len(doc["raw"][SO2]) == 48 * 60
        assert len(doc["hourly"][SO2]) == 48
        assert all(p["valid"] for p in doc["hourly"][SO2])
    timings.sort()
    print(
        f"\n48 h of 1-minute data (2,880 frames × 3 factors), 10 outlets: median "
        f"{timings[len(timings) // 2] * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms per outlet"
    )
