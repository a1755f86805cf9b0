"""``nonsite cases``: list, show, act on and export cases, the operator's tools on the server.

There is no authentication here (that comes with the HTTP API): the command line is run on the
server by someone who can read its configuration and database, and every action is audited
under the role and name given with ``--as``. Exit codes: 0 done; 2 usage (a bad argument, a bad
configuration); 3 refused by the workflow or no such case (``error: <code>: <message>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from alerts.workflow import (
    EVENT_NAMES,
    OPEN_STATES,
    REPORT_OUTCOMES,
    STATE_NAMES,
    TRANSITIONS,
    VERIFY_OUTCOMES,
    WORK_ORDER_KINDS,
    Actor,
    Role,
    WorkflowError,
)
from ingest.china_time import CHINA_TZ
from nonsite.cli.common import (
    Refused,
    UsageError,
    cli_time,
    command,
    config_for,
    known_brigade,
    known_enterprise,
    store,
)
from nonsite.cli.text import china, pad, plain, table

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from alerts.case import Case
    from alerts.cases import CaseBook
    from nonsite.cli.common import Subcommands
    from nonsite.config import Config

CASES_EPILOG: Final = """\
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
HUMAN_ACTIONS: Final = [a for a, t in TRANSITIONS.items() if t.roles - {"system"}]

# The roles a person acts in; ``system`` is the service itself and is not given on the CLI.
ROLES: Final[tuple[Role, ...]] = ("monitor", "supervisor", "enforcer", "enterprise", "admin")
TIER_NAMES: Final = {"warning": "预警", "alarm": "报警"}


# Options that mean something only for some actions (given elsewhere they would be ignored
# silently, and the operator would think they were recorded).
OPTION_ACTIONS: Final = {
    "outcome": ("--outcome", ("verify", "report")),
    "kind": ("--kind", ("dispatch",)),
    "due": ("--due", ("dispatch",)),
    "case_number": ("--case-number", ("report",)),
}


def add_to(sub: Subcommands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    states = textwrap.fill(", ".join(f"{s} {n}" for s, n in STATE_NAMES.items()), 80)
    group = sub.add_parser(
        "cases",
        help="list, show, act on and export cases (案件)",
        description="Cases and their workflow (感知 → 派单 → 执法).",
        epilog=CASES_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="cases_command", required=True)
    # Each reads the database (act: a case that must exist); each ends with the exit codes.
    case_command = partial(
        command, group, reads=("database",), epilog=CASES_EPILOG, formatter_class=raw
    )

    p = case_command(
        "list",
        cases_list,
        help="cases, newest first",
        description=f"Cases, newest first.\n\nstates:\n{states}",
    )
    p.add_argument("--state", choices=list(STATE_NAMES), help="only cases in this state")
    p.add_argument("--tier", choices=["warning", "alarm"], help="warning 预警 or alarm 报警")
    p.add_argument("--rule", help="only this rule, e.g. A3")
    p.add_argument("--enterprise", help="only this enterprise id")
    p.add_argument("--open", action="store_true", help="only open cases (not closed or resolved)")
    p.add_argument("--json", action="store_true", help="JSON lines, one case each")
    p.add_argument("--limit", type=int, default=100)

    p = case_command("show", cases_show, help="a case, its current work order and its audit trail")
    p.add_argument("id", type=int, metavar="ID", help="the case id")
    p.add_argument("--json", action="store_true", help="one JSON document")

    p = case_command(
        "act",
        cases_act,
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
    )
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

    p = case_command(
        "export",
        cases_export,
        help="the whole record of a case (执法全过程记录)",
        description=(
            "The whole record of a case (执法全过程记录): json has the case, every audit\n"
            "event, its work orders and notifications; csv has the audit events (UTF-8 with\n"
            "a BOM, for spreadsheets)."
        ),
    )
    p.add_argument("id", type=int, metavar="ID", help="the case id")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--output", type=Path, help="write to this file (default: stdout)")


@contextmanager
def _case_book(config: Config) -> Iterator[tuple[CaseBook, Engine]]:
    """The case book and its database; what the workflow refuses (or no such case) is exit 3."""
    from nonsite.alert_wiring import build_case_book

    book = build_case_book(config)
    with store(config) as engine:
        try:
            yield book, engine
        except WorkflowError as exc:
            raise Refused(exc.code, str(exc)) from None


def _count(n: int, name: str) -> str:
    return f"{n} {name}" if n == 1 else f"{n} {name}s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


# -- cases list ----------------------------------------------------------------------------


def _due(case: Case) -> str:
    if case.state in ("dispatched", "on_site") and case.feedback_due is not None:
        label, due = "反馈", case.feedback_due
    elif case.state in ("sensed", "reminded") and case.explain_due is not None:
        label, due = "说明", case.explain_due
    else:
        return "-"
    return f"{label} {china(due)}" + ("（超期）" if case.overdue else "")


def cases_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from alerts.case import Case
    from alerts.schema import cases

    query = select(cases)
    if args.state:
        query = query.where(cases.c.state == args.state)
    if args.tier:
        query = query.where(cases.c.tier == args.tier)
    if args.rule:
        query = query.where(cases.c.rule == args.rule)
    if args.enterprise:
        query = query.where(cases.c.enterprise_id == args.enterprise)
    if args.open:
        query = query.where(cases.c.state.in_(sorted(OPEN_STATES)))
    query = query.order_by(cases.c.id.desc()).limit(args.limit)
    with store(config_for(args)) as engine, engine.connect() as conn:
        found = [Case.from_row(r) for r in conn.execute(query).all()]
    if args.json:
        for case in found:
            print(json.dumps(case.to_json(), ensure_ascii=False))
        return 0
    if not found:
        print("no cases", file=sys.stderr)
        return 0
    header = ["ID", "ENTERPRISE", "SOURCE", "RULE", "TIER", "STATE", "COUNT", "LAST SEEN", "DUE"]
    rows = [
        [
            str(c.id),
            c.enterprise_id,
            c.source_id,
            c.rule,
            TIER_NAMES.get(c.tier, c.tier),
            STATE_NAMES.get(c.state, c.state),
            str(c.count),
            china(c.last_seen),
            _due(c),
        ]
        for c in found
    ]
    print(table(header, rows))
    return 0


# -- cases show ----------------------------------------------------------------------------


def _case_lines(case: Case, config: Config) -> list[str]:
    from rules.findings import RULES

    enterprise = next((e for e in config.enterprises if e.id == case.enterprise_id), None)
    sources: dict[str, str] = {}
    if enterprise is not None:
        sources = {o.id: o.name for o in enterprise.outlets} | {
            m.id: m.name for m in enterprise.meters
        }
    state = f"{STATE_NAMES.get(case.state, case.state)} ({case.state})"
    tier = TIER_NAMES.get(case.tier, case.tier)
    fields: list[tuple[str, str | None]] = [
        ("enterprise", f"{case.enterprise_id} {enterprise.name if enterprise else ''}".rstrip()),
        ("source", f"{case.source_id} {sources.get(case.source_id, '')}".rstrip()),
        ("rule", f"{case.rule} {RULES.get(case.rule, '')}".rstrip()),
        ("factor", case.factor),
        ("condition", case.condition),
        (
            "value",
            f"{_number(case.value)} {case.unit}".rstrip()
            + f" (peak {_number(case.peak_value)}, limit {_number(case.limit_value)}"
            + (f", 超标 {case.peak_multiple:g} 倍" if case.peak_multiple is not None else "")
            + ")",
        ),
        ("count", str(case.count)),
        ("first seen", china(case.first_seen)),
        ("last seen", china(case.last_seen)),
        ("opened", china(case.opened_at)),
        ("positive list", "正面清单" if case.positive_list else None),
        ("escalation", case.escalation),
        ("explain due", china(case.explain_due) if case.explain_due else None),
        ("feedback due", china(case.feedback_due) if case.feedback_due else None),
        ("overdue", case.overdue),
        ("brigade", case.brigade),
        ("disposition", case.disposition),
        ("case number", case.case_number),
        ("closed", china(case.closed_at) if case.closed_at else None),
        ("回头看 until", china(case.recheck_until) if case.recheck_until else None),
        ("recurrences", str(case.recurrence) if case.recurrence else None),
    ]
    out = [f"case {case.id}  {case.rule} {tier}  {state}  version {case.version}"]
    out += [f"  {pad(name, 14)}{value}" for name, value in fields if value is not None]
    return out


def _order_line(order: dict[str, Any] | None) -> str:
    if order is None:
        return "work order: none"
    line = (
        f"work order {order['id']}: {order['kind']} to brigade {order['brigade']}, "
        f"{order['state']}, due {china(order['due_at'])}, by {order['created_by']} "
        f"at {china(order['created_at'])}"
    )
    if order["outcome"]:
        line += f"; outcome {order['outcome']}"
    if order["case_number"]:
        line += f", case number {order['case_number']}"
    return line


def _event_line(event: dict[str, Any]) -> str:
    at = datetime.fromisoformat(event["at"]).astimezone(CHINA_TZ)
    action = event["action"]
    moves = event["from_state"] != event["to_state"]
    change = f"{event['from_state'] or '-'} → {event['to_state']}" if moves else ""
    refs = ", ".join(f"{k}={v}" for k, v in sorted(event["refs"].items()))
    parts = [
        f"{at:%Y-%m-%d %H:%M:%S}",
        f"{event['actor']} ({event['role']})",
        f"{action} {EVENT_NAMES.get(action, '')}".rstrip(),
        change,
        f"“{event['note']}”" if event["note"] else "",
        f"[{refs}]" if refs else "",
    ]
    return "  " + "  ".join(p for p in parts if p)


def cases_show(args: argparse.Namespace) -> int:
    config = config_for(args)
    with _case_book(config) as (book, engine), engine.connect() as conn:
        case = book.get(conn, args.id)
        order = book.current_work_order(conn, args.id)
        events = book.events(conn, args.id)
    if args.json:
        record = {
            "case": case.to_json(),
            "work_order": plain(order) if order is not None else None,
            "events": events,
        }
        print(json.dumps(record, ensure_ascii=False, indent=2))
        return 0
    print("\n".join(_case_lines(case, config)))
    print(_order_line(order))
    print(f"audit trail ({len(events)} events):")
    for event in events:
        print(_event_line(event))
    return 0


# -- cases act -----------------------------------------------------------------------------


def parse_actor(args: argparse.Namespace, config: Config) -> Actor:
    """The Actor of ``--as ROLE:NAME`` with its scope (--enterprise, --brigade)."""
    role, sep, name = (args.as_ or "").partition(":")
    role, name = role.strip(), name.strip()
    if not sep or not name:
        raise UsageError(f"--as must be ROLE:NAME, e.g. monitor:王监测 (got {args.as_!r})")
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r} in --as; roles: {', '.join(ROLES)}")
    enterprise_id = None
    brigade = None
    if role == "enterprise":
        if not args.enterprise:
            raise UsageError("the enterprise role acts for one enterprise: give --enterprise")
        known_enterprise(config, args.enterprise)
        enterprise_id = args.enterprise
    elif args.enterprise:
        raise UsageError("--enterprise applies to the enterprise role only")
    if role == "enforcer":
        if not args.brigade:
            raise UsageError("the enforcer role acts for one brigade: give --brigade")
        known_brigade(config, args.brigade)
        brigade = args.brigade
    actor_role: Role = next(r for r in ROLES if r == role)
    return Actor(name, actor_role, enterprise_id=enterprise_id, brigade=brigade)


def _check_options(args: argparse.Namespace, actor: Actor, config: Config) -> None:
    for attr, (flag, actions) in OPTION_ACTIONS.items():
        if getattr(args, attr) is not None and args.action not in actions:
            raise UsageError(f"{flag} applies to {' and '.join(actions)} only")
    if args.brigade and actor.role != "enforcer":
        if args.action != "dispatch":
            raise UsageError(
                "--brigade is the enforcer's own brigade (--as enforcer:NAME) "
                "or the brigade a dispatch goes to"
            )
        known_brigade(config, args.brigade)  # the brigade that takes the work order


def cases_act(args: argparse.Namespace) -> int:
    config = config_for(args)
    actor = parse_actor(args, config)
    _check_options(args, actor, config)
    with _case_book(config) as (book, engine):
        with engine.begin() as conn:
            case = book.act(
                conn,
                args.id,
                args.action,
                actor,
                note=args.note or "",
                outcome=args.outcome,
                brigade=args.brigade if actor.role != "enforcer" else None,
                kind=args.kind,
                due_at=args.due.astimezone(UTC) if args.due is not None else None,
                case_number=args.case_number,
                expected_version=args.version,
            )
        with engine.connect() as conn:
            order = book.current_work_order(conn, case.id)
    line = (
        f"case {case.id}: {args.action} by {actor.name} ({actor.role}) → "
        f"{STATE_NAMES.get(case.state, case.state)} ({case.state}), version {case.version}"
    )
    if case.state == "dispatched" and order is not None:
        line += (
            f"; work order {order['id']}: {order['kind']} to brigade {order['brigade']}, "
            f"due {china(order['due_at'])}"
        )
    print(line)
    return 0


# -- cases export --------------------------------------------------------------------------


def cases_export(args: argparse.Namespace) -> int:
    from alerts.audit import case_record, events_csv, to_json

    with _case_book(config_for(args)) as (book, engine), engine.connect() as conn:
        record = case_record(conn, book, args.id)
    text = events_csv(record) if args.format == "csv" else to_json(record) + "\n"
    data = text.encode("utf-8")
    if args.output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    args.output.write_bytes(data)
    counts = ", ".join(
        _count(len(record[key]), name)
        for key, name in (
            ("events", "event"),
            ("work_orders", "work order"),
            ("notifications", "notification"),
        )
    )
    print(f"case {args.id}: {counts} → {args.output} ({args.format})")
    return 0
