"""``nonsite users ...`` on a real SQLite database named by a real configuration file."""

from __future__ import annotations

import getpass
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from nonsite.auth import UserStore
from nonsite.auth.errors import LoginFailed
from nonsite.auth.schema import api_tokens, users
from nonsite.config import load_config
from nonsite.db import make_engine, migrate
from tests.nonsite.cli_in_process import CONFIG, ok, run_main, usage

PASSWORD = "correct horse"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "nonsite.toml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "data"), encoding="utf-8")
    return path


@pytest.fixture
def nonsite(config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``nonsite users ...`` in this process: (exit code, stdout, stderr); ``stdin`` is what
    the command reads from standard input."""

    def run(*args: object, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        argv = [str(a) for a in args]
        # --config goes after the subcommand, e.g. users token create --config F ...
        command_words = 3 if argv[1] == "token" else 2
        argv[command_words:command_words] = ["--config", str(config)]
        return run_main(argv, capsys)

    return run


@pytest.fixture
def store(config: Path):
    engine = make_engine(load_config(config).database_url())
    migrate(engine)
    yield UserStore(engine)
    engine.dispose()


def add(nonsite, username: str, *args: str) -> str:
    return ok(nonsite("users", "add", username, *args, "--password-stdin", stdin=PASSWORD + "\n"))


def test_add_users_and_list_them(nonsite, store):
    out = add(nonsite, "wang", "--role", "monitor", "--name", "王监测")
    assert out == "added user wang (id 1): monitor 监测中心, 王监测\n"
    out = add(nonsite, "zhang", "--role", "enforcer", "--brigade", "B1")
    assert out == "added user zhang (id 2): enforcer 执法, brigade B1\n"
    add(nonsite, "e1.hb", "--role", "enterprise", "--enterprise", "E1")
    ok(nonsite("users", "disable", "zhang"))

    table = ok(nonsite("users", "list")).splitlines()
    assert table[0].split() == ["ID", "USERNAME", "NAME", "ROLE", "SCOPE", "STATE"]
    assert table[1].split() == [
        "3",
        "e1.hb",
        "-",
        "enterprise",
        "企业",
        "enterprise",
        "E1",
        "active",
    ]
    assert table[2].split() == ["1", "wang", "王监测", "monitor", "监测中心", "-", "active"]
    assert table[3].split() == ["2", "zhang", "-", "enforcer", "执法", "brigade", "B1", "disabled"]

    listed = [json.loads(line) for line in ok(nonsite("users", "list", "--json")).splitlines()]
    assert listed[1] == {
        "id": 1,
        "username": "wang",
        "display_name": "王监测",
        "role": "monitor",
        "enterprise_id": None,
        "brigade": None,
        "area": None,
        "active": True,
    }
    assert store.authenticate("wang", PASSWORD, client="test").display_name == "王监测"


def test_no_users_yet(nonsite, store):  # a database with no users
    code, out, err = nonsite("users", "list")
    assert (code, out) == (0, "")
    assert "no users" in err


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--role", "enterprise", "--enterprise", "E9"],
            PASSWORD,
            "unknown enterprise 'E9'; configured: E1",
        ),
        (
            ["--role", "enforcer", "--brigade", "B9"],
            PASSWORD,
            "unknown brigade 'B9'; configured in [[brigades]]: B1",
        ),
        (["--role", "enterprise"], PASSWORD, "acts for one enterprise"),
        (["--role", "monitor", "--brigade", "B1"], PASSWORD, "not scoped"),
        (["--role", "chief"], PASSWORD, "unknown role 'chief'"),
        (["--role", "monitor"], "short", "at least 8 characters"),
        (["--role", "monitor"], "wang.li", "at least 8"),
        (["--role", "monitor"], "", "no password on the first line"),
    ],
)
def test_refused_additions_exit_2_with_the_reason(nonsite, store, args, stdin, message):
    err = usage(nonsite("users", "add", "wang.li", *args, "--password-stdin", stdin=stdin + "\n"))
    assert err.startswith("nonsite users add: error: ")
    assert message in err
    assert store.list() == []


def test_a_taken_username_or_a_bad_one_exits_2(nonsite):
    add(nonsite, "wang", "--role", "monitor")
    err = usage(nonsite("users", "add", "wang", "--role", "admin", "--password-stdin", stdin="x"))
    assert "user 'wang' already exists" in err
    err = usage(nonsite("users", "add", "王", "--role", "admin", "--password-stdin"))
    assert "invalid username" in err
    err = usage(nonsite("users", "add", "li", "--password-stdin"))  # argparse: --role missing
    assert "--role" in err


def test_passwd_disable_enable(nonsite, store):
    add(nonsite, "wang", "--role", "monitor")
    user = store.get("wang")
    assert user is not None
    session = store.create_session(user, "test")

    out = ok(nonsite("users", "passwd", "wang", "--password-stdin", stdin="a new password\n"))
    assert "password changed for wang" in out
    assert store.session_user(session) is None
    assert store.authenticate("wang", "a new password", client="test").username == "wang"
    err = usage(nonsite("users", "passwd", "wang", "--password-stdin", stdin="wang\n"))
    assert "at least 8 characters" in err

    assert "disabled wang" in ok(nonsite("users", "disable", "wang"))
    assert "already disabled" in ok(nonsite("users", "disable", "wang"))
    assert store.get("wang").active is False
    assert "enabled wang" in ok(nonsite("users", "enable", "wang"))
    assert store.get("wang").active is True


def test_unknown_users_and_tokens_exit_3(nonsite, store):
    for args in (
        ("users", "passwd", "ghost", "--password-stdin"),
        ("users", "disable", "ghost"),
        ("users", "enable", "ghost"),
        ("users", "token", "create", "ghost", "--name", "ci"),
        ("users", "token", "list", "ghost"),
    ):
        code, out, err = nonsite(*args, stdin=PASSWORD + "\n")
        assert (code, out, err) == (3, "", "error: not_found: no user 'ghost'\n")
    assert nonsite("users", "token", "revoke", "7") == (3, "", "error: not_found: no API token 7\n")


def test_an_api_token_is_printed_once_and_works(nonsite, store, config):
    add(nonsite, "gateway", "--role", "monitor")
    code, out, err = nonsite("users", "token", "create", "gateway", "--name", "省平台对接")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n"  # stdout is the token alone: token=$(nonsite users token create ...)
    assert token.startswith("nst_")
    assert "shown only this once" in err and "只显示一次" in err
    assert store.token_user(token).username == "gateway"

    table = ok(nonsite("users", "token", "list"))
    assert "省平台对接" in table and token[:8] + "…" in table and "active" in table
    listed = json.loads(ok(nonsite("users", "token", "list", "gateway", "--json")))
    assert (listed["id"], listed["username"], listed["prefix"]) == (1, "gateway", token[:8])
    assert listed["last_used_at"] is not None and listed["revoked_at"] is None

    assert ok(nonsite("users", "token", "revoke", "1")) == "revoked API token 1\n"
    assert ok(nonsite("users", "token", "revoke", "1")) == "API token 1 was revoked already\n"
    assert store.token_user(token) is None
    assert "revoked 20" in ok(nonsite("users", "token", "list"))

    # Neither the secrets nor their hashes are ever printed.
    engine = make_engine(load_config(config).database_url())
    with engine.connect() as conn:
        secrets = [
            *conn.execute(select(users.c.password_hash)).scalars(),
            *conn.execute(select(api_tokens.c.token_hash)).scalars(),
        ]
    engine.dispose()
    printed = "".join(
        ok(nonsite(*args))
        for args in (
            ("users", "list"),
            ("users", "list", "--json"),
            ("users", "token", "list"),
            ("users", "token", "list", "--json"),
            ("users", "events", "--json"),
            ("users", "events"),
        )
    )
    for secret in [*secrets, token]:
        assert secret not in printed


def test_events_show_who_did_what(nonsite, store):
    add(nonsite, "wang", "--role", "monitor")
    add(nonsite, "li", "--role", "supervisor")
    with pytest.raises(LoginFailed, match="invalid username or password"):
        store.authenticate("wang", "wrong password", client="10.0.0.7")
    store.authenticate("wang", PASSWORD, client="10.0.0.7")

    events = [
        json.loads(line)
        for line in ok(nonsite("users", "events", "--user", "wang", "--json")).splitlines()
    ]
    assert [(e["event"], e["client"], e["detail"]) for e in events] == [
        ("login_ok", "10.0.0.7", ""),
        ("login_failed", "10.0.0.7", "wrong password"),
        ("user_added", f"cli:{getpass.getuser()}", "role monitor"),
    ]
    assert events[0]["at"].endswith("+08:00")  # China time
    table = ok(nonsite("users", "events", "--limit", "2")).splitlines()
    assert table[0].split() == ["AT", "EVENT", "USERNAME", "CLIENT", "DETAIL"]
    assert [line.split()[2] for line in table[1:]] == ["login_ok", "login_failed"]
    assert "at least 1" in usage(nonsite("users", "events", "--limit", "0"))


def test_help_tells_the_roles_and_the_exit_codes(nonsite):
    code, out, _ = nonsite("users", "add", "--help")
    assert code == 0
    assert "enforcer    执法" in out
    assert "3  no such user or token" in out
    assert "at least 8 characters" in out


def test_add_asks_for_the_password_twice_in_a_real_process(config, store):
    # Without a terminal (a new session has none) getpass reads the two answers from stdin.
    command = [sys.executable, "-m", "nonsite", "users", "add", "wang", "--config", str(config)]
    result = subprocess.run(
        [*command, "--role", "monitor"],
        input=f"{PASSWORD}\n{PASSWORD}\n".encode(),
        capture_output=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "added user wang (id 1): monitor 监测中心\n"
    assert store.authenticate("wang", PASSWORD, client="test").username == "wang"

    result = subprocess.run(
        [*command[:5], "li", *command[6:], "--role", "monitor"],
        input=f"{PASSWORD}\nsomething else\n".encode(),
        capture_output=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert result.returncode == 2
    assert "the two passwords differ; nothing was changed" in result.stderr.decode()
    assert store.get("li") is None
