"""The case page in headless Chromium over a real store and a real raw archive: each rule
family shows its own quantity with its own unit, the pollutant chart draws the emission limit
(not a rule's threshold) and marks the rule's window, a power case charts its meters, the page
fits a phone, actions open one labelled form each, a case can be taken (认领), and an unknown
case or page is a real not-found page.

One day (2026-03-02, China time) of one coal boiler (SO2 limit 100 mg/m3): minute data
00:00-14:00 flagged D from 02:00 to 07:00 (B9) and high at 08:00 (A3), too few records for the
day (B10); a coal mill (production) and its dust fan (control), the fan off 08:00-09:00 while
the mill runs (C1), the mill running during an emergency order 10:00-14:00 (C5). The findings
are the ones the rules give for this, applied through the real CaseBook."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from alerts.workflow import Actor
from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from nonsite.config.load import parse_config
from nonsite.web.context import WebContext
from rules.findings import Finding
from tests.nonsite.web.conftest import (
    BOILER,
    BRIGADES,
    E1,
    PASSWORD,
    login,
    serving,
    shot,
    web_context,
)

pytestmark = pytest.mark.integration

D = datetime(2026, 3, 2, tzinfo=CHINA_TZ)
SO2, O2 = "a21026", "a19001"
COD = "w01018"
# The plant's wastewater outlet: COD with a daily limit only (GB 18918 一级A, 50 mg/L), so an
# hour above it is a warning (预警值 50 mg/L) and there is no hourly emission limit.
WASTEWATER = {
    "id": "DW001",
    "name": "废水总排口",
    "kind": "water",
    "mn": "MN2",
    "pw": "123456",
    "preset": "municipal_wwtp_1A",
}
ORDER = "应急〔2026〕3号"


def config_doc(data_dir: Path) -> dict:
    return {
        "service": {"data_dir": str(data_dir)},
        "brigades": BRIGADES,
        "enterprises": [
            {
                **E1,
                "outlets": [
                    {**BOILER, "limits": {SO2: {"hour_alarm": 100.0}}},
                    {**WASTEWATER, "limits": {COD: {"day_alarm": 50.0}}},
                ],
                "meters": [
                    {
                        "id": "M1",
                        "name": "1号磨煤机",
                        "role": "production",
                        "rated_kw": 200,
                        "outlets": ["DA001"],
                    },
                    {
                        "id": "M2",
                        "name": "1号除尘风机",
                        "role": "control",
                        "rated_kw": 50,
                        "serves": ["M1"],
                    },
                ],
                "orders": [
                    {
                        "kind": "emergency",
                        "reference": ORDER,
                        "start": (D + timedelta(hours=10)).isoformat(),
                        "end": (D + timedelta(hours=14)).isoformat(),
                        "devices": ["M1"],
                    }
                ],
            },
        ],
    }


def minute_frame(t: datetime, so2: float, flag: str) -> bytes:
    pol = {SO2: {"Avg": so2, "Flag": flag}, O2: {"Avg": 9.0, "Flag": "N"}}
    [packet] = data_packets(
        st="31", cn="2051", pw="123456", mn="MN1", data_time=t, pollutants=pol, ack=False
    )
    return packet


def archive_messages() -> list[IncomingMessage]:
    out: list[IncomingMessage] = []
    for m in range(0, 14 * 60, 10):
        t = D + timedelta(minutes=m)
        hour = m // 60
        flag = "D" if 2 <= hour < 7 else "N"
        so2 = 150.0 if hour == 8 else 40.0 + (m % 60) / 10  # normal SO2 sits near 40
        out.append(
            IncomingMessage(
                to_us(t + timedelta(minutes=1)), "hj212/MN1", minute_frame(t, so2, flag)
            )
        )
        cod = 62.0 if hour == 8 else 30.0
        [packet] = data_packets(
            st="32", cn="2051", pw="123456", mn="MN2", data_time=t,
            pollutants={COD: {"Avg": cod, "Flag": "N"}}, ack=False,
        )  # fmt: skip
        out.append(IncomingMessage(to_us(t + timedelta(minutes=1)), "hj212/MN2", packet))
    for m in range(6 * 60, 14 * 60, 5):
        t = D + timedelta(minutes=m)
        fan = 0.5 if 8 * 60 <= m < 9 * 60 else 40.0
        for meter, kw in (("M1", 160.0), ("M2", fan)):
            doc = {"ts": t.isoformat(), "p_kw": kw}
            out.append(
                IncomingMessage(
                    to_us(t + timedelta(seconds=3)), f"power/{meter}", json.dumps(doc).encode()
                )
            )
    return sorted(out, key=lambda m: m.received_us)


def at(hours: float) -> int:
    return int((D + timedelta(hours=hours)).timestamp())


def outlet_finding(rule: str, start: float, length: float, **kw) -> Finding:
    return Finding(
        rule=rule,
        state=kw.pop("state", "fire"),
        enterprise_id="E1",
        source_id="DA001",
        factor=kw.pop("factor", SO2),
        window_start=at(start),
        window_end=at(start + length),
        params_id="E1/DA001",
        params_version="t",
        **kw,
    )


def meter_finding(rule: str, source: str, start: float, end: float, **kw) -> Finding:
    return Finding(
        rule=rule,
        state=kw.pop("state", "fire"),
        enterprise_id="E1",
        source_id=source,
        factor=None,
        window_start=at(start),
        window_end=at(end),
        params_id="E1/power",
        params_version="t",
        **kw,
    )


# What the rules give for the day above (rules/judge.py, rules/power_judge.py): B9 in hours,
# B10 in %, A3 in the factor's unit with its 超标倍数, C1 and C5 episodes without a value.
FINDINGS = {
    "A3-water": [
        Finding(
            "A3", "fire", "E1", "DW001", COD, at(8), at(9), "warning", 62.0, 50.0, "mg/L",
            None, "E1/DW001", "t", {"measured": 62.0, "source": "minutes"},
        )
    ],
    "A3": [
        outlet_finding(
            "A3", 8, 1, tier="alarm", value=187.5, limit=100.0, unit="mg/m3", multiple=0.875,
            evidence={"measured": 150.0, "o2": 9.0, "reference_o2": 6.0, "converted": 187.5},
        )
    ],
    "B9": [
        outlet_finding(
            "B9", h, 1, tier="warning", value=float(h - 1), limit=4.0, unit="h",
            evidence={"flag": "D", "hours": h - 1},
        )
        for h in (5, 6)
    ],
    "B10": [
        outlet_finding(
            "B10", 0, 24, tier="warning", value=58.33, limit=90.0, unit="%",
            evidence={"received": 84, "valid": 84, "expected": 144, "interval_s": 600},
        )
    ],
    "C1": [
        meter_finding("C1", "M2", 8, 8 + 10 / 60, tier="warning", evidence={"production": ["M1"]}),
        meter_finding(
            "C1", "M2", 9, 9, state="clear", tier="warning",
            evidence={"production": ["M1"], "since": at(8)},
        ),
    ],
    "C5": [
        meter_finding(
            "C5", "M1", 10, 10 + 10 / 60, tier="alarm",
            evidence={"order": ORDER, "order_start": at(10), "order_end": at(14)},
        )
    ],
}  # fmt: skip


@dataclass
class CaseSite:
    ctx: WebContext
    url: str
    cases: dict[str, int]  # rule → case id
    client: httpx.Client


@pytest.fixture(scope="module")
def case_site(tmp_path_factory, fast_hashes) -> Iterator[CaseSite]:
    data_dir = tmp_path_factory.mktemp("case-page")
    archive = RawArchive(data_dir / "archive.sqlite3", durability="normal")
    archive.append(archive_messages())
    archive.close()
    config = parse_config(config_doc(data_dir), "test.toml", env={})
    ctx = web_context(config, f"sqlite:///{data_dir / 'nonsite.db'}")
    ids: dict[str, int] = {}
    for rule, findings in FINDINGS.items():
        with ctx.db.begin() as conn:
            applied = ctx.book.apply(conn, findings)
        [ids[rule]] = applied.opened
    with ctx.db.begin() as conn:  # the A3 alarm goes to the brigade
        ctx.book.act(conn, ids["A3"], "dispatch", Actor("sup", "supervisor"))
    with serving(ctx) as (server, client):
        yield CaseSite(ctx, server.url, ids, client)


def new_page(browser: Browser, width: int = 1440, height: int = 900) -> Page:
    # a browser in UTC: the page shows China time whatever the officer's zone
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="zh-CN", timezone_id="UTC"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def page(browser) -> Iterator[Page]:
    p = new_page(browser)
    yield p
    p.context.close()


@pytest.fixture
def phone(browser) -> Iterator[Page]:
    p = new_page(browser, 390, 844)
    yield p
    p.context.close()


def open_case(page: Page, site: CaseSite, rule: str) -> None:
    page.goto(f"{site.url}/cases/{site.cases[rule]}")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#chart .uplot canvas")


def legend(page: Page) -> list[str]:
    return page.locator("#chart .u-legend .u-series .u-label").all_inner_texts()


# -- 1: each rule family its own quantity ------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "quantity", "value", "limit"),
    [
        ("B9", "标记持续时长", "5 小时", "预警时长 4 小时"),
        ("B10", "有效传输率", "58.33 %", "最低要求 90 %"),
        ("A3", "小时均值（折算）", "187.5 mg/m3", "排放限值 100 mg/m3"),
        ("C1", "不同步时长", "60 分钟", None),
    ],
)
def test_each_rule_family_shows_its_own_quantity_and_unit(
    page, case_site, rule, quantity, value, limit
):
    login(page, case_site, "monitor")
    open_case(page, case_site, rule)
    head = page.locator("#case-quantity")
    expect(head.locator(".q-name")).to_have_text(quantity)
    expect(head.locator(".q-value")).to_have_text(value)
    if limit is None:
        expect(head.locator(".q-limit")).to_have_count(0)
    else:
        expect(head.locator(".q-limit")).to_have_text(limit)
    text = page.locator("#case").inner_text()
    assert "mg/L" not in text
    if rule == "A3":  # the multiple only for an exceedance
        expect(page.locator("#evidence")).to_contain_text("最大超标倍数")
        expect(page.locator("#evidence")).to_contain_text("0.875")
    else:
        expect(page.locator("#evidence")).not_to_contain_text("超标倍数")
    shot(page, f"case-{rule.lower()}-1440")

    # the queue row says the same
    page.goto(f"{case_site.url}/cases")
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#f-open").uncheck()  # C1's case resolved when its episode ended
    page.wait_for_selector(f"#cases tbody tr[data-case='{case_site.cases[rule]}']")
    row = page.locator(f"#cases tbody tr[data-case='{case_site.cases[rule]}']")
    expect(row).to_contain_text(quantity)
    expect(row).to_contain_text(value)
    if rule == "C1":
        shot(page, "queue-quantities-1440")


def test_the_api_states_each_quantity_with_its_unit(case_site):
    client = case_site.client
    client.cookies.clear()
    client.post("/api/v1/session", json={"username": "monitor", "password": PASSWORD})
    got = {
        rule: client.get(f"/api/v1/cases/{case_id}").json()["case"]
        for rule, case_id in case_site.cases.items()
    }
    q = {rule: c["quantity"] for rule, c in got.items()}
    assert (q["B9"]["name"], q["B9"]["value"], q["B9"]["unit"]) == ("标记持续时长", 5.0, "h")
    assert (q["B9"]["limit_name"], q["B9"]["limit"]) == ("预警时长", 4.0)
    assert (q["B10"]["name"], q["B10"]["unit"], q["B10"]["limit"]) == ("有效传输率", "%", 90.0)
    assert (q["A3"]["limit_name"], q["A3"]["exceedance"]) == ("排放限值", True)
    assert (q["C1"]["name"], q["C1"]["value"], q["C1"]["unit"]) == ("不同步时长", 60.0, "min")
    assert q["C5"]["name"] == "违规运行时长" and q["C5"]["unit"] == "min"
    for rule in ("B9", "B10", "C1", "C5"):
        assert q[rule]["exceedance"] is False and got[rule]["peak_multiple"] is None
    assert got["A3"]["peak_multiple"] == 0.875
    # the time the chart marks: B9 from the first flagged hour (02:00; it fired at the fourth,
    # 05:00) to the last (07:00), C1 from 08:00 to its end at 09:00
    assert datetime.fromisoformat(q["B9"]["since"]) == D + timedelta(hours=2)
    assert datetime.fromisoformat(q["B9"]["until"]) == D + timedelta(hours=7)
    assert datetime.fromisoformat(q["C1"]["since"]) == D + timedelta(hours=8)
    assert datetime.fromisoformat(q["C1"]["until"]) == D + timedelta(hours=9)


# -- 1: the pollutant chart draws the emission limit, not the rule's threshold -------------


def test_a_warning_against_a_daily_limit_charts_its_warning_level_not_no_limit(
    page, phone, case_site
):
    """An hour of COD above the daily limit of a wastewater outlet that has no hourly one:
    the chart draws the 预警值 the warning is about, and does not say there is no limit."""
    login(page, case_site, "monitor")
    open_case(page, case_site, "A3-water")
    labels = " ".join(legend(page))
    assert "预警值（小时均值）" in labels, labels
    assert "排放限值" not in labels, labels  # no hourly emission limit to draw
    note = page.locator("#chart-note")
    expect(note).to_contain_text("橙色点线：预警值 50 mg/L（小时均值）")
    expect(note).not_to_contain_text("无排放限值")
    shot(page, "case-warning-level-1440")
    login(phone, case_site, "monitor")  # on a phone: the same line and note, fitting
    open_case(phone, case_site, "A3-water")
    expect(phone.locator("#chart-note")).to_contain_text("预警值 50 mg/L")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "case-warning-level-390")


@pytest.mark.parametrize("rule", ["B9", "B10", "A3"])
def test_the_pollutant_chart_draws_the_emission_limit_and_marks_the_rules_window(
    page, case_site, rule
):
    login(page, case_site, "monitor")
    open_case(page, case_site, rule)
    labels = legend(page)
    assert "排放限值" in " ".join(labels), labels  # SO2's hourly limit, 100 mg/m3
    assert not [x for x in labels if x.strip() == "限值"], labels  # no rule threshold as a limit
    note = page.locator("#chart-note")
    expect(note).to_contain_text("排放限值 100 mg/m3")
    expect(note).to_contain_text("阴影")  # the rule's window is marked
    if rule != "A3":
        expect(note).not_to_contain_text("4 小时")
        expect(note).not_to_contain_text("90 %")


# -- 2: power cases chart their meters ---------------------------------------------------


@pytest.mark.parametrize("rule", ["C1", "C5"])
def test_a_power_case_charts_the_production_and_control_meters(page, case_site, rule):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, case_site, "monitor")
    open_case(page, case_site, rule)
    labels = " ".join(legend(page))
    assert "1号磨煤机" in labels and "1号除尘风机" in labels, labels
    assert "kW" in labels
    note = page.locator("#chart-note")
    expect(note).to_contain_text("开启")  # the on/off thresholds
    if rule == "C5":
        expect(note).to_contain_text(ORDER)
        expect(note).to_contain_text("2026-03-02 10:00")
    shot(page, f"case-{rule.lower()}-1440")
    assert errors == []  # no 404 of an outlet series for a meter


# -- 3: a phone first ----------------------------------------------------------------------


def test_on_a_phone_the_case_page_fits_and_the_actions_are_in_reach(phone, case_site):
    login(phone, case_site, "enforcer1")
    open_case(phone, case_site, "A3")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= phone.evaluate("innerWidth"), f"the case page scrolls sideways: {width} px"
    for action in ("arrive", "report"):
        button = phone.locator(f"#open-{action}")
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert box["height"] >= 36  # a thumb's target
    chart = phone.locator("#chart .uplot").bounding_box()
    assert chart is not None and chart["width"] <= 390
    expect(phone.locator("#photos")).to_be_visible()  # where the camera's photos will go
    shot(phone, "case-a3-enforcer-390")

    phone.locator("#open-report").click()  # opens its one form
    form = phone.locator("#act-report")
    expect(form).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "case-a3-report-390")

    phone.set_viewport_size({"width": 360, "height": 740})  # the chart follows the window
    fits = "document.querySelector('#chart .uplot').offsetWidth <= innerWidth - 40"
    for _ in range(50):  # polled from here: the page's policy forbids evaluating strings
        if phone.evaluate(fits):
            break
        phone.wait_for_timeout(100)
    assert phone.evaluate(fits)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360


def test_a_meter_case_fits_a_phone_too(phone, case_site):
    login(phone, case_site, "monitor")
    open_case(phone, case_site, "C1")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "case-c1-monitor-390")


# -- 8: one labelled form per action; a real not-found page --------------------------------


def test_each_action_has_one_labelled_form_opened_by_its_button(page, case_site):
    login(page, case_site, "supervisor")
    page.goto(f"{case_site.url}/cases/{case_site.cases['C5']}")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#actions textarea:visible")).to_have_count(1)  # one note box at most
    page.locator("#open-dispatch").click()
    form = page.locator("#act-dispatch")
    expect(form).to_be_visible()
    for name in ("brigade", "kind", "due", "note"):
        field = form.locator(f"[name={name}]")
        field_id = field.get_attribute("id")
        assert field_id, name
        label = form.locator(f"label[for='{field_id}']")
        expect(label).to_be_visible()
        assert label.inner_text().strip(), name
    # the brigade by its name, the case's own chosen
    brigade = form.locator("[name=brigade]")
    assert brigade.evaluate("e => e.options[e.selectedIndex].text") == "滨江执法大队"
    expect(page.locator("#evidence")).to_contain_text("滨江执法大队")
    expect(page.locator("#actions textarea:visible")).to_have_count(1)
    page.locator("#open-comment").click()  # another action: its own form, the other closes
    expect(page.locator("#act-comment")).to_be_visible()
    expect(page.locator("#act-dispatch")).to_be_hidden()
    expect(page.locator("#actions textarea:visible")).to_have_count(1)
    shot(page, "case-c5-supervisor-comment")


def test_the_dispatch_due_date_is_typed_in_china_time(page, case_site):
    case_id = case_site.cases["C5"]
    login(page, case_site, "supervisor")
    page.goto(f"{case_site.url}/cases/{case_id}")
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#open-dispatch").click()
    form = page.locator("#act-dispatch")
    due = form.locator("[name=due]")
    assert due.get_attribute("type") in (None, "text")  # not datetime-local: "08:00 AM"
    expect(form).to_contain_text("例：2026-12-05 08:00")
    due.fill("2026-13-05 08:00")  # no 13th month: refused in Chinese, nothing sent
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_contain_text("北京时间")
    assert "北京时间" in due.evaluate("e => e.validationMessage")
    shot(page, "case-c5-dispatch-due")
    due.fill("2026-12-05 08:00")
    form.locator("button[type=submit]").click()
    expect(page.locator("#evidence")).to_contain_text("2026-12-05 08:00")
    order = page.request.get(f"{case_site.url}/api/v1/cases/{case_id}").json()["work_order"]
    assert datetime.fromisoformat(order["due_at"]) == datetime(2026, 12, 5, 8, tzinfo=CHINA_TZ)
    assert not re.search(r"\b(AM|PM|am|pm)\b", page.locator("body").inner_text())


def test_a_form_sent_again_after_a_lost_reply_acts_once(page, case_site):
    # The first reply never reaches the phone (the server acted; the signal dropped): the
    # officer taps again and the form sends the same Idempotency-Key, so the comment is
    # recorded once.
    case_id = case_site.cases["C5"]
    login(page, case_site, "supervisor")
    page.goto(f"{case_site.url}/cases/{case_id}")
    page.wait_for_selector("body[data-ready='1']")
    keys: list[str | None] = []

    def lose_the_first_reply(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        response = route.fetch()  # the server acts
        if len(keys) == 1:
            route.abort("connectionreset")
        else:
            route.fulfill(response=response)

    page.route(f"**/api/v1/cases/{case_id}/actions/comment", lose_the_first_reply)
    page.locator("#open-comment").click()
    form = page.locator("#act-comment")
    form.locator("[name=note]").fill("已电话提醒企业")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).not_to_be_empty()
    form.locator("button[type=submit]").click()
    expect(page.locator("#events, #evidence, body").first).to_contain_text("已电话提醒企业")
    assert len(keys) == 2 and keys[0] == keys[1] and (keys[0] or "").startswith("web-")
    events = page.request.get(f"{case_site.url}/api/v1/cases/{case_id}").json()["events"]
    assert [e["note"] for e in events].count("已电话提醒企业") == 1


def test_the_case_links_its_outlet_and_its_record(page, case_site):
    case_id = case_site.cases["A3"]
    login(page, case_site, "monitor")
    open_case(page, case_site, "A3")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "case-a3-links-390")
    source = page.locator("#case-source a")
    assert source.get_attribute("href") == "/enterprises/E1/outlets/DA001"
    expect(source).to_contain_text("1号锅炉")
    record = page.locator("#export-json")
    assert record.get_attribute("href") == f"/api/v1/cases/{case_id}/record"
    csv_link = page.locator("#export-csv")
    expect(csv_link).to_have_text("导出 CSV")
    assert csv_link.get_attribute("href") == f"/api/v1/cases/{case_id}/record?format=csv"
    as_json = page.request.get(f"{case_site.url}/api/v1/cases/{case_id}/record")
    assert as_json.ok and as_json.headers["content-type"].startswith("application/json")
    as_csv = page.request.get(f"{case_site.url}/api/v1/cases/{case_id}/record?format=csv")
    assert as_csv.ok and as_csv.headers["content-type"].startswith("text/csv")
    source.click()
    page.wait_for_url(re.compile(r"/enterprises/E1/outlets/DA001$"))
    open_case(page, case_site, "C1")  # a meter has no outlet page
    expect(page.locator("#case-source")).to_contain_text("1号除尘风机")
    expect(page.locator("#case-source a")).to_have_count(0)


def test_an_unknown_case_or_page_is_a_real_not_found_page(page, case_site):
    login(page, case_site, "monitor")
    for path in ("/cases/9999", "/cases/abc", "/no-such-page", "/cases/1/extra"):
        response = page.goto(f"{case_site.url}{path}")
        assert response is not None and response.status == 404, path
        expect(page.locator("h2")).to_contain_text("页面不存在")
        link = page.locator("#not-found a.back")
        expect(link).to_be_visible()
        assert link.get_attribute("href") == "/"
    shot(page, "not-found")
    api = case_site.client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
    assert case_site.client.get("/static/no-such.js").status_code == 404
    assert case_site.client.get("/static/app.css").status_code == 200


def test_an_enterprise_cannot_tell_another_enterprises_case_from_a_missing_one(page, case_site):
    login(page, case_site, "ent2")
    response = page.goto(f"{case_site.url}/cases/{case_site.cases['A3']}")
    assert response is not None and response.status == 404
    expect(page.locator("#not-found")).to_be_visible()


# -- 10: who handles it; one-click acknowledge ---------------------------------------------


def test_an_officer_takes_a_case_with_one_click_and_it_shows_in_the_queue(phone, case_site):
    case_id = case_site.cases["A3"]
    login(phone, case_site, "enforcer1")
    open_case(phone, case_site, "A3")
    expect(phone.locator("#case-assignee")).to_contain_text("未认领")
    phone.locator("#act-acknowledge button").click()  # one click, no form
    expect(phone.locator("#case-assignee")).to_contain_text("enforcer1-显示名")
    expect(phone.locator("#act-acknowledge")).to_have_count(0)  # taken: not offered again
    expect(phone.locator("#audit")).to_contain_text("认领")
    shot(phone, "case-a3-taken-390")
    phone.goto(f"{case_site.url}/cases")
    phone.wait_for_selector(f"#cases tbody tr[data-case='{case_id}']")
    expect(phone.locator(f"#cases tbody tr[data-case='{case_id}']")).to_contain_text(
        "enforcer1-显示名"
    )
