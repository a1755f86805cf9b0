"""The period report as an Excel workbook: a cover sheet (说明) with the title and sources, then
a sheet per table of ``tables`` with its numbers as numbers (rates as percentages, hours with a
decimal) and its chart as an Excel chart over those cells, so that a reader can re-sort, re-
chart or check a figure against the cells it is drawn from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xlsxwriter

from nonsite.report.figures import PeriodReport
from nonsite.report.tables import CODE_COLORS, MISSING, Chart, Table, heading, tables

NUMBER_FORMATS = {"int": "#,##0", "rate": "0.0%", "hours": "0.0", "text": "@"}
HEADER_ROW = 2  # title, a blank row, then the headers
CHART_TYPES = {"column": "column", "bar": "bar", "pie": "pie"}


def write_workbook(report: PeriodReport, path: Path) -> None:
    book = xlsxwriter.Workbook(str(path))
    try:
        title, lines = heading(report)
        bold = book.add_format({"bold": True, "font_size": 16})
        cover = book.add_worksheet("说明")
        cover.set_column(0, 0, 110)
        cover.write(0, 0, title, bold)
        for n, line in enumerate(lines, 2):
            cover.write(n, 0, line)
        contents = len(lines) + 3
        cover.write(contents, 0, "目录", book.add_format({"bold": True}))
        for n, table in enumerate(tables(report), contents + 1):
            cover.write_url(n, 0, f"internal:'{table.sheet}'!A1", string=table.title)
        for table in tables(report):
            _sheet(book, table)
        book.set_properties({"title": title, "author": "nonsite", "subject": title})
    finally:
        book.close()


def _sheet(book: Any, table: Table) -> None:
    ws = book.add_worksheet(table.sheet)
    head = book.add_format({"bold": True, "bg_color": "#E8EEF5", "border": 1, "text_wrap": True,
                            "valign": "vcenter"})  # fmt: skip
    ws.write(0, 0, table.title, book.add_format({"bold": True, "font_size": 13}))
    for col, name in enumerate(table.headers):
        ws.write(HEADER_ROW, col, name, head)
        ws.set_column(col, col, 26 if table.formats[col] == "text" else 13)
    ws.set_row(HEADER_ROW, 32)
    formats = {
        k: book.add_format({"num_format": v, "border": 1}) for k, v in NUMBER_FORMATS.items()
    }
    for r, row in enumerate(table.rows, HEADER_ROW + 1):
        for col, (value, fmt) in enumerate(zip(row, table.formats, strict=True)):
            if value is None:
                ws.write_string(r, col, MISSING, formats["text"])
            elif fmt == "text":
                ws.write_string(r, col, str(value), formats["text"])
            else:
                ws.write_number(r, col, float(value), formats[fmt])
    below = HEADER_ROW + len(table.rows) + 2
    for n, line in enumerate(([table.note] if table.note else []) + table.extra):
        ws.write(below + n, 0, line)
    ws.freeze_panes(HEADER_ROW + 1, 1)
    ws.set_landscape()  # printed: A4 across, a page wide
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    if table.chart and table.rows:
        chart = _chart(book, table, table.chart)
        ws.insert_chart(below + len(table.extra) + 2, 0, chart, {"x_scale": 1.6, "y_scale": 1.2})


def _chart(book: Any, table: Table, spec: Chart) -> Any:
    options: dict[str, str] = {"type": CHART_TYPES[spec.kind]}
    if spec.stacked:
        options["subtype"] = "stacked"
    chart = book.add_chart(options)
    first = HEADER_ROW + 1
    last = HEADER_ROW + len(table.rows)
    has_total = table.rows[-1][0] == "合计"
    if spec.kind == "pie":  # one slice per column of the 合计 row
        row = last
        series = {
            "name": spec.title,
            "categories": [table.sheet, HEADER_ROW, spec.series[0], HEADER_ROW, spec.series[-1]],
            "values": [table.sheet, row, spec.series[0], row, spec.series[-1]],
            "data_labels": {"value": True, "category": True},
        }
        names = [table.headers[c] for c in spec.series]
        if all(n in CODE_COLORS for n in names):
            series["points"] = [{"fill": {"color": CODE_COLORS[n]}} for n in names]
        chart.add_series(series)
    else:
        if has_total and not spec.total_row:
            last -= 1
        for col in spec.series:
            chart.add_series({
                "name": [table.sheet, HEADER_ROW, col],
                "categories": [table.sheet, first, spec.categories, last, spec.categories],
                "values": [table.sheet, first, col, last, col],
            })  # fmt: skip
        if spec.kind == "bar":
            chart.set_y_axis({"reverse": True})  # the first row at the top
        if all(table.formats[c] == "rate" for c in spec.series):
            chart.set_y_axis({"min": 0, "max": 1, "num_format": "0%"})
    chart.set_title({"name": spec.title})
    chart.set_legend({"position": "bottom"})
    return chart


__all__ = ["write_workbook"]
