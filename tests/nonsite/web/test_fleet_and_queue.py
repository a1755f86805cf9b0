"""Issue 17, items 3–5: what is red now comes first on the fleet page and in the alert queue; a
source never heard from is its own state (未上线 / 从未上报); the queue's search, rule filter,
paging with totals, sorting and export (CSV and Excel, all pages, China time, Chinese names);
the fleet, queue and work-order pages at phone width without sideways scrolling.

The API tests run on SQLite and PostgreSQL, the browser tests (Debian's chromium, a UTC
browser) on SQLite. Cases come through the real CaseBook; the loggers' traffic is a raw
archive in the service's data directory, as the service writes it."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from alerts.cases import CaseBook
from alerts.workflow import Actor
from ingest.archive import IncomingMessage, RawArchive, to_us
from nonsite.auth import passwords
from nonsite.config.load import parse_config
from nonsite.web.context import WebContext
from tests.alerts.conftest import T0, Clock, finding
from tests.nonsite.web.conftest import PASSWORD, api_login, login, serving, shot, web_context

CHINA = timezone(timedelta(hours=8))
SUPERVISOR = Actor("sup", "supervisor")


def outlet(mn: str, id_: str = "DA001", name: str = "1号排口") -> dict[str, Any]:
    return {"id": id_, "name": name, "kind": "gas", "mn": mn, "pw": ""}


# IDs in an order that is not the order of what is red: the alarm is E04, the warning E03.
ENTERPRISES = [
    ("E01", "安平纸业", "北区", "paper", [outlet("MN01")]),
    ("E02", "北辰化工", "南区", "chemical", [outlet("MN02")]),  # never heard from
    ("E03", "晨光水泥", "北区", "cement", [outlet("MN03")]),
    ("E04", "东方热电", "东区", "thermal_power", [outlet("MN04", name="1号锅炉")]),
    ("E05", "恒远钢铁", "南区", "steel", [outlet("MN05")]),
    ("E06", "金河污水处理厂", "西区", "municipal_wastewater", [outlet("MN61")]),  # via GW1
    ("E07", "庆丰印染", "西区", "textile_dyeing", [outlet("MN71"), outlet("MN72", "DA002")]),
]
CONFIG: dict[str, Any] = {
    "brigades": [{"id": "B1", "name": "滨江执法大队"}],
    "gateways": [{"id": "GW1", "name": "西区数据网关", "mns": ["MN61", "MN72"]}],
    "enterprises": [
        {"id": i, "name": n, "region": r, "industry": ind, "brigade": "B1", "outlets": o}
        for i, n, r, ind, o in ENTERPRISES
    ]
    + [
        {
            "id": "E08",
            "name": "瑞达家具",
            "region": "东区",
            "industry": "furniture",
            "brigade": "B1",
            "meters": [{"id": "E08-M1", "name": "喷涂线", "role": "production"}],
        }
    ],
}
USERS = {
    "monitor": ("monitor", {}),
    "supervisor": ("supervisor", {}),
    "enforcer1": ("enforcer", {"brigade": "B1"}),
}


def frame(mn: str) -> bytes:
    return f"QN=20261123090000000;ST=31;CN=2011;PW=;MN={mn};Flag=5;CP=&&&&".encode()


def archive_traffic(data_dir: Path) -> None:
    """What the loggers sent: every logger but MN02 and MN72, MN61 only through its gateway,
    the meter on its own power topic."""
    at = to_us(datetime.now(UTC))
    messages = [
        IncomingMessage(at + i, f"hj212/{mn}", frame(mn))
        for i, mn in enumerate(["MN01", "MN03", "MN04", "MN05", "MN71"])
    ]
    messages += [
        IncomingMessage(at + 10, "hj212/GW1", frame("MN61")),
        IncomingMessage(at + 11, "power/E08-M1", b'{"meter": "E08-M1", "p_kw": 12.5}'),
    ]
    archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
    archive.append(messages)
    archive.close()


@dataclass
class Site:
    ctx: WebContext
    client: httpx.Client
    url: str
    cases: dict[str, int]

    def login(self, username: str) -> httpx.Client:
        return api_login(self.client, username)


def open_cases(ctx: WebContext) -> dict[str, int]:
    """Cases through the CaseBook, two of them two days ago (their deadlines have passed): an
    overdue explanation (E03) and an overdue feedback (E04, dispatched); then a fresh alarm
    (E04), E05's logger offline (a warning) and an alarm seen earlier (E06)."""
    past = Clock(datetime.now(UTC) - timedelta(days=2))
    then = CaseBook(ctx.book.policy, ctx.book.notifier, clock=past)
    book = ctx.book
    with ctx.db.begin() as conn:
        [late_explain] = then.apply(
            conn, [finding("B2", tier="warning", enterprise="E03", limit=None, hour=1)]
        ).opened
        [late_feedback] = then.apply(conn, [finding("A3", enterprise="E04", hour=2)]).opened
        then.act(  # feedback due a day after dispatch: yesterday
            conn,
            late_feedback,
            "dispatch",
            SUPERVISOR,
            brigade="B1",
            due_at=past() + timedelta(days=1),
        )
    with ctx.db.begin() as conn:
        [alarm] = book.apply(
            conn, [finding("A4", enterprise="E04", hour=5, value=300.0, limit=100.0)]
        ).opened
        [offline] = book.apply(
            conn, [finding("B8", tier="warning", enterprise="E05", factor=None, hour=4)]
        ).opened
        [old_alarm] = book.apply(conn, [finding("A3", enterprise="E06", hour=0)]).opened
    return {
        "late_explain": late_explain,
        "late_feedback": late_feedback,
        "alarm": alarm,
        "offline": offline,
        "old_alarm": old_alarm,
    }


@contextmanager
def running(db_url: str, data_dir: Path, *, traffic: bool = True) -> Iterator[Site]:
    config = parse_config({**CONFIG, "service": {"data_dir": str(data_dir)}}, "t.toml", env={})
    if traffic:
        archive_traffic(data_dir)
    ctx = web_context(config, db_url, users=USERS)
    made = open_cases(ctx)
    with serving(ctx) as (server, client):
        yield Site(ctx, client, server.url, made)


@pytest.fixture
def fleet(db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)  # fast hashes for tests only
    with running(db_url, tmp_path / "data") as served:
        yield served


def many_cases(site: Site, n: int) -> None:
    """n more open alarms through the CaseBook: one source each (one open case per source and
    rule), E01's, whose logger is heard."""
    with site.ctx.db.begin() as conn:
        site.ctx.book.apply(
            conn, [finding("A3", enterprise="E01", source=f"S{i:03d}") for i in range(n)]
        )


def instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None
    return value


# -- the fleet -----------------------------------------------------------------------------


def test_the_fleet_lists_what_is_red_first(fleet):
    """报警, 预警, 离线, 未上线, 停产, 正常; by name within each."""
    items = fleet.login("monitor").get("/api/v1/enterprises").json()
    assert [(e["id"], e["status"]) for e in items] == [
        ("E04", "alarm"),  # 东方热电
        ("E06", "alarm"),  # 金河污水处理厂
        ("E03", "warning"),
        ("E05", "offline"),
        ("E02", "never_reported"),
        ("E01", "normal"),  # 安平纸业
        ("E07", "normal"),  # 庆丰印染
        ("E08", "normal"),  # 瑞达家具
    ]


def test_a_source_never_heard_from_is_not_normal(fleet):
    client = fleet.login("monitor")
    by_id = {e["id"]: e for e in client.get("/api/v1/enterprises").json()}
    e02 = by_id["E02"]
    assert (e02["status"], e02["status_zh"], e02["unreported_sources"]) == (
        "never_reported",
        "未上线",
        ["DA001"],
    )
    # one of two outlets silent: the enterprise is heard from, its silent outlet named
    assert (by_id["E07"]["status"], by_id["E07"]["unreported_sources"]) == ("normal", ["DA002"])
    assert by_id["E06"]["unreported_sources"] == []  # heard through its gateway
    assert by_id["E08"]["unreported_sources"] == []  # a meter on its own power topic
    assert by_id["E01"]["status"] == "normal"
    only = client.get("/api/v1/enterprises", params={"status": "never_reported"}).json()
    assert [e["id"] for e in only] == ["E02"]
    assert client.get("/api/v1/enterprises/E02").json()["status_zh"] == "未上线"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_the_archive_no_enterprise_is_called_never_reported(db_url, tmp_path, monkeypatch):
    """A web node without the service's data directory cannot tell: it says nothing."""
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    with running(db_url, tmp_path / "elsewhere", traffic=False) as site:
        items = site.login("monitor").get("/api/v1/enterprises").json()
    assert {e["status"] for e in items} == {"alarm", "warning", "offline", "normal"}
    assert all(e["unreported_sources"] == [] for e in items)


# -- the queue -----------------------------------------------------------------------------


def test_the_queue_puts_overdue_first_then_alarms_then_the_most_recent(fleet):
    c = fleet.cases
    page = fleet.login("monitor").get("/api/v1/cases", params={"open": "true"}).json()
    assert [x["id"] for x in page["items"]] == [
        c["late_feedback"],  # overdue, alarm
        c["late_explain"],  # overdue, warning (escalation by the clock has not run)
        c["alarm"],  # alarm, seen at hour 5
        c["old_alarm"],  # alarm, seen at hour 0
        c["offline"],  # warning
    ]
    first = page["items"][0]
    assert (first["due_kind"], instant(first["due_at"])) == (
        "feedback",
        instant(first["feedback_due"]),
    )
    explain = page["items"][1]
    assert explain["due_kind"] == "explanation" and explain["due_at"] == explain["explain_due"]
    assert page["items"][2]["due_at"] is None  # an alarm waiting to be dispatched


def test_the_queue_sorts_by_a_chosen_column(fleet):
    client = fleet.login("monitor")

    def ids(sort: str) -> list[int]:
        r = client.get("/api/v1/cases", params={"sort": sort})
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    every = sorted(fleet.cases.values())
    assert ids("id") == every and ids("-id") == every[::-1]
    due = ids("due")  # the nearest deadline first, cases without one last
    assert due[:2] == [fleet.cases["late_feedback"], fleet.cases["late_explain"]] or due[:2] == [
        fleet.cases["late_explain"],
        fleet.cases["late_feedback"],
    ]
    assert set(due[2:]) == {fleet.cases[k] for k in ("alarm", "offline", "old_alarm")}
    assert ids("tier")[-2:] == sorted(
        [fleet.cases["late_explain"], fleet.cases["offline"]], reverse=True
    )
    names = [
        x["enterprise_name"] for x in client.get("/api/v1/cases?sort=enterprise").json()["items"]
    ]
    assert names == sorted(names)
    assert client.get("/api/v1/cases", params={"sort": "evidence"}).status_code == 422


def test_the_queue_pages_with_totals(fleet):
    many_cases(fleet, 230)
    client = fleet.login("monitor")
    seen: list[int] = []
    for offset in range(0, 300, 100):
        page = client.get("/api/v1/cases", params={"limit": 100, "offset": offset}).json()
        assert page["total"] == 235
        seen += [x["id"] for x in page["items"]]
    assert len(seen) == len(set(seen)) == 235  # no case twice, none left out


def test_the_rule_filter_takes_any_case_and_the_rule_name(fleet):
    client = fleet.login("monitor")

    def rules(rule: str) -> set[str]:
        return {
            x["rule"] for x in client.get("/api/v1/cases", params={"rule": rule}).json()["items"]
        }

    assert rules("a3") == rules("A3") == {"A3"}
    assert rules("b8") == {"B8"}
    assert rules("离线") == {"B8"}  # 数采仪离线
    assert rules("超标") == {"A3", "A4"}  # 超标, 日均值超标
    assert rules("C5") == set()


def test_the_queue_searches_names_mns_regions_and_numbers(fleet):
    client = fleet.login("monitor")

    def found(q: str) -> set[str]:
        items = client.get("/api/v1/cases", params={"q": q}).json()["items"]
        return {x["enterprise_id"] for x in items}

    assert found("东方") == {"E04"}
    assert found("mn05") == {"E05"}  # an MN, in any case
    assert found("北区") == {"E03"}  # a region: E01 has no case
    assert found("污水") == {"E06"}
    assert found(f"#{fleet.cases['offline']}") == {"E05"}  # a case number
    assert "E05" in found(str(fleet.cases["offline"]))  # a bare number: also MNs with it
    assert found("无此企业") == set()


def test_an_enterprise_sees_only_its_own_cases_in_a_search(fleet):
    """Search narrows the caller's scope, never widens it."""
    fleet.ctx.users.add("ent4", PASSWORD, "enterprise", enterprise_id="E04")
    client = fleet.login("ent4")
    items = client.get("/api/v1/cases", params={"q": "区"}).json()["items"]
    assert {x["enterprise_id"] for x in items} == {"E04"}


# -- the export ----------------------------------------------------------------------------


def read_csv(r: httpx.Response) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the mark
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def test_the_csv_export_has_every_page_in_china_time_and_chinese(fleet):
    many_cases(fleet, 230)
    client = fleet.login("monitor")
    rows = read_csv(client.get("/api/v1/cases/export", params={"format": "csv"}))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["案件编号", "级别", "状态", "企业"]
    assert {"规则名称", "立案时间（北京时间）", "期限（北京时间）", "是否逾期", "MN"} <= set(header)
    assert len(body) == 235  # all of it, not the first page
    col = {h: i for i, h in enumerate(header)}
    by_id = {int(r[0]): r for r in body}
    late = by_id[fleet.cases["late_feedback"]]
    assert (late[col["级别"]], late[col["状态"]], late[col["规则名称"]]) == (
        "报警",
        "已派单",
        "超标",
    )
    assert (late[col["企业"]], late[col["MN"]], late[col["执法大队"]]) == (
        "东方热电",
        "MN04",
        "滨江执法大队",
    )
    assert (late[col["期限类型"]], late[col["是否逾期"]]) == ("反馈期限", "是")
    first_seen = late[col["首次发现（北京时间）"]]
    assert first_seen == (T0 + timedelta(hours=2)).astimezone(CHINA).isoformat()  # +08:00
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", late[col["期限（北京时间）"]])
    # the same filter as the queue: the order too
    filtered = read_csv(client.get("/api/v1/cases/export", params={"rule": "b8"}))
    assert [r[col["规则"]] for r in filtered[1:]] == ["B8"]
    assert filtered[1][col["规则名称"]] == "数采仪离线"
    # each rule family's own quantity, threshold and unit (alerts.quantity), not 监测值 / 限值
    assert "监测值" not in header and "限值" not in header
    assert (late[col["指标"]], late[col["阈值类型"]], late[col["阈值"]]) == (
        "小时均值",
        "排放限值",
        "100.0",
    )
    assert late[col["单位"]].startswith("mg/m")
    offline = filtered[1]
    assert offline[col["指标"]].startswith("离线时长")
    assert offline[col["单位"]] in ("秒", "分钟", "小时")
    assert offline[col["峰值"]] == offline[col["最大超标倍数"]] == ""  # not an exceedance
    queue = client.get("/api/v1/cases", params={"limit": 500}).json()["items"]
    assert [int(r[0]) for r in body] == [x["id"] for x in queue]


def xlsx_rows(content: bytes) -> list[list[str]]:
    """The first sheet's cells as text (shared or inline strings resolved), without openpyxl."""
    m = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        shared = []
        if "xl/sharedStrings.xml" in z.namelist():
            root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{m}t")) for si in root]
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
    out = []
    for row in sheet.iter(f"{m}row"):
        cells = []
        for c in row.findall(f"{m}c"):
            v = c.find(f"{m}v")
            text = "" if v is None else v.text or ""
            if c.get("t") == "s":
                text = shared[int(text)]
            elif c.get("t") == "inlineStr":
                text = "".join(t.text or "" for t in c.iter(f"{m}t"))
            cells.append(text)
        out.append(cells)
    return out


def excel_time(serial: str) -> datetime:
    return datetime(1899, 12, 30) + timedelta(days=float(serial))


def test_the_excel_export_has_chinese_headers_and_china_time(fleet):
    client = fleet.login("monitor")
    r = client.get("/api/v1/cases/export", params={"format": "xlsx", "q": "东方热电"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert ".xlsx" in r.headers["content-disposition"]
    rows = xlsx_rows(r.content)
    header = rows[0]
    col = {h: i for i, h in enumerate(header)}
    assert header[:4] == ["案件编号", "级别", "状态", "企业"]
    assert len(rows) == 3  # E04's two cases
    late = next(row for row in rows[1:] if int(row[0]) == fleet.cases["late_feedback"])
    assert late[col["级别"]] == "报警" and late[col["企业"]] == "东方热电"
    china = (T0 + timedelta(hours=2)).astimezone(CHINA).replace(tzinfo=None)  # 19:00 China time
    assert abs(excel_time(late[col["首次发现（北京时间）"]]) - china) < timedelta(seconds=1)


def test_an_export_too_large_is_refused_not_cut_short(fleet, monkeypatch):
    import nonsite.web.api.cases as api_cases

    monkeypatch.setattr(api_cases, "EXPORT_MAX_ROWS", 3)
    client = fleet.login("monitor")
    r = client.get("/api/v1/cases/export", params={"format": "xlsx"})
    assert (r.status_code, r.json()["code"]) == (422, "export_too_large")
    assert client.get("/api/v1/cases/export", params={"q": "东方"}).status_code == 200


def test_a_spreadsheet_formula_in_a_note_stays_text(fleet):
    with fleet.ctx.db.begin() as conn:
        fleet.ctx.book.act(
            conn,
            fleet.cases["offline"],
            "escalate",
            Actor("m", "monitor"),
            note='=HYPERLINK("http://example.invalid","点此")',
        )
    client = fleet.login("monitor")
    rows = read_csv(client.get("/api/v1/cases/export", params={"q": "恒远"}))
    col = {h: i for i, h in enumerate(rows[0])}
    assert rows[1][col["升级原因"]].startswith("'=HYPERLINK")


# -- in the browser ------------------------------------------------------------------------


@pytest.fixture
def new_page(browser, fleet) -> Iterator[Callable[..., Page]]:
    """``new_page(width)``: a page in a fresh browser context (its own cookies). The contexts
    close when the test ends, before its site stops: a page left open holds its event stream,
    and the server would wait out its graceful-shutdown timeout for it."""
    contexts: list[BrowserContext] = []

    def make(width: int = 1440) -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="zh-CN", timezone_id="UTC"
        )
        contexts.append(context)
        p = context.new_page()
        p.set_default_timeout(10_000)
        return p

    yield make
    for context in contexts:
        context.close()


def ready(page: Page) -> None:
    page.wait_for_selector("body[data-ready='1']")


def overflow(page: Page) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - window.innerWidth")  # > 0: sideways
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_fleet_page_shows_what_is_red_first_and_filters(new_page, fleet):
    page = new_page()
    login(page, fleet, "monitor")
    cards = page.locator("#fleet .card")
    expect(cards.first).to_have_attribute("id", "ent-E04")
    expect(cards.first.locator(".badge")).to_have_text("报警")
    expect(page.locator("#count-never_reported b")).to_have_text("1")
    expect(page.locator("#ent-E02 .badge")).to_have_text("未上线")
    expect(page.locator("#ent-E02")).to_contain_text("从未上报")
    expect(page.locator("#ent-E07")).to_contain_text("从未上报")  # one of its two outlets
    expect(page.locator("#ent-E04 .meta").first).to_contain_text("火电")
    outlet = page.locator("#ent-E04 a.outlet")  # each outlet to its own page
    expect(outlet).to_have_text(["1号锅炉"])
    assert outlet.get_attribute("href") == "/enterprises/E04/outlets/DA001"
    shot(page, "fleet-1440")

    page.click("#count-alarm")  # a tile filters
    expect(cards).to_have_count(2)
    assert cards.evaluate_all("cs => cs.map(c => c.id)") == ["ent-E04", "ent-E06"]
    expect(page.locator("#count-alarm")).to_have_attribute("aria-pressed", "true")
    page.click("#count-alarm")  # again: all
    expect(cards).to_have_count(8)
    page.click("#count-never_reported")
    expect(cards).to_have_count(1)
    page.click("#count-all")  # 全部
    expect(cards).to_have_count(8)

    search = page.locator("#f-q")
    for text, ids in [("北辰", ["E02"]), ("mn61", ["E06"]), ("西区", ["E06", "E07"])]:
        search.fill(text)
        expect(cards).to_have_count(len(ids))
        assert sorted(cards.evaluate_all("cs => cs.map(c => c.id)")) == [f"ent-{i}" for i in ids]
    expect(page.locator("#count-all b")).to_have_text("2")  # the tiles count what is searched
    search.fill("")
    expect(cards).to_have_count(8)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_queue_page_orders_pages_filters_and_exports(new_page, fleet):
    many_cases(fleet, 60)
    page = new_page()
    login(page, fleet, "monitor")
    page.goto(f"{fleet.url}/cases")
    ready(page)
    rows = page.locator("#cases tbody tr")
    expect(rows.first).to_have_attribute("data-case", str(fleet.cases["late_feedback"]))
    expect(rows.first.locator(".due")).to_have_class(re.compile("overdue"))
    expect(page.locator("#pager")).to_contain_text("共 65 条")
    expect(rows).to_have_count(50)
    page.click("#page-next")
    expect(rows).to_have_count(15)
    expect(page.locator("#pager")).to_contain_text("51–65")
    # a sensed alarm waits on a dispatch, and says so
    alarm_row = page.locator(f"#cases tbody tr[data-case='{fleet.cases['alarm']}']")
    page.click("#page-prev")
    expect(alarm_row.locator(".due")).to_have_text("待派单")

    page.fill("#f-rule", "b8")
    page.press("#f-rule", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-case", str(fleet.cases["offline"]))
    href = page.locator("#export-csv").get_attribute("href")
    assert href is not None and "rule=b8" in href and "format=csv" in href
    with page.expect_download() as download:
        page.click("#export-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
    page.fill("#f-rule", "")
    page.press("#f-rule", "Enter")

    page.fill("#f-q", "东方")
    page.press("#f-q", "Enter")
    expect(rows).to_have_count(2)
    page.fill("#f-q", "")
    page.press("#f-q", "Enter")

    page.click("th[data-sort='id']")  # a sortable column: ascending by number
    expect(rows.first).to_have_attribute("data-case", str(min(fleet.cases.values())))
    shot(page, "queue-1440")

    # the fleet's link: the enterprise filter is shown as a chip that can be removed
    page.goto(f"{fleet.url}/cases?enterprise_id=E04")
    ready(page)
    chip = page.locator("#chip-enterprise")
    expect(chip).to_contain_text("东方热电")
    expect(rows).to_have_count(2)
    chip.locator("button").click()
    expect(chip).to_have_count(0)
    expect(page.locator("#pager")).to_contain_text("共 65 条")
    assert "enterprise_id" not in page.url


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_queue_time_range_is_china_time(new_page, fleet):
    page = new_page()
    login(page, fleet, "monitor")
    page.goto(f"{fleet.url}/cases")
    ready(page)
    rows = page.locator("#cases tbody tr")
    expect(rows).to_have_count(5)
    # last seen at T0 + 6 h = 2026-11-23 23:00 China time (the fresh alarm, A4 at hour 5)
    since = page.locator("#f-since")
    assert since.get_attribute("type") in (None, "text")  # not datetime-local: "11:00 PM"
    expect(page.locator("#range-hint")).to_contain_text("例：2026-12-05 08:00")
    since.fill("2026-11-23 23:00")  # typed China time, 24-hour
    since.dispatch_event("change")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-case", str(fleet.cases["alarm"]))
    href = page.locator("#export-csv").get_attribute("href") or ""
    assert "since=2026-11-23T15%3A00%3A00.000Z" in href  # 23:00 +08:00, the same instant
    assert not re.search(r"\b(AM|PM|am|pm)\b", page.locator("main").inner_text())
    since.fill("23/11/2026 11:00 PM")  # not China time as the page asks: named, not searched
    since.dispatch_event("change")
    expect(page.locator("#range-error")).to_contain_text("北京时间")
    expect(rows).to_have_count(1)
    since.fill("")
    since.dispatch_event("change")
    expect(page.locator("#range-error")).to_have_text("")
    expect(rows).to_have_count(5)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width", [360, 390, 414])
def test_the_fleet_queue_and_work_orders_fit_a_phone(new_page, fleet, width):
    page = new_page(width)
    for user, paths in [
        ("supervisor", ["/", "/cases", "/work-orders"]),
        ("enforcer1", ["/work-orders", "/cases"]),
    ]:
        login(page, fleet, user)
        for path in paths:
            page.goto(f"{fleet.url}{path}")
            ready(page)
            assert overflow(page) <= 0, (user, path, overflow(page))
            if width == 390:
                shot(page, f"phone-{user}-{path.strip('/') or 'fleet'}")
        page.click("#logout")
        page.wait_for_url(re.compile(r"/login$"))
