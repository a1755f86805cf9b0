"""bench/demo_month.py, the demo fleet's month in event time worked by the demo's users, runs
and reports (a few days of a small fleet here; the whole month of the demo fleet makes the
report shown in docs/alerts.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl
from pypdf import PdfReader

ROOT = Path(__file__).parents[3]


def test_a_few_days_of_the_demo_month_are_worked_and_reported(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "demo_month.py"), "--enterprises", "8",
         "--days", "4", "--out", str(tmp_path), "--no-images"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "office steps" in run.stderr
    steps = run.stderr.split("office steps ", 1)[1].split(";", 1)[0]
    assert "'verify'" in steps and "'dispatch'" in steps, steps  # the cases were worked
    pdf = tmp_path / "report-2026-11-region.pdf"
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "2026年11月环境非现场监管统计报表" in text
    work = openpyxl.load_workbook(tmp_path / "report-2026-11-region.xlsx")["工作概况"]
    total = next(r for r in work.iter_rows(min_row=4, values_only=True) if r[0] == "合计")
    assert total[6] > 0  # 新增案件: cases opened in those days
