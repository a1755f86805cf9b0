"""Decisions through the case page: a supervisor records a fine above the major amount, which
waits; the legal reviewer approves it from a phone (390 px); the case then closes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import browsing, english_words, visible_text, visit

pytestmark = pytest.mark.integration


def test_a_fine_waits_for_the_legal_review_in_the_browser(browser, fresh_site):
    site = fresh_site
    url = f"{site.url}/cases/{site.cases['alarm']}"
    with browsing(browser, width=1440) as page:
        login(page, site, "supervisor")
        visit(page, url)
        page.select_option("#dec-kind", "fine")
        page.fill("#dec-amount", "250000")
        page.fill("#dec-number", "环罚字〔2026〕131号")
        page.fill("#dec-ground", "《大气污染防治法》第九十九条")
        page.click("#dec-form button[type=submit]")
        decision = page.locator("#decisions .decision").first
        expect(decision).to_contain_text("罚款 250,000 元")
        expect(decision).to_contain_text("待法制审核")
        expect(page.locator("#dec-form")).to_have_count(0)  # none while one waits
    with browsing(browser, width=390) as page:
        login(page, site, "legal1")
        assert page.url.endswith("/cases")  # the legal reviewer's home: the queue
        waiting = page.locator("#review-queue .review-item")
        expect(waiting).to_have_count(1)  # its work first: the decision awaiting review
        expect(waiting).to_contain_text("罚款 250,000 元")
        shot(page, "review-queue-legal-390")
        with page.expect_navigation():
            waiting.locator("a").click()
        page.wait_for_selector("body[data-ready='1']")
        assert page.url == url
        page.fill(
            f"#{page.locator('#decisions textarea').first.get_attribute('id')}",
            "程序合法，数额适当",
        )
        page.locator("#decisions button", has_text="审核通过").click()
        expect(page.locator("#decisions .decision").first).to_contain_text("已生效")
        expect(page.locator("#audit")).to_contain_text("法制审核")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert english_words(visible_text(page)) == []
        shot(page, "decision-legal-390")
