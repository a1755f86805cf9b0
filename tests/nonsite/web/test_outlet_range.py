"""The outlet page's typed range (up to a year, issue 22): a range longer than 366 days or
ending before it starts is refused in the page, in Chinese, and the chart keeps its range."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import browsing, visit

pytestmark = pytest.mark.integration


def test_a_range_over_a_year_or_backwards_is_refused_in_chinese(browser, fresh_site):
    site = fresh_site
    with browsing(browser, width=390) as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/enterprises/E1/outlets/DA001")
        before = page.input_value("#range-since")
        for since, until in (
            ("2025-01-01 00:00", "2026-12-05 00:00"),
            ("2026-12-05 08:00", "2026-12-04 08:00"),
        ):
            page.fill("#range-since", since)
            page.fill("#range-until", until)
            page.click("#range-apply")
            expect(page.locator("#range-error")).to_have_text("结束须晚于开始，且不超过366天")
        shot(page, "outlet-range-refused-390")
        page.fill("#range-since", "2026-01-01 00:00")
        page.fill("#range-until", "2026-12-05 00:00")  # 338 days: taken
        page.click("#range-apply")
        expect(page.locator("#range-error")).to_have_text("")
        assert before != "2026-01-01 00:00"


def test_a_slower_answer_to_an_earlier_range_is_not_drawn_over_the_later_one(browser, fresh_site):
    """近7天 clicked, then 近24小时 before the week's answer comes: the week's answer, late, is
    dropped; the page shows the last 24 hours, as its buttons say."""
    site = fresh_site
    held: list = []

    def hold_the_first(route):  # the week's answer, held back until the day's is shown
        if held:
            route.continue_()
        else:
            held.append(route)

    with browsing(browser, width=1440) as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/enterprises/E1/outlets/DA001")
        day = page.locator("#range-text").text_content()
        page.route("**/outlets/DA001/series?*", hold_the_first)
        page.click(".range-picker button[data-range='7d']")
        for _ in range(200):
            if held:
                break
            page.wait_for_timeout(50)
        page.click(".range-picker button[data-range='24h']")
        expect(page.locator("#range-text")).to_have_text(day)
        assert len(held) == 1
        with page.expect_response(lambda r: "/series?" in r.url):
            held[0].continue_()
        page.wait_for_timeout(500)  # the late answer's turn to be drawn (or dropped)
        expect(page.locator("#range-text")).to_have_text(day)
        expect(page.locator(".range-picker button[data-range='24h']")).to_have_attribute(
            "aria-pressed", "true"
        )
