"""An API over a real store: a configuration with two enterprises and two brigades, a user
per role, and cases in several states."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerts.workflow import Actor
from nonsite.auth import passwords
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.http import bind, build_app, make_server
from nonsite.web.context import WebContext
from tests.alerts.conftest import finding

CONFIG = {
    "brigades": [{"id": "B1", "name": "滨江执法大队"}, {"id": "B2", "name": "城东执法大队"}],
    "enterprises": [
        {
            "id": "E1",
            "name": "华能示范电厂",
            "region": "滨江区",
            "industry": "thermal_power",
            "brigade": "B1",
            "outlets": [{"id": "DA001", "name": "1号锅炉", "kind": "gas", "mn": "MN1", "pw": ""}],
        },
        {
            "id": "E2",
            "name": "城东化工",
            "region": "城东区",
            "industry": "chemical",
            "brigade": "B2",
            "outlets": [{"id": "DA001", "kind": "gas", "mn": "MN2", "pw": ""}],
            "markings": [
                {
                    "outlet": "DA001",
                    "type": "maintenance",
                    "start": "2026-11-20T08:00:00+08:00",
                    "end": "2026-11-20T12:00:00+08:00",
                    "reason": "脱硫塔检修",
                }
            ],
        },
    ],
}
PASSWORD = "correct horse 9"
USERS = {
    "monitor": ("monitor", {}),
    "supervisor": ("supervisor", {}),
    "enforcer1": ("enforcer", {"brigade": "B1"}),
    "enforcer2": ("enforcer", {"brigade": "B2"}),
    "ent1": ("enterprise", {"enterprise_id": "E1"}),
    "ent2": ("enterprise", {"enterprise_id": "E2"}),
    "admin": ("admin", {}),
}


class LiveServer:
    """The application served by uvicorn on a free loopback port, in a thread: requests go
    over real HTTP."""

    def __init__(self, app) -> None:
        self.sock = bind("127.0.0.1:0")
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = make_server(app, self.sock)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass
class Site:
    ctx: WebContext
    client: httpx.Client
    cases: dict[str, int]  # name → case id
    url: str

    def login(self, username: str) -> httpx.Client:
        self.client.cookies.clear()
        r = self.client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return self.client


@contextmanager
def running_site(db_url: str, service: dict[str, Any] | None = None) -> Iterator[Site]:
    """The test configuration (with ``service`` as its [service] section, if given), its users
    and cases, served over real HTTP."""
    raw = {**CONFIG, "service": service} if service else CONFIG
    config = parse_config(raw, "test.toml", env={})
    engine = make_engine(db_url)
    migrate(engine)
    ctx = WebContext.build(config, engine)
    for name, (role, scope) in USERS.items():
        ctx.users.add(name, PASSWORD, role, display_name=f"{name}-显示名", **scope)
    book = ctx.book
    with engine.begin() as conn:
        [e1_alarm] = book.apply(conn, [finding(enterprise="E1")]).opened
        [e2_warning] = book.apply(
            conn, [finding("B2", tier="warning", enterprise="E2", limit=None)]
        ).opened
        [e1_warning] = book.apply(conn, [finding("B2", tier="warning", limit=None)]).opened
    with engine.begin() as conn:
        book.act(conn, e1_alarm, "dispatch", Actor("sup", "supervisor"))
    app = build_app(CollectorRegistry(), dict, web=ctx)
    cases = {"e1_alarm": e1_alarm, "e2_warning": e2_warning, "e1_warning": e1_warning}
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            yield Site(ctx, client, cases, server.url)
    finally:
        engine.dispose()


@pytest.fixture
def site(db_url, monkeypatch):
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)  # fast hashes for tests only
    with running_site(db_url) as served:
        yield served


@pytest.fixture
def site_with(db_url, monkeypatch):
    """A factory: ``site_with(trusted_proxies=[...])`` serves the site with those [service]
    settings (on this test's database)."""
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    with ExitStack() as stack:

        def make(**service: Any) -> Site:
            return stack.enter_context(running_site(db_url, service))

        yield make
