"""The period report as a PDF (A4): its title, each table of ``tables`` with its note, and its
chart drawn in vectors (ReportLab's own charts: no plotting library, no browser).

Chinese text needs a font with its glyphs: a TrueType font is embedded (subset), the first of
``font`` and the usual Debian and Ubuntu CJK fonts that exists (``fonts-wqy-microhei``, which
``./dev`` and the container install); without any, the PDF names Adobe's STSong-Light, which
every Chinese PDF reader supplies but which is then not embedded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable
from reportlab.platypus.flowables import Flowable

from nonsite.report.figures import PeriodReport
from nonsite.report.tables import CODE_COLORS, Cell, Chart, Table, heading, shown, tables

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
CID_FONT = "STSong-Light"
PAGE = landscape(A4)
MARGIN = 14 * mm
WIDTH = PAGE[0] - 2 * MARGIN
# Series colours that stay apart in print and for the colour-blind (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def register_font(font: Path | None = None) -> str:
    """The font's name for ReportLab: a TrueType font (embedded), else STSong-Light (not)."""
    for candidate in ([str(font)] if font else []) + list(FONT_CANDIDATES):
        if Path(candidate).is_file():
            name = "nonsite-cjk-" + Path(candidate).stem
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, candidate, subfontIndex=0))
            return name
    if font:
        raise FileNotFoundError(f"the report's font {font} does not exist")
    if CID_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
    return CID_FONT


def write_pdf(report: PeriodReport, path: Path, font: Path | None = None) -> None:
    name = register_font(font)
    title, lines = heading(report)
    style = ParagraphStyle("body", fontName=name, fontSize=9, leading=13, wordWrap="CJK")
    h1 = ParagraphStyle("h1", parent=style, fontSize=18, leading=26, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=style, fontSize=12, leading=18, spaceBefore=10, spaceAfter=4)
    small = ParagraphStyle("small", parent=style, fontSize=8, leading=11, textColor="#444444")
    story: list[Flowable] = [Paragraph(title, h1)]
    story += [Paragraph(line, style) for line in lines]
    story.append(Spacer(1, 4 * mm))
    for table in tables(report):
        block: list[Flowable] = [Paragraph(table.title, h2)]
        if table.rows:
            block.append(_table(table, name))
        for line in ([table.note] if table.note else []) + table.extra:
            block.append(Paragraph(line, small))
        story.append(KeepTogether(block))
        if table.chart and table.rows:
            story.append(Spacer(1, 2 * mm))
            story.append(_chart(table, table.chart, name))
    doc = SimpleDocTemplate(
        str(path),
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author="nonsite",
        subject=title,
        initialFontName=name,  # each page starts in our font, not Helvetica (not embedded)
    )

    def footer(canvas: object, page_doc: object) -> None:
        c = canvas  # reportlab's Canvas
        c.saveState()  # type: ignore[attr-defined]
        c.setFont(name, 8)  # type: ignore[attr-defined]
        c.drawRightString(  # type: ignore[attr-defined]
            PAGE[0] - MARGIN,
            8 * mm,
            f"{title}  第 {c.getPageNumber()} 页",  # type: ignore[attr-defined]
        )
        c.restoreState()  # type: ignore[attr-defined]

    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def _table(table: Table, font: str) -> PdfTable:
    data = [list(table.headers)] + [
        [shown(v, f) for v, f in zip(row, table.formats, strict=True)] for row in table.rows
    ]
    header = ParagraphStyle("th", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    cell = ParagraphStyle("td", parent=header, fontSize=8)
    wrapped = [[Paragraph(str(h), header) for h in data[0]]]
    for row in data[1:]:
        wrapped.append([Paragraph(str(v), cell) if len(str(v)) > 12 else v for v in row])
    widths = _widths(table)
    out = PdfTable(wrapped, colWidths=widths, repeatRows=1)
    numeric = [i for i, f in enumerate(table.formats) if f != "text"]
    style = [
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF5")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9AA7B4")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    style += [("ALIGN", (i, 1), (i, -1), "RIGHT") for i in numeric]
    if table.rows and table.rows[-1][0] == "合计":
        style.append(("BACKGROUND", (0, len(data) - 1), (-1, len(data) - 1), "#F4F6F8"))
    out.setStyle(TableStyle(style))
    return out


def _widths(table: Table) -> list[float]:
    """The first column and any text column wider; the table spans the page."""
    weights = [2.2 if f == "text" else 1.0 for f in table.formats]
    if table.key == "positive_list":
        weights = [2.0, 0.8, 1.6, 1.0, 4.0]
    total = sum(weights)
    return [WIDTH * w / total for w in weights]


def _chart_rows(table: Table, chart: Chart) -> list[list[Cell]]:
    rows = table.rows
    if not chart.total_row and rows and rows[-1][0] == "合计":
        rows = rows[:-1]
    return rows


def _chart(table: Table, chart: Chart, font: str) -> Drawing:
    rows = _chart_rows(table, chart)
    names = [str(table.headers[i]) for i in chart.series]
    rates = all(table.formats[i] == "rate" for i in chart.series)
    scale = 100.0 if rates else 1.0
    height = 62 * mm
    d = Drawing(WIDTH, height, initialFontName=font, initialFontSize=8)  # not Helvetica
    d.add(String(0, height - 10, chart.title + ("（%）" if rates else ""), fontName=font,
                 fontSize=10))  # fmt: skip
    if chart.kind == "pie":
        total = rows[-1]
        values = [float(total[i] or 0) for i in chart.series]
        pie = Pie()
        pie.x, pie.y, pie.width, pie.height = 30, 10, height - 40, height - 40
        pie.data = values if any(values) else [1.0]
        pie.labels = None
        pie.slices.strokeColor = colors.white
        for k, label in enumerate(names):
            pie.slices[k].fillColor = colors.HexColor(CODE_COLORS.get(label, PALETTE[k % 7]))
        d.add(pie)
        legend = _legend(font, names, [CODE_COLORS.get(n, PALETTE[k % 7]) for k, n in
                                       enumerate(names)], values)  # fmt: skip
        legend.x, legend.y = height + 10, height - 30
        d.add(legend)
        return d
    data = [tuple(float(r[i] or 0) * scale for r in rows) for i in chart.series]
    categories = [str(r[chart.categories]) for r in rows]
    bars: VerticalBarChart | HorizontalBarChart
    if chart.kind == "bar":
        bars = HorizontalBarChart()
        bars.x, bars.y, bars.width, bars.height = 120, 8, WIDTH * 0.55, height - 30
        categories = categories[::-1]
        data = [tuple(reversed(series)) for series in data]
    else:
        bars = VerticalBarChart()
        bars.x, bars.y, bars.width, bars.height = 40, 24, WIDTH * 0.6, height - 44
    bars.data = data
    bars.categoryAxis.categoryNames = categories
    bars.categoryAxis.labels.fontName = font
    bars.categoryAxis.labels.fontSize = 7
    bars.valueAxis.labels.fontName = font
    bars.valueAxis.labels.fontSize = 7
    bars.valueAxis.valueMin = 0
    if chart.stacked:  # the tallest stack
        top = max((sum(column) for column in zip(*data, strict=True)), default=0)
    else:
        top = max((v for series in data for v in series), default=0)
    bars.valueAxis.valueMax = 100 if rates else max(1.0, top * 1.15)
    if not rates:  # counts: whole steps
        bars.valueAxis.valueStep = max(1, math.ceil(bars.valueAxis.valueMax / 6))
    if chart.stacked:
        bars.categoryAxis.style = "stacked"
    for k in range(len(data)):
        bars.bars[k].fillColor = colors.HexColor(PALETTE[k % len(PALETTE)])
        bars.bars[k].strokeColor = None
    d.add(bars)
    legend = _legend(font, names, [PALETTE[k % len(PALETTE)] for k in range(len(names))])
    legend.x, legend.y = bars.x + bars.width + 20, height - 24
    d.add(legend)
    return d


def _legend(
    font: str, names: Sequence[str], fills: Sequence[str], values: Sequence[float] | None = None
) -> Legend:
    legend = Legend()
    legend.fontName = font
    legend.fontSize = 8
    legend.alignment = "right"
    legend.columnMaximum = 8
    legend.colorNamePairs = [
        (colors.HexColor(fill), f"{name} {values[k]:g}" if values is not None else name)
        for k, (name, fill) in enumerate(zip(names, fills, strict=True))
    ]
    return legend


__all__ = ["FONT_CANDIDATES", "register_font", "write_pdf"]
