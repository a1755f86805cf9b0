"""The statistics over real HTTP, on SQLite and PostgreSQL: the site's November per region and
per brigade, and who may read them; the page in a browser on a phone."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import expect

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


@pytest.mark.integration
def test_the_statistics_page_on_a_phone(browser, fresh_site):
    site = fresh_site  # its users have their names (the header shows them)
    with browsing(browser, tz="America/New_York", width=390) as page:
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
        shot(page, "statistics-supervisor-390")
