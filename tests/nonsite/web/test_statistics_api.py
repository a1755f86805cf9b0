"""The statistics over real HTTP, on SQLite and PostgreSQL: the site's November per region and
per brigade, and who may read them; the page in a browser on a phone."""

from __future__ import annotations

import io
import re
from datetime import datetime
from itertools import takewhile

import openpyxl
import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from ingest.china_time import CHINA_TZ
from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import browsing, english_words, visible_text


def this_month() -> str:
    """The site's cases are opened now: this China month."""
    return datetime.now(CHINA_TZ).strftime("%Y-%m")


def test_a_months_figures_per_region_and_brigade(site):
    monitor = site.login("monitor")
    s = monitor.get(f"/api/v1/statistics?period={this_month()}").json()
    groups = {g["group"]: g for g in s["groups"]}
    assert [g["group"] for g in s["groups"]] == ["城东区", "滨江区", "合计"]
    # 滨江区 (E1): its alarm (dispatched on site) and its warning (reminded); 城东区 (E2): a warning.
    assert (groups["滨江区"]["opened"], groups["滨江区"]["on_site_checks"]) == (2, 1)
    assert groups["城东区"]["opened"] == 1
    assert groups["合计"]["opened"] == 3
    assert groups["合计"]["by_tier"] == {"alarm": 1, "warning": 2}
    assert groups["合计"]["reminders"] == 2
    year = this_month()[:4]
    by_brigade = monitor.get(f"/api/v1/statistics?period={year}&by=brigade").json()
    assert [g["group"] for g in by_brigade["groups"]] == ["城东执法大队", "滨江执法大队", "合计"]
    assert monitor.get("/api/v1/statistics?period=2025-10").json()["groups"][-1]["opened"] == 0
    assert monitor.get("/api/v1/statistics?period=2026-13").status_code == 422
    for user in ("ent1", "enforcer1", "town1", "legal1"):
        assert site.login(user).get("/api/v1/statistics?period=2026-11").status_code == 403


def test_the_months_report_as_files(site):
    """The report nonsite report writes, from the API: its figures those of the statistics."""
    monitor = site.login("monitor")
    pdf = monitor.get(f"/api/v1/statistics/report?period={this_month()}&format=pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert f'filename="report-{this_month()}-region.pdf"' in pdf.headers["content-disposition"]
    text = re.sub(
        r"\s+", "", "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    )
    assert "滨江区" in text and "城东区" in text and "一、工作概况" in text
    xlsx = monitor.get(f"/api/v1/statistics/report?period={this_month()}&by=brigade&format=xlsx")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["工作概况"]
    rows = {
        r[0]: r for r in takewhile(lambda r: r[0], sheet.iter_rows(min_row=4, values_only=True))
    }
    figures = {
        g["group"]: g
        for g in monitor.get(f"/api/v1/statistics?period={this_month()}&by=brigade").json()[
            "groups"
        ]
    }
    assert set(rows) == set(figures)
    for group, row in rows.items():  # 预警提醒, 新增案件, 现场检查 as the statistics say
        assert (row[1], row[6], row[5]) == (
            figures[group]["reminders"],
            figures[group]["opened"],
            figures[group]["on_site_checks"],
        ), group
    assert monitor.get("/api/v1/statistics/report?period=2026-13").status_code == 422
    assert (
        monitor.get(f"/api/v1/statistics/report?period={this_month()}&format=doc").status_code
        == 422
    )
    assert (
        site.login("ent1").get(f"/api/v1/statistics/report?period={this_month()}").status_code
        == 403
    )


@pytest.mark.integration
@pytest.mark.parametrize("width", [390, 1440])
def test_the_statistics_page_on_a_phone(browser, fresh_site, width):
    site = fresh_site  # its users have their names (the header shows them)
    with browsing(browser, tz="UTC", width=width) as page:
        login(page, site, "supervisor")
        page.click("#nav-statistics")
        page.fill("#stat-period", this_month())
        page.click("#stat-form button[type=submit]")
        table = page.locator("table.stat-table")
        expect(table).to_contain_text("滨江区")
        expect(table.locator("tr.total")).to_contain_text("合计")
        expect(page.locator("#stat-span")).to_contain_text(f"{this_month()}-01 00:00")  # China time
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert english_words(visible_text(page)) == []
        with page.expect_download() as download:
            page.click("#stat-pdf")
        assert download.value.suggested_filename == f"report-{this_month()}-region.pdf"
        pages = PdfReader(download.value.path()).pages
        assert "工作概况" in "".join(p.extract_text() for p in pages)
        shot(page, f"statistics-supervisor-{width}")


@pytest.mark.integration
def test_a_slow_answer_to_the_default_period_does_not_overwrite_the_one_asked_for(
    browser, fresh_site
):
    """The page asks for last month as it opens; a person asks for this month before that
    answer comes. The late answer is dropped: the table and its span stay this month's."""
    site = fresh_site
    held: list = []

    def hold_the_default(route):  # last month's answer, held back until this month's is shown
        if this_month() in route.request.url:
            route.continue_()
        else:
            held.append(route)

    with browsing(browser, tz="UTC", width=1440) as page:
        login(page, site, "supervisor")
        page.route("**/api/v1/statistics?*", hold_the_default)
        page.click("#nav-statistics")
        for _ in range(200):  # the page's own first question, asked once its form is wired
            if held:
                break
            page.wait_for_timeout(50)
        page.fill("#stat-period", this_month())
        page.click("#stat-form button[type=submit]")
        table = page.locator("table.stat-table")
        expect(table).to_contain_text("滨江区")
        assert len(held) == 1
        with page.expect_response(lambda r: "/statistics?" in r.url):
            held[0].continue_()
        page.wait_for_timeout(500)  # the late answer's turn to be drawn (or dropped)
        expect(table).to_contain_text("滨江区")
        expect(page.locator("#stat-span")).to_contain_text(f"{this_month()}-01 00:00")
        assert page.locator("#stat-pdf").get_attribute("href").count(f"period={this_month()}") == 1
