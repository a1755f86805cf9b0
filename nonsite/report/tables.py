"""The period report as titled tables with their charts, in the terms of the field: one home for
its Chinese labels, its order and its numbers, which the PDF (``pdf``) and the workbook
(``workbook``) both draw. A cell holds the value itself (a count, a rate as a fraction, hours);
each column says how it is shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from alerts.risk import COLOR_NAMES
from alerts.statistics import FAMILIES, FAMILY_NAMES
from alerts.templates import TIER_NAMES
from ingest.china_time import CHINA_TZ
from nonsite.report.figures import UNRATED, PeriodReport, last_day, rate
from nonsite.web.case_export import DISPOSITION_NAMES

Cell = str | int | float | None
Format = Literal["text", "int", "rate", "hours"]
ChartKind = Literal["column", "bar", "pie"]

CLASS_NAMES = {"key": "重点监管", "special": "特殊监管", "general": "一般监管"}
BY_NAMES = {"region": "按区域", "brigade": "按执法大队"}
CHANGE_NAMES = {"enter": "纳入", "exit": "移出"}
COLOR_LABELS = {**COLOR_NAMES, UNRATED: "未评级"}
# The 环保码's own colours in the charts (PDF and workbook), and grey for 未评级.
CODE_COLORS = {"红码": "#C62828", "黄码": "#F9A825", "绿码": "#2E7D32", "未评级": "#9E9E9E"}
MISSING = "—"


@dataclass(frozen=True, slots=True)
class Chart:
    kind: ChartKind
    title: str
    series: tuple[int, ...]  # the columns drawn
    total_row: bool = False  # draw the 合计 row too (else the groups only)
    stacked: bool = False
    categories: int = 0  # the column naming each bar


@dataclass(frozen=True, slots=True)
class Table:
    key: str  # the workbook's sheet, in ASCII-safe words
    title: str
    headers: tuple[str, ...]
    formats: tuple[Format, ...]
    rows: list[list[Cell]]
    chart: Chart | None = None
    note: str = ""
    sheet: str = ""  # the sheet's Chinese name
    extra: list[str] = field(default_factory=list)  # lines under the table


def period_title(period: str) -> str:
    """2026年11月, 2026年第四季度, 2026年上半年, 2026年度."""
    year = period[:4]
    if len(period) == 4:
        return f"{year}年度"
    if period[4] == "-":
        return f"{year}年{int(period[5:])}月"
    if period[4] == "Q":
        return f"{year}年第{'一二三四'[int(period[5]) - 1]}季度"
    return f"{year}年{'上下'[int(period[5]) - 1]}半年"


def counts(n: int) -> tuple[Format, ...]:
    count: Format = "int"
    return (count,) * n


def shown(value: Cell, fmt: Format) -> str:
    """A cell as the reader sees it."""
    if value is None:
        return MISSING
    if fmt == "rate":
        return f"{float(value) * 100:.1f}%"
    if fmt == "hours":
        return f"{float(value):.1f}"
    if fmt == "int":
        return f"{int(value):,}"
    return str(value)


def china_time(at: datetime) -> str:
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def heading(report: PeriodReport) -> tuple[str, list[str]]:
    """The report's title and the lines under it."""
    first = report.since.astimezone(CHINA_TZ).date()
    return (
        f"{period_title(report.period)}环境非现场监管统计报表",
        [
            f"统计期：{first:%Y-%m-%d} 至 {last_day(report):%Y-%m-%d}（北京时间）",
            f"分组：{BY_NAMES[report.by]}",
            f"生成时间：{china_time(report.generated_at)}（北京时间）",
            "数据来源：预警与案件库（提醒、说明、派单、反馈、整改、回头看），"
            "监测数据日统计（传输、有效数据），超标判定记录，环保码评级，正面清单，双随机抽查记录",
        ],
    )


def tables(report: PeriodReport) -> list[Table]:
    return [
        _work(report),
        _cases(report),
        _outcomes(report),
        _transmission(report),
        _top(report),
        _colors(report),
        _moves(report),
        _positive_list(report),
        _draws(report),
    ]


def _work(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = []
    for g in report.groups:
        f = report.statistics[g]
        rows.append([
            g, f.reminders, f.explanations, f.explained_on_time, f.non_site_checks,
            f.on_site_checks, f.opened, f.closed, f.closure_rate, f.mean_hours_to_close,
            f.violations_confirmed, f.rectifications_ordered, f.struck_off, f.recurrences,
        ])  # fmt: skip
    return Table(
        "work",
        "一、工作概况",
        (
            "分组",
            "预警提醒",
            "企业说明",
            "按期说明",
            "非现场检查（家次）",
            "现场检查（家次）",
            "新增案件",
            "办结",
            "办结率",
            "平均办结时长（小时）",
            "违法事实成立",
            "责令整改",
            "销号",
            "复发",
        ),
        (
            "text",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "rate",
            "hours",
            "int",
            "int",
            "int",
            "int",
        ),
        rows,
        Chart("column", "预警提醒与检查（家次）", (1, 4, 5)),
        note="办结率：本期新增案件中于期末前办结的比例；平均办结时长按这些案件计。"
        "复发：回头看发现问题而重新打开的案件。",
        sheet="工作概况",
    )


def _cases(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = []
    for g in report.groups:
        f = report.statistics[g]
        rows.append([
            g, *(f.by_family[k] for k in FAMILIES), f.by_tier.get("alarm", 0),
            f.by_tier.get("warning", 0), f.opened,
        ])  # fmt: skip
    n = len(FAMILIES)
    return Table(
        "cases",
        "二、新增案件（按类别和级别）",
        (
            "分组",
            *(FAMILY_NAMES[k] for k in FAMILIES),
            TIER_NAMES["alarm"],
            TIER_NAMES["warning"],
            "合计",
        ),
        ("text", *counts(n + 3)),
        rows,
        Chart("column", "新增案件类别", tuple(range(1, n + 1)), stacked=True),
        sheet="案件类别",
    )


def _outcomes(report: PeriodReport) -> Table:
    seen = sorted({k for f in report.statistics.values() for k in f.by_outcome})
    keys = [k for k in DISPOSITION_NAMES if k in seen] + [
        k for k in seen if k not in DISPOSITION_NAMES
    ]
    rows: list[list[Cell]] = []
    for g in report.groups:
        f = report.statistics[g]
        rows.append([g, *(f.by_outcome.get(k, 0) for k in keys), f.closed])
    return Table(
        "outcomes",
        "三、办结案件（按结果）",
        ("分组", *(DISPOSITION_NAMES.get(k, k) for k in keys), "合计"),
        ("text", *counts(len(keys) + 1)),
        rows,
        Chart("pie", "办结结果（合计）", tuple(range(1, len(keys) + 1)), total_row=True)
        if keys
        else None,
        note="" if keys else "本期无办结案件。",
        sheet="办结结果",
    )


def _transmission(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = []
    for g in report.groups:
        c = report.transmission[g]
        rows.append([
            g, c.expected, c.received, c.valid, rate(c.received, c.expected),
            rate(c.valid, c.expected), c.due_hours, c.valid_hours,
            rate(c.valid_hours, c.due_hours),
        ])  # fmt: skip
    return Table(
        "transmission",
        "四、数据传输与有效数据",
        (
            "分组",
            "应传记录",
            "实传记录",
            "有效记录",
            "传输率",
            "有效传输率",
            "应有小时",
            "有效小时",
            "有效小时率",
        ),
        ("text", "int", "int", "int", "rate", "rate", "int", "int", "rate"),
        rows,
        Chart("column", "传输率与有效数据率", (4, 5, 8), total_row=True),
        note="按各排口各监测因子逐日统计；整日无数据的日子按应传计（停产标记覆盖的除外）。",
        sheet="数据传输",
    )


def _top(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = [
        [n, x.name, x.group, x.alarm_hours, x.warning_hours, x.exceeded_days]
        for n, x in enumerate(report.top, 1)
    ]
    return Table(
        "top",
        "五、超标企业排名（按超标小时）",
        ("排名", "企业", "分组", "超标小时", "预警小时", "日均超标天数"),
        ("int", "text", "text", "int", "int", "int"),
        rows,
        Chart("bar", "超标小时", (3,), total_row=True, categories=1) if rows else None,
        note="" if rows else "本期无超标。",
        sheet="超标排名",
    )


def _colors(report: PeriodReport) -> Table:
    keys = ("red", "yellow", "green", UNRATED)
    rows: list[list[Cell]] = [
        [g, *(report.colors[g][k] for k in keys), sum(report.colors[g].values())]
        for g in report.groups
    ]
    return Table(
        "colors",
        "六、环保码分布（期末）",
        ("分组", *(COLOR_LABELS[k] for k in keys), "合计"),
        ("text", "int", "int", "int", "int", "int"),
        rows,
        Chart("pie", "环保码分布（合计）", (1, 2, 3, 4), total_row=True),
        note="各企业期末前最后一次评级的颜色；未评级：期末前尚无评级。",
        sheet="环保码",
    )


def _moves(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = [
        [m.name, m.group, COLOR_LABELS[m.before], COLOR_LABELS[m.after]] for m in report.moves
    ]
    return Table(
        "moves",
        "七、环保码变动（期初至期末）",
        ("企业", "分组", "期初", "期末"),
        ("text", "text", "text", "text"),
        rows,
        note="" if rows else "本期无变动。",
        sheet="环保码变动",
        extra=[f"本期首次评级 {report.first_rated} 家（不计为变动）。"]
        if report.first_rated
        else [],
    )


def _positive_list(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = [
        [
            c.name,
            CHANGE_NAMES.get(c.change, c.change),
            china_time(c.decided_at),
            c.decided_by,
            c.reason,
        ]
        for c in report.list_changes
    ]
    entered = sum(1 for c in report.list_changes if c.change == "enter")
    return Table(
        "positive_list",
        "八、正面清单调整",
        ("企业", "调整", "批准时间", "批准人", "理由"),
        ("text", "text", "text", "text", "text"),
        rows,
        note="" if rows else "本期无调整。",
        sheet="正面清单",
        extra=[
            f"本期纳入 {entered} 家，移出 {len(rows) - entered} 家；"
            f"期末正面清单内企业 {report.members_at_end} 家。"
        ],
    )


def _draws(report: PeriodReport) -> Table:
    rows: list[list[Cell]] = []
    for d in report.draws:
        for c in d.classes:
            rows.append([
                f"{d.period} {CLASS_NAMES.get(c.supervision_class, c.supervision_class)}",
                c.quota, c.drawn, c.inspected, rate(c.inspected, c.quota),
            ])  # fmt: skip
    seeds = [f"{d.period} 抽取种子：{d.seed}" for d in report.draws]
    return Table(
        "draws",
        "九、双随机抽查执行情况",
        ("抽查期与类别", "应抽（配额）", "已抽", "已检查", "完成率"),
        ("text", "int", "int", "int", "rate"),
        rows,
        Chart("column", "配额、已抽与已检查", (1, 2, 3), total_row=True) if rows else None,
        note="已检查：现场检查已反馈（期末前）。" if rows else "本期无双随机抽查。",
        sheet="双随机",
        extra=seeds,
    )


__all__ = [
    "CLASS_NAMES",
    "CODE_COLORS",
    "MISSING",
    "Cell",
    "Chart",
    "Format",
    "Table",
    "heading",
    "period_title",
    "shown",
    "tables",
]
