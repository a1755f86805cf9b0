"""The ``nonsite`` command line."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from alerts.workflow import (
    REPORT_OUTCOMES,
    STATE_NAMES,
    TRANSITIONS,
    VERIFY_OUTCOMES,
    WORK_ORDER_KINDS,
)
from ingest.archive import ArchivedMessage, RawArchive
from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import MAX_SEGMENT_BYTES, DecodePolicy, decode_payload
from ingest.hj212.jsonview import result_to_json
from ingest.store import count_dead_letters_by_reason, list_dead_letters
from nonsite.config import Config, ConfigError, load_config
from nonsite.config.advice import config_warnings
from nonsite.config.load import parse_config
from nonsite.errors import ListenError, StartupError
from nonsite.timeargs import cli_time
from nonsite.wiring import build_router

EXIT_CONFIG = 2
DEMO_DATA_DIR = Path("demo-data")  # nonsite demo's --data-dir, in the working directory


def _config_for(args: argparse.Namespace) -> Config:
    """The configuration named by --config or NONSITE_CONFIG; otherwise defaults + environment."""
    path = getattr(args, "config", None) or os.environ.get("NONSITE_CONFIG")
    if path:
        return load_config(path)
    return parse_config({}, "(defaults and environment)")


# -- commands that only read --------------------------------------------------------------


def _reads(p: argparse.ArgumentParser, *what: str) -> None:
    """Mark a command that only reads the database and/or the archive: it must find them."""
    p.set_defaults(reads=what, command_name=p.prog)


def _demo_config() -> Path | None:
    """The configuration of a demo run in the working directory, if there is one."""
    from nonsite.demo import CONFIG_NAME  # only on the way to a refusal

    config = DEMO_DATA_DIR / CONFIG_NAME
    return config if config.is_file() else None


def _refuse_missing_data(args: argparse.Namespace) -> int | None:
    """For a command that only reads: exit status 2 and one line when its database or archive
    is not where the configuration says, rather than an empty one created there in silence
    (after ``nonsite demo`` the data are in demo-data/, not ./data/)."""
    what = getattr(args, "reads", ())
    if not what:
        return None
    from sqlalchemy.engine import make_url

    from nonsite.db import database_exists, sqlite_path

    config = _config_for(args)
    missing = ""
    url = config.database_url()
    if "database" in what and not database_exists(url):
        where = sqlite_path(url) or make_url(url).render_as_string(hide_password=True)
        missing = f"no database at {where}"
    archive = config.service.data_dir / "archive.sqlite3"
    if not missing and "archive" in what and not archive.is_file():
        missing = f"no archive at {archive}"
    if not missing:
        return None
    source = getattr(args, "config", None) or os.environ.get("NONSITE_CONFIG")
    used = f"configuration {source}" if source else "no configuration: defaults and environment"
    demo = _demo_config()
    print(
        f"{args.command_name}: {missing} ({used}); point at the data to read with --config FILE "
        f"or NONSITE_CONFIG=FILE{f' (a demo: NONSITE_CONFIG={demo})' if demo else ''}, or "
        "NONSITE_DATA_DIR, NONSITE_DB_URL",
        file=sys.stderr,
    )
    return EXIT_CONFIG


# -- serve -------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from nonsite.service import Service  # imported here: the other commands stay light

    config = _config_for(args)
    for issue in config_warnings(config):
        logging.getLogger("nonsite.config").warning("%s: %s", issue.entry, issue.problem)
    service = Service(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(service.run(stop))
        started = asyncio.create_task(service.status.started.wait())
        await asyncio.wait({runner, started}, return_when=asyncio.FIRST_COMPLETED)
        if service.status.started.is_set():
            tcp = service.status.tcp_address
            print(
                f"nonsite is running: MQTT {service.status.broker_url}, "
                + (f"HJ 212 over TCP {tcp}, " if tcp else "")
                + f"dashboard {service.status.http_url}/ (API docs /api/docs; /metrics, "
                "/healthz, /readyz). Ctrl-C stops it cleanly.",
                flush=True,
            )
        await runner

    asyncio.run(main())
    return 0


# -- gateway -----------------------------------------------------------------------------


def cmd_gateway(args: argparse.Namespace) -> int:
    """The HJ 212 TCP gateway alone (``serve`` runs it too when [tcp] listen is set)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from ingest.tcp.runtime import GatewayRuntime
    from nonsite.config.mqtt_url import parse_broker_url
    from nonsite.http import bind
    from nonsite.wiring import (
        DEFAULT_TCP_LISTEN,
        build_gateway_mqtt_settings,
        build_gateway_settings,
        build_registry,
    )

    config = _config_for(args)
    listen = args.listen or config.tcp.listen or DEFAULT_TCP_LISTEN
    config = config.model_copy(update={"tcp": config.tcp.model_copy(update={"listen": listen})})
    broker = config.tcp.mqtt_url or config.mqtt.url
    if not broker:
        print(
            "nonsite gateway: no broker to publish to: set url in [mqtt] (or the gateway's own "
            "login, mqtt_url in [tcp]); the embedded broker runs only inside nonsite serve",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    sock = bind(listen, "tcp.listen")
    metrics = CollectorRegistry()
    if config.tcp.metrics_listen:
        host, _, port = config.tcp.metrics_listen.rpartition(":")
        start_http_server(int(port), host, registry=metrics)
    runtime = GatewayRuntime(
        build_gateway_settings(config),
        build_gateway_mqtt_settings(config),
        build_registry(config),
        metrics,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start(sock)
        print(
            f"nonsite gateway: HJ 212 over TCP on {listen.rpartition(':')[0]}:{runtime.port}, "
            f"publishing to {parse_broker_url(broker).redacted()}. Ctrl-C stops it cleanly.",
            flush=True,
        )
        await stop.wait()
        await runtime.stop()

    asyncio.run(main())
    return 0


# -- logger (commands to data loggers; the logic is in nonsite.logger_cli) ----------------


def _logger_cli(args: argparse.Namespace) -> int:
    from nonsite.logger_cli import run

    return run(args)


LOGGER_EPILOG = """\
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


def _add_logger_commands(sub: Any, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser(
        "logger",
        help="commands to data loggers: recall (补遗), time-check (校时), send; and their audit",
        epilog=LOGGER_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="logger_command", required=True)

    def common(p: argparse.ArgumentParser, *, who: bool = True) -> None:
        with_config(p)
        p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
        if who:
            p.add_argument("--as", dest="as_", required=True, metavar="NAME", help="who asks")
        p.set_defaults(func=_logger_cli)

    p = group.add_parser(
        "recall",
        help="ask a logger for its data of an interval (补遗)",
        epilog=LOGGER_EPILOG,
        formatter_class=raw,
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
    p = group.add_parser(
        "time-check",
        help="read a logger's clock; beyond the tolerance it is set (校时)",
        epilog=LOGGER_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("mn")
    common(p)
    p = group.add_parser(
        "send",
        help="send any command (CN and its CP text)",
        epilog=LOGGER_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("mn")
    p.add_argument("--cn", required=True, help="the command code, e.g. 3020")
    p.add_argument("--cp", default="", help="the CP area without its &&, e.g. PolId=a21026")
    p.add_argument("--reason", required=True, help="why (for the audit)")
    common(p)
    p = group.add_parser(
        "commands",
        help="the commands sent to loggers and their outcomes, newest first",
        epilog=LOGGER_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("mn", nargs="?", help="only this logger's")
    p.add_argument("--limit", type=int, default=50)
    common(p, who=False)


# -- check-config ------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    outlets = sum(len(e.outlets) for e in config.enterprises)
    meters = sum(len(e.meters) for e in config.enterprises)
    from nonsite.config.mqtt_url import parse_broker_url

    broker = (
        parse_broker_url(config.mqtt.url).redacted() if config.mqtt.url else "(embedded broker)"
    )
    tcp = f"; HJ 212 over TCP on {config.tcp.listen}" if config.tcp.listen else ""
    print(
        f"{args.file}: OK: {len(config.enterprises)} enterprises, {outlets} outlets, "
        f"{meters} meters; broker {broker}{tcp}; data in {config.service.data_dir}"
    )
    for issue in config_warnings(config):
        print(f"  warning: {issue.entry}: {issue.problem}")
    return 0


# -- decode ------------------------------------------------------------------------------


def _encoding_arg(value: str) -> str:
    from ingest.hj212.charset import text_encoding

    try:
        return text_encoding(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_decode(args: argparse.Namespace) -> int:
    policy = DecodePolicy(
        accept_modbus_crc=args.accept_modbus,
        max_segment_bytes=args.max_segment_bytes,
        encoding=args.encoding,
    )
    source: BinaryIO = open(args.file, "rb") if args.file else sys.stdin.buffer  # noqa: SIM115
    out = sys.stdout
    with source:
        for raw_line in source:
            line = raw_line.rstrip(b"\r\n")
            if not line.strip():
                continue  # blank lines carry no frame
            for result in decode_payload(line, policy):
                out.write(json.dumps(result_to_json(result), ensure_ascii=False) + "\n")
    out.flush()
    return 0


# -- archive -----------------------------------------------------------------------------


def _open_archive(config: Config) -> RawArchive:
    path = config.service.data_dir / "archive.sqlite3"
    try:
        return RawArchive(path, readonly=True)
    except FileNotFoundError:
        raise SystemExit(
            f"nonsite: no archive at {path} (check --config or NONSITE_DATA_DIR)"
        ) from None


def _export_lines(msg: ArchivedMessage, kind: str | None) -> Iterator[bytes]:
    if kind == "hj212":
        for line in msg.payload.replace(b"\r\n", b"\n").split(b"\n"):
            if line.strip():
                yield line
        return
    try:
        yield json.dumps(
            json.loads(msg.payload), ensure_ascii=False, separators=(",", ":")
        ).encode()
    except ValueError:
        yield msg.payload.replace(b"\r", b"\\r").replace(b"\n", b"\\n")


def _json_record(msg: ArchivedMessage) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": msg.seq,
        "received_at": msg.received_at.astimezone(CHINA_TZ).isoformat(timespec="microseconds"),
        "topic": msg.topic,
    }
    if msg.truncated:  # above ingest.max_payload_bytes: the payload is only its start
        record.update(truncated=True, size=msg.size, sha256=(msg.full_sha256 or b"").hex())
    try:
        record["payload"] = msg.payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(msg.payload).decode()
    return record


def cmd_archive_export(args: argparse.Namespace) -> int:
    config = _config_for(args)
    archive = _open_archive(config)
    router = build_router(config)
    out = sys.stdout.buffer
    for msg in archive.export(args.since, args.until, args.topic_prefix):
        if args.format == "json":
            out.write(json.dumps(_json_record(msg), ensure_ascii=False).encode() + b"\n")
        elif msg.truncated:  # its start is not the message: say so rather than print it
            print(
                f"nonsite: message {msg.seq} ({msg.topic}) left out: {msg.size} bytes, above "
                f"ingest.max_payload_bytes; the archive keeps its first {len(msg.payload)} bytes "
                "(--format json shows them)",
                file=sys.stderr,
            )
        else:
            for line in _export_lines(msg, router.kind(msg.topic)):
                out.write(line + b"\n")
    out.flush()
    return 0


def cmd_archive_prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    config = _config_for(args)
    path = config.service.data_dir / "archive.sqlite3"
    archive = RawArchive(path, durability=config.archive.durability)
    days = args.days if args.days is not None else config.archive.retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    from ingest.store import load_checkpoint, prune_dead_letters
    from nonsite.db import make_engine

    engine = make_engine(config.database_url())
    position = load_checkpoint(engine, "ingest")
    removed = archive.prune(cutoff, up_to_seq=position)
    letters = prune_dead_letters(engine, cutoff)
    print(
        f"removed {removed} messages and {letters} dead letters received before "
        f"{cutoff.astimezone(CHINA_TZ):%Y-%m-%d %H:%M}"
    )
    return 0


# -- dead letters ------------------------------------------------------------------------


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from nonsite.db import make_engine, migrate

    config = _config_for(args)
    engine = make_engine(config.database_url())
    migrate(engine)
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


def cmd_findings(args: argparse.Namespace) -> int:
    from nonsite.db import make_engine, migrate
    from rules.store import list_findings

    config = _config_for(args)
    engine = make_engine(config.database_url())
    migrate(engine)
    found = list_findings(
        engine, rule=args.rule, enterprise_id=args.enterprise, since=args.since, limit=args.limit
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


def cmd_demo(args: argparse.Namespace) -> int:
    import threading

    # Before the demo's imports (about a second): a SIGTERM or Ctrl-C from now on stops it in
    # order (exit status 0), not with the signal's default (SIGTERM: killed, status 143) or a
    # KeyboardInterrupt traceback; the demo's own handlers take over once it runs.
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _sig, _frame: stop.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        from nonsite.demo import DemoSettings, run_demo

        settings = DemoSettings(
            data_dir=args.data_dir,
            broker=args.broker,
            duration_s=args.duration,
            seed=args.seed,
            enterprises=args.enterprises,
            http_port=args.port,
            days=args.days,
            offline_after_s=args.offline_after,
        )
        if args.speed is not None:
            settings.speed = args.speed
        return run_demo(settings, early_stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_simulate(args: argparse.Namespace) -> int:
    from nonsite.config.mqtt_url import parse_broker_url
    from nonsite.simulator.publisher import Publisher, run
    from nonsite.simulator.traffic import FleetTraffic

    config = load_config(args.config)
    try:
        broker = parse_broker_url(args.broker)
    except ValueError as exc:
        print(f"nonsite simulate: --broker: {exc}", file=sys.stderr)
        return 2
    start = int((args.start or datetime.now(UTC)).timestamp())
    traffic = FleetTraffic(config, seed=args.seed)
    publisher = Publisher(broker)
    try:
        done = run(
            traffic,
            publisher,
            start=start,
            speed=None if args.as_fast_as_possible else args.speed,
            duration_s=args.duration,
            until=start + int(args.hours * 3600) if args.hours else None,
        )
    except KeyboardInterrupt:
        return 0
    finally:
        publisher.close()
    until = datetime.fromtimestamp(done.sim_time, UTC).isoformat()
    print(f"published {done.messages} messages up to simulated {until}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from nonsite.replay import backtest, finding_line, load_messages, o2_reference, replay

    for name in args.inputs:
        if name != "-" and not Path(name).is_file():
            demo = _demo_config()
            history = f"{demo.parent / 'archive.sqlite3'} (with --config {demo})" if demo else ""
            print(
                f"nonsite replay: no input file {name}"
                + (f"; the demo's history is {history}" if history else ""),
                file=sys.stderr,
            )
            return EXIT_CONFIG
    config = load_config(args.config)
    messages = load_messages(args.inputs, config, stdin=sys.stdin)
    if args.o2_reference:
        print(o2_reference(config, messages), end="")
        return 0
    result = replay(config, messages, include_late=args.include_late, absence=not args.no_absence)
    if args.backtest is None:
        for f in result.findings:
            print(finding_line(f))
    else:
        changed = replay(
            load_config(args.backtest),
            messages,
            include_late=args.include_late,
            absence=not args.no_absence,
        )
        for change, f in backtest(result.findings, changed.findings):
            print(finding_line(f, {"backtest": change}))
    dead = ", ".join(f"{reason} {n}" for reason, n in sorted(result.dead_letters.items())) or "none"
    print(
        f"replay: {result.messages} messages, {result.readings} readings, "
        f"{len(result.findings)} findings; late {result.late}, duplicates {result.duplicates}; "
        f"dead letters: {dead}",
        file=sys.stderr,
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from nonsite.db import make_engine, migrate

    config = _config_for(args)
    migrate(make_engine(config.database_url()))
    print("database schema is up to date")
    return 0


# -- cases and silences (the logic is in nonsite.case_cli) --------------------------------


def _case_cli(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from nonsite.case_cli import run_command

        return run_command(command, args)

    return run


CASES_EPILOG = """\
There is no login here: the command line is the operator's tool on the server, for whoever can
read its configuration and database (authentication comes with the HTTP API). Every action is
audited under the role and name given with --as, so give your own.

exit codes:
  0  done
  1  a file could not be read or written
  2  usage: a bad argument or configuration, an invalid silence
  3  refused by the workflow or no such case; stderr says "error: <code>: <message>"
     (codes: role_not_allowed, invalid_transition, out_of_scope, conflict, not_found,
     note_required, bad_outcome, not_verified, positive_list, case_number_required, ...)
"""
HUMAN_ACTIONS = [a for a, t in TRANSITIONS.items() if t.roles - {"system"}]


def _add_case_commands(sub: Any, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    states = textwrap.fill(", ".join(f"{s} {n}" for s, n in STATE_NAMES.items()), 80)
    group = sub.add_parser(
        "cases",
        help="list, show, act on and export cases (案件)",
        description="Cases and their workflow (感知 → 派单 → 执法).",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="cases_command", required=True)

    p = group.add_parser(
        "list",
        help="cases, newest first",
        description=f"Cases, newest first.\n\nstates:\n{states}",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")
    p.add_argument("--state", choices=list(STATE_NAMES), help="only cases in this state")
    p.add_argument("--tier", choices=["warning", "alarm"], help="warning 预警 or alarm 报警")
    p.add_argument("--rule", help="only this rule, e.g. A3")
    p.add_argument("--enterprise", help="only this enterprise id")
    p.add_argument("--open", action="store_true", help="only open cases (not closed or resolved)")
    p.add_argument("--json", action="store_true", help="JSON lines, one case each")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=_case_cli("cases_list"))

    p = group.add_parser(
        "show",
        help="a case, its current work order and its audit trail",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")
    p.add_argument("id", type=int, metavar="ID", help="the case id")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=_case_cli("cases_show"))

    p = group.add_parser(
        "act",
        help="take a workflow action on a case, audited under --as",
        description=(
            "Take one workflow action on a case, in one transaction, and print its new state.\n"
            "\n"
            "roles (--as ROLE:NAME):\n"
            "  monitor     verify, remind, escalate, comment (监控中心)\n"
            "  supervisor  dispatch, close, escalate, comment (监管)\n"
            "  enforcer    arrive, report, comment; --brigade is the enforcer's own (执法)\n"
            "  enterprise  explain, comment; --enterprise is its own (企业)\n"
            "  admin       configures the service and decides no case\n"
            "\n"
            f"verify outcomes: {', '.join(VERIFY_OUTCOMES)}\n"
            f"report outcomes: {', '.join(REPORT_OUTCOMES)}\n"
            "  (violation_confirmed needs --case-number)"
        ),
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")  # acts on a case that must exist
    p.add_argument("id", type=int, metavar="ID", help="the case id")
    p.add_argument("action", choices=HUMAN_ACTIONS, metavar="ACTION", help=", ".join(HUMAN_ACTIONS))
    p.add_argument(
        "--as",
        dest="as_",
        required=True,
        metavar="ROLE:NAME",
        help="who acts, e.g. monitor:王监测 (recorded in the audit trail)",
    )
    p.add_argument("--enterprise", help="the enterprise role's own enterprise id")
    p.add_argument(
        "--brigade", help="the enforcer's own brigade; for dispatch: the brigade to send to"
    )
    p.add_argument("--note", help="why (required for explain, comment, escalate, false_positive)")
    p.add_argument("--outcome", help="verify or report outcome (see above)")
    p.add_argument("--kind", choices=list(WORK_ORDER_KINDS), help="dispatch: work order kind")
    p.add_argument(
        "--due",
        type=cli_time,
        metavar="ISO8601",
        help="dispatch: feedback due (ISO 8601; China time if no offset)",
    )
    p.add_argument("--case-number", help="report: the enforcement case number (立案编号)")
    p.add_argument(
        "--version", type=int, help="refuse (conflict) unless the case is at this version"
    )
    p.set_defaults(func=_case_cli("cases_act"))

    p = group.add_parser(
        "export",
        help="the whole record of a case (执法全过程记录)",
        description=(
            "The whole record of a case (执法全过程记录): json has the case, every audit\n"
            "event, its work orders and notifications; csv has the audit events (UTF-8 with\n"
            "a BOM, for spreadsheets)."
        ),
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")
    p.add_argument("id", type=int, metavar="ID", help="the case id")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--output", type=Path, help="write to this file (default: stdout)")
    p.set_defaults(func=_case_cli("cases_export"))

    group = sub.add_parser(
        "silences",
        help="maintenance windows (silences): add, list",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="silences_command", required=True)
    p = group.add_parser(
        "add",
        help="silence findings for a while (e.g. announced maintenance); prints its id",
        description=(
            "Findings matching a silence open or update no case and notify no one while it\n"
            "lasts; they stay in the findings table. Leave out --enterprise, --source or\n"
            "--rule to match any. Times are ISO 8601, China time if no offset."
        ),
        epilog=CASES_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
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
    p.set_defaults(func=_case_cli("silences_add"))
    p = group.add_parser("list", help="active silences", epilog=CASES_EPILOG, formatter_class=raw)
    with_config(p)
    _reads(p, "database")
    p.add_argument("--all", action="store_true", help="also pending and ended ones")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.set_defaults(func=_case_cli("silences_list"))


# -- users (the logic is in nonsite.auth.cli) -------------------------------------------------


def _users_cli(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from nonsite.auth.cli import run_command

        return run_command(command, args)

    return run


USERS_EPILOG = """\
People log in to the dashboard with a password; systems call the API with a token
(Authorization: Bearer <token>). Passwords and tokens are stored hashed, never in the clear;
a token is printed once, when it is created. Every change is recorded in the authentication
log (nonsite users events) as made by cli:<your OS user>.

exit codes:
  0  done
  1  a file could not be read or written
  2  usage: a bad argument, an unknown enterprise or brigade, a weak password, a username
     that is taken
  3  no such user or token; stderr says "error: not_found: <message>"
"""
ROLES_HELP = """\
roles:
  monitor     监测中心: verifies cases
  supervisor  监管: dispatches and closes cases
  enforcer    执法: works the orders of one brigade (--brigade, from [[brigades]])
  enterprise  企业: explains its own enterprise's cases (--enterprise)
  admin       运维: manages the service and its users; decides no case

passwords: at least 8 characters, not one character repeated, not the username."""


def _add_user_commands(sub: Any, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser(
        "users",
        help="users, passwords and API tokens (用户)",
        description="Users of the dashboard and the API, their passwords and API tokens.",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="users_command", required=True)

    def password_stdin(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin (default: ask twice)",
        )

    p = group.add_parser(
        "add",
        help="add a user",
        description=f"Add a user; the password is asked for twice.\n\n{ROLES_HELP}",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    p.add_argument("username", metavar="USERNAME", help="2-64 of A-Z a-z 0-9 _ . @ -")
    p.add_argument("--role", required=True, metavar="ROLE", help="see roles above")
    p.add_argument("--name", help="the display name, e.g. 王监测 (recorded in audit trails)")
    p.add_argument("--enterprise", help="the enterprise role's own enterprise id")
    p.add_argument("--brigade", help="the enforcer's brigade id")
    password_stdin(p)
    p.set_defaults(func=_users_cli("users_add"))

    p = group.add_parser("list", help="users", epilog=USERS_EPILOG, formatter_class=raw)
    with_config(p)
    _reads(p, "database")
    p.add_argument("--json", action="store_true", help="JSON lines, one user each")
    p.set_defaults(func=_users_cli("users_list"))

    p = group.add_parser(
        "passwd",
        help="set a user's password (ends their sessions)",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")  # the user must exist
    p.add_argument("username", metavar="USERNAME")
    password_stdin(p)
    p.set_defaults(func=_users_cli("users_passwd"))

    for name, helptext in (
        ("disable", "disable a user: no login, sessions end, API tokens stop working"),
        ("enable", "enable a disabled user again"),
    ):
        p = group.add_parser(name, help=helptext, epilog=USERS_EPILOG, formatter_class=raw)
        with_config(p)
        _reads(p, "database")  # the user must exist
        p.add_argument("username", metavar="USERNAME")
        p.set_defaults(func=_users_cli(f"users_{name}"))

    tokens = group.add_parser(
        "token", help="API tokens for systems", epilog=USERS_EPILOG, formatter_class=raw
    ).add_subparsers(dest="token_command", required=True)
    p = tokens.add_parser(
        "create",
        help="create an API token and print it (shown only once)",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")  # the user must exist
    p.add_argument("username", metavar="USERNAME", help="the user the token acts as")
    p.add_argument("--name", required=True, help="what uses it, e.g. the system's name")
    p.set_defaults(func=_users_cli("users_token_create"))
    p = tokens.add_parser(
        "list",
        help="API tokens (never the tokens themselves)",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")
    p.add_argument("username", nargs="?", metavar="USERNAME", help="only this user's")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.set_defaults(func=_users_cli("users_token_list"))
    p = tokens.add_parser(
        "revoke", help="revoke an API token", epilog=USERS_EPILOG, formatter_class=raw
    )
    with_config(p)
    _reads(p, "database")
    p.add_argument("id", type=int, metavar="ID", help="the token id (from token list)")
    p.set_defaults(func=_users_cli("users_token_revoke"))

    p = group.add_parser(
        "events",
        help="the authentication log, newest first",
        description="Logins (ok, failed, throttled), logouts and changes to users and tokens.",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    )
    with_config(p)
    _reads(p, "database")
    p.add_argument("--user", help="only events of this username")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.set_defaults(func=_users_cli("users_events"))


# -- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nonsite",
        description="Streaming alert service for off-site environmental supervision.",
    )
    parser.add_argument("--log-level", default=os.environ.get("NONSITE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="configuration file (default: $NONSITE_CONFIG)")

    p = sub.add_parser("serve", help="run the service")
    with_config(p)
    p.set_defaults(func=cmd_serve)

    _add_logger_commands(sub, with_config)

    p = sub.add_parser(
        "gateway", help="run the HJ 212 TCP gateway alone: data loggers connect to it"
    )
    with_config(p)
    p.add_argument(
        "--listen",
        help="host:port to listen on (default: listen in [tcp], else 0.0.0.0:9212)",
    )
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("decode", help="decode HJ 212 frames, one per line, to JSON lines")
    p.add_argument("file", nargs="?", type=Path, help="input file (default: stdin)")
    p.add_argument(
        "--accept-modbus",
        action="store_true",
        help="accept frames whose CRC is the CRC-16/MODBUS variant",
    )
    p.add_argument(
        "--max-segment-bytes",
        type=int,
        default=MAX_SEGMENT_BYTES,
        help="longest data segment accepted (the standard says 1024)",
    )
    p.add_argument(
        "--encoding",
        type=_encoding_arg,
        default="utf-8",
        help="text encoding of packets that are not plain ASCII: utf-8 (the standard's), gbk, "
        "gb18030",
    )
    p.set_defaults(func=cmd_decode)

    archive = sub.add_parser("archive", help="the raw archive").add_subparsers(
        dest="archive_command", required=True
    )
    p = archive.add_parser("export", help="print archived frames, one per line")
    with_config(p)
    _reads(p, "archive")
    p.add_argument("--since", type=cli_time, help="received at or after (ISO 8601; China time)")
    p.add_argument("--until", type=cli_time, help="received before (ISO 8601; China time)")
    p.add_argument("--topic-prefix", help="only topics starting with this")
    p.add_argument(
        "--format",
        choices=["raw", "json"],
        default="raw",
        help="raw: the frames as received; json: one record per message with metadata",
    )
    p.set_defaults(func=cmd_archive_export)
    p = archive.add_parser("prune", help="apply the retention setting now")
    with_config(p)
    _reads(p, "database", "archive")
    p.add_argument("--days", type=int, help="keep this many days (default: archive.retention_days)")
    p.set_defaults(func=cmd_archive_prune)

    p = sub.add_parser("dead-letters", help="list messages that could not be used, with reasons")
    with_config(p)
    _reads(p, "database")
    p.add_argument("--reason", help="only this reason code")
    p.add_argument("--since", type=cli_time)
    p.add_argument("--until", type=cli_time)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON lines with the payload")
    p.add_argument("--counts", action="store_true", help="counts per reason")
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("findings", help="list what the rules found, newest first")
    with_config(p)
    _reads(p, "database")
    p.add_argument("--rule", help="only this rule, e.g. A3")
    p.add_argument("--enterprise", help="only this enterprise id")
    p.add_argument("--since", type=cli_time, help="windows starting at or after (China time)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_findings)

    _add_case_commands(sub, with_config)
    _add_user_commands(sub, with_config)

    p = sub.add_parser(
        "replay", help="run archived traffic through the rules and print the findings (JSON lines)"
    )
    p.add_argument("--config", type=Path, required=True)
    p.add_argument(
        "inputs",
        nargs="+",
        help="archive exports, HJ 212 line files, power JSON lines, "
        "archive.sqlite3 files, or - for stdin",
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
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "demo",
        help="the service and a simulated fleet of 200 enterprises on this machine",
        description="The service and a simulated fleet with scripted incidents: a day of "
        "history sent fast, then live. Each run starts afresh in --data-dir (a previous demo's "
        "data there are removed) and writes its configuration there (nonsite.toml), for the "
        "other commands: NONSITE_CONFIG=demo-data/nonsite.toml nonsite cases list.",
        epilog="Stops in order on SIGTERM or Ctrl-C (exit status 0). Exit status 1 when it "
        "cannot start, e.g. when the dashboard's port is taken: choose another with --port.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=DEMO_DATA_DIR, help="SQLite, archive, configuration"
    )
    p.add_argument("--broker", help="use this broker (mqtt://...) instead of an embedded one")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--speed",
        type=float,
        help="history: simulated seconds per second (default 1200: a day in 72 s); then live",
    )
    p.add_argument("--seed", type=int, default=212, help="the same seed, the same run")
    p.add_argument("--enterprises", type=int, default=200)
    p.add_argument("--port", type=int, default=8080, help="the dashboard's port")
    p.add_argument(
        "--days", type=int, default=1, help="simulated history: from 00:00 this many days ago"
    )
    p.add_argument(
        "--offline-after",
        type=int,
        help="seconds of silence before a logger counts as offline (B8; the demo's default 80, "
        "a service's 600): silence is measured on the clock, and history runs faster",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "simulate",
        help="publish a configured fleet's traffic (HJ 212 and power JSON) in simulated time",
    )
    p.add_argument("--config", type=Path, required=True, help="the fleet: enterprises, MNs, meters")
    p.add_argument("--broker", required=True, help="mqtt://[user:password@]host:port")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second")
    p.add_argument(
        "--as-fast-as-possible", action="store_true", help="publish as fast as the broker takes it"
    )
    p.add_argument("--seed", type=int, default=212, help="the same seed gives the same traffic")
    p.add_argument(
        "--start", type=cli_time, help="simulated start (ISO 8601; China time without an offset)"
    )
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.add_argument("--hours", type=float, help="stop after this many simulated hours")
    p.set_defaults(func=cmd_simulate)

    db = sub.add_parser("db", help="the service database").add_subparsers(
        dest="db_command", required=True
    )
    p = db.add_parser("upgrade", help="apply schema migrations")
    with_config(p)
    p.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        refused = _refuse_missing_data(args)
        if refused is not None:
            return refused
        return int(args.func(args))
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    except (ListenError, StartupError, OSError) as exc:
        detail = str(exc) if not isinstance(exc, OSError) else f"{exc.filename}: {exc.strerror}"
        print(f"nonsite: {detail}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
