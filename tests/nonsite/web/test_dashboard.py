"""The dashboard in headless Chromium (Playwright driving Debian's chromium): each role logs
in and sees what it should, and one case goes the whole way from sensed to closed through the
UI. Screenshots are saved as test artifacts (``artifacts/screenshots`` under the repository)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.alerts.conftest import finding
from tests.nonsite.web.conftest import shot, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
def page(browser, site):
    # a browser in UTC: the pages must show and take China time whatever the officer's zone
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, locale="zh-CN", timezone_id="UTC"
    )
    p = context.new_page()
    p.set_default_timeout(10_000)
    yield p
    context.close()


def logout(page: Page) -> None:
    page.click("#logout")
    # The page's own reads may meet the ended session first and go to /login?next=… : both
    # are the login page.
    page.wait_for_url(re.compile(r"/login(\?next=[^&]*)?$"))
    page.wait_for_selector("#login-form")


def login(page: Page, site, username: str) -> None:
    if "/login" not in page.url:
        page.goto(f"{site.url}/login")
    sign_in(page, username)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_each_role_lands_on_its_own_view(page, site):
    login(page, site, "monitor")
    expect(page.locator("#ent-E1")).to_contain_text("华能示范电厂")
    expect(page.locator("#ent-E1 .meta").first).to_have_text("滨江区 · 火电")  # not thermal_power
    expect(page.locator("#ent-E1 .badge")).to_have_text("报警")
    expect(page.locator("#count-alarm b")).to_have_text("1")
    shot(page, "fleet-monitor")
    page.click("#nav-cases")
    page.wait_for_selector("#cases tbody tr")
    expect(page.locator("#cases tbody tr")).to_have_count(3)
    expect(page.locator("#bulk")).to_be_visible()  # the monitoring centre verifies in bulk
    shot(page, "queue-monitor")

    logout(page)
    login(page, site, "ent2")
    assert page.url.endswith("/enterprise")
    expect(page.locator("#ent-status")).to_contain_text("城东化工")
    expect(page.locator("#reminders tbody tr[data-case]")).to_have_count(1)
    assert "华能" not in page.content()  # never another enterprise's data
    expect(page.locator("#nav-fleet")).to_have_count(0)
    shot(page, "enterprise-ent2")

    logout(page)
    login(page, site, "enforcer1")
    assert page.url.endswith("/work-orders")
    expect(page.locator("#board [data-stage='open'] .card")).to_have_count(1)
    shot(page, "work-orders-enforcer1")

    page.click("#lang")  # English on demand
    expect(page.locator("#nav-cases")).to_have_text("Alert queue")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_case_goes_from_sensed_to_closed_through_the_ui(page, site):
    case = site.cases["e1_warning"]  # a warning: reminded → explained → verified → …

    def act(user: str, action: str, fill: dict[str, str] | None = None) -> None:
        logout(page)
        login(page, site, user)
        page.goto(f"{site.url}/cases/{case}")
        page.wait_for_selector(f"#act-{action}")
        form = page.locator(f"#act-{action}")
        for field, value in (fill or {}).items():
            target = form.locator(f"[name={field}]")
            if target.evaluate("e => e.tagName") == "SELECT":
                target.select_option(value)
            else:
                target.fill(value)
        form.locator("button[type=submit]").click()
        expect(page.locator(f"#act-{action}")).to_have_count(0)  # done: the form is gone

    login(page, site, "ent1")
    page.wait_for_selector("#act-explain")
    page.locator("#act-explain textarea").fill("脱硫塔检修，已申报维护标记")
    page.locator("#act-explain select[name=marking]").select_option("maintenance")
    shot(page, "enterprise-explains")
    page.locator("#act-explain button[type=submit]").click()
    expect(page.locator("#reminders-empty")).to_be_visible()

    act("monitor", "verify", {"outcome": "confirmed", "note": "视频与数据一致，存疑"})
    act("supervisor", "dispatch", {"brigade": "B1", "note": "请三日内现场核查"})
    act("enforcer1", "arrive")
    act("enforcer1", "report", {"outcome": "rectification_ordered", "note": "责令整改"})
    logout(page)
    login(page, site, "supervisor")
    page.goto(f"{site.url}/cases/{case}")
    page.wait_for_selector("#act-close")
    page.locator("#act-close textarea").fill("整改完成，办结")
    page.locator("#act-close button[type=submit]").click()
    expect(page.locator("#case-head")).to_contain_text("已办结")
    audit = page.locator("#audit li")
    # sense, remind, explain, verify, dispatch, arrive, report, close, and the 回头看 set
    expect(audit).to_have_count(9)
    actions = page.locator("#audit .action")
    expect(actions).to_have_text(
        [
            "感知",
            "提醒企业",
            "企业说明",
            "平台核实",
            "派单",
            "到达现场",
            "现场反馈",
            "办结",
            "安排回头看",
        ]
    )
    shot(page, "case-closed")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_supervisor_sets_a_maintenance_window_from_the_operations_page(page, site):
    login(page, site, "supervisor")
    page.click("#nav-ops")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#silence-form")).to_be_visible()
    form = page.locator("#silence-form")
    form.locator("[name=enterprise_id]").select_option("E1")  # by name: 华能示范电厂
    form.locator("[name=source_id]").select_option("DA001")
    form.locator("[name=ends_at]").fill("2030-01-01 08:00")  # China time, 24-hour
    form.locator("[name=reason]").fill("脱硫塔检修")
    form.locator("button[type=submit]").click()
    expect(page.locator("#silences tbody tr")).to_have_count(1)
    expect(page.locator("#silences tbody")).to_contain_text("脱硫塔检修")
    # the supervisor reads the dead letters too (issue 17): none here, and it says so
    expect(page.locator("#dead-letters-none")).to_have_text("无")
    shot(page, "ops-supervisor")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_enterprise_declares_a_marking_from_its_page(page, site):
    login(page, site, "ent1")
    form = page.locator("#marking-form")
    form.locator("[name=type]").select_option("maintenance")
    form.locator("[name=start]").fill("2026-11-24T08:00")
    form.locator("[name=end]").fill("2026-11-24T12:00")
    form.locator("[name=reason]").fill("脱硫塔检修")
    form.locator("button[type=submit]").click()
    expect(page.locator("#ent-status")).to_contain_text("脱硫塔检修")
    expect(page.locator("#ent-status")).to_contain_text("维护检修")
    # 08:00 typed is 08:00 China time (00:00 UTC), shown back as 08:00
    expect(page.locator("#ent-status")).to_contain_text("2026-11-24 08:00 – 2026-11-24 12:00")
    declared = page.request.get(f"{site.url}/api/v1/markings").json()
    [mine] = [m for m in declared if m.get("reason") == "脱硫塔检修"]
    assert datetime.fromisoformat(mine["start"]) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_a_phone_the_header_and_the_fleet_fit_the_screen(browser, site):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", timezone_id="UTC"
    )
    page = context.new_page()
    try:
        login(page, site, "monitor")
        header = page.locator("header.top").bounding_box()
        assert header is not None and header["width"] <= 390
        logout = page.locator("#logout").bounding_box()
        assert logout is not None and logout["x"] + logout["width"] <= 390  # on screen
        item = page.locator("#nav-cases").bounding_box()
        assert item is not None and item["height"] < 40  # one line, not a character per line
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the fleet page scrolls sideways: {width} px"
        shot(page, "phone-fleet-monitor")
    finally:
        context.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_page_breaks_the_content_security_policy(page, site):
    """The pages (the chart included) and the API docs work under the strict policy: nothing
    is refused, nothing is logged as an error."""
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`));"
    )
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if "/outlets/DA009/series" in message.location.get("url", ""):
            return  # the 404 of the series this test's case has none of
        errors.append(f"{message.text} {message.location}")

    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def visit(url: str, ready: str = "body[data-ready='1']") -> None:
        response = page.goto(url)
        assert response is not None
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector(ready)
        assert page.evaluate("window.__violations") == [], url

    page.goto(f"{site.url}/login")
    assert page.evaluate("window.__violations") == []
    login(page, site, "monitor")
    for path in ("/", "/cases", "/work-orders", "/ops"):
        visit(f"{site.url}{path}")
    # a case of a source without a series: the chart is drawn from the case's own evidence
    with site.ctx.db.begin() as conn:
        [case] = site.ctx.book.apply(conn, [finding(source="DA009")]).opened
        site.ctx.book.apply(conn, [finding(source="DA009", hour=1, value=180.0)])
    visit(f"{site.url}/cases/{case}")
    page.wait_for_selector("#chart .uplot canvas")  # uPlot drew the chart
    page.hover("#chart .u-over")  # its cursor and legend restyle elements as it moves
    page.mouse.move(400, 300)
    logout(page)
    login(page, site, "ent1")
    visit(f"{site.url}/enterprise")
    visit(f"{site.url}/api/docs", ready="#swagger-ui .opblock")
    page.locator("#swagger-ui .opblock-summary").first.click()  # an operation unfolds
    page.wait_for_selector("#swagger-ui .opblock-body")
    assert page.evaluate("window.__violations") == []
    assert errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "next_url",
    ["//evil.example/x", "/\\evil.example/x", "/%09/evil.example/x", "https://evil.example"],
)
def test_logging_in_never_leads_to_another_site(page, site, next_url):
    page.goto(f"{site.url}/login?next={next_url}")
    login(page, site, "monitor")
    assert page.url.startswith(site.url + "/"), page.url


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_logging_in_leads_back_to_the_page_asked_for(page, site):
    page.goto(f"{site.url}/cases")  # not logged in: to /login?next=/cases
    page.wait_for_url(re.compile(r"/login\?next="))
    login(page, site, "monitor")
    assert page.url == f"{site.url}/cases"
