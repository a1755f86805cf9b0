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
