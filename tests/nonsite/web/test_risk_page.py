"""The 风险评级 page in the browser: the centre rates the fleet on demand on a wide screen and
reads why an enterprise is its colour; on a phone the explanation stacks; an enterprise reads
its own 环保码 on its page. Chinese only, China days, nothing wider than the phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from alerts.positive_list import propose
from alerts.workflow import SYSTEM
from ingest.china_time import CHINA_TZ
from nonsite.risk_rating import rate_fleet
from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import browsing, english_words, visible_text

pytestmark = pytest.mark.integration


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_the_centre_rates_the_fleet_and_reads_why(browser, fresh_site):
    site = fresh_site
    with browsing(browser, tz="UTC", width=1440) as page:
        login(page, site, "supervisor")
        page.click("#nav-risk")
        expect(page.locator("#risk-list")).to_contain_text("尚无评级")
        page.click("#risk-recompute")
        expect(page.locator("#risk-result")).to_have_text("已重新评级 2 家企业")
        cards = page.locator("details.risk")
        expect(cards).to_have_count(2)
        first = cards.first
        expect(first).to_contain_text("华能")  # E1: the dispatched alarm, the highest score
        first.locator("summary").click()
        table = first.locator("table.risk-table")
        expect(table).to_contain_text("超标（报警）")
        expect(table.locator("tr.total")).to_contain_text("合计")
        expect(first.locator(".risk-next")).to_contain_text("再增")
        today = datetime.now(CHINA_TZ).strftime("%Y-%m-%d")
        expect(first.locator(".risk-history")).to_contain_text(f"{today}起")
        expect(page.locator("#risk-counts")).to_contain_text("绿码")
        assert english_words(visible_text(page)) == []
        shot(page, "risk-supervisor-1440")


def test_on_a_phone_and_for_the_enterprise_itself(browser, fresh_site):
    site = fresh_site
    rate_fleet(site.ctx.db, site.ctx.config, datetime.now(UTC), trigger="on_demand")
    with browsing(browser, tz="America/New_York", width=390) as page:
        login(page, site, "enforcer1")
        page.goto(f"{site.url}/risk")
        page.locator("details.risk summary").first.click()
        expect(page.locator("table.risk-table").first).to_contain_text("合计")
        expect(page.locator("#risk-recompute")).to_be_hidden()  # the brigade reads, not rates
        # The rating's day is China's, whatever the phone's zone says.
        china_day = datetime.now(CHINA_TZ).strftime("%Y-%m-%d")
        expect(page.locator(".risk-head").first).to_contain_text(china_day)
        assert no_sideways_scroll(page)
        assert english_words(visible_text(page)) == []
        shot(page, "risk-enforcer-390")
    with browsing(browser, tz="UTC", width=390) as page:
        login(page, site, "ent1")
        panel = page.locator("#ent-risk")
        expect(panel).to_contain_text(re.compile("绿码|黄码|红码"))
        expect(panel).to_contain_text("合计")
        assert re.search(r"线索\d", panel.inner_text()) is None  # no complaint named to it
        assert no_sideways_scroll(page)
        assert english_words(visible_text(page)) == []
        shot(page, "risk-enterprise-390")


def test_a_supervisor_decides_the_positive_list_on_a_phone(browser, fresh_site):
    site = fresh_site
    with site.ctx.db.begin() as conn:
        propose(
            conn, "E2", "enter", "连续六个月绿码，无违法事实确认", SYSTEM, datetime.now(UTC),
            member=False, criteria={"green_days": 180},
        )  # fmt: skip
    with browsing(browser, tz="UTC", width=390) as page:
        login(page, site, "supervisor")
        page.goto(f"{site.url}/risk")
        card = page.locator(".plist-proposal").first
        expect(card).to_contain_text("纳入正面清单")
        expect(card).to_contain_text("系统（每日核查）")
        card.get_by_role("button", name="不批准").click()
        expect(card.locator(".error")).to_have_text("不批准须填写理由")
        assert english_words(visible_text(page)) == []
        assert no_sideways_scroll(page)
        shot(page, "positive-list-supervisor-390")
        card.get_by_role("button", name="批准", exact=True).click()
        expect(page.locator("#plist-members")).to_contain_text("城东化工")
        expect(page.locator("#plist-changes")).to_contain_text("纳入正面清单 · 已批准")
        expect(page.locator("#plist-pending")).to_contain_text("暂无待审批的调整")
