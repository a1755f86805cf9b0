"""``nonsite dead-letters`` and ``nonsite findings``: what the stream could not use, and what
the rules found, from the service database."""

from __future__ import annotations

import argparse
import base64
import json
from typing import TYPE_CHECKING, Any

from ingest.china_time import CHINA_TZ
from nonsite.cli.common import cli_time, command, config_for, store

if TYPE_CHECKING:
    from nonsite.cli.common import Subcommands


def add_to(sub: Subcommands) -> None:
    p = command(
        sub,
        "dead-letters",
        dead_letters,
        reads=("database",),
        help="list messages that could not be used, with reasons",
    )
    p.add_argument("--reason", help="only this reason code")
    p.add_argument("--since", type=cli_time)
    p.add_argument("--until", type=cli_time)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON lines with the payload")
    p.add_argument("--counts", action="store_true", help="counts per reason")

    p = command(
        sub,
        "findings",
        findings,
        reads=("database",),
        help="list what the rules found, newest first",
    )
    p.add_argument("--rule", help="only this rule, e.g. A3")
    p.add_argument("--enterprise", help="only this enterprise id")
    p.add_argument("--since", type=cli_time, help="windows starting at or after (China time)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")


def dead_letters(args: argparse.Namespace) -> int:
    from ingest.store import count_dead_letters_by_reason, list_dead_letters

    with store(config_for(args)) as engine:
        if args.counts:
            counts = count_dead_letters_by_reason(engine)
            for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
                print(f"{n:8d}  {reason}")
            return 0
        letters = list_dead_letters(
            engine, reason=args.reason, since=args.since, until=args.until, limit=args.limit
        )
    for d in letters:
        received = d.received_at.astimezone(CHINA_TZ)
        if args.json:
            record: dict[str, Any] = {
                "id": d.id,
                "archive_seq": d.archive_seq,
                "received_at": received.isoformat(),
                "topic": d.topic,
                "reason": d.reason,
                "detail": d.detail,
                "mn": d.mn,
            }
            try:
                record["payload"] = d.payload.decode("utf-8")
            except UnicodeDecodeError:
                record["payload_base64"] = base64.b64encode(d.payload).decode()
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(
                f"{d.id:6d}  {received:%Y-%m-%d %H:%M:%S}  {d.reason:<18} {d.topic:<28} "
                f"{d.mn or '-':<24} {d.detail}"
            )
    return 0


def findings(args: argparse.Namespace) -> int:
    from rules.store import list_findings

    with store(config_for(args)) as engine:
        found = list_findings(
            engine,
            rule=args.rule,
            enterprise_id=args.enterprise,
            since=args.since,
            limit=args.limit,
        )
    for f in found:
        start = f.window_start.astimezone(CHINA_TZ)
        if args.json:
            record = {
                "id": f.id,
                "rule": f.rule,
                "state": f.state,
                "tier": f.tier,
                "enterprise_id": f.enterprise_id,
                "source_id": f.source_id,
                "factor": f.factor,
                "window_start": start.isoformat(),
                "window_end": f.window_end.astimezone(CHINA_TZ).isoformat(),
                "value": f.value,
                "limit": f.limit,
                "unit": f.unit,
                "multiple": f.multiple,
                "params_version": f.params_version,
                "evidence": f.evidence,
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            value = "" if f.value is None else f"{f.value:g}{f.unit and ' ' + f.unit}"
            limit = "" if f.limit is None else f" (limit {f.limit:g})"
            print(
                f"{start:%Y-%m-%d %H:%M}  {f.rule:<5} {f.state:<5} {f.tier or '-':<7} "
                f"{f.enterprise_id}/{f.source_id} {f.factor or ''} {value}{limit}"
            )
    return 0
