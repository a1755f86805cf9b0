"""A 双随机 inspection in the browser: drawn by a supervisor, it reaches the brigade's officer as
a work order; its case page on a phone names the draw and its inspectors, in Chinese, with no
chart of its own."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from nonsite.inspection_draws import make_draw
from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import browsing, english_words, visible_text

pytestmark = pytest.mark.integration


def test_the_brigade_opens_its_drawn_inspection_on_a_phone(browser, fresh_site):
    site = fresh_site
    doc = make_draw(
        site.ctx.db, site.ctx.config, site.ctx.book, "2026Q4", "滨江-2026Q4-公开种子",
        "李监管", datetime.now(UTC),
    )  # fmt: skip
    drawn = {d["enterprise_id"]: d for d in doc["drawn"]}
    assert drawn, doc["quotas"]
    enterprise, case_id = next(iter(doc["cases"].items()))
    brigade = drawn[enterprise]["brigade"]
    officer = "enforcer1" if brigade == "B1" else "enforcer2"
    with browsing(browser, tz="UTC", width=390) as page:
        login(page, site, officer)
        page.goto(f"{site.url}/cases/{case_id}")
        expect(page.locator("body")).to_contain_text("双随机检查")
        expect(page.locator("body")).to_contain_text("2026Q4 双随机抽查")
        expect(page.locator(".case-chart")).to_be_hidden()
        assert english_words(visible_text(page)) == []
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        shot(page, "inspection-case-enforcer-390")


@pytest.mark.parametrize("width", [1440, 390])
def test_a_supervisor_draws_a_quarter_on_the_page(browser, fresh_site, width):
    site = fresh_site
    with browsing(browser, tz="UTC", width=width) as page:
        login(page, site, "supervisor")
        page.goto(f"{site.url}/risk")
        expect(page.locator("#draw-list")).to_contain_text("尚未抽取")
        page.fill("#draw-period", "2026Q4")
        page.fill("#draw-seed", "滨江-2026Q4-公开种子")
        page.click("#draw-submit")
        expect(page.locator("#draw-result")).to_contain_text("2026Q4 已抽取")
        card = page.locator("#draw-2026Q4")
        expect(card).to_contain_text("复核一致")
        expect(card).to_contain_text("一般监管")
        expect(card.locator("a").first).to_have_attribute("href", re.compile(r"^/cases/\d+$"))
        page.click("#draw-submit")  # the same period again: refused, in Chinese
        expect(page.locator("#draw-result")).to_have_text("该抽查期已抽取，不能重抽")
        assert english_words(visible_text(page)) == []
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        shot(page, f"draws-supervisor-{width}")
