"""``nonsite users``: user management on the server (add, list, passwords, enable/disable,
API tokens, the authentication log).

The argparse wiring is in ``nonsite/cli.py``; this module holds what the commands do. Like the
other operator commands it needs no login: it runs on the server, for whoever can read the
configuration and the database. Changes are recorded in the authentication log as made by
``cli:<OS user>``.

Passwords are read with ``getpass`` (asked twice), or with ``--password-stdin`` as the first
line of standard input (for scripts; never on the command line, where ``ps`` would show it).
Nothing here prints a password hash or a token hash; a new API token is printed once.

Exit codes: 0 done; 2 usage (a bad argument, an unknown enterprise or brigade, a weak password,
a username already taken); 3 no such user or token (``error: not_found: <message>``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from ingest.china_time import CHINA_TZ
from nonsite.auth.errors import NotFoundError
from nonsite.auth.users import (
    ROLE_NAMES,
    ApiToken,
    AuthEvent,
    User,
    UserStore,
    check_scope,
    check_username,
)
from nonsite.case_cli import _china, _config, _store, _table
from nonsite.config import Config

EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3


class UsageError(Exception):
    """A bad argument found after parsing: exit 2, like argparse's own errors."""


def run_command(name: str, args: argparse.Namespace) -> int:
    """Run one subcommand; usage errors and unknown users or tokens become their exit codes."""
    try:
        return COMMANDS[name](args)
    except UsageError as exc:
        print(f"nonsite {name.replace('_', ' ')}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotFoundError as exc:
        print(f"error: not_found: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND


@contextmanager
def _users(config: Config) -> Iterator[UserStore]:
    with _store(config) as engine:
        yield UserStore(engine)


@contextmanager
def _refusals() -> Iterator[None]:
    """The store's ValueErrors (invalid username, scope, password; duplicates) are usage."""
    try:
        yield
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _by() -> str:
    """Who makes a change from the command line, for the authentication log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment or the password database
        return "cli"


def _read_password(args: argparse.Namespace, username: str) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise UsageError("--password-stdin: no password on the first line of standard input")
        return password
    try:
        first = getpass.getpass(f"password for {username}: ")
        second = getpass.getpass(f"password for {username} (again): ")
    except EOFError:
        raise UsageError("no password given (use --password-stdin for scripts)") from None
    if first != second:
        raise UsageError("the two passwords differ; nothing was changed")
    return first


def _known_scope(config: Config, enterprise_id: str | None, brigade: str | None) -> None:
    if enterprise_id is not None:
        known = [e.id for e in config.enterprises]
        if enterprise_id not in known:
            raise UsageError(
                f"unknown enterprise {enterprise_id!r}; configured: {', '.join(known) or 'none'}"
            )
    if brigade is not None:
        known = [b.id for b in config.brigades]
        if brigade not in known:
            raise UsageError(
                f"unknown brigade {brigade!r}; configured in [[brigades]]: "
                f"{', '.join(known) or 'none'}"
            )


def _role_text(user: User) -> str:
    return f"{user.role} {ROLE_NAMES[user.role]}"


def _scope(user: User) -> str:
    if user.enterprise_id:
        return f"enterprise {user.enterprise_id}"
    if user.brigade:
        return f"brigade {user.brigade}"
    return "-"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(CHINA_TZ).isoformat()


# -- users add, list, passwd, disable, enable -----------------------------------------------


def users_add(args: argparse.Namespace) -> int:
    config = _config(args)
    with _refusals():  # everything that can be refused is, before asking for a password
        check_username(args.username)
        check_scope(args.role, args.enterprise, args.brigade)
    _known_scope(config, args.enterprise, args.brigade)
    with _users(config) as store:
        if store.get(args.username) is not None:
            raise UsageError(f"user {args.username!r} already exists")
        password = _read_password(args, args.username)
        with _refusals():
            user = store.add(
                args.username,
                password,
                args.role,
                display_name=args.name or "",
                enterprise_id=args.enterprise,
                brigade=args.brigade,
                by=_by(),
            )
    scope = _scope(user)
    print(
        f"added user {user.username} (id {user.id}): {_role_text(user)}"
        + (f", {scope}" if scope != "-" else "")
        + (f", {user.display_name}" if user.display_name else "")
    )
    return 0


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "enterprise_id": user.enterprise_id,
        "brigade": user.brigade,
        "active": user.active,
    }


def users_list(args: argparse.Namespace) -> int:
    with _users(_config(args)) as store:
        found = store.list()
    if args.json:
        for user in found:
            print(json.dumps(_user_json(user), ensure_ascii=False))
        return 0
    if not found:
        print("no users (add one with: nonsite users add USERNAME --role ROLE)", file=sys.stderr)
        return 0
    header = ["ID", "USERNAME", "NAME", "ROLE", "SCOPE", "STATE"]
    rows = [
        [
            str(u.id),
            u.username,
            u.display_name or "-",
            _role_text(u),
            _scope(u),
            "active" if u.active else "disabled",
        ]
        for u in found
    ]
    print(_table(header, rows))
    return 0


def users_passwd(args: argparse.Namespace) -> int:
    with _users(_config(args)) as store:
        if store.get(args.username) is None:
            raise NotFoundError(f"no user {args.username!r}")
        password = _read_password(args, args.username)
        with _refusals():
            store.set_password(args.username, password, by=_by())
    print(f"password changed for {args.username}; their browser sessions have ended")
    return 0


def _set_active(args: argparse.Namespace, active: bool) -> int:
    with _users(_config(args)) as store:
        before = store.get(args.username)
        if before is None:
            raise NotFoundError(f"no user {args.username!r}")
        store.set_active(args.username, active, by=_by())
    if before.active == active:
        print(f"{args.username} is already {'enabled' if active else 'disabled'}")
    elif active:
        print(f"enabled {args.username}; their API tokens work again")
    else:
        print(
            f"disabled {args.username}: their sessions have ended and their API tokens "
            "do not work until they are enabled again"
        )
    return 0


def users_disable(args: argparse.Namespace) -> int:
    return _set_active(args, False)


def users_enable(args: argparse.Namespace) -> int:
    return _set_active(args, True)


# -- users token create, list, revoke ------------------------------------------------------


def users_token_create(args: argparse.Namespace) -> int:
    with _users(_config(args)) as store, _refusals():
        token = store.create_token(args.username, args.name, by=_by())
        created = store.describe_token(token)
    assert created is not None
    print(token)
    print(
        f"API token {created.id} {created.name!r} for {args.username}. It is shown only this "
        "once (只显示一次): store it now; the server keeps only its hash. Systems send it as "
        "'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return 0


def _token_json(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "username": t.username,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": _iso(t.created_at),
        "last_used_at": _iso(t.last_used_at),
        "revoked_at": _iso(t.revoked_at),
    }


def users_token_list(args: argparse.Namespace) -> int:
    with _users(_config(args)) as store:
        found = store.list_tokens(args.username)
    if args.json:
        for t in found:
            print(json.dumps(_token_json(t), ensure_ascii=False))
        return 0
    if not found:
        print("no API tokens", file=sys.stderr)
        return 0
    header = ["ID", "USERNAME", "NAME", "PREFIX", "CREATED", "LAST USED", "STATE"]
    rows = [
        [
            str(t.id),
            t.username,
            t.name,
            t.prefix + "…",
            _china(t.created_at),
            _china(t.last_used_at),
            f"revoked {_china(t.revoked_at)}" if t.revoked else "active",
        ]
        for t in found
    ]
    print(_table(header, rows))
    return 0


def users_token_revoke(args: argparse.Namespace) -> int:
    with _users(_config(args)) as store:
        revoked = store.revoke_token(args.id, by=_by())
    print(f"revoked API token {args.id}" if revoked else f"API token {args.id} was revoked already")
    return 0


# -- users events ---------------------------------------------------------------------------


def _event_json(e: AuthEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": _iso(e.at),
        "event": e.event,
        "username": e.username,
        "user_id": e.user_id,
        "client": e.client,
        "detail": e.detail,
    }


def users_events(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with _users(_config(args)) as store:
        found = store.events(limit=args.limit, username=args.user)
    if args.json:
        for e in found:
            print(json.dumps(_event_json(e), ensure_ascii=False))
        return 0
    if not found:
        print("no authentication events", file=sys.stderr)
        return 0
    header = ["AT", "EVENT", "USERNAME", "CLIENT", "DETAIL"]
    rows = [
        [_china(e.at, "%Y-%m-%d %H:%M:%S"), e.event, e.username, e.client or "-", e.detail]
        for e in found
    ]
    print(_table(header, rows))
    return 0


COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "users_add": users_add,
    "users_list": users_list,
    "users_passwd": users_passwd,
    "users_disable": users_disable,
    "users_enable": users_enable,
    "users_token_create": users_token_create,
    "users_token_list": users_token_list,
    "users_token_revoke": users_token_revoke,
    "users_events": users_events,
}
