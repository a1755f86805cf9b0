"""Every page of every field role, on a desktop (1440 px) and on phones (390 and 360 px), in
browsers set to UTC and to Asia/Shanghai: no page scrolls sideways, every button is on the
screen, no English word and no am/pm on the Chinese pages, and the same times whatever the
browser's zone (issue 17, what must be shown 1). The pages' own content is tested beside them
(test_case_page.py, test_fleet_and_queue.py, test_language_and_time.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page

from tests.nonsite.web.conftest import login
from tests.nonsite.web.test_language_and_time import (
    Site,
    browsing,
    english_words,
    serve,
    settle,
    visible_text,
    visit,
)

pytestmark = pytest.mark.integration

ROLES = ("monitor", "supervisor", "enforcer1", "ent1", "town1")
# Pages a role reaches without its menu: a case of its own and an outlet page.
EXTRA = {
    "monitor": ["/cases/{alarm}", "/enterprises/E1/outlets/DA001"],
    "supervisor": ["/cases/{warning}", "/enterprises/E2/outlets/DA001"],
    "enforcer1": ["/cases/{alarm}"],
    "ent1": ["/cases/{alarm}", "/enterprises/E1/outlets/DA001"],
    "town1": [],
}
# Times as the pages write them: 2026-12-05 08:00, 12-05 08:00, 08:00.
TIMES = re.compile(r"\b(?:\d{4}-)?(?:\d{2}-\d{2} )?\d{2}:\d{2}\b")
AM_PM = re.compile(r"\b(?:am|pm)\b|上午|下午", re.IGNORECASE)


@pytest.fixture(scope="module")
def site(tmp_path_factory, fast_hashes) -> Iterator[Site]:
    with serve(tmp_path_factory.mktemp("every-page")) as served:
        yield served


def pages_of(page: Page, site: Site, role: str) -> list[str]:
    menu = page.eval_on_selector_all("header nav a", "links => links.map(a => a.pathname)")
    extra = [p.format(**site.cases) for p in EXTRA[role]]
    return list(dict.fromkeys([*menu, *extra]))


def overflow(page: Page) -> int:
    """How far the page reaches beyond the window's width, in CSS pixels."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def buttons_off_screen(page: Page, width: int) -> list[str]:
    script = """(width) => [...document.querySelectorAll('button, input[type=submit], a.button')]
      .filter((b) => b.offsetParent !== null)
      .filter((b) => { const r = b.getBoundingClientRect(); return r.left < -1 || r.right > width + 1; })
      .map((b) => (b.textContent || b.value || b.id).trim())"""
    return list(page.evaluate(script, width))


def look(page: Page, url: str, width: int) -> tuple[str, list[str]]:
    """Visit, let the live parts fill, and return the visible text and the problems seen."""
    visit(page, url)
    settle(page)
    text = visible_text(page)
    problems = []
    if (wide := overflow(page)) > 0:
        problems.append(f"scrolls sideways by {wide} px")
    if off := buttons_off_screen(page, width):
        problems.append(f"buttons off the screen: {off}")
    if words := english_words(text):
        problems.append(f"English: {words}")
    if found := AM_PM.findall(text):
        problems.append(f"am/pm: {found}")
    return text, problems


@pytest.mark.parametrize("role", ROLES)
def test_every_page_fits_a_phone_and_a_desktop_in_chinese_and_china_time(browser, site, role):
    problems: dict[str, list[str]] = {}
    times: dict[str, dict[str, list[str]]] = {}
    if role == "town1":  # its page lists its area's clues: one to list (the last role here)
        r = site.login("town1").post(
            "/api/v1/clues",
            json={
                "source": "township",
                "occurred_at": (site.hour0 - timedelta(hours=3)).isoformat(),
                "description": "群众反映河道发黑",
                "enterprise_id": "E1",
                "factor": "w01018",
            },
        )
        assert r.status_code == 201, r.text
    for width, tz in ((1440, "UTC"), (1440, "Asia/Shanghai"), (390, "UTC"), (360, "Asia/Shanghai")):
        with browsing(browser, tz=tz, width=width) as page:
            login(page, site, role)
            for path in pages_of(page, site, role):
                text, found = look(page, site.url + path, width)
                if found:
                    problems[f"{width} px {tz} {path}"] = found
                if width == 1440:
                    times.setdefault(path, {})[tz] = sorted(TIMES.findall(text))
    assert problems == {}, problems
    for path, by_zone in times.items():
        assert by_zone["UTC"] == by_zone["Asia/Shanghai"], (path, by_zone)
    assert any(zone["UTC"] for zone in times.values())  # the pages do show times
