"""``nonsite silences``: maintenance windows. Findings that match a silence open or update no
case and notify no one while it lasts; they stay in the findings table."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from nonsite.cli.cases import CASES_EPILOG
from nonsite.cli.common import UsageError, cli_time, command, config_for, known_enterprise, store
from nonsite.cli.text import china, china_iso, table

if TYPE_CHECKING:
    from alerts.noise import Silence
    from nonsite.cli.common import Subcommands

SILENCE_STATUS_NAMES: Final = {"active": "生效中", "pending": "未开始", "ended": "已结束"}


def add_to(sub: Subcommands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser(
        "silences",
        help="maintenance windows (silences): add, list",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="silences_command", required=True)
    p = command(
        group,
        "add",
        silences_add,
        help="silence findings for a while (e.g. announced maintenance); prints its id",
        description=(
            "Findings matching a silence open or update no case and notify no one while it\n"
            "lasts; they stay in the findings table. Leave out --enterprise, --source or\n"
            "--rule to match any. Times are ISO 8601, China time if no offset."
        ),
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("--reason", required=True, help="why, e.g. the maintenance notice")
    p.add_argument(
        "--until", type=cli_time, required=True, metavar="ISO8601", help="end (exclusive)"
    )
    p.add_argument(
        "--from", dest="from_", type=cli_time, metavar="ISO8601", help="start (default: now)"
    )
    p.add_argument("--enterprise", help="only this enterprise")
    p.add_argument("--source", help="only this outlet or meter (needs --enterprise)")
    p.add_argument("--rule", help="only this rule, e.g. A3")
    p.add_argument("--as", dest="as_", required=True, metavar="NAME", help="who sets it")
    p = command(
        group,
        "list",
        silences_list,
        reads=("database",),
        help="active silences",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("--all", action="store_true", help="also pending and ended ones")
    p.add_argument("--json", action="store_true", help="JSON lines")


def silences_add(args: argparse.Namespace) -> int:
    from alerts.noise import add_silence
    from rules.findings import RULES

    config = config_for(args)
    now = datetime.now(UTC)
    created_by = (args.as_ or "").strip()
    if not created_by:
        raise UsageError("--as NAME: who sets the silence (it is recorded)")
    if not args.reason.strip():
        raise UsageError("--reason: a silence needs a reason (e.g. the maintenance notice)")
    starts = args.from_.astimezone(UTC) if args.from_ is not None else now
    until = args.until.astimezone(UTC)
    if until <= now:
        raise UsageError(f"--until {china(until)} (China time) is already past")
    if until <= starts:
        raise UsageError(
            f"a silence must end after it starts: --until {china(until)} is not after "
            f"--from {china(starts)} (China time)"
        )
    if args.source and not args.enterprise:
        raise UsageError("a silence for an outlet or meter (--source) must name --enterprise")
    if args.enterprise:
        known_enterprise(config, args.enterprise)
    if args.source:
        enterprise = next(e for e in config.enterprises if e.id == args.enterprise)
        known = [o.id for o in enterprise.outlets] + [m.id for m in enterprise.meters]
        if args.source not in known:
            raise UsageError(
                f"{args.enterprise} has no outlet or meter {args.source!r}; "
                f"it has: {', '.join(known) or 'none'}"
            )
    if args.rule and args.rule not in RULES:
        raise UsageError(f"unknown rule {args.rule!r}; rules: {', '.join(RULES)}")
    with store(config) as engine, engine.begin() as conn:
        try:
            silence_id = add_silence(
                conn,
                reason=args.reason,
                created_by=created_by,
                starts_at=starts,
                ends_at=until,
                enterprise_id=args.enterprise,
                source_id=args.source,
                rule=args.rule,
                now=now,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print(silence_id)
    return 0


def _status(s: Silence, now: datetime) -> str:
    if now < s.starts_at:
        return "pending"
    return "ended" if now >= s.ends_at else "active"


def silences_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from alerts.noise import Silence, active_silences
    from alerts.schema import silences
    from ingest.china_time import stored_utc

    now = datetime.now(UTC)
    with store(config_for(args)) as engine, engine.connect() as conn:
        if args.all:
            rows = conn.execute(select(silences).order_by(silences.c.id)).all()
            found = [
                Silence(
                    r.id,
                    r.enterprise_id,
                    r.source_id,
                    r.rule,
                    r.reason,
                    r.created_by,
                    stored_utc(r.starts_at),
                    stored_utc(r.ends_at),
                )
                for r in rows
            ]
        else:
            found = sorted(active_silences(conn, now), key=lambda s: s.id)
    if args.json:
        for s in found:
            record = {
                "id": s.id,
                "status": _status(s, now),
                "enterprise_id": s.enterprise_id,
                "source_id": s.source_id,
                "rule": s.rule,
                "reason": s.reason,
                "created_by": s.created_by,
                "starts_at": china_iso(s.starts_at),
                "ends_at": china_iso(s.ends_at),
            }
            print(json.dumps(record, ensure_ascii=False))
        return 0
    if not found:
        print("no silences" if args.all else "no active silences", file=sys.stderr)
        return 0
    header = ["ID", "STATUS", "ENTERPRISE", "SOURCE", "RULE", "FROM", "UNTIL", "BY", "REASON"]
    rows_out = [
        [
            str(s.id),
            SILENCE_STATUS_NAMES[_status(s, now)],
            s.enterprise_id or "*",
            s.source_id or "*",
            s.rule or "*",
            china(s.starts_at),
            china(s.ends_at),
            s.created_by,
            s.reason,
        ]
        for s in found
    ]
    print(table(header, rows_out))
    return 0
