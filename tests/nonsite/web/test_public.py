"""Public disclosure (公示) without a login, on SQLite and PostgreSQL: the penalty decisions in
effect with the fields the rules require and nothing more, the positive list, each enterprise's
online status; nothing else of the internal data is reachable without a login; the page in a
browser on a phone."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from playwright.sync_api import expect

from alerts.decisions import pending_review
from alerts.positive_list import decide, propose
from alerts.workflow import Actor
from tests.nonsite.web.conftest import shot
from tests.nonsite.web.test_language_and_time import browsing, english_words, visible_text

SUPERVISOR = Actor("李监管", "supervisor")
LEGAL = Actor("陈法制", "legal")
DECISION_FIELDS = {
    "authority", "enterprise", "category", "document_number", "content", "decided_on",
    "published_on", "publish_by",
}  # fmt: skip


def decided(site) -> None:
    """A fine in effect on E1's alarm; a major fine on E2 still awaiting its legal review;
    E2 put on the positive list."""
    book, case, other = site.ctx.book, site.cases["e1_alarm"], site.cases["e2_warning"]
    with site.ctx.db.begin() as conn:
        book.decide(
            conn, case, SUPERVISOR, kind="fine", amount_yuan=52_000,
            document_number="环罚字〔2026〕31号", decided_on=date(2026, 12, 4),
            legal_ground="《大气污染防治法》第九十九条",
        )  # fmt: skip
        book.decide(
            conn, other, SUPERVISOR, kind="fine", amount_yuan=900_000,
            document_number="环罚字〔2026〕32号", legal_ground="《水污染防治法》第八十三条",
        )  # fmt: skip
        entry = propose(conn, "E2", "enter", "连续绿码", SUPERVISOR, book.clock(), member=False)
        assert entry is not None
        decide(conn, entry.id, SUPERVISOR, True, "", book.clock())


def test_the_feed_holds_what_the_rules_require_and_nothing_more(site):
    decided(site)
    with httpx.Client(base_url=site.client.base_url, timeout=10) as anonymous:
        feed_and_review(site, anonymous)


def feed_and_review(site, anonymous: httpx.Client) -> None:
    doc = anonymous.get("/public/disclosures.json").json()
    assert set(doc) == {
        "authority", "as_of", "decisions", "positive_list", "positive_list_changes",
        "online_status",
    }  # fmt: skip
    [fine] = doc["decisions"]  # the major one waits for its legal review: not public yet
    assert set(fine) == DECISION_FIELDS
    assert fine == fine | {
        "authority": "生态环境主管部门",
        "enterprise": "华能示范电厂",
        "category": "罚款",
        "document_number": "环罚字〔2026〕31号",
        "content": "罚款人民币 52,000.00 元",
        "decided_on": "2026-12-04",
        "publish_by": "2026-12-15",  # 7 working days after Friday 2026-12-04
    }
    assert doc["positive_list"] == [{"enterprise": "城东化工", "since": fine["published_on"]}]
    assert doc["positive_list_changes"] == [
        {"enterprise": "城东化工", "change": "纳入正面清单", "on": fine["published_on"]}
    ]
    # This site has no archive yet: whether its loggers were heard is not claimed.
    assert {s["enterprise"]: s["status_zh"] for s in doc["online_status"]} == {
        "华能示范电厂": "状态未知",
        "城东化工": "状态未知",
    }
    text = str(doc)
    for internal in ("E1", "case", "legal_ground", "大气污染防治法", "李监管", "B2", "MN1"):
        assert internal not in text, internal
    # The major fine, approved, is public from then on.
    with site.ctx.db.begin() as conn:
        [pending] = pending_review(conn)
        site.ctx.book.review_decision(conn, pending.id, LEGAL, approve=True, note="")
    assert len(anonymous.get("/public/disclosures.json").json()["decisions"]) == 2


def test_nothing_else_is_reachable_without_a_login(site):
    with httpx.Client(base_url=site.client.base_url, timeout=10) as anonymous:
        nothing_open(site, anonymous)


def nothing_open(site, anonymous: httpx.Client) -> None:
    spec = site.client.get("/api/openapi.json").json()
    open_paths = []
    for path, methods in spec["paths"].items():
        if "{" in path or "get" not in methods:
            continue
        status = anonymous.get(path).status_code
        if status != 401:
            open_paths.append((path, status))
    # Open by design, for the operators' monitors: liveness, readiness, and the metrics, whose
    # labels name no enterprise, outlet or channel (tests/nonsite/test_metrics.py).
    assert sorted(p for p, _ in open_paths) == ["/healthz", "/metrics", "/readyz"], open_paths
    for page in ("/", "/cases", "/risk", "/enterprise", "/ops"):
        r = anonymous.get(page)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), page
    assert anonymous.get("/public").status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize("width", [390, 1440])
def test_the_public_page_on_a_phone_without_a_login(browser, site, width):
    decided(site)
    with browsing(browser, tz="UTC", width=width) as page:
        calls: list[str] = []
        page.on("request", lambda r: calls.append(r.url))
        page.goto(f"{site.url}/public")
        expect(page.locator("#public-decisions")).to_contain_text("环罚字〔2026〕31号")
        expect(page.locator("#public-positive")).to_contain_text("城东化工")
        expect(page.locator("#public-status")).to_contain_text("状态未知")
        assert not [u for u in calls if "/api/" in u]  # no API read, no login asked
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert english_words(visible_text(page)) == []
        shot(page, f"public-{width}")


def test_online_status_from_the_archive_and_the_offline_cases(fresh_site):
    """The browser tests' site: a day of both enterprises' data in its archive."""
    site = fresh_site
    with httpx.Client(base_url=site.url, timeout=10) as anonymous:
        online_and_offline(site, anonymous)


def online_and_offline(site, anonymous: httpx.Client) -> None:
    status = {
        s["enterprise"]: s["status"]
        for s in anonymous.get("/public/disclosures.json").json()["online_status"]
    }
    assert set(status.values()) <= {"online", "never_reported"}
    assert "online" in status.values()
    from tests.alerts.conftest import finding

    with site.ctx.db.begin() as conn:  # the first enterprise's logger goes offline
        first = site.ctx.config.enterprises[0]
        site.ctx.book.apply(conn, [finding("B8", enterprise=first.id, source=first.outlets[0].id)])
    again = anonymous.get("/public/disclosures.json").json()["online_status"]
    assert again[0]["status_zh"] == "离线"
