"""Evidence in the browser: a brigade's officer photographs the scene into a case on a phone
(390 px), and a supervisor exports the case's evidence bundle, whose manifest verifies."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from alerts.evidence_bundle import verify_bundle
from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_language_and_time import (
    browsing,
    english_words,
    visible_text,
    visit,
)

pytestmark = pytest.mark.integration


def test_an_officer_photographs_the_scene_and_a_supervisor_exports_the_bundle(
    browser, fresh_site, tmp_path
):
    site = fresh_site
    case = site.cases["alarm"]
    with browsing(browser, tz="UTC", width=390) as page:
        login(page, site, "enforcer1")
        visit(page, f"{site.url}/cases/{case}")
        # A real JPEG, drawn by the browser itself (a phone's camera gives one like it).
        jpeg = page.evaluate(
            """async () => {
                const c = document.createElement('canvas'); c.width = 64; c.height = 48;
                const g = c.getContext('2d'); g.fillStyle = '#333'; g.fillRect(0, 0, 64, 48);
                g.fillStyle = '#eee'; g.fillRect(20, 4, 10, 30);
                const blob = await new Promise((r) => c.toBlob(r, 'image/jpeg', 0.9));
                return Array.from(new Uint8Array(await blob.arrayBuffer()));
            }"""
        )
        expect(page.locator("#attachments")).to_contain_text("暂无证据材料")
        page.set_input_files(
            "#ev-file",
            files=[{"name": "IMG_0142.jpg", "mimeType": "image/jpeg", "buffer": bytes(jpeg)}],
        )
        page.fill("#ev-note", "3号排口冒黑烟")
        page.click("#ev-upload")
        expect(page.locator("#ev-status")).to_have_text("已上传：IMG_0142.jpg")
        figure = page.locator("figure.attachment").first
        expect(figure).to_contain_text("照片 · JPEG")
        expect(figure).to_contain_text("3号排口冒黑烟")
        expect(figure.locator("img")).to_have_js_property("naturalWidth", 64)  # it displays
        # What is not evidence is refused in Chinese, and nothing is added.
        page.set_input_files(
            "#ev-file", files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"MZ\x90"}]
        )
        page.click("#ev-upload")
        expect(page.locator("#ev-status")).to_contain_text("不支持的文件类型")
        expect(page.locator("figure.attachment")).to_have_count(1)
        expect(page.locator("#audit")).to_contain_text("上传证据")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert english_words(visible_text(page)) == []
        shot(page, "case-evidence-enforcer-390")

    with browsing(browser, tz="UTC", width=1440) as page:
        login(page, site, "supervisor")
        visit(page, f"{site.url}/cases/{case}")
        expect(page.locator("#bundle")).to_be_visible()
        with page.expect_download() as download:
            page.click("#bundle")
        path = tmp_path / "bundle.zip"
        download.value.save_as(path)
        assert re.fullmatch(r"证据包-案件\d+\.zip", download.value.suggested_filename)
        with path.open("rb") as f:
            digest, problems = verify_bundle(f)
        assert problems == []
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#audit")).to_contain_text("导出证据包")
        expect(page.locator("#audit")).to_contain_text(digest)
        shot(page, "case-evidence-supervisor-1440")
