"""``nonsite cases`` and ``nonsite silences`` on a real SQLite store seeded through a CaseBook."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.china_time import CHINA_TZ
from nonsite.alert_wiring import build_case_book
from nonsite.config import load_config
from nonsite.db import make_engine, migrate
from tests.alerts.conftest import AUDIT_COLUMNS_ZH, finding
from tests.nonsite.cli_in_process import CONFIG as E1_CONFIG
from tests.nonsite.cli_in_process import ok, run_main, usage

CONFIG = (
    E1_CONFIG
    + """
[[brigades]]
id = "B2"
name = "第二执法大队"

[[enterprises]]
id = "E2"
name = "正面清单化工"
brigade = "B2"
positive_list = true
[[enterprises.outlets]]
id = "DW001"
kind = "water"
mn = "010000A8900016F000169DC1"
pw = "123456"
"""
)

MONITOR = ("--as", "monitor:王监测")
SUPERVISOR = ("--as", "supervisor:李监管")
ENFORCER_B1 = ("--as", "enforcer:张执法", "--brigade", "B1")
CASE_NUMBER = "川环罚〔2026〕12号"


@dataclass
class Seeded:
    config: Path
    alarm: int  # E1/DA001 A3 alarm: sensed, waits for verification or dispatch
    warning: int  # E1/DA001 B2 warning: reminded
    other: int  # E2/DW001 A3 warning (positive list, brigade B2): reminded


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    path = tmp_path / "nonsite.toml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "data"), encoding="utf-8")
    config = load_config(path)
    engine = make_engine(config.database_url())
    migrate(engine)
    book = build_case_book(config)
    with engine.begin() as conn:
        applied = book.apply(
            conn,
            [
                finding(),
                finding("B2", tier="warning"),
                finding("A3", tier="warning", enterprise="E2", source="DW001", factor="w01018"),
            ],
        )
    engine.dispose()
    alarm, warning, other = applied.opened
    return Seeded(path, alarm, warning, other)


@pytest.fixture
def nonsite(seeded: Seeded, capsys: pytest.CaptureFixture[str]):
    """Run ``nonsite GROUP COMMAND ...`` in this process: (exit code, stdout, stderr)."""

    def run(group: str, command: str, *args: object) -> tuple[int, str, str]:
        argv = [group, command, "--config", str(seeded.config), *map(str, args)]
        return run_main(argv, capsys)

    return run


def refused(result: tuple[int, str, str], code: str) -> str:
    exit_code, out, err = result
    assert exit_code == 3, (out, err)
    assert out == ""
    assert err.startswith(f"error: {code}: "), err
    return err


def confirm(nonsite, cid: int) -> tuple[int, str, str]:
    """The monitor confirms the case: the data agree with the video."""
    return nonsite(
        "cases",
        "act",
        cid,
        "verify",
        *MONITOR,
        "--outcome",
        "confirmed",
        "--note",
        "数据与视频一致",
    )


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def show(nonsite, case_id: int) -> dict:
    return json.loads(ok(nonsite("cases", "show", case_id, "--json")))


# -- list ----------------------------------------------------------------------------------


def test_list_as_a_table_in_chinese(nonsite, seeded):
    out = ok(nonsite("cases", "list"))
    header, *rows = out.splitlines()
    assert header.split()[:7] == ["ID", "ENTERPRISE", "SOURCE", "RULE", "TIER", "STATE", "COUNT"]
    assert [r.split()[0] for r in rows] == [
        str(seeded.other),
        str(seeded.warning),
        str(seeded.alarm),
    ]
    alarm = rows[2].split()
    assert alarm[1:7] == ["E1", "DA001", "A3", "报警", "已感知", "1"]
    assert alarm[-1] == "-"  # an alarm waits for the monitoring centre: no explanation due
    warning = rows[1].split()
    assert warning[1:7] == ["E1", "DA001", "B2", "预警", "已提醒", "1"]
    assert "说明" in warning  # the enterprise's explanation deadline
    # The columns line up on a terminal, where a Chinese character takes two columns.
    assert len({_columns(r.index("已"), r) for r in rows}) == 1


def _columns(index: int, text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text[:index])


def test_list_as_json_lines_with_filters(nonsite, seeded):
    def ids(*args: object) -> list[int]:
        return [c["id"] for c in json_lines(ok(nonsite("cases", "list", "--json", *args)))]

    everything = json_lines(ok(nonsite("cases", "list", "--json")))
    assert [c["id"] for c in everything] == [seeded.other, seeded.warning, seeded.alarm]
    alarm = everything[2]
    assert (alarm["enterprise_id"], alarm["rule"], alarm["tier"], alarm["state"]) == (
        "E1",
        "A3",
        "alarm",
        "sensed",
    )
    assert alarm["evidence"]["first"]["value"] == 150.0
    assert ids("--tier", "alarm") == [seeded.alarm]
    assert ids("--tier", "warning") == [seeded.other, seeded.warning]
    assert ids("--enterprise", "E2") == [seeded.other]
    assert ids("--rule", "B2") == [seeded.warning]
    assert ids("--state", "reminded", "--enterprise", "E1") == [seeded.warning]
    assert ids("--open") == [seeded.other, seeded.warning, seeded.alarm]
    assert ids("--limit", "1") == [seeded.other]
    assert ids("--state", "closed") == []
    code, out, err = nonsite("cases", "list", "--state", "closed")
    assert (code, out, err) == (0, "", "no cases\n")
    assert "invalid choice" in usage(nonsite("cases", "list", "--state", "done"))


# -- act and show --------------------------------------------------------------------------


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def test_the_whole_way_verify_dispatch_arrive_report_close_with_the_audit_trail(nonsite, seeded):
    cid = seeded.alarm
    out = ok(confirm(nonsite, cid))
    assert out == f"case {cid}: verify by 王监测 (monitor) → 已核实 (verified), version 2\n"
    out = ok(
        nonsite(
            "cases",
            "act",
            cid,
            "dispatch",
            *SUPERVISOR,
            "--due",
            "2026-12-01T17:00",
            "--version",
            2,
        )
    )
    assert "→ 已派单 (dispatched), version 3; work order" in out
    assert "on_site to brigade B1, due 2026-12-01 17:00" in out  # China time, as given
    record = show(nonsite, cid)
    assert record["case"]["feedback_due"] == "2026-12-01T09:00:00+00:00"
    assert record["work_order"]["due_at"] == "2026-12-01T09:00:00+00:00"
    assert (record["work_order"]["state"], record["work_order"]["created_by"]) == ("open", "李监管")
    out = ok(nonsite("cases", "act", cid, "arrive", *ENFORCER_B1))
    assert "→ 现场检查 (on_site)" in out
    out = ok(
        nonsite(
            "cases",
            "act",
            cid,
            "report",
            *ENFORCER_B1,
            "--outcome",
            "violation_confirmed",
            "--case-number",
            CASE_NUMBER,
            "--note",
            "现场确认二氧化硫超标",
        )
    )
    assert "→ 已反馈 (reported)" in out
    out = ok(nonsite("cases", "act", cid, "close", *SUPERVISOR, "--note", "已立案处罚"))
    assert out == f"case {cid}: close by 李监管 (supervisor) → 已办结 (closed), version 7\n"

    record = show(nonsite, cid)
    assert (record["case"]["state"], record["case"]["case_number"]) == ("closed", CASE_NUMBER)
    assert record["case"]["disposition"] == "violation_confirmed"
    order = record["work_order"]
    assert (order["state"], order["outcome"], order["case_number"]) == (
        "closed",
        "violation_confirmed",
        CASE_NUMBER,
    )
    trail = [(e["action"], e["actor"], e["role"], e["to_state"]) for e in record["events"]]
    assert trail == [
        ("sense", "nonsite", "system", "sensed"),
        ("verify", "王监测", "monitor", "verified"),
        ("dispatch", "李监管", "supervisor", "dispatched"),
        ("arrive", "张执法", "enforcer", "on_site"),
        ("report", "张执法", "enforcer", "reported"),
        ("close", "李监管", "supervisor", "closed"),
        ("recheck_scheduled", "nonsite", "system", "closed"),  # the active 回头看
    ]
    assert record["events"][4]["refs"]["case_number"] == CASE_NUMBER

    text = ok(nonsite("cases", "show", cid))
    assert text.startswith(f"case {cid}  A3 报警  已办结 (closed)  version 7\n")
    assert "E1 华能示范电厂" in text
    assert "DA001 1号锅炉" in text
    assert f"case number   {CASE_NUMBER}" in text
    assert "work order 1: on_site to brigade B1, closed, due 2026-12-01 17:00, by 李监管" in text
    assert "audit trail (7 events):" in text
    assert [line for line in lines_of(text) if "recheck_scheduled 安排回头看" in line]
    lines = text.splitlines()
    [verify] = [line for line in lines if "王监测 (monitor)" in line]
    assert "verify 平台核实  sensed → verified  “数据与视频一致”  [outcome=confirmed]" in verify
    [report] = [line for line in lines if "report 现场反馈" in line]
    assert "张执法 (enforcer)" in report
    assert "“现场确认二氧化硫超标”" in report
    assert [line for line in lines if "close 办结  reported → closed  “已立案处罚”" in line]

    # Closed cases leave the open list.
    ids = [c["id"] for c in json_lines(ok(nonsite("cases", "list", "--json", "--open")))]
    assert cid not in ids
    closed = json_lines(ok(nonsite("cases", "list", "--json", "--state", "closed")))
    assert [c["id"] for c in closed] == [cid]


def test_refused_actions_exit_3_with_the_code_and_change_nothing(nonsite, seeded):
    cid = seeded.alarm
    before = show(nonsite, cid)
    err = refused(nonsite("cases", "act", cid, "dispatch", *MONITOR), "role_not_allowed")
    assert "the monitor role may not dispatch; allowed: supervisor" in err
    err = refused(nonsite("cases", "act", cid, "arrive", *ENFORCER_B1), "invalid_transition")
    assert "cannot arrive a case that is sensed (已感知)" in err
    refused(nonsite("cases", "act", cid, "verify", *MONITOR), "bad_outcome")
    refused(
        nonsite("cases", "act", cid, "verify", *MONITOR, "--outcome", "false_positive"),
        "note_required",
    )
    refused(nonsite("cases", "act", cid, "close", "--as", "admin:运维"), "role_not_allowed")
    refused(
        nonsite("cases", "act", cid, "verify", *MONITOR, "--outcome", "confirmed", "--version", 7),
        "conflict",
    )
    refused(nonsite("cases", "act", 999, "verify", *MONITOR, "--outcome", "confirmed"), "not_found")
    refused(nonsite("cases", "show", 999), "not_found")
    refused(nonsite("cases", "export", 999), "not_found")
    # A warning goes to a brigade only once the monitoring centre verified it.
    refused(nonsite("cases", "act", seeded.warning, "dispatch", *SUPERVISOR), "not_verified")
    assert show(nonsite, cid) == before  # every refusal rolled back


def test_a_refusal_from_a_real_process(seeded):
    command = ["cases", "act", str(seeded.alarm), "close", "--config", str(seeded.config)]
    actor = ["--as", "enterprise:环保员", "--enterprise", "E1"]
    result = subprocess.run(
        [sys.executable, "-m", "nonsite", *command, *actor],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [
        "error: role_not_allowed: the enterprise role may not close; allowed: supervisor"
    ]


def test_enterprises_and_brigades_act_only_within_their_scope(nonsite, seeded):
    # Another enterprise may not explain E1's warning; E1 may.
    other = ("--as", "enterprise:别家环保员", "--enterprise", "E2")
    err = refused(
        nonsite("cases", "act", seeded.warning, "explain", *other, "--note", "检修"), "out_of_scope"
    )
    assert "an enterprise acts only on its own cases" in err
    own = ("--as", "enterprise:电厂环保员", "--enterprise", "E1")
    refused(nonsite("cases", "act", seeded.warning, "explain", *own), "note_required")
    out = ok(nonsite("cases", "act", seeded.warning, "explain", *own, "--note", "锅炉启炉，已报备"))
    assert "→ 已说明 (explained)" in out
    event = show(nonsite, seeded.warning)["events"][-1]
    assert (event["actor"], event["role"], event["note"]) == (
        "电厂环保员",
        "enterprise",
        "锅炉启炉，已报备",
    )
    # A case dispatched to brigade B1 is not B2's to work.
    ok(nonsite("cases", "act", seeded.alarm, "dispatch", *SUPERVISOR))
    b2 = ("--as", "enforcer:赵执法", "--brigade", "B2")
    err = refused(nonsite("cases", "act", seeded.alarm, "arrive", *b2), "out_of_scope")
    assert "assigned to brigade B1" in err
    # A positive-list enterprise gets a non-site check first, not an on-site inspection.
    ok(nonsite("cases", "act", seeded.other, "verify", *MONITOR, "--outcome", "confirmed"))
    refused(
        nonsite("cases", "act", seeded.other, "dispatch", *SUPERVISOR, "--kind", "on_site"),
        "positive_list",
    )
    out = ok(nonsite("cases", "act", seeded.other, "dispatch", *SUPERVISOR))
    assert "non_site_check to brigade B2" in out


def test_bad_actor_and_options_are_usage_errors(nonsite, seeded):
    cid = seeded.alarm

    def act(*args: object) -> str:
        return usage(nonsite("cases", "act", cid, *args))

    assert "--as must be ROLE:NAME" in act("verify", "--as", "monitor")
    assert "--as must be ROLE:NAME" in act("verify", "--as", "monitor:  ")
    assert "unknown role 'boss'" in act("verify", "--as", "boss:x")
    assert "unknown role 'system'" in act("verify", "--as", "system:x")
    assert "give --enterprise" in act("explain", "--as", "enterprise:x", "--note", "n")
    assert "unknown enterprise 'E9'" in act("explain", "--as", "enterprise:x", "--enterprise", "E9")
    assert "--enterprise applies to the enterprise role only" in act(
        "verify", *MONITOR, "--enterprise", "E1"
    )
    assert "give --brigade" in act("arrive", "--as", "enforcer:x")
    assert "unknown brigade 'B9'" in act("arrive", "--as", "enforcer:x", "--brigade", "B9")
    assert "unknown brigade 'B9'" in act("dispatch", *SUPERVISOR, "--brigade", "B9")
    assert "--kind applies to dispatch only" in act("verify", *MONITOR, "--kind", "on_site")
    assert "--case-number applies to report only" in act("close", *SUPERVISOR, "--case-number", "1")
    assert "--brigade is the enforcer's own brigade" in act("close", *SUPERVISOR, "--brigade", "B1")
    assert "invalid choice: 'resolve'" in act("resolve", *MONITOR)  # the service's own step
    assert "not an ISO 8601 time" in act("dispatch", *SUPERVISOR, "--due", "Friday")
    assert show(nonsite, cid)["case"]["version"] == 1


def test_help_says_who_is_audited_and_the_exit_codes(nonsite):
    out = ok(nonsite("cases", "act", "--help"))
    assert "audited under the role and name given with --as" in out
    assert "authentication comes with the HTTP API" in out
    assert "3  refused by the workflow" in out
    assert "2  usage" in out


# -- export --------------------------------------------------------------------------------


def _worked(nonsite, seeded) -> int:
    cid = seeded.alarm
    ok(confirm(nonsite, cid))
    ok(nonsite("cases", "act", cid, "dispatch", *SUPERVISOR))
    ok(nonsite("cases", "act", cid, "comment", *SUPERVISOR, "--note", '请携带便携式检测仪, "加急"'))
    return cid


def test_export_json_to_stdout_and_to_a_file(nonsite, seeded, tmp_path):
    cid = _worked(nonsite, seeded)
    record = json.loads(ok(nonsite("cases", "export", cid)))
    assert record["case"]["id"] == cid
    assert [e["action"] for e in record["events"]] == ["sense", "verify", "dispatch", "comment"]
    assert record["events"][1]["note"] == "数据与视频一致"
    assert [o["brigade"] for o in record["work_orders"]] == ["B1"]
    path = tmp_path / "case.json"
    out = ok(nonsite("cases", "export", cid, "--format", "json", "--output", path))
    assert out == f"case {cid}: 4 events, 1 work order, 0 notifications → {path} (json)\n"
    assert json.loads(path.read_text(encoding="utf-8")) == record
    assert "数据与视频一致" in path.read_text(encoding="utf-8")  # not \\u escapes


def test_export_csv_opens_in_a_spreadsheet_with_chinese_intact(nonsite, seeded, tmp_path):
    cid = _worked(nonsite, seeded)
    path = tmp_path / "case.csv"
    ok(nonsite("cases", "export", cid, "--format", "csv", "--output", path))
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM spreadsheet software needs
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    # for people: Chinese headers, names and China time; the stable codes follow for machines
    assert list(rows[0]) == [
        *AUDIT_COLUMNS_ZH,
        "action",
        "role",
        "from_state",
        "to_state",
    ]
    assert [(r["操作"], r["操作人"], r["action"]) for r in rows] == [
        ("感知", "系统", "sense"),
        ("平台核实", "王监测", "verify"),
        ("派单", "李监管", "dispatch"),
        ("备注", "李监管", "comment"),
    ]
    assert all(r["时间"].endswith("+08:00") for r in rows)
    assert rows[1]["说明"] == "数据与视频一致"
    assert rows[3]["说明"] == '请携带便携式检测仪, "加急"'  # quoting survives the round trip
    assert json.loads(rows[2]["关联"])["brigade"] == "B1"
    # To stdout it is the same text.
    out = ok(nonsite("cases", "export", cid, "--format", "csv"))
    assert out.startswith("\ufeff序号,时间,操作人")
    assert out.encode("utf-8") == data


# -- silences ------------------------------------------------------------------------------


def _china_iso(delta: timedelta) -> str:
    """A time from now, China wall time without an offset (as an operator types it)."""
    return (datetime.now(CHINA_TZ) + delta).replace(microsecond=0, tzinfo=None).isoformat()


def test_silences_add_list_and_suppress(nonsite, seeded):
    until = _china_iso(timedelta(days=1))
    reason = "1号锅炉检修（环保局备案 2026-118 号）"
    out = ok(
        nonsite(
            "silences", "add", "--reason", reason, "--until", until, "--enterprise", "E2",
            "--source", "DW001", "--as", "运维小王",
        )
    )  # fmt: skip
    first = int(out)
    later = int(
        ok(
            nonsite(
                "silences", "add", "--reason", "停产", "--from", _china_iso(timedelta(days=2)),
                "--until", _china_iso(timedelta(days=3)), "--rule", "C1", "--as", "李监管",
            )
        )
    )  # fmt: skip
    assert later == first + 1

    [active] = json_lines(ok(nonsite("silences", "list", "--json")))
    assert active["id"] == first
    assert (active["enterprise_id"], active["source_id"], active["rule"]) == ("E2", "DW001", None)
    assert (active["reason"], active["created_by"], active["status"]) == (
        reason,
        "运维小王",
        "active",
    )
    assert active["ends_at"] == until + "+08:00"  # China time when no offset is given
    table = ok(nonsite("silences", "list"))
    assert reason in table
    assert "生效中" in table
    assert "停产" not in table  # not started yet
    everything = json_lines(ok(nonsite("silences", "list", "--all", "--json")))
    assert [(s["id"], s["status"]) for s in everything] == [(first, "active"), (later, "pending")]
    assert "未开始" in ok(nonsite("silences", "list", "--all"))

    # The service's case book now suppresses E2's findings on that outlet.
    config = load_config(seeded.config)
    engine = make_engine(config.database_url())
    with engine.begin() as conn:
        applied = build_case_book(config).apply(
            conn, [finding("A3", enterprise="E2", source="DW001", factor="w01018", hour=1)]
        )
    engine.dispose()
    assert applied.suppressed == 1
    assert show(nonsite, seeded.other)["case"]["count"] == 1


def test_invalid_silences_are_clear_usage_errors(nonsite):
    def add(*args: object) -> str:
        return usage(nonsite("silences", "add", "--reason", "检修", "--as", "运维小王", *args))

    err = add("--from", "2030-01-02T08:00", "--until", "2030-01-01T08:00")
    assert err == (
        "nonsite silences add: error: a silence must end after it starts: "
        "--until 2030-01-01 08:00 is not after --from 2030-01-02 08:00 (China time)\n"
    )
    assert "is already past" in add("--until", "2020-01-01")
    assert "must name --enterprise" in add("--until", "2030-01-01", "--source", "DW001")
    assert "E1 has no outlet or meter 'DW001'; it has: DA001" in add(
        "--until", "2030-01-01", "--enterprise", "E1", "--source", "DW001"
    )
    assert "unknown enterprise 'E9'" in add("--until", "2030-01-01", "--enterprise", "E9")
    assert "unknown rule 'Z9'" in add("--until", "2030-01-01", "--rule", "Z9")
    assert "not an ISO 8601 time" in add("--until", "tomorrow")
    assert "a silence needs a reason" in usage(
        nonsite("silences", "add", "--reason", " ", "--until", "2030-01-01", "--as", "x")
    )
    assert "the following arguments are required: --as" in usage(
        nonsite("silences", "add", "--reason", "x", "--until", "2030-01-01")
    )
    code, out, err = nonsite("silences", "list", "--all")
    assert (code, out, err) == (0, "", "no silences\n")
