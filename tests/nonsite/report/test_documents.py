"""The report as documents, read back: the PDF's text carries every table's figures in Chinese
with its CJK font embedded, and its charts' titles; the workbook holds the same figures as
numbers, with Excel charts drawn over its own cells; ``nonsite report`` writes both and refuses
what it cannot do with a clear line."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from alerts.statistics import TOTAL
from nonsite.report import pdf as pdf_module
from nonsite.report.figures import period_report
from nonsite.report.pdf import write_pdf
from nonsite.report.tables import shown, tables
from nonsite.report.workbook import HEADER_ROW, write_workbook
from tests.nonsite.cli_in_process import run_main
from tests.nonsite.report.test_figures import ENTERPRISES, NOW

PERIOD = "2026-11"


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def fonts(path: Path) -> list[dict]:
    out = []
    for page in PdfReader(path).pages:
        for ref in page["/Resources"]["/Font"].values():
            out.append(ref.get_object())
    return out


def embedded(font) -> bool:
    descendants = font.get("/DescendantFonts")
    target = descendants[0].get_object() if descendants else font
    descriptor = target.get("/FontDescriptor")
    if descriptor is None:
        return False
    d = descriptor.get_object()
    return any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3"))


@pytest.fixture
def report(fleet):
    engine, config, _rules, _seeded = fleet
    return period_report(engine, config, PERIOD, "region", NOW)


def test_the_pdf_carries_each_tables_figures_in_chinese_with_its_font_embedded(report, tmp_path):
    path = tmp_path / "r.pdf"
    write_pdf(report, path)
    reader = PdfReader(path)
    assert len(reader.pages) >= 3
    assert reader.metadata.title == "2026年11月环境非现场监管统计报表"
    text = pdf_text(path)
    flat = re.sub(r"\s+", "", text)
    assert "统计期：2026-11-01至2026-11-30（北京时间）" in flat
    assert "生成时间：2026-12-2010:00（北京时间）" in flat
    for table in tables(report):
        assert table.title in flat, table.title
        if table.chart and table.rows:
            assert table.chart.title in flat, table.chart.title
        for row in table.rows:
            for value, fmt in zip(row, table.formats, strict=True):
                assert shown(value, fmt).replace(" ", "") in flat, (table.title, row, value)
    total = report.transmission[TOTAL]
    assert f"{total.expected:,}" in flat and f"{total.valid / total.expected * 100:.1f}%" in flat
    assert report.top[0].name in flat
    # Nothing in English: enterprise ids and periods aside, no word of Latin letters.
    assert not re.findall(r"[A-Za-z]{2,}", text), re.findall(r"[A-Za-z]{2,}", text)[:10]
    used = fonts(path)
    assert used and all(embedded(f) for f in used), [f.get("/BaseFont") for f in used]


def test_without_a_cjk_font_the_pdf_names_adobes_song(report, tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_module, "FONT_CANDIDATES", ("/nonexistent/font.ttc",))
    path = tmp_path / "r.pdf"
    write_pdf(report, path)
    names = {str(f.get("/BaseFont")) for f in fonts(path)}
    assert any("STSong-Light" in n for n in names), names
    with pytest.raises(FileNotFoundError, match="font"):
        write_pdf(report, tmp_path / "x.pdf", tmp_path / "missing.ttf")


def test_the_workbook_holds_the_figures_as_numbers_with_charts_over_its_cells(report, tmp_path):
    path = tmp_path / "r.xlsx"
    write_workbook(report, path)
    book = openpyxl.load_workbook(path)
    expected = tables(report)
    assert book.sheetnames == ["说明", *(t.sheet for t in expected)]
    assert book["说明"]["A1"].value == "2026年11月环境非现场监管统计报表"
    for table in expected:
        ws = book[table.sheet]
        assert ws.cell(1, 1).value == table.title
        assert [ws.cell(HEADER_ROW + 1, c + 1).value for c in range(len(table.headers))] == list(
            table.headers
        )
        for r, row in enumerate(table.rows, HEADER_ROW + 2):
            for c, (value, fmt) in enumerate(zip(row, table.formats, strict=True), 1):
                cell = ws.cell(r, c)
                if value is None:
                    assert cell.value == "—"
                elif fmt == "text":
                    assert cell.value == value
                else:
                    assert cell.value == pytest.approx(value), (table.title, r, c)
                    assert cell.number_format == {"int": "#,##0", "rate": "0.0%",
                                                  "hours": "0.0"}[fmt]  # fmt: skip
        charts = ws._charts
        assert len(charts) == (1 if table.chart and table.rows else 0), table.title
        for chart in charts:
            for series in chart.series:
                ref = series.val.numRef.f
                assert ref.startswith((f"'{table.sheet}'!", f"{table.sheet}!")), ref
    ws = book["数据传输"]
    total_row = HEADER_ROW + 1 + len(report.groups)
    assert ws.cell(total_row, 1).value == TOTAL
    t = report.transmission[TOTAL]
    assert ws.cell(total_row, 2).value == t.expected
    assert ws.cell(total_row, 5).value == pytest.approx(t.received / t.expected)


def test_the_report_command_writes_both_and_refuses_clearly(fleet, tmp_path, capsys):
    engine, _config, _rules, _seeded = fleet
    toml = tmp_path / "fleet.toml"
    lines = [f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n']
    lines.append('[[brigades]]\nid = "B1"\nname = "滨江执法大队"\n')
    lines.append('[[brigades]]\nid = "B2"\nname = "城东执法大队"\n')
    for eid, region, brigade, cls, member in ENTERPRISES:
        lines.append(
            f'[[enterprises]]\nid = "{eid}"\nname = "企业{eid}"\nregion = "{region}"\n'
            f'brigade = "{brigade}"\nsupervision_class = "{cls}"\n'
            f"positive_list = {str(member).lower()}\n"
            f'[[enterprises.outlets]]\nid = "DA001"\nkind = "gas"\nmn = "MN{eid}"\npw = "1"\n'
            f'preset = "thermal_power_coal_boiler"\n'
        )
    toml.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        ["report", "--config", str(toml), "--period", PERIOD, "--by", "brigade", "--out",
         str(out)], capsys,
    )  # fmt: skip
    assert code == 0, stderr
    written = [Path(line) for line in stdout.split()]
    assert written == [out / "report-2026-11-brigade.pdf", out / "report-2026-11-brigade.xlsx"]
    assert "城东执法大队" in pdf_text(written[0])
    assert openpyxl.load_workbook(written[1])["工作概况"].cell(HEADER_ROW + 2, 1).value in (
        "城东执法大队",
        "滨江执法大队",
    )
    for argv, says in (
        (["--period", "2026-13"], "--period is 2026, 2026-11, 2026Q4 or 2026H2"),
        (["--period", PERIOD, "--format", "docx"], "--format takes pdf and/or xlsx"),
        (["--period", PERIOD, "--font", str(tmp_path / "none.ttf")], "no such file"),
    ):
        code, _out, err = run_main(["report", "--config", str(toml), *argv], capsys)
        assert code == 2 and says in err, (argv, code, err)
    missing = tmp_path / "nowhere.toml"
    missing.write_text(f'[service]\ndata_dir = "{tmp_path / "empty"}"\n', encoding="utf-8")
    code, _out, err = run_main(["report", "--config", str(missing), "--period", PERIOD], capsys)
    assert code == 2 and "no database at" in err, err
