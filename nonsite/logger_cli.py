"""``nonsite logger``: commands to data loggers from the server's command line — 补遗 (recall),
校时 (clock), any command — and their audit. The argparse wiring is in ``nonsite/cli.py``.

A command is recorded in the service database and sent by the running ``nonsite serve``
within a second (on the logger's reply topic, or its TCP connection through the gateway); the
outcome is filled in as the logger answers. As for ``nonsite cases``, there is no login: the
command line is the operator's tool on the server, and the audit records the name given
with ``--as``.

Exit codes: 0 done; 2 usage (a bad argument or configuration); 3 refused (unknown MN, a bad
interval, the rate limit: ``error: <code>: <message>`` on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from alerts.audit import COMMAND_KIND_NAMES, COMMAND_STATUS_NAMES
from ingest.commands import manual
from ingest.commands.packets import without_pw
from ingest.commands.store import by_id, listing
from nonsite.case_cli import EXIT_REFUSED, _china, _config, _store, _table
from nonsite.wiring import build_registry


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    registry = build_registry(config)
    now = datetime.now(UTC)
    with _store(config) as engine:
        if args.logger_command == "commands":
            with engine.connect() as conn:
                rows = listing(conn, mn=args.mn, limit=args.limit)
            _print(rows, args.json)
            return 0
        try:
            with engine.begin() as conn:
                if args.logger_command == "recall":
                    command_id = manual.recall(
                        conn,
                        registry,
                        mn=args.mn,
                        cn=args.cn,
                        begin=args.from_,
                        end=args.to,
                        by=args.as_,
                        reason=args.reason,
                        now=now,
                        per_hour=config.commands.recall_per_hour,
                    )
                elif args.logger_command == "time-check":
                    command_id = manual.time_check(conn, registry, mn=args.mn, by=args.as_, now=now)
                else:
                    command_id = manual.send(
                        conn,
                        registry,
                        mn=args.mn,
                        cn=args.cn,
                        cp=args.cp,
                        by=args.as_,
                        reason=args.reason,
                        now=now,
                    )
        except manual.CommandRefusedError as err:
            print(f"error: {err.code}: {err}", file=sys.stderr)
            return EXIT_REFUSED
        with engine.connect() as conn:
            row = by_id(conn, command_id)
    assert row is not None
    _print([row], args.json)
    print(f"已记录命令 {command_id}：运行中的 nonsite serve 将在 1 秒内下发", file=sys.stderr)
    return 0


def _print(rows: list[Any], as_json: bool) -> None:
    if as_json:
        for row in rows:
            values = {
                k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v
                for k, v in row._mapping.items()
            }
            values["params"] = json.loads(values["params"])
            values["packet"] = without_pw(values["packet"])
            print(json.dumps(values, ensure_ascii=False))
        return
    header = ["编号", "MN", "类型", "CN", "状态", "申请人", "申请时间", "结果"]
    body = [
        [
            str(r.id),
            r.mn,
            COMMAND_KIND_NAMES.get(r.kind, r.kind),
            r.cn,
            COMMAND_STATUS_NAMES.get(r.status, r.status),
            r.requested_by,
            _china(r.requested_at),
            _outcome(r),
        ]
        for r in rows
    ]
    print(_table(header, body) if body else "（没有命令）")


def _outcome(row: Any) -> str:
    parts = []
    if row.kind == "recall" and row.status in ("accepted", "done", "no_data", "no_answer"):
        parts.append(f"收到 {row.filled} 条")
    if row.drift_s is not None:
        parts.append(f"时钟偏差 {row.drift_s:+.0f} 秒")
    if row.detail:
        parts.append(row.detail)
    return "；".join(parts) or "-"
