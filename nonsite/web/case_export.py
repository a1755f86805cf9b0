"""The case queue as a file: CSV or Excel (.xlsx), one row per case, Chinese headers and names,
China time. Also the one home of which deadline a case waits on in which state (the queue's
期限 column, its default order and the export all use it).

Bounded: at most ``EXPORT_MAX_ROWS`` cases (docs/api.md); a larger filter is refused rather
than cut short, so that a saved file is never silently incomplete. Both formats are written to
a temporary file, row by row, so the size of an export costs disk, not memory:

- CSV: UTF-8 with a byte-order mark (Excel on Chinese Windows opens it as UTF-8 only then),
  instants as ISO 8601 with +08:00. A text that a spreadsheet would run as a formula (starting
  with = + - @) is prefixed with ' (a note or an escalation reason is typed by people).
- Excel: written with XlsxWriter (pure Python, maintained, the library polars' own
  ``write_excel`` uses; its constant-memory mode streams rows to disk). Instants are Excel date
  cells in China time (Excel has no zones; the headers say 北京时间), texts are written as text,
  never as formulas.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import xlsxwriter

from alerts.case import Case
from alerts.quantity import UNIT_NAMES, quantity
from alerts.templates import TIER_NAMES, factor_name, rule_name
from alerts.workflow import STATE_NAMES
from ingest.china_time import CHINA_TZ, stored_utc_or_none
from nonsite.web.context import WebContext

EXPORT_MAX_ROWS = 100_000
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The deadline a case waits on: the enterprise's explanation while reminded, the brigade's
# feedback while dispatched or on site; in any other state none is running.
DUE_BY_STATE: dict[str, Literal["explanation", "feedback"]] = {
    "reminded": "explanation",
    "dispatched": "feedback",
    "on_site": "feedback",
}
DUE_NAMES = {"explanation": "说明期限", "feedback": "反馈期限"}
DISPOSITION_NAMES = {
    "false_positive": "误报",
    "closed": "办结",
    "violation_confirmed": "违法事实成立",
    "not_confirmed": "未发现违法",
    "rectification_ordered": "责令改正",
    "check_failed": "非现场核查未通过",
}
CONDITION_NAMES = {"active": "持续", "cleared": "已消除"}


def due_of(
    state: str, explain_due: datetime | None, feedback_due: datetime | None
) -> tuple[datetime | None, Literal["explanation", "feedback"] | None]:
    kind = DUE_BY_STATE.get(state)
    if kind is None:
        return None, None
    return stored_utc_or_none(explain_due if kind == "explanation" else feedback_due), kind


Value = str | int | float | datetime | None

# (header, value of a row); instants are aware datetimes, written in China time.
COLUMNS: list[tuple[str, str]] = [
    ("案件编号", "id"),
    ("级别", "tier"),
    ("状态", "state"),
    ("企业", "enterprise"),
    ("企业编号", "enterprise_id"),
    ("区域", "region"),
    ("监测点", "source"),
    ("监测点编号", "source_id"),
    ("MN", "mn"),
    ("规则", "rule"),
    ("规则名称", "rule_name"),
    ("监测因子", "factor"),
    # The rule family's own quantity and threshold (alerts.quantity): 小时均值 against 排放限值
    # in mg/m³, 标记持续时长 against 预警时长 in 小时, 有效传输率 against 最低要求 in % …
    ("指标", "q_name"),
    ("数值", "q_value"),
    ("阈值类型", "q_limit_name"),
    ("阈值", "q_limit"),
    ("单位", "q_unit"),
    ("峰值", "peak_value"),
    ("最大超标倍数", "peak_multiple"),
    ("次数", "count"),
    ("条件", "condition"),
    ("立案时间（北京时间）", "opened_at"),
    ("首次发现（北京时间）", "first_seen"),
    ("最近发现（北京时间）", "last_seen"),
    ("期限类型", "due_kind"),
    ("期限（北京时间）", "due_at"),
    ("是否逾期", "overdue"),
    ("执法大队", "brigade"),
    ("正面清单", "positive_list"),
    ("升级原因", "escalation"),
    ("处置结论", "disposition"),
    ("案号", "case_number"),
    ("办结时间（北京时间）", "closed_at"),
    ("回头看至（北京时间）", "recheck_until"),
]
HEADERS = [h for h, _ in COLUMNS]


def export_rows(
    ctx: WebContext, rows: Iterable[Mapping[Any, Any]], now: datetime
) -> Iterator[list[Value]]:
    """Cases (rows of the cases table) as the export's values, in COLUMNS' order."""
    mns = {(e.id, o.id): o.mn for e in ctx.config.enterprises for o in e.outlets}
    mns |= {(e.id, m.id): m.mn or "" for e in ctx.config.enterprises for m in e.meters}
    brigades = {b.id: b.name for b in ctx.config.brigades}
    for r in rows:
        yield _row(ctx, r, now, mns.get((r["enterprise_id"], r["source_id"]), ""), brigades)


def _row(
    ctx: WebContext, r: Mapping[Any, Any], now: datetime, mn: str, brigades: dict[str, str]
) -> list[Value]:
    info = ctx.book.policy.enterprise(r["enterprise_id"])
    due_at, due_kind = due_of(r["state"], r["explain_due"], r["feedback_due"])
    q = quantity(Case.from_mapping(r))
    values: dict[str, Value] = {
        "id": r["id"],
        "tier": TIER_NAMES.get(r["tier"], r["tier"]),
        "state": STATE_NAMES.get(r["state"], r["state"]),
        "enterprise": info.name,
        "enterprise_id": r["enterprise_id"],
        "region": info.region,
        "source": info.source_names.get(r["source_id"], ""),
        "source_id": r["source_id"],
        "mn": mn,
        "rule": r["rule"],
        "rule_name": rule_name(r["rule"]),
        "factor": factor_name(r["factor"]),
        "q_name": q.name + ("（持续中）" if q.ongoing else ""),
        "q_value": q.value,
        "q_limit_name": q.limit_name,
        "q_limit": q.limit,
        "q_unit": UNIT_NAMES.get(q.unit, q.unit),
        # a peak and its multiple are an exceedance's (a concentration's) only
        "peak_value": r["peak_value"] if q.exceedance else None,
        "peak_multiple": r["peak_multiple"] if q.exceedance else None,
        "count": r["count"],
        "condition": CONDITION_NAMES.get(r["condition"], r["condition"]),
        "opened_at": stored_utc_or_none(r["opened_at"]),
        "first_seen": stored_utc_or_none(r["first_seen"]),
        "last_seen": stored_utc_or_none(r["last_seen"]),
        "due_kind": DUE_NAMES[due_kind] if due_kind else "",
        "due_at": due_at,
        "overdue": "是" if due_at is not None and due_at < now else "否",
        "brigade": brigades.get(r["brigade"], r["brigade"]) if r["brigade"] else "",
        "positive_list": "是" if r["positive_list"] else "否",
        "escalation": r["escalation"],
        "disposition": DISPOSITION_NAMES.get(r["disposition"], r["disposition"])
        if r["disposition"]
        else "",
        "case_number": r["case_number"],
        "closed_at": stored_utc_or_none(r["closed_at"]),
        "recheck_until": stored_utc_or_none(r["recheck_until"]),
    }
    return [values[key] for _, key in COLUMNS]


def _csv_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(CHINA_TZ).isoformat(timespec="seconds")
    if isinstance(value, str):
        return "'" + value if value[:1] in ("=", "+", "-", "@") else value
    return str(value)


def _write_csv(path: Path, rows: Iterable[list[Value]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for row in rows:
            writer.writerow([_csv_text(v) for v in row])


def _write_xlsx(path: Path, rows: Iterable[list[Value]]) -> None:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        sheet = book.add_worksheet("告警队列")
        bold = book.add_format({"bold": True})
        when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for c, header in enumerate(HEADERS):
            sheet.write_string(0, c, header, bold)
            sheet.set_column(c, c, 20 if "时间" in header or "期限（" in header else 12)
        sheet.freeze_panes(1, 0)
        writers: dict[type, Callable[[int, int, Any], object]] = {
            str: sheet.write_string,
            int: sheet.write_number,
            float: sheet.write_number,
        }
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if value is None or value == "":
                    continue
                if isinstance(value, datetime):
                    china = value.astimezone(CHINA_TZ).replace(tzinfo=None)
                    sheet.write_datetime(r, c, china, when)
                else:
                    writers[type(value)](r, c, value)
    finally:
        book.close()


def write_export(fmt: Literal["csv", "xlsx"], rows: Iterable[list[Value]]) -> Path:
    """The rows written to a new temporary file (the caller removes it once sent)."""
    fd, name = tempfile.mkstemp(prefix="nonsite-cases-", suffix=f".{fmt}")
    os.close(fd)
    path = Path(name)
    try:
        (_write_csv if fmt == "csv" else _write_xlsx)(path, rows)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
