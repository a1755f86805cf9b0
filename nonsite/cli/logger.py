"""``nonsite logger``: commands to data loggers from the server's command line — 补遗 (recall),
校时 (clock), any command — and their audit.

A command is recorded in the service database and sent by the running ``nonsite serve``
within a second (on the logger's reply topic, or its TCP connection through the gateway); the
outcome is filled in as the logger answers. As for ``nonsite cases``, there is no login: the
command line is the operator's tool on the server, and the audit records the name given
with ``--as``. Exit codes: 0 done; 2 usage (a bad argument or configuration); 3 refused
(unknown MN, a bad interval, the rate limit: ``error: <code>: <message>`` on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from nonsite.cli.common import Refused, cli_time, command, config_for, store, with_config
from nonsite.cli.text import china, plain, table

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

    from ingest.registry import Registry
    from nonsite.cli.common import Subcommands
    from nonsite.config import Config

    # Records one command in the transaction given and returns its id (CommandRefusedError if
    # the checks refuse it).
    Ask: TypeAlias = Callable[[Connection, Registry, Config, datetime], int]

LOGGER_EPILOG: Final = """\
The command is recorded in the service database; the running nonsite serve sends it within a
second, on the logger's reply topic or its TCP connection (the gateway), and fills in the
outcome as the logger answers (9011, its data or clock, 9012). No login here: the audit records
the name given with --as.

exit codes:
  0  recorded (or listed)
  2  usage: a bad argument or configuration
  3  refused; stderr says "error: <code>: <message>" (unknown_mn, bad_cn, bad_time,
     rate_limited, bad_cp, no_reason)
"""


def add_to(sub: Subcommands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser(
        "logger",
        help="commands to data loggers: recall (补遗), time-check (校时), send; and their audit",
        epilog=LOGGER_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="logger_command", required=True)

    # --config comes after each command's own options (as --help has always listed them).
    logger_command = partial(
        command, group, config=False, epilog=LOGGER_EPILOG, formatter_class=raw
    )

    def common(p: argparse.ArgumentParser, *, who: bool = True) -> None:
        with_config(p)
        p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
        if who:
            p.add_argument("--as", dest="as_", required=True, metavar="NAME", help="who asks")

    p = logger_command(
        "recall", logger_recall, help="ask a logger for its data of an interval (补遗)"
    )
    p.add_argument("mn", help="the logger's MN")
    p.add_argument("--from", dest="from_", type=cli_time, required=True, metavar="ISO8601")
    p.add_argument("--to", type=cli_time, required=True, metavar="ISO8601")
    p.add_argument(
        "--cn",
        choices=("2051", "2061", "2031"),
        default="2061",
        help="2051 minute, 2061 hour (default), 2031 day data",
    )
    p.add_argument("--reason", default="", help="why (for the audit)")
    common(p)
    p = logger_command(
        "time-check",
        logger_time_check,
        help="read a logger's clock; beyond the tolerance it is set (校时)",
    )
    p.add_argument("mn")
    common(p)
    p = logger_command("send", logger_send, help="send any command (CN and its CP text)")
    p.add_argument("mn")
    p.add_argument("--cn", required=True, help="the command code, e.g. 3020")
    p.add_argument("--cp", default="", help="the CP area without its &&, e.g. PolId=a21026")
    p.add_argument("--reason", required=True, help="why (for the audit)")
    common(p)
    p = logger_command(
        "commands",
        logger_commands,
        help="the commands sent to loggers and their outcomes, newest first",
    )
    p.add_argument("mn", nargs="?", help="only this logger's")
    p.add_argument("--limit", type=int, default=50)
    common(p, who=False)


def _record(args: argparse.Namespace, ask: Ask) -> int:
    """Record the command ``ask`` makes, and print it as the running service will send it."""
    from ingest.commands.manual import CommandRefusedError
    from ingest.commands.store import by_id
    from nonsite.wiring import build_registry

    config = config_for(args)
    registry = build_registry(config)
    now = datetime.now(UTC)
    with store(config) as engine:
        try:
            with engine.begin() as conn:
                command_id = ask(conn, registry, config, now)
        except CommandRefusedError as err:
            raise Refused(err.code, str(err)) from None
        with engine.connect() as conn:
            row = by_id(conn, command_id)
    assert row is not None
    _print([row], args.json)
    print(f"已记录命令 {command_id}：运行中的 nonsite serve 将在 1 秒内下发", file=sys.stderr)
    return 0


def logger_recall(args: argparse.Namespace) -> int:
    from ingest.commands import manual

    def ask(conn: Connection, registry: Registry, config: Config, now: datetime) -> int:
        return manual.recall(
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

    return _record(args, ask)


def logger_time_check(args: argparse.Namespace) -> int:
    from ingest.commands import manual

    def ask(conn: Connection, registry: Registry, config: Config, now: datetime) -> int:
        return manual.time_check(conn, registry, mn=args.mn, by=args.as_, now=now)

    return _record(args, ask)


def logger_send(args: argparse.Namespace) -> int:
    from ingest.commands import manual

    def ask(conn: Connection, registry: Registry, config: Config, now: datetime) -> int:
        return manual.send(
            conn,
            registry,
            mn=args.mn,
            cn=args.cn,
            cp=args.cp,
            by=args.as_,
            reason=args.reason,
            now=now,
        )

    return _record(args, ask)


def logger_commands(args: argparse.Namespace) -> int:
    from ingest.commands.store import listing

    with store(config_for(args)) as engine, engine.connect() as conn:
        rows = listing(conn, mn=args.mn, limit=args.limit)
    _print(rows, args.json)
    return 0


def _print(rows: list[Any], as_json: bool) -> None:
    from alerts.audit import COMMAND_KIND_NAMES, COMMAND_STATUS_NAMES
    from ingest.commands.packets import without_pw

    if as_json:
        for row in rows:
            values = plain(row._mapping)
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
            china(r.requested_at),
            _outcome(r),
        ]
        for r in rows
    ]
    print(table(header, body) if body else "（没有命令）")


def _outcome(row: Any) -> str:
    parts = []
    if row.kind == "recall" and row.status in ("accepted", "done", "no_data", "no_answer"):
        parts.append(f"收到 {row.filled} 条")
    if row.drift_s is not None:
        parts.append(f"时钟偏差 {row.drift_s:+.0f} 秒")
    if row.detail:
        parts.append(row.detail)
    return "；".join(parts) or "-"
