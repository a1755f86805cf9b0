"""``nonsite cases`` and ``nonsite silences``: the operator's tools for cases on the server.

The argparse wiring is in ``nonsite/cli.py``; this module holds what the commands do. There is
no authentication here (that comes with the HTTP API): the command line is run on the server
by someone who can read its configuration and database, and every action is audited under the
role and name given with ``--as``.

Exit codes: 0 done; 2 usage (a bad argument, an invalid silence, a bad configuration);
3 refused by the workflow or no such case (``error: <code>: <message>`` on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, select

from alerts.audit import case_record, events_csv, to_json
from alerts.case import Case
from alerts.noise import Silence, active_silences, add_silence
from alerts.schema import cases, silences
from alerts.workflow import ACTION_NAMES, OPEN_STATES, STATE_NAMES, Actor, Role, WorkflowError
from ingest.china_time import CHINA_TZ, stored_utc, stored_utc_or_none
from nonsite.alert_wiring import build_case_book
from nonsite.config import Config, load_config
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from rules.findings import RULES

EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3

# The roles a person acts in; ``system`` is the service itself and is not given on the CLI.
ROLES: Final[tuple[Role, ...]] = ("monitor", "supervisor", "enforcer", "enterprise", "admin")
TIER_NAMES: Final = {"warning": "预警", "alarm": "报警"}
EVENT_NAMES: Final = {**ACTION_NAMES, "sense": "感知", "condition_cleared": "条件消除"}

# Options that mean something only for some actions (given elsewhere they would be ignored
# silently, and the operator would think they were recorded).
OPTION_ACTIONS: Final = {
    "outcome": ("--outcome", ("verify", "report")),
    "kind": ("--kind", ("dispatch",)),
    "due": ("--due", ("dispatch",)),
    "case_number": ("--case-number", ("report",)),
}


class UsageError(Exception):
    """A bad argument found after parsing: exit 2, like argparse's own errors."""


# -- plumbing ------------------------------------------------------------------------------


def run_command(name: str, args: argparse.Namespace) -> int:
    """Run one subcommand; refused actions and usage errors become their exit codes."""
    command = COMMANDS[name]
    try:
        return command(args)
    except WorkflowError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except UsageError as exc:
        print(f"nonsite {name.replace('_', ' ')}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _config(args: argparse.Namespace) -> Config:
    """The configuration named by --config or NONSITE_CONFIG; otherwise defaults + environment
    (as for the other commands)."""
    path = getattr(args, "config", None) or os.environ.get("NONSITE_CONFIG")
    if path:
        return load_config(path)
    return parse_config({}, "(defaults and environment)")


@contextmanager
def _store(config: Config) -> Iterator[Engine]:
    engine = make_engine(config.database_url())
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def _china(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "-"
    out = stored_utc_or_none(value)
    assert out is not None
    return out.astimezone(CHINA_TZ).strftime(fmt)


def _utc(value: datetime | None) -> datetime | None:
    """Times are stored in UTC: SQLite keeps a datetime's wall time and drops its offset."""
    return value.astimezone(UTC) if value is not None else None


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    head = "  ".join(_pad(c, w) for c, w in zip(header, widths, strict=True)).rstrip()
    return "\n".join([head, *lines])


def _count(n: int, name: str) -> str:
    return f"{n} {name}" if n == 1 else f"{n} {name}s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: stored_utc(v).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


# -- cases list ----------------------------------------------------------------------------


def _due(case: Case) -> str:
    if case.state in ("dispatched", "on_site") and case.feedback_due is not None:
        label, due = "反馈", case.feedback_due
    elif case.state in ("sensed", "reminded") and case.explain_due is not None:
        label, due = "说明", case.explain_due
    else:
        return "-"
    return f"{label} {_china(due)}" + ("（超期）" if case.overdue else "")


def cases_list(args: argparse.Namespace) -> int:
    config = _config(args)
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
    with _store(config) as engine, engine.connect() as conn:
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
            _china(c.last_seen),
            _due(c),
        ]
        for c in found
    ]
    print(_table(header, rows))
    return 0


# -- cases show ----------------------------------------------------------------------------


def _case_lines(case: Case, config: Config) -> list[str]:
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
        ("first seen", _china(case.first_seen)),
        ("last seen", _china(case.last_seen)),
        ("opened", _china(case.opened_at)),
        ("positive list", "正面清单" if case.positive_list else None),
        ("escalation", case.escalation),
        ("explain due", _china(case.explain_due) if case.explain_due else None),
        ("feedback due", _china(case.feedback_due) if case.feedback_due else None),
        ("overdue", case.overdue),
        ("brigade", case.brigade),
        ("disposition", case.disposition),
        ("case number", case.case_number),
        ("closed", _china(case.closed_at) if case.closed_at else None),
        ("回头看 until", _china(case.recheck_until) if case.recheck_until else None),
        ("recurrences", str(case.recurrence) if case.recurrence else None),
    ]
    out = [f"case {case.id}  {case.rule} {tier}  {state}  version {case.version}"]
    out += [f"  {_pad(name, 14)}{value}" for name, value in fields if value is not None]
    return out


def _order_line(order: dict[str, Any] | None) -> str:
    if order is None:
        return "work order: none"
    line = (
        f"work order {order['id']}: {order['kind']} to brigade {order['brigade']}, "
        f"{order['state']}, due {_china(order['due_at'])}, by {order['created_by']} "
        f"at {_china(order['created_at'])}"
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
    config = _config(args)
    book = build_case_book(config)
    with _store(config) as engine, engine.connect() as conn:
        case = book.get(conn, args.id)
        order = book.current_work_order(conn, args.id)
        events = book.events(conn, args.id)
    if args.json:
        record = {
            "case": case.to_json(),
            "work_order": _plain(order) if order is not None else None,
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
        _known_enterprise(config, args.enterprise)
        enterprise_id = args.enterprise
    elif args.enterprise:
        raise UsageError("--enterprise applies to the enterprise role only")
    if role == "enforcer":
        if not args.brigade:
            raise UsageError("the enforcer role acts for one brigade: give --brigade")
        _known_brigade(config, args.brigade)
        brigade = args.brigade
    actor_role: Role = next(r for r in ROLES if r == role)
    return Actor(name, actor_role, enterprise_id=enterprise_id, brigade=brigade)


def _known_enterprise(config: Config, enterprise_id: str) -> None:
    known = [e.id for e in config.enterprises]
    if enterprise_id not in known:
        raise UsageError(
            f"unknown enterprise {enterprise_id!r}; configured: {', '.join(known) or 'none'}"
        )


def _known_brigade(config: Config, brigade: str) -> None:
    known = [b.id for b in config.brigades]
    if brigade not in known:
        raise UsageError(
            f"unknown brigade {brigade!r}; configured in [[brigades]]: {', '.join(known) or 'none'}"
        )


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
        _known_brigade(config, args.brigade)  # the brigade that takes the work order


def cases_act(args: argparse.Namespace) -> int:
    config = _config(args)
    actor = parse_actor(args, config)
    _check_options(args, actor, config)
    book = build_case_book(config)
    with _store(config) as engine:
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
                due_at=_utc(args.due),
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
            f"due {_china(order['due_at'])}"
        )
    print(line)
    return 0


# -- cases export --------------------------------------------------------------------------


def cases_export(args: argparse.Namespace) -> int:
    config = _config(args)
    book = build_case_book(config)
    with _store(config) as engine, engine.connect() as conn:
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


# -- silences ------------------------------------------------------------------------------


def silences_add(args: argparse.Namespace) -> int:
    config = _config(args)
    now = datetime.now(UTC)
    created_by = (args.as_ or "").strip()
    if not created_by:
        raise UsageError("--as NAME: who sets the silence (it is recorded)")
    if not args.reason.strip():
        raise UsageError("--reason: a silence needs a reason (e.g. the maintenance notice)")
    starts = _utc(args.from_) or now
    until = _utc(args.until)
    assert until is not None  # required
    if until <= now:
        raise UsageError(f"--until {_china(until)} (China time) is already past")
    if until <= starts:
        raise UsageError(
            f"a silence must end after it starts: --until {_china(until)} is not after "
            f"--from {_china(starts)} (China time)"
        )
    if args.source and not args.enterprise:
        raise UsageError("a silence for an outlet or meter (--source) must name --enterprise")
    if args.enterprise:
        _known_enterprise(config, args.enterprise)
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
    with _store(config) as engine, engine.begin() as conn:
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


def _silence_status(s: Silence, now: datetime) -> str:
    if now < s.starts_at:
        return "pending"
    return "ended" if now >= s.ends_at else "active"


SILENCE_STATUS_NAMES: Final = {"active": "生效中", "pending": "未开始", "ended": "已结束"}


def silences_list(args: argparse.Namespace) -> int:
    config = _config(args)
    now = datetime.now(UTC)
    with _store(config) as engine, engine.connect() as conn:
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
                "status": _silence_status(s, now),
                "enterprise_id": s.enterprise_id,
                "source_id": s.source_id,
                "rule": s.rule,
                "reason": s.reason,
                "created_by": s.created_by,
                "starts_at": s.starts_at.astimezone(CHINA_TZ).isoformat(),
                "ends_at": s.ends_at.astimezone(CHINA_TZ).isoformat(),
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
            SILENCE_STATUS_NAMES[_silence_status(s, now)],
            s.enterprise_id or "*",
            s.source_id or "*",
            s.rule or "*",
            _china(s.starts_at),
            _china(s.ends_at),
            s.created_by,
            s.reason,
        ]
        for s in found
    ]
    print(_table(header, rows_out))
    return 0


COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "cases_list": cases_list,
    "cases_show": cases_show,
    "cases_act": cases_act,
    "cases_export": cases_export,
    "silences_add": silences_add,
    "silences_list": silences_list,
}
