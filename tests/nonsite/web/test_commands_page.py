"""Commands to data loggers on the dashboard: 补遗 and 校时 from the outlet page, a case's
commands (rule B7's recall of its missing hour) on the case page and in its record, in headless
Chromium over a real store (the archive of test_language_and_time.py), in a browser set to UTC:

- a monitor recalls an interval typed in China time and sees it listed as 待发送 with that
  interval; a refusal shows the API's Chinese reason; 校时 is one click;
- the enterprise's users and the enforcers see neither the buttons nor the list (the admin
  reads the list), and their pages ask for nothing they would be refused;
- the case page's 补遗与命令 shows a linked command with its status and 收到 N 条;
- both pages fit a 390 px and a 360 px phone, in Chinese only;
- the case record (JSON and CSV) carries the case's commands for those who may read them.

No sender runs here: a command stays 待发送 unless the test writes its outcome."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Connection, select, update

from alerts.audit import COMMAND_KIND_NAMES, COMMAND_STATUS_NAMES
from ingest.china_time import CHINA_TZ
from ingest.commands.store import logger_commands, recall_params, request
from nonsite.web.security import GRANTS
from tests.nonsite.web.conftest import login, shot
from tests.nonsite.web.test_every_page import buttons_off_screen, overflow
from tests.nonsite.web.test_language_and_time import (
    Site,
    browsing,
    english_words,
    serve,
    visible_text,
    visit,
)

JS = Path(__file__).parents[3] / "nonsite" / "web" / "dashboard" / "static" / "js"
OUTLET = "/enterprises/E1/outlets/DA001"
# 2026-12-05 08:00 to 09:59 China time: 00:00 to 01:59 UTC
BEGIN = datetime(2026, 12, 5, 8, 0, tzinfo=CHINA_TZ)
SHOWN = "2026-12-05 08:00 – 09:59"


@pytest.fixture(scope="module")
def served(tmp_path_factory, fast_hashes) -> Iterator[Site]:
    with serve(tmp_path_factory.mktemp("commands-page")) as site:
        yield site


def refusals(page: Page) -> list[str]:
    """Collects the API's 401 and 403 answers to the page (it must not ask for what its role
    may not read)."""
    seen: list[str] = []

    def note(response) -> None:
        if "/api/" in response.url and response.status in (401, 403):
            seen.append(f"{response.status} {response.url}")

    page.on("response", note)
    return seen


def b7_recall(conn: Connection, end: timedelta, now: datetime, case_id: int) -> int:
    """The recall rule B7 asks for, of BEGIN to ``BEGIN + end``, for the case ``case_id``."""
    return request(
        conn,
        mn="MN1",
        kind="recall",
        cn="2061",
        params=recall_params(BEGIN, BEGIN + end),
        requested_by="auto:B7",
        reason="B7 小时数据缺失：补遗 2026-12-05 08:00 时段的小时数据",
        now=now,
        case_id=case_id,
    )


def linked_recall(site: Site, case_id: int, *, filled: int, status: str = "done") -> int:
    """A recall rule B7 asked for the case's missing hour, answered with ``filled`` packets."""
    now = datetime.now(UTC)
    with site.ctx.db.begin() as conn:
        command_id = b7_recall(conn, timedelta(minutes=119), now, case_id)
        conn.execute(
            update(logger_commands)
            .where(logger_commands.c.id == command_id)
            .values(status=status, filled=filled, sent_at=now, answered_at=now, exe_rtn=1)
        )
    return command_id


def fits(page: Page, width: int) -> list[str]:
    problems = []
    if (wide := overflow(page)) > 0:
        problems.append(f"scrolls sideways by {wide} px")
    if off := buttons_off_screen(page, width):
        problems.append(f"buttons off the screen: {off}")
    if words := english_words(visible_text(page)):
        problems.append(f"English: {words}")
    return problems


# -- the outlet page: 补遗 and 校时 ------------------------------------------------------------


@pytest.mark.integration
def test_a_monitor_recalls_an_interval_typed_in_china_time(browser, served):
    with browsing(browser, tz="UTC") as page:
        refused = refusals(page)
        login(page, served, "monitor")
        visit(page, served.url + OUTLET)
        panel = page.locator("#logger-commands")
        expect(panel).to_contain_text("补遗与校时")
        expect(panel).to_contain_text("MN1")
        expect(page.locator("#recall-form")).to_be_hidden()
        page.click("#open-recall")
        form = page.locator("#recall-form")
        expect(form).to_be_visible()
        expect(page.locator("#open-recall")).to_have_attribute("aria-expanded", "true")
        # labelled fields; the interval starts filled with the range on screen
        for label in ("数据类型", "开始", "结束", "原因"):
            expect(form.locator("label", has_text=label)).to_have_count(1)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:00", page.input_value("#recall-begin"))
        assert [o.strip() for o in form.locator("#recall-cn option").all_inner_texts()] == [
            "分钟数据",
            "小时数据",
            "日数据",
        ]
        page.select_option("#recall-cn", "2061")
        page.fill("#recall-begin", "2026-12-05 08:00")
        page.fill("#recall-end", "2026-12-05 09:59")
        page.fill("#recall-reason", "核对缺失的小时数据")
        shot(page, "commands-outlet-recall-form-1440")
        page.click("#recall-submit")
        result = page.locator("#command-result")
        expect(result).to_contain_text("已申请")
        expect(result).to_contain_text(SHOWN)
        expect(result).to_contain_text("待发送")
        expect(form).to_be_hidden()  # done with
        row = page.locator("#commands tbody tr").first
        for text in ("补遗（小时数据）", SHOWN, "待发送", "王监测", "核对缺失的小时数据"):
            expect(row).to_contain_text(text)
        # 校时: one click
        page.click("#time-check")
        expect(result).to_contain_text("校时(读)")
        expect(page.locator("#commands tbody tr").first).to_contain_text("校时(读)")
        expect(page.locator("#commands tbody tr")).to_have_count(2)
        assert english_words(visible_text(page)) == []
        shot(page, "commands-outlet-monitor-1440")
    assert refused == []
    with served.ctx.db.connect() as conn:
        rows = conn.execute(
            select(logger_commands).where(logger_commands.c.mn == "MN1").order_by("id")
        ).all()
    recall, clock = rows[-2], rows[-1]
    assert (recall.kind, recall.cn, recall.status) == ("recall", "2061", "requested")
    assert json.loads(recall.params) == {  # typed in China time, in a UTC browser
        "BeginTime": "2026-12-05T00:00:00+00:00",
        "EndTime": "2026-12-05T01:59:00+00:00",
    }
    assert (recall.requested_by, recall.reason) == ("王监测", "核对缺失的小时数据")
    assert (clock.kind, clock.requested_by) == ("time_get", "王监测")


@pytest.mark.integration
def test_a_refusal_shows_its_chinese_reason(browser, served):
    with browsing(browser) as page:
        login(page, served, "supervisor")
        visit(page, served.url + "/enterprises/E2/outlets/DA001")
        page.click("#open-recall")
        page.fill("#recall-begin", "2026-12-05 10:00")
        page.fill("#recall-end", "2026-12-05 08:00")  # before the start
        page.click("#recall-submit")
        error = page.locator("#recall-error")
        expect(error).to_have_text("开始时间须早于结束时间")
        expect(page.locator("#recall-form")).to_be_visible()  # to be corrected
        page.fill("#recall-begin", "2026-11-01 08:00")
        page.fill("#recall-end", "2026-12-05 08:00")  # over 31 days
        page.click("#recall-submit")
        expect(error).to_have_text("一次补遗最多 31 天")
        page.fill("#recall-end", "2026-12-05 25:00")  # no such time: the browser refuses
        page.click("#recall-submit")
        expect(error).to_contain_text("北京时间")
        expect(page.locator("#commands-none")).to_have_text("该数采仪暂无命令")
        page.click("#recall-form button.cancel")
        expect(page.locator("#recall-form")).to_be_hidden()
        expect(error).to_have_text("")
    with served.ctx.db.connect() as conn:
        mns = conn.execute(select(logger_commands.c.mn)).scalars().all()
    assert "MN2" not in mns  # nothing refused was recorded


@pytest.mark.integration
def test_enterprise_users_and_enforcers_see_no_commands(browser, served):
    alarm = served.cases["alarm"]  # dispatched to 滨江执法大队: enforcer1 sees it
    linked_recall(served, alarm, filled=2)
    for user in ("ent1", "enforcer1"):
        with browsing(browser) as page:
            refused = refusals(page)
            login(page, served, user)
            visit(page, served.url + OUTLET)
            expect(page.locator("#hours tbody tr").first).to_be_visible()
            for sel in ("#logger-commands", "#open-recall", "#time-check", "#commands"):
                expect(page.locator(sel)).to_have_count(0)
            visit(page, f"{served.url}/cases/{alarm}")
            expect(page.locator("#audit li").first).to_be_visible()
            expect(page.locator("#case-commands")).to_have_count(0)
            assert "补遗" not in visible_text(page), user
            assert refused == [], (user, refused)
    with browsing(browser) as page:  # the admin reads the list, asks for nothing
        refused = refusals(page)
        login(page, served, "admin")
        visit(page, served.url + OUTLET)
        expect(page.locator("#commands tbody tr").first).to_be_visible()
        expect(page.locator("#open-recall")).to_have_count(0)
        expect(page.locator("#time-check")).to_have_count(0)
        visit(page, f"{served.url}/cases/{alarm}")
        expect(page.locator("#case-commands")).to_be_visible()
        assert refused == []


# -- the case page: 补遗与命令 --------------------------------------------------------------------


@pytest.mark.integration
def test_the_case_page_shows_the_commands_made_for_it(browser, served):
    alarm, warning = served.cases["alarm"], served.cases["warning"]
    linked_recall(served, alarm, filled=3)
    with browsing(browser, tz="UTC") as page:
        login(page, served, "monitor")
        visit(page, f"{served.url}/cases/{alarm}")
        section = page.locator("#case-commands")
        expect(section.locator("h3")).to_have_text("补遗与命令")
        row = section.locator("tbody tr", has_text="收到 3 条")
        for text in ("补遗（小时数据）", SHOWN, "执行成功", "平台自动", "B7 小时数据缺失"):
            expect(row).to_contain_text(text)
        heads = section.locator("thead th").all_inner_texts()
        assert [h.strip() for h in heads] == ["类型", "时段", "状态", "结果", "申请人", "时间"]
        # between the evidence and the audit trail
        order = page.evaluate(
            "[...document.querySelectorAll('.case-main > section')].map((s) => s.id || s.className)"
        )
        assert order.index("case-commands") == len(order) - 2, order
        assert english_words(visible_text(page)) == []
        shot(page, "commands-case-1440")
        visit(page, f"{served.url}/cases/{warning}")  # a case without commands: no section
        page.wait_for_timeout(300)
        expect(page.locator("#case-commands")).to_be_hidden()


# -- phones ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("width", [390, 360])
def test_the_pages_fit_a_phone(browser, served, width):
    alarm = served.cases["alarm"]
    linked_recall(served, alarm, filled=1, status="no_answer")
    with browsing(browser, tz="UTC", width=width) as page:
        login(page, served, "supervisor")
        visit(page, served.url + OUTLET)
        expect(page.locator("#commands tbody tr").first).to_be_visible()
        page.click("#open-recall")
        expect(page.locator("#recall-form")).to_be_visible()
        page.fill("#recall-reason", "核对缺失的小时数据")
        for sel in ("#open-recall", "#time-check", "#recall-submit", "#recall-begin", "#recall-cn"):
            box = page.locator(sel).bounding_box()
            assert box is not None and box["x"] >= 0, sel
            assert box["x"] + box["width"] <= width + 0.5, (sel, box)
        assert fits(page, width) == [], "outlet"
        shot(page, f"commands-outlet-recall-form-{width}")
        visit(page, f"{served.url}/cases/{alarm}")
        expect(page.locator("#case-commands tbody tr").first).to_be_visible()
        assert fits(page, width) == [], "case"
        page.locator("#case-commands").scroll_into_view_if_needed()
        shot(page, f"commands-case-{width}")


# -- the case record -----------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_the_case_record_carries_its_commands(site):
    case, other = site.cases["e1_alarm"], site.cases["e1_warning"]
    now = datetime(2026, 12, 5, 2, 5, tzinfo=UTC)
    with site.ctx.db.begin() as conn:
        recall = b7_recall(conn, timedelta(minutes=59, seconds=59), now, case)
        request(
            conn, mn="MN1", kind="time_get", cn="1011", requested_by="auto:clock",
            reason="每 24 小时核对一次数采仪时钟", now=now, case_id=other,
        )  # fmt: skip
    record = site.login("monitor").get(f"/api/v1/cases/{case}/record").json()
    [command] = record["commands"]
    assert (command["id"], command["kind"], command["cn"], command["status"]) == (
        recall, "recall", "2061", "requested"
    )  # fmt: skip
    assert (command["kind_zh"], command["status_zh"], command["requested_by_zh"]) == (
        "补遗",
        "待发送",
        "平台自动",
    )
    assert command["requested_by"] == "auto:B7" and command["case_id"] == case
    assert command["requested_at"] == "2026-12-05T10:05:00+08:00"  # China time, as the rest
    assert command["params"] == {
        "BeginTime": "2026-12-05T08:00:00+08:00",
        "EndTime": "2026-12-05T08:59:59+08:00",
    }
    assert command["filled"] == 0 and command["sent_at"] is None
    r = site.client.get(f"/api/v1/cases/{case}/record", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    [row] = [r for r in rows if r["action"] == "command_recall"]
    assert (row["序号"], row["操作"], row["操作人"], row["角色"], row["role"]) == (
        "", "补遗", "平台自动", "系统", "system"
    )  # fmt: skip
    assert row["时间"] == "2026-12-05T10:05:00+08:00"
    assert "小时数据 2026-12-05 08:00:00 至 2026-12-05 08:59:59" in row["说明"]
    assert "待发送" in row["说明"]
    assert json.loads(row["关联"])["command_id"] == recall
    times = [datetime.fromisoformat(r["时间"]) for r in rows]
    assert times == sorted(times)  # among the events, by time
    # a role that may not read commands gets the record without them
    for user in ("ent1", "enforcer1"):
        client = site.login(user)
        assert "commands" not in client.get(f"/api/v1/cases/{case}/record").json(), user
        text = client.get(f"/api/v1/cases/{case}/record", params={"format": "csv"}).text
        assert "command_" not in text, user


# -- one set of words and roles --------------------------------------------------------------------


def zh_table() -> str:
    source = (JS / "i18n.js").read_text(encoding="utf-8")
    return source[source.index("zh: {") : source.index("en: {")]


def js_strings(table: str, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf'"{re.escape(prefix)}\.(\w+)": "([^"]*)"', table))


def test_the_pages_name_commands_as_the_command_line_and_the_record_do():
    zh = zh_table()
    assert (
        js_strings(zh, "cmd.status") == COMMAND_STATUS_NAMES
    )  # the CLI's too (nonsite/cli/logger.py)
    assert js_strings(zh, "cmd.kind") == COMMAND_KIND_NAMES
    source = (JS / "i18n.js").read_text(encoding="utf-8")
    en = source[source.index("en: {") :]
    zh_keys = set(re.findall(r'"(cmd\.[\w.]+)":', zh))
    assert zh_keys == set(re.findall(r'"(cmd\.[\w.]+)":', en))  # every word in both languages


def test_the_pages_ask_only_the_roles_the_api_admits():
    source = (JS / "commands.js").read_text(encoding="utf-8")

    def roles(name: str) -> tuple[str, ...]:
        found = re.search(rf"{name} = \[([^\]]*)\]", source)
        assert found is not None, name
        return tuple(re.findall(r'"(\w+)"', found.group(1)))

    assert roles("COMMAND_READERS") == GRANTS["commands"]
    assert roles("COMMAND_REQUESTERS") == GRANTS["commands.recall"]
