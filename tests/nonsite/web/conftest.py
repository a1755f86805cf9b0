"""An API over a real store: a configuration with two enterprises and two brigades, a user
per role, and cases in several states."""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from prometheus_client import CollectorRegistry

from alerts.clues import ClueIn
from alerts.workflow import Actor
from nonsite.auth import passwords
from nonsite.config.load import parse_config
from nonsite.config.model import Config
from nonsite.db import make_engine, migrate
from nonsite.http import bind, build_app, make_server
from nonsite.web.context import WebContext
from tests.alerts.conftest import T0, finding

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parents[3] / "artifacts" / "screenshots"

# The two brigades and the two enterprises (their outlets aside) of the sites' configurations.
BRIGADES = [
    {"id": "B1", "name": "滨江执法大队", "inspectors": ["王一", "李二", "张三"]},
    {"id": "B2", "name": "城东执法大队", "inspectors": ["陈五", "周六"]},
]
E1 = {
    "id": "E1",
    "name": "华能示范电厂",
    "region": "滨江区",
    "industry": "thermal_power",
    "brigade": "B1",
}
E2 = {"id": "E2", "name": "城东化工", "region": "城东区", "industry": "chemical", "brigade": "B2"}
# 华能示范电厂's coal-fired boiler, with the preset's limits.
BOILER = {
    "id": "DA001",
    "name": "1号锅炉",
    "kind": "gas",
    "mn": "MN1",
    "pw": "123456",
    "preset": "thermal_power_coal_boiler",
}
CONFIG = {
    "brigades": BRIGADES,
    "enterprises": [
        {
            **E1,
            "outlets": [{"id": "DA001", "name": "1号锅炉", "kind": "gas", "mn": "MN1", "pw": ""}],
        },
        {
            **E2,
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
    "town1": ("township", {"area": "滨江区"}),  # E1's region
    "hotline": ("intake", {}),  # the 12345 platform's system
    "legal1": ("legal", {}),  # 法制审核
}


class LiveServer:
    """The application served by uvicorn on a free loopback port, in a thread: requests go
    over real HTTP."""

    def __init__(self, app) -> None:
        self.app = app
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


def api_login(client: httpx.Client, username: str) -> httpx.Client:
    """``client`` logged in as ``username`` (an earlier session's cookie cleared)."""
    client.cookies.clear()
    r = client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client


_TEMPLATE: list[Path] = []  # a migrated SQLite file, made once per test session


def _from_template(db_url: str) -> None:
    """A new SQLite database as a copy of a migrated one: the web tests make hundreds of sites
    (the authorization matrix one per role and action), and migrating each from nothing took
    a fifth of a second."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or Path(db_url[len(prefix) :]).exists():
        return
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="nonsite-template-"))
        engine = make_engine(f"{prefix}{folder / 'template.db'}")
        migrate(engine)
        engine.dispose()
        _TEMPLATE.append(folder / "template.db")
    shutil.copyfile(_TEMPLATE[0], db_url[len(prefix) :])


def web_context(
    config: Config,
    db_url: str,
    *,
    users: Mapping[str, tuple[str, dict[str, str]]] = USERS,
    display_name: Callable[[str], str] = "{}-显示名".format,
) -> WebContext:
    """The web side of ``config`` over a migrated database at ``db_url``, with ``users``
    (name → role and scope), each with the password PASSWORD."""
    _from_template(db_url)
    engine = make_engine(db_url)
    migrate(engine)  # a copy of the template is at head already: a check, not DDL
    ctx = WebContext.build(config, engine)
    for name, (role, scope) in users.items():
        ctx.users.add(name, PASSWORD, role, display_name=display_name(name), **scope)
    return ctx


@contextmanager
def serving(ctx: WebContext, timeout: float = 30) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """The application of ``ctx`` served over real HTTP, and a client of it; the database is
    disposed of when it stops."""
    app = build_app(CollectorRegistry(), dict, web=ctx)
    try:
        with (
            LiveServer(app) as server,
            httpx.Client(base_url=server.url, timeout=timeout) as client,
        ):
            yield server, client
    finally:
        ctx.db.dispose()


@dataclass
class Site:
    ctx: WebContext
    client: httpx.Client
    cases: dict[str, int]  # name → case id
    url: str

    def login(self, username: str) -> httpx.Client:
        return api_login(self.client, username)


@contextmanager
def running_site(db_url: str, service: dict[str, Any] | None = None) -> Iterator[Site]:
    """The test configuration (with ``service`` as its [service] section, if given), its users
    and cases, served over real HTTP."""
    raw = {**CONFIG, "service": service} if service else CONFIG
    ctx = web_context(parse_config(raw, "test.toml", env={}), db_url)
    book = ctx.book
    with ctx.db.begin() as conn:
        [e1_alarm] = book.apply(conn, [finding(enterprise="E1")]).opened
        [e2_warning] = book.apply(
            conn, [finding("B2", tier="warning", enterprise="E2", limit=None)]
        ).opened
        [e1_warning] = book.apply(conn, [finding("B2", tier="warning", limit=None)]).opened
    with ctx.db.begin() as conn:
        book.act(conn, e1_alarm, "dispatch", Actor("sup", "supervisor"))
    with ctx.db.begin() as conn:  # a complaint about E1's stack, merged into its alarm
        complaint = ClueIn(
            "hotline_12345",
            T0 + timedelta(minutes=30),
            "夜间烟囱冒黑烟",
            enterprise_id="E1",
            factor="a21026",
            external_ref="12345-0001",
        )
        clue = book.take_clue(conn, complaint, Actor("hotline-显示名", "intake"))
    assert clue.case_id == e1_alarm
    cases = {
        "e1_alarm": e1_alarm,
        "e2_warning": e2_warning,
        "e1_warning": e1_warning,
        "clue": clue.id,
    }
    with serving(ctx, timeout=10) as (server, client):
        yield Site(ctx, client, cases, server.url)


@pytest.fixture(scope="module")
def fast_hashes() -> Iterator[None]:
    """Fast password hashes, for tests only: for a module's sites."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passwords, "SCRYPT_N", 2**10)
        yield


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


@pytest.fixture
def fresh_site(tmp_path, monkeypatch):
    """The browser tests' site (test_language_and_time.serve: a day of data, a dispatched
    alarm, a warning) of its own, for a test that changes the store."""
    from tests.nonsite.web.test_language_and_time import serve

    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)  # fast hashes for tests only
    with serve(tmp_path) as served:
        yield served


# -- in the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright: one for a test module."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def sign_in(page: Page, username: str) -> None:
    """Fill in and send the login form the page shows; wait for the page it leads to."""
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"^(?!.*/login)"))
    page.wait_for_selector("body[data-ready='1']")


def login(page: Page, site: Any, username: str) -> None:
    """Log in on the site's login page (``site.url``) as ``username``."""
    page.goto(f"{site.url}/login")
    sign_in(page, username)


def shot(page: Page, name: str) -> None:
    """A screenshot of the whole page, a test artifact (``artifacts/screenshots``)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
