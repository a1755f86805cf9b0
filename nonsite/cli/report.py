"""``nonsite report``: a period's report (统计报表) as a PDF and an Excel workbook with charts,
from the service database and the configuration."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nonsite.cli.common import UsageError, command, config_for, store

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands

FORMATS = ("pdf", "xlsx")


def add_to(sub: Subcommands) -> None:
    p = command(
        sub,
        "report",
        report,
        reads=("database",),
        help="write a period's report (统计报表) as PDF and Excel with charts",
        description="A period's figures per region or brigade and in total: reminders, "
        "explanations, checks, cases by family, tier and outcome, closure, rectification, "
        "recurrence, transmission and valid-data rates, the enterprises with the most "
        "exceedance hours, the 环保码 and its moves, the positive list's changes, and the "
        "双随机 draws against their quotas.",
    )
    p.add_argument(
        "--period", required=True, help="2026 (a year), 2026-11 (a month), 2026Q4 or 2026H2"
    )
    p.add_argument("--by", choices=("region", "brigade"), default="region")
    p.add_argument("--out", type=Path, default=Path(), help="the folder to write to (default: .)")
    p.add_argument(
        "--format",
        default="pdf,xlsx",
        help="pdf, xlsx or both, comma-separated (default: pdf,xlsx)",
    )
    p.add_argument(
        "--font",
        type=Path,
        help="a TrueType CJK font to embed in the PDF (default: WenQuanYi Micro Hei if installed)",
    )


def report(args: argparse.Namespace) -> int:
    from nonsite.periods import PERIOD
    from nonsite.report.figures import period_report

    if not PERIOD.match(args.period):
        raise UsageError(f"--period is 2026, 2026-11, 2026Q4 or 2026H2, not {args.period!r}")
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format takes pdf and/or xlsx, not {args.format!r}")
    if args.font is not None and not args.font.is_file():
        raise UsageError(f"--font {args.font}: no such file")
    config = config_for(args)
    with store(config) as engine:
        figures = period_report(engine, config, args.period, args.by, datetime.now(UTC))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"report-{args.period}-{args.by}"
    if "pdf" in formats:
        from nonsite.report.pdf import write_pdf

        write_pdf(figures, stem.with_suffix(".pdf"), args.font)
        print(stem.with_suffix(".pdf"))
    if "xlsx" in formats:
        from nonsite.report.workbook import write_workbook

        write_workbook(figures, stem.with_suffix(".xlsx"))
        print(stem.with_suffix(".xlsx"))
    return 0
