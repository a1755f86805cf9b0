"""Web nodes of a cluster (``nonsite serve --role web``): Mosquitto → an ingest node →
JetStream → a worker → PostgreSQL, and two web nodes serving the API and the dashboard from the
database and the stream, as real processes. A chart shows the values published; the data
quality and the fleet's never-reported sources come from the stream; a case changed through
one web node reaches the live event stream of the other."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nonsite.auth import UserStore
from nonsite.db import make_engine
from tests.conftest import pg_admin_url
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import (
    LocalCluster,
    Role,
    enterprise_lines,
    hour_frames,
    stream_digests,
)
from tests.service_process import wait_for

pytestmark = pytest.mark.integration

ENTERPRISES = 6  # E000..E005; E005 never sends anything
SENDING = ENTERPRISES - 1
HOURS = 3
HIGH = 400.0  # E000's SO2, over the preset's limit: an exceedance case
PASSWORD = "correct horse 9"


@dataclass
class WebCluster:
    cluster: LocalCluster
    web_a: Role
    web_b: Role
    hour0: datetime
    frames: list[tuple[str, bytes]]


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[str]:
    """A PostgreSQL schema for this module's cluster (``pg_url``'s, for a whole module)."""
    admin = make_engine(pg_admin_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_admin_url() else "?"
    try:
        yield f"{pg_admin_url()}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, module_pg_url: str) -> Iterator[WebCluster]:
    tmp = tmp_path_factory.mktemp("web-cluster")
    cluster = LocalCluster(
        tmp, module_pg_url, enterprise_lines(ENTERPRISES), nats_nodes=1, partitions=4
    ).start()
    try:
        # A web node first, before any worker: it brings the schema up to date itself.
        web_a = cluster.role("web", "web-a")
        cluster.role("ingest", "ingest-a")
        cluster.role("worker", "worker-a")
        web_b = cluster.role("web", "web-b")
        db = make_engine(module_pg_url)
        try:
            UserStore(db).add("monitor", PASSWORD, "monitor", display_name="监测员")
        finally:
            db.dispose()
        # Three hours of data ending an hour ago (a chart's default range is the last 48 h).
        hour0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
        frames = hour_frames(SENDING, hour0, HOURS, {0: HIGH})
        publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port)
        try:
            publisher.publish_all(frames)
        finally:
            publisher.close()
        assert wait_for(lambda: len(stream_digests(cluster.nats)) == len(frames), 30)
        yield WebCluster(cluster, web_a, web_b, hour0, frames)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


@contextmanager
def login(role: Role) -> Iterator[httpx.Client]:
    """A client of ``role`` logged in as the monitoring centre."""
    with httpx.Client(base_url=role.http, timeout=30) as client:
        r = client.post("/api/v1/session", json={"username": "monitor", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield client


def test_a_web_node_charts_an_outlet_from_the_stream(web: WebCluster) -> None:
    with login(web.web_b) as client:
        url = "/api/v1/enterprises/E000/outlets/DA001/series"
        until = (web.hour0 + timedelta(hours=HOURS, minutes=20)).isoformat()
        params = {"since": web.hour0.isoformat(), "until": until}

        def raw() -> list[dict[str, Any]]:
            r = client.get(url, params=params)
            assert r.status_code == 200, r.text
            return list(r.json()["raw"].get("a21026", []))

        # Each packet's SO2 is 400 plus its wobble (0, 1, 2 by the ten minutes).
        expected = [
            (web.hour0 + timedelta(minutes=10 * k), HIGH + k % 3) for k in range(HOURS * 6)
        ] + [(web.hour0 + timedelta(hours=HOURS, minutes=10), 41.0)]
        assert wait_for(lambda: len(raw()) >= len(expected), 30), raw()
        points = raw()
        assert [(datetime.fromisoformat(p["t"]), p["value"]) for p in points] == expected
        body = client.get(url, params=params).json()
        hourly = [(datetime.fromisoformat(h["t"]), h["value"]) for h in body["hourly"]["a21026"]]
        assert [(t, v) for t, v in hourly if v is not None][:HOURS] == [
            (web.hour0 + timedelta(hours=h), HIGH + 1.0) for h in range(HOURS)
        ]
        assert body["limits"]  # the preset's, as in one machine
        # The outlet's page (the chart's shell) and the enterprise's latest values.
        page = client.get("/enterprises/E000/outlets/DA001")
        assert page.status_code == 200
        latest = client.get("/api/v1/enterprises/E001/latest")
        assert latest.status_code == 200, latest.text
        assert latest.json()["outlets"][0]["factors"]


def test_data_quality_and_the_never_reported_come_from_the_stream(web: WebCluster) -> None:
    with login(web.web_a) as client:
        page = client.get("/ops")
        assert page.status_code == 200
        assert "运行" in page.text or "数据质量" in page.text, page.text[:500]
        r = client.get("/api/v1/quality", params={"window": "24h"})
        assert r.status_code == 200, r.text
        figures = {e["enterprise_id"]: e for e in r.json()["enterprises"]}
        # Every sending enterprise's SO2 and O2: six records an hour for three hours.
        for i in range(SENDING):
            assert figures[f"E{i:03d}"]["received_records"] >= HOURS * 6, figures[f"E{i:03d}"]
        assert figures["E005"]["received_records"] == 0
        fleet = client.get("/api/v1/enterprises")
        assert fleet.status_code == 200, fleet.text
        unreported = {e["id"]: e["unreported_sources"] for e in fleet.json()}
        assert unreported == {f"E{i:03d}": [] for i in range(SENDING)} | {"E005": ["DA001"]}


def read_events(role: Role, cookies: httpx.Cookies, case_id: int, box: dict[str, Any]) -> None:
    """The live event stream of ``role`` until it carries a change of ``case_id``."""
    with (
        httpx.Client(base_url=role.http, cookies=cookies, timeout=30) as client,
        client.stream("GET", "/api/v1/events") as resp,
    ):
        box["status"] = resp.status_code
        box["open"].set()
        for line in resp.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                box.setdefault("events", []).append(event)
                if event["case_id"] == case_id and event["action"] == "comment":
                    return


def test_a_case_changed_through_one_web_node_is_live_on_the_other(web: WebCluster) -> None:
    with login(web.web_a) as a:

        def cases() -> list[dict[str, Any]]:
            r = a.get("/api/v1/cases", params={"enterprise_id": "E000"})
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

        assert wait_for(cases, 60), web.cluster.logs()  # the worker judged E000
        case = cases()[0]
        # B's stream with A's session: sessions live in the database, not in a node.
        box: dict[str, Any] = {"open": threading.Event()}
        reader = threading.Thread(
            target=read_events, args=(web.web_b, a.cookies, case["id"], box), daemon=True
        )
        reader.start()
        assert box["open"].wait(10)
        assert box["status"] == 200  # the stream has read the audit trail's head: it answered
        r = a.post(
            f"/api/v1/cases/{case['id']}/actions/comment",
            json={"note": "经 A 节点备注"},
        )
        assert r.status_code == 200, r.text
        reader.join(15)
        assert not reader.is_alive(), box.get("events")
        last = box["events"][-1]
        assert (last["case_id"], last["action"], last["enterprise_id"]) == (
            case["id"],
            "comment",
            "E000",
        )


def test_a_web_node_is_ready_with_the_database_and_nats(web: WebCluster) -> None:
    for role in (web.web_a, web.web_b):
        with httpx.Client(base_url=role.http, timeout=10) as client:
            assert client.get("/readyz").json() == {"status": "ready"}
            assert client.get("/healthz").status_code == 200
            assert "nonsite_database_up 1.0" in client.get("/metrics").text


def test_charts_answer_503_while_nats_is_away_and_work_again_after(web: WebCluster) -> None:
    """Last in the module: it takes the stream away. Raw data come from NATS in cluster mode;
    while it is unreachable a chart says so (503, in Chinese), not an internal error."""
    url = "/api/v1/enterprises/E000/outlets/DA001/series"
    params = {"since": web.hour0.isoformat()}
    with login(web.web_a) as client:
        assert client.get(url, params=params).status_code == 200
        web.cluster.nats.kill(0)
        try:
            r = client.get(url, params=params)
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "stream_unavailable"
            assert "原始数据流暂时无法读取" in r.json()["message"]
            assert r.headers["retry-after"] == "5"
        finally:
            web.cluster.nats.restart(0)
        assert wait_for(lambda: client.get(url, params=params).status_code == 200, 30)
