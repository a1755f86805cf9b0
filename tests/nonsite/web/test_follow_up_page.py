"""Rectification through the case page: a supervisor orders it, the enterprise reports it done
from a phone (390 px), the brigade verifies it on site, the supervisor strikes it off (销号),
and the 回头看 that follows is on the page, in Chinese and China time."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import browsing, english_words, visible_text, visit

pytestmark = pytest.mark.integration


def test_a_rectification_through_the_case_page(browser, fresh_site):
    site = fresh_site
    url = f"{site.url}/cases/{site.cases['alarm']}"
    with browsing(browser, width=1440) as page:
        login(page, site, "supervisor")
        visit(page, url)
        expect(page.locator("#follow-up")).to_contain_text("未责令整改")
        page.fill("#fu-order-requirement", "疏通脱硫塔喷淋层，更换循环泵")
        page.fill("#fu-order-days", "10")
        page.click("#fu-order button[type=submit]")
        expect(page.locator("#follow-up .round")).to_contain_text("第1轮整改")
        expect(page.locator("#follow-up .round")).to_contain_text("整改中")
    with browsing(browser, width=390) as page:
        login(page, site, "ent1")
        visit(page, url)
        page.fill("#fu-report-note", "已更换循环泵，喷淋层已疏通")
        page.click("#fu-report button[type=submit]")
        expect(page.locator("#follow-up .round")).to_contain_text("已报整改完成")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert english_words(visible_text(page)) == []
        shot(page, "rectification-enterprise-390")
    with browsing(browser, width=390) as page:
        login(page, site, "enforcer1")
        visit(page, url)
        page.select_option("#fu-verify-method", "on_site")
        page.select_option("#fu-verify-outcome", "passed")
        page.fill("#fu-verify-note", "现场核实设施运行正常")
        page.click("#fu-verify button[type=submit]")
        expect(page.locator("#follow-up .round")).to_contain_text("核查通过")
    with browsing(browser, width=1440) as page:
        login(page, site, "supervisor")
        visit(page, url)
        page.click("#fu-close button[type=submit]")
        expect(page.locator("#follow-up .round")).to_contain_text("已销号")
        recheck = page.locator("#follow-up .recheck")
        expect(recheck).to_contain_text("回头看")
        expect(recheck).to_contain_text("待复查")
        expect(recheck).to_contain_text("整改销号")
        expect(page.locator("#audit")).to_contain_text("安排回头看")
        assert english_words(visible_text(page)) == []
        shot(page, "rectification-supervisor-1440")
