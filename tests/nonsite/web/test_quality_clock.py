"""A drifting clock is a data-quality finding: the data-quality figures carry the drift of each
enterprise's loggers' clocks as last read (ingest.commands), the largest first in sign; the 运行
page shows it in its data-quality table as 时钟偏差 (快 / 慢 in minutes and seconds, — when not
read), in the warning style beyond the 60 s tolerance, on a desktop and on a 390 px phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from ingest.commands.store import logger_commands, request
from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_every_page import buttons_off_screen, overflow
from tests.nonsite.web.test_language_and_time import (
    browsing,
    english_words,
    settle,
    visible_text,
    visit,
)


def read_clock(site, mn: str, drift_s: float, at: datetime) -> None:
    with site.ctx.db.begin() as conn:
        command_id = request(
            conn, mn=mn, kind="time_get", cn="1011", requested_by="auto:clock", reason="核对",
            now=at,
        )  # fmt: skip
        conn.execute(
            update(logger_commands)
            .where(logger_commands.c.id == command_id)
            .values(status="done", drift_s=drift_s, answered_at=at)
        )


def chinese_only(page) -> list[str]:
    """The English words on the page, the test user's name aside (conftest's users are named
    in Latin letters: ``monitor-显示名``)."""
    return english_words(visible_text(page).replace("monitor-显示名", ""))


def in_window() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_the_clock_drift_of_its_loggers_is_in_the_data_quality_figures(site):
    at = in_window()
    read_clock(site, "MN1", 40.0, at - timedelta(hours=1))
    read_clock(site, "MN1", -185.0, at)  # the latest read counts
    read_clock(site, "MN2", 900.0, at - timedelta(days=3))  # outside the last 24 h
    doc = site.login("monitor").get("/api/v1/quality", params={"window": "24h"}).json()
    by_id = {e["enterprise_id"]: e for e in doc["enterprises"]}
    assert by_id["E1"]["clock_drift_s"] == -185.0
    assert by_id["E2"]["clock_drift_s"] is None
    assert doc["clock_tolerance_s"] == 60.0  # [commands] clock_tolerance_s: the page marks beyond
    week = site.login("monitor").get("/api/v1/quality", params={"window": "7d"}).json()
    assert {e["enterprise_id"]: e for e in week["enterprises"]}["E2"]["clock_drift_s"] == 900.0


@pytest.mark.integration
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the page; the API: above
def test_the_operations_page_shows_the_clock_drift(browser, site):
    at = in_window()
    read_clock(site, "MN1", 40.0, at - timedelta(hours=1))
    read_clock(site, "MN1", -185.0, at)  # beyond the 60 s tolerance: the warning style
    with browsing(browser, tz="UTC") as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/ops")
        settle(page)
        table = page.locator("#quality")
        expect(table.locator("thead th.drift")).to_have_text("时钟偏差")
        e1 = table.locator("tbody tr[data-enterprise='E1'] td.drift")
        expect(e1).to_have_text("慢 3 分 05 秒")
        expect(e1.locator(".badge.warning")).to_have_text("慢 3 分 05 秒")
        expect(table.locator("tbody tr[data-enterprise='E2'] td.drift")).to_have_text("—")
        assert chinese_only(page) == []
        shot(page, "ops-clock-drift-1440")

        read_clock(site, "MN2", 40.0, at)  # within the tolerance: as the other figures
        visit(page, f"{site.url}/ops")
        settle(page)
        e2 = table.locator("tbody tr[data-enterprise='E2'] td.drift")
        expect(e2).to_have_text("快 40 秒")
        expect(e2.locator(".badge")).to_have_count(0)

    with browsing(browser, tz="UTC", width=390) as page:
        login(page, site, "monitor")
        visit(page, f"{site.url}/ops")
        settle(page)
        cell = page.locator("#quality tbody tr[data-enterprise='E1'] td.drift")
        expect(cell).to_be_visible()
        expect(cell).to_have_text("慢 3 分 05 秒")
        # a card: each cell names its column
        expect(cell).to_have_attribute("data-label", "时钟偏差")
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390.5, box
        assert overflow(page) <= 0, f"scrolls sideways by {overflow(page)} px"
        assert buttons_off_screen(page, 390) == []
        assert chinese_only(page) == []
        shot(page, "ops-clock-drift-390")
