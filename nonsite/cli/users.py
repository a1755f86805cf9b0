"""``nonsite users``: user management on the server (add, list, passwords, enable/disable,
API tokens, the authentication log).

Like the other operator commands it needs no login: it runs on the server, for whoever can read
the configuration and the database. Changes are recorded in the authentication log as made by
``cli:<OS user>``. Passwords are read with ``getpass`` (asked twice), or with
``--password-stdin`` as the first line of standard input (for scripts; never on the command
line, where ``ps`` would show it). Nothing here prints a password hash or a token hash; a new
API token is printed once.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from nonsite.cli.common import (
    Refused,
    UsageError,
    command,
    config_for,
    known_brigade,
    known_enterprise,
    store,
)
from nonsite.cli.text import china, china_iso, table

if TYPE_CHECKING:
    from nonsite.auth import ApiToken, AuthEvent, User, UserStore
    from nonsite.cli.common import Subcommands
    from nonsite.config import Config

USERS_EPILOG: Final = """\
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
ROLES_HELP: Final = """\
roles:
  monitor     监测中心: verifies cases
  supervisor  监管: dispatches and closes cases
  enforcer    执法: works the orders of one brigade (--brigade, from [[brigades]])
  enterprise  企业: explains its own enterprise's cases (--enterprise)
  admin       运维: manages the service and its users; decides no case
  township    镇街: submits and follows the clues of its area (--area, a region of
              [[enterprises]])
  intake      线索报送系统: a system that sends clues with an API token, nothing else
  legal       法制审核: reviews the major decisions (a large fine, a seizure, a referral to
              the police) before they take effect

passwords: at least 8 characters, not one character repeated, not the username."""


def add_to(sub: Subcommands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser(
        "users",
        help="users, passwords and API tokens (用户)",
        description="Users of the dashboard and the API, their passwords and API tokens.",
        epilog=USERS_EPILOG,
        formatter_class=raw,
    ).add_subparsers(dest="users_command", required=True)
    # Each but add reads the database (the user or token must exist); each ends with the exit
    # codes.
    user_command = partial(command, reads=("database",), epilog=USERS_EPILOG, formatter_class=raw)

    def password_stdin(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin (default: ask twice)",
        )

    p = user_command(
        group,
        "add",
        users_add,
        reads=(),
        help="add a user",
        description=f"Add a user; the password is asked for twice.\n\n{ROLES_HELP}",
    )
    p.add_argument("username", metavar="USERNAME", help="2-64 of A-Z a-z 0-9 _ . @ -")
    p.add_argument("--role", required=True, metavar="ROLE", help="see roles above")
    p.add_argument("--name", help="the display name, e.g. 王监测 (recorded in audit trails)")
    p.add_argument("--enterprise", help="the enterprise role's own enterprise id")
    p.add_argument("--brigade", help="the enforcer's brigade id")
    p.add_argument("--area", help="the township user's area (镇街)")
    password_stdin(p)

    p = user_command(group, "list", users_list, help="users")
    p.add_argument("--json", action="store_true", help="JSON lines, one user each")

    p = user_command(
        group, "passwd", users_passwd, help="set a user's password (ends their sessions)"
    )
    p.add_argument("username", metavar="USERNAME")
    password_stdin(p)

    p = user_command(
        group,
        "disable",
        users_disable,
        help="disable a user: no login, sessions end, API tokens stop working",
    )
    p.add_argument("username", metavar="USERNAME")
    p = user_command(group, "enable", users_enable, help="enable a disabled user again")
    p.add_argument("username", metavar="USERNAME")

    tokens = group.add_parser(
        "token", help="API tokens for systems", epilog=USERS_EPILOG, formatter_class=raw
    ).add_subparsers(dest="token_command", required=True)
    p = user_command(
        tokens,
        "create",
        users_token_create,
        help="create an API token and print it (shown only once)",
    )
    p.add_argument("username", metavar="USERNAME", help="the user the token acts as")
    p.add_argument("--name", required=True, help="what uses it, e.g. the system's name")
    p = user_command(
        tokens, "list", users_token_list, help="API tokens (never the tokens themselves)"
    )
    p.add_argument("username", nargs="?", metavar="USERNAME", help="only this user's")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p = user_command(tokens, "revoke", users_token_revoke, help="revoke an API token")
    p.add_argument("id", type=int, metavar="ID", help="the token id (from token list)")

    p = user_command(
        group,
        "events",
        users_events,
        help="the authentication log, newest first",
        description="Logins (ok, failed, throttled), logouts and changes to users and tokens.",
    )
    p.add_argument("--user", help="only events of this username")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON lines")


@contextmanager
def _users(config: Config) -> Iterator[UserStore]:
    """The user store; no such user or token is exit 3 (``error: not_found: <message>``)."""
    from nonsite.auth import UserStore
    from nonsite.auth.errors import NotFoundError

    with store(config) as engine:
        try:
            yield UserStore(engine)
        except NotFoundError as exc:
            raise Refused("not_found", str(exc)) from None


@contextmanager
def _refusals() -> Iterator[None]:
    """The store's ValueErrors (invalid username, scope, password; duplicates) are usage."""
    try:
        yield
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _no_user(username: str) -> Refused:
    return Refused("not_found", f"no user {username!r}")


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


def _role_text(user: User) -> str:
    from nonsite.auth import ROLE_NAMES

    return f"{user.role} {ROLE_NAMES[user.role]}"


def _scope(user: User) -> str:
    if user.enterprise_id:
        return f"enterprise {user.enterprise_id}"
    if user.brigade:
        return f"brigade {user.brigade}"
    if user.area:
        return f"area {user.area}"
    return "-"


# -- users add, list, passwd, disable, enable -----------------------------------------------


def users_add(args: argparse.Namespace) -> int:
    from nonsite.auth import check_scope, check_username

    config = config_for(args)
    with _refusals():  # everything that can be refused is, before asking for a password
        check_username(args.username)
        check_scope(args.role, args.enterprise, args.brigade, args.area)
    if args.enterprise is not None:
        known_enterprise(config, args.enterprise)
    if args.brigade is not None:
        known_brigade(config, args.brigade)
    regions = sorted({e.region for e in config.enterprises if e.region})
    if args.area is not None and args.area not in regions:
        raise UsageError(
            f"unknown area {args.area!r}; the regions of [[enterprises]]: "
            f"{', '.join(regions) or 'none'}"
        )
    with _users(config) as users:
        if users.get(args.username) is not None:
            raise UsageError(f"user {args.username!r} already exists")
        password = _read_password(args, args.username)
        with _refusals():
            user = users.add(
                args.username,
                password,
                args.role,
                display_name=args.name or "",
                enterprise_id=args.enterprise,
                brigade=args.brigade,
                area=args.area,
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
        "area": user.area,
        "active": user.active,
    }


def users_list(args: argparse.Namespace) -> int:
    with _users(config_for(args)) as users:
        found = users.list()
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
    print(table(header, rows))
    return 0


def users_passwd(args: argparse.Namespace) -> int:
    with _users(config_for(args)) as users:
        if users.get(args.username) is None:
            raise _no_user(args.username)
        password = _read_password(args, args.username)
        with _refusals():
            users.set_password(args.username, password, by=_by())
    print(f"password changed for {args.username}; their browser sessions have ended")
    return 0


def _set_active(args: argparse.Namespace, active: bool) -> int:
    with _users(config_for(args)) as users:
        before = users.get(args.username)
        if before is None:
            raise _no_user(args.username)
        users.set_active(args.username, active, by=_by())
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
    with _users(config_for(args)) as users, _refusals():
        token = users.create_token(args.username, args.name, by=_by())
        created = users.describe_token(token)
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
        "created_at": china_iso(t.created_at),
        "last_used_at": china_iso(t.last_used_at),
        "revoked_at": china_iso(t.revoked_at),
    }


def users_token_list(args: argparse.Namespace) -> int:
    with _users(config_for(args)) as users:
        found = users.list_tokens(args.username)
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
            china(t.created_at),
            china(t.last_used_at),
            f"revoked {china(t.revoked_at)}" if t.revoked else "active",
        ]
        for t in found
    ]
    print(table(header, rows))
    return 0


def users_token_revoke(args: argparse.Namespace) -> int:
    with _users(config_for(args)) as users:
        revoked = users.revoke_token(args.id, by=_by())
    print(f"revoked API token {args.id}" if revoked else f"API token {args.id} was revoked already")
    return 0


# -- users events ---------------------------------------------------------------------------


def _event_json(e: AuthEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": china_iso(e.at),
        "event": e.event,
        "username": e.username,
        "user_id": e.user_id,
        "client": e.client,
        "detail": e.detail,
    }


def users_events(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with _users(config_for(args)) as users:
        found = users.events(limit=args.limit, username=args.user)
    if args.json:
        for e in found:
            print(json.dumps(_event_json(e), ensure_ascii=False))
        return 0
    if not found:
        print("no authentication events", file=sys.stderr)
        return 0
    header = ["AT", "EVENT", "USERNAME", "CLIENT", "DETAIL"]
    rows = [
        [china(e.at, "%Y-%m-%d %H:%M:%S"), e.event, e.username, e.client or "-", e.detail]
        for e in found
    ]
    print(table(header, rows))
    return 0
