"""The clues page in the browser: a township officer submits a clue with a photo from a phone
(390 px) and follows it; the monitoring centre finds it on a wide screen and opens its case,
where the clue and its photo are."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import (
    browsing,
    english_words,
    visible_text,
)

pytestmark = pytest.mark.integration


def test_a_township_officer_submits_a_clue_from_a_phone(browser, fresh_site):
    site = fresh_site
    with browsing(browser, tz="UTC", width=390) as page:
        login(page, site, "town1")
        assert page.url.endswith("/clues")  # a township's home
        expect(page.locator("#scope")).to_have_text("滨江区")
        expect(page.locator("header nav a")).to_have_count(1)
        options = page.eval_on_selector_all("#clue-enterprise option", "os => os.map(o => o.value)")
        assert options == ["", "E1"]  # its area's enterprises only
        expect(page.locator("#clue-source")).to_have_value("township")
        page.fill("#clue-when", "2026-12-05 02:10")
        page.select_option("#clue-enterprise", "E1")
        page.fill("#clue-description", "村民反映凌晨厂区方向冒黑烟，伴有刺鼻气味")
        page.fill("#clue-address", "滨江区江南路88号东侧")
        jpeg = page.evaluate(  # a real JPEG, drawn by the browser (a phone's camera gives one)
            """async () => {
                const c = document.createElement('canvas'); c.width = 40; c.height = 30;
                c.getContext('2d').fillRect(0, 0, 40, 30);
                const blob = await new Promise((r) => c.toBlob(r, 'image/jpeg', 0.9));
                return Array.from(new Uint8Array(await blob.arrayBuffer()));
            }"""
        )
        page.set_input_files(
            "#clue-photo",
            files=[{"name": "黑烟.jpg", "mimeType": "image/jpeg", "buffer": bytes(jpeg)}],
        )
        page.click("#clue-submit")
        expect(page.locator("#clue-result")).to_have_text(
            re.compile(r"^已登记线索 \d+，(新立线索案件|并入在办案件) #\d+，照片已上传$")
        )
        card = page.locator(".clue.card").first
        expect(card).to_contain_text("镇街移送")
        expect(card).to_contain_text("2026-12-05 02:10")  # China time, as typed
        expect(card).to_contain_text("华能示范电厂")
        expect(card.locator(".case-state")).to_have_text(re.compile("已感知|已派单|已核实"))
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert english_words(visible_text(page)) == []
        shot(page, "clues-township-390")
        # A bad time is refused in the page, in Chinese, and nothing is sent.
        before = page.locator(".clue.card").count()
        page.fill("#clue-when", "12/05 2am")
        page.fill("#clue-description", "再次反映")
        page.click("#clue-submit")
        expect(page.locator("#clue-result")).to_have_text(re.compile("北京时间"))
        assert page.locator(".clue.card").count() == before

    with browsing(browser, tz="UTC", width=1440) as page:
        login(page, site, "monitor")
        page.click("#nav-clues")
        page.wait_for_selector("body[data-ready='1']")
        card = page.locator(".clue.card").first
        expect(card).to_contain_text("村民反映凌晨厂区方向冒黑烟")
        expect(card).to_contain_text("滨江区环保办")
        shot(page, "clues-monitor-1440")
        with page.expect_navigation():
            card.locator("a").first.click()
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("body")).to_contain_text("线索")
        expect(page.locator("#case-clues")).to_contain_text("村民反映凌晨厂区方向冒黑烟")
        expect(page.locator("figure.attachment")).to_contain_text("照片 · JPEG")
        shot(page, "clue-case-monitor-1440")
