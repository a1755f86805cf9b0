"""The dashboard in Chinese and in China time, and what its users miss (issue 17, items 6, 7,
8 and 10), in headless Chromium over a real store and a real raw archive:

- the same visible times in a browser set to UTC and one set to Asia/Shanghai (the operations
  page, a case page, a chart's time axis), 24-hour, never am/pm;
- no English on the Chinese pages except codes, units and identifiers (``english_words``);
- brigades and enterprises by name; dead letters with a Chinese reason and their enterprise,
  readable by the supervisor; the audit export in +08:00 with Chinese action names;
- each role's menu holds only pages it may open, and no page says 无 when it could not read;
- silences ended and edited through the API and the page, with their own audit trail;
- the outlet page with its time picker; data-quality figures per enterprise; the opt-in alarm
  sound and desktop notification; the header and these pages on a 360-414 px phone.

The archive holds the last 24 whole hours of minute data (every 10 minutes) of two outlets,
built so that each hour of 华能示范电厂's boiler tests one thing of the data-quality figures
(see ``e1_records``)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from alerts.workflow import Actor
from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from ingest.store import DeadLetter, record_batch
from nonsite.config.load import parse_config
from nonsite.web.context import WebContext
from rules.findings import Finding
from tests.alerts.conftest import AUDIT_COLUMNS_ZH
from tests.nonsite.web.conftest import (
    BRIGADES,
    E1,
    E2,
    USERS,
    api_login,
    login,
    serving,
    shot,
    web_context,
)

pytestmark = pytest.mark.integration

SO2, O2 = "a21026", "a19001"
HOUR = timedelta(hours=1)
# A dead letter received at this instant reads 2026-03-05 02:28 in China, whatever the browser
# (in a UTC browser the day before, 18:28, was the defect).
DEAD_AT = datetime(2026, 3, 4, 18, 28, 5, tzinfo=UTC)
DEAD_SHOWN = "2026-03-05 02:28"
# The users' names as the dashboard shows them (people's names are Chinese).
NAMES = {
    "monitor": "王监测",
    "supervisor": "李监管",
    "enforcer1": "张执法",
    "enforcer2": "赵执法",
    "ent1": "华能环保专员",
    "ent2": "城东环保专员",
    "admin": "运维刘工",
    "town1": "滨江区环保办",
    "hotline": "12345平台",
    "legal1": "陈法制",
}


def config_doc(data_dir: Path) -> dict:
    outlet = {"kind": "gas", "pw": "123456", "minute_interval_min": 10}
    limits = {SO2: {"hour_alarm": 100.0}}
    return {
        "service": {"data_dir": str(data_dir)},
        "brigades": BRIGADES,
        "enterprises": [
            {
                **E1,
                "outlets": [
                    {"id": "DA001", "name": "1号锅炉", "mn": "MN1", "limits": limits, **outlet}
                ],
            },
            {
                **E2,
                "outlets": [
                    {"id": "DA001", "name": "焚烧炉", "mn": "MN2", "limits": limits, **outlet}
                ],
            },
        ],
    }


# -- the archive: the last 24 whole hours ----------------------------------------------------
# 华能示范电厂's boiler (MN1), hour k of the 24 (0 the oldest), six 10-minute records of SO2 (the
# one configured factor) and O2, flag N, except:
#   0-3   nothing (the logger was off): due, not received
#   4     records 0-2 only: 3 received and valid, 30 valid minutes < 45, not a valid hour
#   5     records 1 and 2 flagged D: 6 received, 4 valid, 40 minutes, not a valid hour
#   6     every record flagged F (停运): nothing due that hour
# 城东化工's furnace (MN2) sends every record of every hour.
E1_EXPECTED = {
    # 23 hours due (hour 6 stopped) × 6 records
    "expected_records": 23 * 6,
    "received_records": 3 + 6 + 17 * 6,
    "valid_records": 3 + 4 + 17 * 6,
    "due_hours": 23,
    "valid_hours": 17,
}


def e1_records(k: int) -> list[tuple[int, str]]:
    """(record index, flag) of hour k."""
    if k < 4:
        return []
    if k == 4:
        return [(i, "N") for i in range(3)]
    if k == 5:
        return [(i, "D" if i in (1, 2) else "N") for i in range(6)]
    if k == 6:
        return [(i, "F") for i in range(6)]
    return [(i, "N") for i in range(6)]


def minute_frame(mn: str, t: datetime, value: float, flag: str = "N") -> bytes:
    pol = {SO2: {"Avg": value, "Flag": flag}, O2: {"Avg": 9.0, "Flag": "N"}}
    [packet] = data_packets(
        st="31", cn="2051", pw="123456", mn=mn, data_time=t, pollutants=pol, ack=False
    )
    return packet


def archive_messages(first_hour: datetime) -> list[IncomingMessage]:
    out = []
    for k in range(24):
        start = first_hour + k * HOUR
        for i, flag in e1_records(k):
            t = start + timedelta(minutes=10 * i)
            out.append(
                IncomingMessage(
                    to_us(t + timedelta(minutes=1)),
                    "hj212/MN1",
                    minute_frame("MN1", t, 40.0 + k, flag),
                )
            )
        for i in range(6):
            t = start + timedelta(minutes=10 * i)
            out.append(
                IncomingMessage(
                    to_us(t + timedelta(minutes=1, seconds=2)),
                    "hj212/MN2",
                    minute_frame("MN2", t, 20.0 + k),
                )
            )
    out.sort(key=lambda m: m.received_us)
    return out


def dead_letters(hour0: datetime) -> list[DeadLetter]:
    """Two of 华能示范电厂's logger in the last day, one of it 8 days ago (outside both windows),
    one of a logger nobody configured; and the one received at DEAD_AT (on the page)."""
    frame = b"##0101QN=...&&ABCD\r\n"
    return [
        DeadLetter(
            1, hour0 - 2 * HOUR, "hj212/MN1", "crc_mismatch", "CRC 1A2B != 3C4D", frame, "MN1"
        ),
        DeadLetter(2, hour0 - 3 * HOUR, "hj212/MN1", "wrong_pw", "PW 000000", frame, "MN1"),
        DeadLetter(3, hour0 - timedelta(days=8), "hj212/MN1", "bad_time", "DataTime", frame, "MN1"),
        DeadLetter(4, hour0 - HOUR, "hj212/MN404", "unknown_mn", "MN MN404", frame, "MN404"),
        DeadLetter(5, DEAD_AT, "hj212/MN2", "crc_mismatch", "CRC 0000 != FFFF", frame, "MN2"),
    ]


@dataclass
class Site:
    url: str
    ctx: WebContext
    client: httpx.Client
    hour0: datetime  # the end of the archive's 24 hours: the current hour's start
    cases: dict[str, int]

    def login(self, username: str) -> httpx.Client:
        return api_login(self.client, username)


def alarm_finding(enterprise: str, window: datetime, state: str = "fire", **kw) -> Finding:
    start = int(window.timestamp())
    return Finding(
        rule=kw.get("rule", "A3"),
        state=state,  # type: ignore[arg-type]
        enterprise_id=enterprise,
        source_id="DA001",
        factor=SO2,
        window_start=start,
        window_end=start + 3600,
        tier=kw.get("tier", "alarm"),
        value=150.0 if state == "fire" else None,
        limit=100.0,
        unit="mg/m³",
        multiple=0.5 if state == "fire" else None,
        params_id=f"{enterprise}/DA001",
        params_version="3f9c2a77e1",
    )


@contextmanager
def serve(data_dir: Path) -> Iterator[Site]:
    now = datetime.now(UTC)
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
    archive.append(archive_messages(hour0 - 24 * HOUR))
    archive.close()
    config = parse_config(config_doc(data_dir), "test.toml", env={})
    ctx = web_context(config, f"sqlite:///{data_dir / 'nonsite.db'}", display_name=NAMES.get)
    book = ctx.book
    with ctx.db.begin() as conn:
        record_batch(conn, "test", 5, dead_letters(hour0))
        [alarm] = book.apply(conn, [alarm_finding("E1", hour0 - 10 * HOUR)]).opened
        [warning] = book.apply(
            conn, [alarm_finding("E2", hour0 - 12 * HOUR, rule="A3", tier="warning")]
        ).opened
    with ctx.db.begin() as conn:
        book.act(conn, alarm, "dispatch", Actor("李监管", "supervisor"), brigade="B1")
    with ctx.db.begin() as conn:
        # the condition clears (the work goes on), and the warning resolves and comes back
        book.apply(conn, [alarm_finding("E1", hour0 - 10 * HOUR, state="clear")])
        book.apply(conn, [alarm_finding("E2", hour0 - 12 * HOUR, state="clear", tier="warning")])
        book.apply(conn, [alarm_finding("E2", hour0 - 11 * HOUR, tier="warning")])
    with serving(ctx, timeout=60) as (server, client):
        yield Site(server.url, ctx, client, hour0, {"alarm": alarm, "warning": warning})


@pytest.fixture(scope="module")
def shared_sites(tmp_path_factory, fast_hashes) -> Iterator[Callable[[], Site]]:
    """The site the tests that only read share: one per clock hour, since the archive, the
    data-quality window and the pages' hours are the last 24 whole hours before now."""
    current: list[Site] = []
    with ExitStack() as stack:

        def get() -> Site:
            hour0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            if not current or current[0].hour0 != hour0:
                stack.close()  # the previous hour's
                current[:] = [stack.enter_context(serve(tmp_path_factory.mktemp("site")))]
            return current[0]

        yield get


@pytest.fixture
def site(shared_sites) -> Site:
    """The shared site: for a test that only reads (it adds no case, silence or marking)."""
    return shared_sites()


# uPlot draws its axes on a canvas: record each chart, so that a test can read the labels it
# computed (``axes[0]._values``).
RECORD_PLOTS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`));
window.__plots = [];
let real;
Object.defineProperty(window, "uPlot", {
  configurable: true,
  get() { return real; },
  set(cls) {
    const wrapped = function (opts, data, target) {
      const u = new cls(opts, data, target);
      window.__plots.push(u);
      return u;
    };
    Object.assign(wrapped, cls);
    wrapped.prototype = cls.prototype;
    real = wrapped;
  },
});
"""


@contextmanager
def browsing(browser: Browser, tz: str = "UTC", width: int = 1440) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale="zh-CN", timezone_id=tz
    )
    context.add_init_script(RECORD_PLOTS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


def wait_until(page: Page, script: str, timeout_s: float = 20.0) -> None:
    """Poll ``script`` in the page until it is true (``wait_for_function`` evaluates its
    predicate in a way the page's Content-Security-Policy refuses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"never true: {script}"
        page.wait_for_timeout(100)


def visit(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("window.__violations") == [], url  # the strict CSP holds


LIVE = (
    "!document.getElementById('live') || document.getElementById('live').classList.contains('on')"
)


def settle(page: Page) -> None:
    """After ``visit``: the page has rendered what it read (it marks itself ready once its
    module has filled it from the API); wait until its event stream is open, the live part (on
    pages with a header), and two frames have been laid out."""
    wait_until(page, LIVE)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


# -- what counts as English ------------------------------------------------------------------
# A Latin-letter word on a Chinese page must be one of these: a rule code (A3, B8-7), an
# identifier (E1, DA001, MN1, a logger's MN), an HJ 212 factor code (a21026), a unit the field
# writes in Latin letters, a chemical formula or water-quality abbreviation, a file format, the
# product's name. Anything else (Time, am, pm, crc_mismatch, condition cleared, B01's name
# missing is still an identifier) is English on a Chinese page.
_CODE = re.compile(r"[A-Z]{1,4}\d[0-9A-Z]*(?:-\d+)?")
_FACTOR = re.compile(r"[a-z]\d{5}")
# Data, not the page's language: a file's own name (IMG_0142.jpg), a digest's hex.
_FILE = re.compile(r".+\.(?:jpe?g|png|heic|webp|mp4|mov|avi|pdf|mp3|m4a|wav|zip)", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-f]{6,}")
_WORDS = {
    "mg/m³",
    "mg/m3",
    "mg/L",
    "kW",
    "kWh",
    "pH",
    "m³/h",
    "m³",
    "L/s",
    "kPa",
    "Pa",
    "MW",
    "SO2",
    "NOx",
    "NO",
    "NO2",
    "O2",
    "CO",
    "CO2",
    "NH3",
    "NH3-N",
    "H2S",
    "HCl",
    "HF",
    "VOCs",
    "PM10",
    "PM2.5",
    "COD",
    "BOD5",
    "TP",
    "TN",
    "SS",
    "MN",
    "JSON",
    "CSV",
    "Excel",
    # file formats and the digest, as Chinese pages name them (照片 · JPEG, SHA-256 摘要)
    "JPEG",
    "PNG",
    "HEIC",
    "WebP",
    "MP4",
    "MOV",
    "AVI",
    "PDF",
    "MP3",
    "M4A",
    "WAV",
    "ZIP",
    "SHA-256",
    "KB",
    "MB",
    "nonsite",
}
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_./³²-]*")


def english_words(text: str) -> list[str]:
    """The Latin-letter words of ``text`` that are not codes, units or names (above)."""
    out = []
    for token in _TOKEN.findall(text):
        word = token.rstrip(".-/")
        if word in _WORDS or any(p.fullmatch(word) for p in (_CODE, _FACTOR, _FILE, _HEX)):
            continue
        out.append(word)
    return out


def visible_text(page: Page) -> str:
    return str(page.evaluate("document.body.innerText"))


def test_the_english_words_helper_is_strict_but_fair():
    assert english_words("华能示范电厂 1号锅炉（DA001）A3 二氧化硫(a21026) 150 mg/m³ MN MN1") == []
    assert english_words("B8-7 SO2 NOx 导出 JSON nonsite 0.1.0 2026-12-05 02:28") == []
    assert english_words("12am 12/4/26 Time: crc_mismatch condition cleared") == [
        "am",
        "Time",
        "crc_mismatch",
        "condition",
        "cleared",
    ]
    assert english_words("English Log out OK") == ["English", "Log", "out", "OK"]
    assert english_words("照片 · JPEG · 12 KB IMG_0142.jpg SHA-256 a0e6a2f4…") == []
    assert english_words("photo.jpeg is bad") == ["is", "bad"]


# -- item 8: menus and what each page may read -----------------------------------------------


def test_each_menu_holds_only_pages_the_role_can_open_and_read(browser, site):
    for user in USERS:
        with browsing(browser) as page:
            refused: list[str] = []

            def note(response, refused=refused):
                if "/api/" in response.url and response.status in (401, 403):
                    refused.append(f"{response.status} {response.url}")

            page.on("response", note)
            login(page, site, user)
            links = page.eval_on_selector_all(
                "header nav a", "links => links.map(a => [a.id, a.getAttribute('href')])"
            )
            assert links, user
            for link_id, href in links:
                with page.expect_navigation():
                    page.click(f"#{link_id}")
                page.wait_for_selector("body[data-ready='1']")
                assert page.url == f"{site.url}{href}", (user, link_id, page.url)  # no redirect
                expect(page.locator(f"#{link_id}")).to_have_class(re.compile(r"\bactive\b"))
            assert refused == [], (user, refused)


def test_the_enforcer_opens_the_fleet_from_its_menu(browser, site):
    with browsing(browser, width=390) as page:
        login(page, site, "enforcer1")
        assert page.url.endswith("/work-orders")  # its home
        page.click("#nav-fleet")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#fleet")).to_contain_text("华能示范电厂")


def answering(status: int, body: dict) -> Callable[[Route], None]:
    """A route handler that answers every request with ``status`` and the JSON ``body``."""
    return lambda route: route.fulfill(status=status, json=body)


def test_a_page_that_may_not_read_says_so_instead_of_none(browser, site):
    """The 运行 page of a role without the dead letters says 无权查看, never 无."""
    with browsing(browser) as page:
        login(page, site, "supervisor")
        visit(page, f"{site.url}/ops")
        # the supervisor reads them now (the defect: a 403, then 无 although there is one)
        expect(page.locator("#dead-letters tbody tr")).to_have_count(5)
        refused = {"code": "role_not_allowed", "message": "the supervisor role may not do this"}
        for url, status, body in (
            ("**/api/v1/dead-letters*", 403, refused),
            ("**/api/v1/quality*", 500, {"code": "internal", "message": "boom"}),
        ):
            page.route(url, answering(status, body))
        visit(page, f"{site.url}/ops")
        expect(page.locator("#dead-letters-none")).to_have_text("无权查看")
        expect(page.locator("#quality-none")).to_contain_text("读取失败")


# -- item 6: dead letters ----------------------------------------------------------------------


def test_dead_letters_name_their_reason_and_enterprise_in_chinese(browser, site):
    client = site.login("supervisor")
    r = client.get("/api/v1/dead-letters")
    assert r.status_code == 200, r.text  # the supervisor's 运行 page reads them
    letters = r.json()
    by_seq = {d["archive_seq"]: d for d in letters}
    assert by_seq[1]["enterprise_id"] == "E1"
    assert by_seq[1]["enterprise_name"] == "华能示范电厂"
    assert (by_seq[1]["source_id"], by_seq[1]["source_name"]) == ("DA001", "1号锅炉")
    assert by_seq[4]["enterprise_id"] is None  # a logger nobody configured
    with browsing(browser) as page:
        login(page, site, "supervisor")
        visit(page, f"{site.url}/ops")
        table = page.locator("#dead-letters")
        row = table.locator("tbody tr", has_text=DEAD_SHOWN)
        expect(row).to_contain_text("校验码错误")
        expect(row).to_contain_text("城东化工")
        expect(row).to_contain_text("焚烧炉")
        expect(row).to_contain_text("MN2")
        expect(table.locator("tbody tr", has_text="MN404")).to_contain_text("未登记的数采仪")
        # the technical detail is there, secondary: folded away until asked for
        assert "crc_mismatch" not in visible_text(page)
        assert "CRC 0000" not in visible_text(page)
        row.locator("details summary").click()
        expect(row).to_contain_text("CRC 0000 != FFFF")
        expect(row).to_contain_text("crc_mismatch")


def test_every_reason_code_has_a_chinese_name(browser, site):
    from ingest.hj212.errors import DecodeErrorCode
    from ingest.power.errors import PowerErrorCode
    from ingest.reasons import RejectReason

    codes = {c.value for enum in (DecodeErrorCode, PowerErrorCode, RejectReason) for c in enum}
    with browsing(browser) as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/ops")
        names = page.evaluate(
            """async (codes) => {
                const { I18N } = await import('/static/js/i18n.js');
                return codes.map((c) => [c, I18N.zh[`dl.${c}`], I18N.en[`dl.${c}`]]);
            }""",
            sorted(codes),
        )
    for code, zh, en in names:
        assert zh and re.search(r"[\u4e00-\u9fff]", zh) and not english_words(zh), (code, zh)
        assert en, code


# -- items 6 and 7: Chinese and China time on the pages ---------------------------------------


def times_shown(page: Page, site: Site) -> dict[str, object]:
    """What the operations page, the case page and the outlet page show as times."""
    out: dict[str, object] = {}
    visit(page, f"{site.url}/ops")
    out["dead letters"] = page.locator("#dead-letters tbody td.num").all_inner_texts()
    out["quality"] = page.locator("#quality-range").inner_text()
    visit(page, f"{site.url}/cases/{site.cases['alarm']}")
    page.wait_for_selector("#audit li")
    out["audit"] = page.locator("#audit .when").all_inner_texts()
    out["case"] = page.locator("#evidence").inner_text()
    visit(page, f"{site.url}/enterprises/E1/outlets/DA001")
    wait_until(page, "window.__plots.length > 0")
    out["hours"] = page.locator("#hours tbody tr td:first-child").all_inner_texts()
    out["axis"] = page.evaluate("window.__plots[0].axes[0]._values")
    out["legend"] = page.locator(".u-legend").first.inner_text()
    return out


def test_times_are_china_time_whatever_the_browser_zone(browser, site):
    seen = {}
    for tz in ("UTC", "Asia/Shanghai", "America/New_York"):
        with browsing(browser, tz) as page:
            login(page, site, "monitor")
            seen[tz] = times_shown(page, site)
    assert seen["UTC"] == seen["Asia/Shanghai"] == seen["America/New_York"]
    shown = seen["UTC"]
    assert DEAD_SHOWN in shown["dead letters"]
    axis = " ".join(str(v) for v in shown["axis"])
    assert not re.search(r"am|pm|/", axis, re.IGNORECASE), axis
    assert re.search(r"\b\d{2}:00\b", axis), axis  # 24-hour China time
    last = (site.hour0 - HOUR).astimezone(CHINA_TZ).strftime("%m-%d %H:%M")
    assert any(last in h for h in shown["hours"]), shown["hours"]
    assert "Time" not in shown["legend"]


def english_on(page: Page) -> list[str]:
    return english_words(visible_text(page))


def test_no_english_on_the_header_and_the_pages_of_this_part(browser, site):
    pages = {
        "monitor": ["/ops", "/enterprises/E1/outlets/DA001"],
        "supervisor": ["/ops"],
        "admin": ["/ops"],
        "enforcer1": ["/work-orders"],
        "ent1": ["/enterprise", "/enterprises/E1/outlets/DA001"],
    }
    with browsing(browser) as page:
        page.goto(f"{site.url}/login")
        page.wait_for_selector("body[data-ready='1']")
        assert english_on(page) == []
    for user, paths in pages.items():
        with browsing(browser) as page:
            login(page, site, user)
            for path in paths:
                visit(page, f"{site.url}{path}")
                settle(page)  # the data-quality table is filled by then
                header = english_words(page.locator("header.top").inner_text())
                assert header == [], (user, path, header)
                if path != "/work-orders":  # the header only: the board is another part's
                    assert english_on(page) == [], (user, path, english_on(page))
            page.click("#lang")  # the English switch still switches, and back
            expect(page.locator("#nav-cases")).to_have_text("Alert queue")
            page.click("#lang")
            expect(page.locator("#nav-cases")).to_have_text("告警队列")


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("monitor", "/"),
        ("monitor", "/cases"),
        ("monitor", "/cases/{alarm}"),
        ("monitor", "/work-orders"),
        ("supervisor", "/cases/{warning}"),
        ("enforcer1", "/cases/{alarm}"),
        ("ent2", "/cases/{warning}"),
    ],
)
def test_no_english_on_any_chinese_page(browser, site, user, path):
    """Every page, including the other parts' (queue, case, board): no English words."""
    with browsing(browser) as page:
        login(page, site, user)
        visit(page, site.url + path.format(**site.cases))
        settle(page)
        assert english_on(page) == []


def test_brigades_are_shown_by_name(browser, site):
    client = site.login("enforcer1")
    assert client.get("/api/v1/brigades").json() == [
        {"id": "B1", "name": "滨江执法大队"},
        {"id": "B2", "name": "城东执法大队"},
    ]
    with browsing(browser) as page:
        login(page, site, "enforcer1")
        expect(page.locator("header .who")).to_contain_text("滨江执法大队")
        visit(page, f"{site.url}/cases/{site.cases['alarm']}")
        expect(page.locator("#evidence")).to_contain_text("滨江执法大队")
        visit(page, f"{site.url}/work-orders")
        expect(page.locator("#board")).to_contain_text("滨江执法大队")


def test_the_system_writes_its_notes_in_chinese(site):
    client = site.login("monitor")
    for case in site.cases.values():
        events = client.get(f"/api/v1/cases/{case}").json()["events"]
        for e in events:
            if e["role"] == "system":
                assert english_words(e["note"]) == [], e


# -- item 7: the audit export -------------------------------------------------------------------


def test_the_audit_export_is_in_china_time_with_chinese_actions(site):
    client = site.login("supervisor")
    case = site.cases["alarm"]
    r = client.get(f"/api/v1/cases/{case}/record", params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f"case-{case}" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert list(rows[0])[:9] == AUDIT_COLUMNS_ZH
    assert [(row["操作"], row["action"]) for row in rows] == [
        ("感知", "sense"),
        ("派单", "dispatch"),
        ("条件消除", "condition_cleared"),
    ]
    assert rows[1]["操作人"] == "李监管" and rows[1]["角色"] == "监管"
    assert rows[0]["操作人"] == "系统" and rows[0]["role"] == "system"
    assert rows[1]["新状态"] == "已派单" and rows[1]["to_state"] == "dispatched"
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+08:00", row["时间"]), row
    record = client.get(f"/api/v1/cases/{case}/record").json()
    assert record["case"]["opened_at"].endswith("+08:00")
    assert all(e["at"].endswith("+08:00") for e in record["events"])
    assert record["events"][1]["action_zh"] == "派单"
    assert client.get("/api/v1/cases/999999/record").status_code == 404
    assert site.login("ent2").get(f"/api/v1/cases/{case}/record").status_code == 404


# -- item 10: silences ended and edited -----------------------------------------------------------


def test_a_silence_is_edited_and_ended_through_the_api_with_its_trail(fresh_site):
    client = fresh_site.login("monitor")
    body = {"reason": "脱硫塔检修", "enterprise_id": "E1", "ends_at": "2030-01-01T08:00:00+08:00"}
    created = client.post("/api/v1/silences", json=body).json()
    sid = created["id"]
    fresh_site.login("supervisor")
    r = client.patch(
        f"/api/v1/silences/{sid}",
        json={"ends_at": "2030-01-02T08:00:00+08:00", "reason": "脱硫塔检修延期"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == "脱硫塔检修延期"
    assert datetime.fromisoformat(r.json()["ends_at"]) == datetime(2030, 1, 2, tzinfo=UTC)
    bad = client.patch(f"/api/v1/silences/{sid}", json={"ends_at": "2020-01-01T00:00:00+08:00"})
    assert bad.status_code == 422 and bad.json()["code"] == "bad_silence"
    r = client.delete(f"/api/v1/silences/{sid}")
    assert r.status_code == 200, r.text
    ended = r.json()
    assert datetime.fromisoformat(ended["ends_at"]) <= datetime.now(UTC)
    assert ended["ended_by"] == "李监管"
    assert sid not in [s["id"] for s in client.get("/api/v1/silences").json()]
    again = client.delete(f"/api/v1/silences/{sid}")
    assert again.status_code == 409 and again.json()["code"] == "silence_ended"
    assert client.patch(f"/api/v1/silences/{sid}", json={"reason": "x"}).status_code == 409
    detail = client.get(f"/api/v1/silences/{sid}").json()
    trail = [(e["action"], e["actor"]) for e in detail["events"]]
    assert trail == [
        ("create", "王监测"),
        ("edit", "李监管"),
        ("end", "李监管"),
    ]
    assert detail["events"][1]["changes"]["reason"] == ["脱硫塔检修", "脱硫塔检修延期"]
    for user in ("enforcer1", "ent1", "admin"):
        c = fresh_site.login(user)
        assert c.patch(f"/api/v1/silences/{sid}", json={"reason": "x"}).status_code == 403
        assert c.delete(f"/api/v1/silences/{sid}").status_code == 403
    assert fresh_site.login("monitor").delete("/api/v1/silences/99999").status_code == 404


def test_a_silence_is_edited_and_ended_on_the_operations_page(browser, fresh_site):
    with browsing(browser) as page:
        login(page, fresh_site, "supervisor")
        visit(page, f"{fresh_site.url}/ops")
        form = page.locator("#silence-form")
        expect(form.locator("label", has_text="企业")).to_have_count(1)  # labelled fields
        form.locator("[name=enterprise_id]").select_option("E1")
        form.locator("[name=ends_at]").fill("2030-01-01T08:00")
        form.locator("[name=reason]").fill("脱硫塔检修")
        form.locator("button[type=submit]").click()
        row = page.locator("#silences tbody tr", has_text="脱硫塔检修")
        expect(row).to_contain_text("华能示范电厂")
        expect(row).to_contain_text("2030-01-01 08:00")
        row.locator("button.edit").click()
        edit = page.locator("form.silence-edit")
        edit.locator("[name=ends_at]").fill("2030-01-03T20:30")
        edit.locator("[name=reason]").fill("脱硫塔检修延期")
        edit.locator("button[type=submit]").click()
        row = page.locator("#silences tbody tr", has_text="脱硫塔检修延期")
        expect(row).to_contain_text("2030-01-03 20:30")
        shot(page, "ops-silence-edit")
        page.once("dialog", lambda d: d.accept())
        row.locator("button.end").click()
        expect(page.locator("#silences tbody tr", has_text="脱硫塔检修延期")).to_have_count(0)
    [s] = (
        fresh_site.login("supervisor")
        .get("/api/v1/silences", params={"include_ended": True})
        .json()
    )
    assert datetime.fromisoformat(s["ends_at"]) <= datetime.now(UTC)


# -- item 10: the outlet page ----------------------------------------------------------------------


def test_the_outlet_page_shows_factors_limits_and_hours_with_a_time_picker(browser, site):
    with browsing(browser, "UTC") as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/enterprises/E1/outlets/DA001")
        expect(page.locator("#outlet-head")).to_contain_text("华能示范电厂")
        expect(page.locator("#outlet-head")).to_contain_text("1号锅炉")
        factors = page.locator("#factors")
        expect(factors).to_contain_text("二氧化硫")
        expect(factors.locator("tr", has_text="二氧化硫")).to_contain_text("100")
        hours = page.locator("#hours tbody tr")
        expect(hours).to_have_count(24)  # the default: the last 24 hours, newest first
        first = site.hour0.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")  # the current one
        expect(hours.first).to_contain_text(first)
        stopped = page.locator(
            "#hours tbody tr",
            has_text=(site.hour0 - 18 * HOUR).astimezone(CHINA_TZ).strftime("%m-%d %H:%M"),
        )
        expect(stopped).to_contain_text("停运")
        shot(page, "outlet-monitor")
        with page.expect_request(re.compile(r"/series\?")) as req:
            page.click("#range-7d")
        since = re.search(r"since=([^&]+)", req.value.url)
        assert since is not None
        page.wait_for_selector("body[data-ready='1']")
        # a custom range, typed in China time: 4 hours
        start = (site.hour0 - 8 * HOUR).astimezone(CHINA_TZ)
        page.fill("#range-since", start.strftime("%Y-%m-%dT%H:%M"))
        page.fill("#range-until", (start + 4 * HOUR).strftime("%Y-%m-%dT%H:%M"))
        page.click("#range-apply")
        expect(page.locator("#hours tbody tr")).to_have_count(4)
        expect(page.locator("#hours tbody tr").last).to_contain_text(start.strftime("%m-%d %H:%M"))
    with browsing(browser, "UTC", width=390) as page:
        login(page, site, "ent1")
        visit(page, f"{site.url}/enterprise")
        page.click("#outlets a:has-text('1号锅炉')")
        page.wait_for_selector("#hours tbody tr")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "phone-outlet-ent1")
        page.goto(f"{site.url}/enterprises/E2/outlets/DA001")  # another's: not found
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#outlet-head")).to_contain_text("未找到")


# -- item 10: data quality ----------------------------------------------------------------------


def test_data_quality_figures_per_enterprise(site):
    client = site.login("monitor")
    r = client.get("/api/v1/quality", params={"window": "24h"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert datetime.fromisoformat(doc["until"]) == site.hour0
    assert datetime.fromisoformat(doc["since"]) == site.hour0 - 24 * HOUR
    assert doc["since"].endswith("+08:00")
    by_id = {e["enterprise_id"]: e for e in doc["enterprises"]}
    e1 = by_id["E1"]
    assert {k: e1[k] for k in E1_EXPECTED} == E1_EXPECTED
    assert e1["transmission_rate"] == pytest.approx(111 / 138, abs=1e-4)
    assert e1["effective_rate"] == pytest.approx(109 / 138, abs=1e-4)
    assert e1["valid_hour_rate"] == pytest.approx(17 / 23, abs=1e-4)
    assert e1["dead_letters"] == 2
    assert e1["enterprise_name"] == "华能示范电厂"
    e2 = by_id["E2"]
    assert (e2["transmission_rate"], e2["effective_rate"], e2["valid_hour_rate"]) == (1, 1, 1)
    assert e2["dead_letters"] == 0  # the one at DEAD_AT is long ago
    assert doc["unattributed_dead_letters"] == 1
    assert [e["enterprise_id"] for e in doc["enterprises"]] == ["E1", "E2"]  # worst first
    week = client.get("/api/v1/quality", params={"window": "7d"}).json()
    w1 = {e["enterprise_id"]: e for e in week["enterprises"]}["E1"]
    # the 144 hours before the archive's day had nothing: all due, none received
    assert w1["expected_records"] == 23 * 6 + 144 * 6
    assert w1["received_records"] == 111
    assert w1["dead_letters"] == 2
    assert client.get("/api/v1/quality", params={"window": "1y"}).status_code == 422
    for user, status in (("supervisor", 200), ("admin", 200), ("enforcer1", 403), ("ent1", 403)):
        assert site.login(user).get("/api/v1/quality").status_code == status


def test_the_operations_page_shows_data_quality(browser, site):
    with browsing(browser) as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/ops")
        table = page.locator("#quality")
        row = table.locator("tbody tr", has_text="华能示范电厂")
        expect(row).to_contain_text("80.4%")  # 111 / 138
        expect(row).to_contain_text("73.9%")  # 17 / 23 valid hours
        expect(row.locator("td.dead")).to_have_text("2")
        page.click("#quality-7d")
        expect(row).to_contain_text("11.1%")  # 111 / 1002
        shot(page, "ops-monitor")


# -- item 10: the alarm sound and desktop notification --------------------------------------------

STUB_ALERTS = """
window.__beeps = [];
window.__notes = [];
window.__cases = [];
// Each case event the page receives, recorded before the page's own listener handles it (and
// beeps, or not, as it does synchronously).
const RealEventSource = window.EventSource;
window.EventSource = class extends RealEventSource {
  constructor(url, init) {
    super(url, init);
    this.addEventListener("case", (e) => window.__cases.push(JSON.parse(e.data)));
  }
};
window.AudioContext = class {
  constructor() { this.currentTime = 0; this.destination = {}; this.state = "running"; }
  resume() { return Promise.resolve(); }
  createOscillator() {
    return { frequency: { value: 0, setValueAtTime() {} }, type: "sine", connect() {},
             start: () => window.__beeps.push(Date.now()), stop() {} };
  }
  createGain() {
    return { gain: { value: 1, setValueAtTime() {}, exponentialRampToValueAtTime() {},
             linearRampToValueAtTime() {} }, connect() {} };
  }
};
window.webkitAudioContext = window.AudioContext;
window.Notification = class {
  constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
  // the browser keeps a permission it granted (across reloads)
  static get permission() { return localStorage.getItem("test.notify") || "default"; }
  static requestPermission() {
    localStorage.setItem("test.notify", "granted");
    return Promise.resolve("granted");
  }
};
"""


def test_a_new_alarm_sounds_and_notifies_once_switched_on(browser, fresh_site):
    with browsing(browser) as page:
        page.add_init_script(STUB_ALERTS)
        login(page, fresh_site, "monitor")
        toggle = page.locator("#alert-toggle")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-pressed", "false")
        assert page.evaluate("localStorage.getItem('nonsite.alerts')") is None
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("localStorage.getItem('nonsite.alerts')") == "on"
        page.reload()  # remembered
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#alert-toggle")).to_have_attribute("aria-pressed", "true")
        wait_until(page, "document.getElementById('live').classList.contains('on')")
        with fresh_site.ctx.db.begin() as conn:  # a warning: no sound
            fresh_site.ctx.book.apply(
                conn, [alarm_finding("E1", fresh_site.hour0 - 5 * HOUR, rule="B2", tier="warning")]
            )
        wait_until(page, "window.__cases.some((c) => c.tier === 'warning')")  # it came, and
        assert page.evaluate("window.__beeps.length") == 0  # the page handled it in silence
        with fresh_site.ctx.db.begin() as conn:  # an alarm
            fresh_site.ctx.book.apply(
                conn, [alarm_finding("E2", fresh_site.hour0 - 3 * HOUR, rule="A2")]
            )
        wait_until(page, "window.__beeps.length > 0")
        wait_until(page, "window.__notes.length > 0")
        note = page.evaluate("window.__notes[0]")
        assert "报警" in note["title"] and "城东化工" in note["body"]
        page.locator("#alert-toggle").click()  # off again
        assert page.evaluate("localStorage.getItem('nonsite.alerts')") == "off"


# -- item 3: the header and these pages on a phone -----------------------------------------------


@pytest.mark.parametrize("width", [360, 414])
def test_the_header_and_these_pages_fit_a_phone(browser, site, width):
    pages = {
        "monitor": ["/ops", "/enterprises/E1/outlets/DA001"],
        "supervisor": ["/ops"],
        "enforcer1": ["/work-orders"],
        "ent1": ["/enterprise", "/enterprises/E1/outlets/DA001"],
    }
    for user, paths in pages.items():
        with browsing(browser, width=width) as page:
            login(page, site, user)
            for path in paths:
                visit(page, f"{site.url}{path}")
                settle(page)
                for sel in ("#logout", "#me", "header nav"):
                    box = page.locator(sel).bounding_box()
                    assert box is not None and box["x"] >= 0, (user, path, sel)
                    assert box["x"] + box["width"] <= width + 0.5, (user, path, sel, box)
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, f"{user} {path} is {scroll} px wide at {width} px"
                if width == 360:
                    shot(page, f"phone-{user}-{path.strip('/').replace('/', '_')}")
