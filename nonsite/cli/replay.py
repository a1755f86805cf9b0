"""``nonsite replay``: archived traffic through the rules in batch; findings as JSON lines, or
what a changed configuration would have found differently (--backtest)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.china_time import china_local
from nonsite.cli.common import EXIT_USAGE, command, demo_config
from nonsite.config import load_config

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands
    from nonsite.replay import ReplayResult


def add_to(sub: Subcommands) -> None:
    p = command(
        sub,
        "replay",
        replay,
        config=False,  # its own: required
        help="run archived traffic through the rules and print the findings (JSON lines)",
    )
    p.add_argument("--config", type=Path, required=True)
    p.add_argument(
        "inputs",
        nargs="*",
        help="archive exports, HJ 212 line files, power JSON lines, "
        "archive.sqlite3 files, or - for stdin",
    )
    p.add_argument(
        "--from-store",
        nargs=2,
        metavar=("SINCE", "UNTIL"),
        help="instead of inputs: the minute detail the rules kept in the configuration's "
        "database, of the hours in [SINCE, UNTIL) (ISO times, China time without an offset; "
        "outlets' rules only)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --from-store: share the enterprises out among N workers, threads of this "
        "process (default 1: polars' column steps use every core already; more pay off on "
        "hosts with more cores than two)",
    )
    p.add_argument(
        "--processes",
        action="store_true",
        help="with --from-store: the workers are spawned processes, not threads (for hosts "
        "with many cores; each pays an interpreter's start-up)",
    )
    p.add_argument(
        "--backtest",
        type=Path,
        metavar="CHANGED_CONFIG",
        help="print what the changed configuration would have found differently",
    )
    p.add_argument(
        "--include-late",
        action="store_true",
        help="judge data that arrived after its window closed (the stream did not)",
    )
    p.add_argument("--no-absence", action="store_true", help="skip the clock-driven rules")
    p.add_argument(
        "--o2-reference",
        action="store_true",
        help="print B8-1's fleet O2 references (90th percentile per preset) as configuration",
    )


def replay(args: argparse.Namespace) -> int:
    from nonsite import replay as batch

    if args.from_store is not None:
        return from_store(args)
    if not args.inputs:
        print("nonsite replay: give input files, or --from-store SINCE UNTIL", file=sys.stderr)
        return EXIT_USAGE
    for name in args.inputs:
        if name != "-" and not Path(name).is_file():
            demo = demo_config()
            history = f"{demo.parent / 'archive.sqlite3'} (with --config {demo})" if demo else ""
            print(
                f"nonsite replay: no input file {name}"
                + (f"; the demo's history is {history}" if history else ""),
                file=sys.stderr,
            )
            return EXIT_USAGE
    config = load_config(args.config)
    messages = batch.load_messages(args.inputs, config, stdin=sys.stdin)
    if args.o2_reference:
        print(batch.o2_reference(config, messages), end="")
        return 0
    result = batch.replay(
        config, messages, include_late=args.include_late, absence=not args.no_absence
    )
    if args.backtest is None:
        for f in result.findings:
            print(batch.finding_line(f))
    else:
        changed = batch.replay(
            load_config(args.backtest),
            messages,
            include_late=args.include_late,
            absence=not args.no_absence,
        )
        for change, f in batch.backtest(result.findings, changed.findings):
            print(batch.finding_line(f, {"backtest": change}))
    dead = ", ".join(f"{reason} {n}" for reason, n in sorted(result.dead_letters.items())) or "none"
    print(
        f"replay: {result.messages} messages, {result.readings} readings, "
        f"{len(result.findings)} findings; late {result.late}, duplicates {result.duplicates}; "
        f"dead letters: {dead}",
        file=sys.stderr,
    )
    return 0


def from_store(args: argparse.Namespace) -> int:
    """``--from-store``: the kept minute detail through the rules (and ``--backtest``)."""
    from nonsite import replay as batch

    try:
        since, until = (china_local(datetime.fromisoformat(t)) for t in args.from_store)
    except ValueError as exc:
        print(f"nonsite replay: --from-store takes two ISO times: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if since >= until:
        print("nonsite replay: --from-store's SINCE must be before UNTIL", file=sys.stderr)
        return EXIT_USAGE
    workers = batch.REPLAY_WORKERS if args.workers is None else args.workers
    if workers < 1:
        print("nonsite replay: --workers takes a number of workers, 1 or more", file=sys.stderr)
        return EXIT_USAGE
    config = load_config(args.config)
    began = time.perf_counter()
    shared = {"workers": workers, "processes": args.processes}
    result = batch.replay_store(config, since, until, **shared)
    took = time.perf_counter() - began
    if args.backtest is None:
        for f in result.findings:
            print(batch.finding_line(f))
    else:
        changed = batch.replay_store(load_config(args.backtest), since, until, **shared)
        for change, f in batch.backtest(result.findings, changed.findings):
            print(batch.finding_line(f, {"backtest": change}))
    rate = result.readings / took if took > 0 else 0.0
    print(
        f"replay from the store: {result.readings} readings, {len(result.findings)} findings "
        f"in {took:.1f} s ({rate:,.0f} readings/s, {_workers(result)})",
        file=sys.stderr,
    )
    return 0


def _workers(result: ReplayResult) -> str:
    """ "1 worker", "2 threads", "3 processes": what judged the replay."""
    if result.workers == 1:
        return "1 worker"
    return f"{result.workers} {'processes' if result.in_processes else 'threads'}"
