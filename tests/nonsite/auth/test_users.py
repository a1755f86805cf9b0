"""The user store on SQLite and PostgreSQL: users and scopes, logins and their throttling,
sessions, API tokens and the authentication log."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.workflow import Actor
from nonsite.auth import UserStore, passwords
from nonsite.auth.errors import LoginFailed, LoginThrottled, NotFoundError
from nonsite.auth.roles import User
from nonsite.auth.schema import api_tokens, sessions, users
from nonsite.auth.throttle import Throttle

START = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
PASSWORD = "correct horse"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine, clock) -> Iterator[UserStore]:
    return UserStore(engine, clock=clock)


def kinds(store: UserStore, username: str | None = None) -> list[str]:
    """Event kinds, oldest first."""
    return [e.event for e in reversed(store.events(username=username))]


def newest_event(store: UserStore) -> tuple[str, str, int | None, str]:
    """The newest authentication event: (event, username, user id, client)."""
    e = store.events(limit=1)[0]
    return (e.event, e.username, e.user_id, e.client)


def stored(engine, table, **where):
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).one()


# -- users --------------------------------------------------------------------------------


def test_add_users_in_every_role_with_their_scope(store):
    monitor = store.add("wang", PASSWORD, "monitor", display_name="王监测")
    enforcer = store.add("zhang", PASSWORD, "enforcer", brigade="B1")
    company = store.add("e1.hb@example.cn", PASSWORD, "enterprise", enterprise_id="E1")
    store.add("li", PASSWORD, "supervisor")
    store.add("ops", PASSWORD, "admin")

    assert monitor == User(monitor.id, "wang", "王监测", "monitor", None, None, True)
    assert store.get("wang") == monitor
    assert store.by_id(enforcer.id) == enforcer
    assert store.get("nobody") is None
    assert store.by_id(9999) is None
    assert [u.username for u in store.list()] == ["e1.hb@example.cn", "li", "ops", "wang", "zhang"]

    assert monitor.actor() == Actor("王监测", "monitor")
    assert enforcer.actor() == Actor("zhang", "enforcer", brigade="B1")  # no display name
    assert company.actor() == Actor("e1.hb@example.cn", "enterprise", enterprise_id="E1")


@pytest.mark.parametrize(
    ("role", "scope", "message"),
    [
        ("boss", {}, "unknown role"),
        ("system", {}, "unknown role"),  # the service itself, not a person
        ("enterprise", {}, "one enterprise"),
        ("enterprise", {"enterprise_id": "E1", "brigade": "B1"}, "no brigade"),
        ("enforcer", {}, "one brigade"),
        ("enforcer", {"brigade": "B1", "enterprise_id": "E1"}, "no enterprise"),
        ("monitor", {"enterprise_id": "E1"}, "not scoped"),
        ("admin", {"brigade": "B1"}, "not scoped"),
    ],
)
def test_roles_and_scopes_must_fit(store, role, scope, message):
    with pytest.raises(ValueError, match=message):
        store.add("someone", PASSWORD, role, **scope)
    assert store.list() == []
    assert store.events() == []


@pytest.mark.parametrize("username", ["", "a", "x" * 65, "王监测", "has space", "new\nline", "a/b"])
def test_usernames_are_plain_ascii(store, username):
    with pytest.raises(ValueError, match="invalid username"):
        store.add(username, PASSWORD, "monitor")


def test_weak_passwords_and_duplicates_are_refused(store):
    with pytest.raises(ValueError, match="at least 8"):
        store.add("wang", "short", "monitor")
    with pytest.raises(ValueError, match="not be the username"):
        store.add("wang.jiance", "Wang.Jiance", "monitor")
    store.add("wang", PASSWORD, "monitor")
    with pytest.raises(ValueError, match="'wang' already exists"):
        store.add("wang", "another password", "admin")
    assert [u.role for u in store.list()] == ["monitor"]


def test_the_password_is_stored_as_a_scrypt_hash(store, engine):
    user = store.add("wang", PASSWORD, "monitor")
    row = stored(engine, users, id=user.id)
    assert row.password_hash.startswith("scrypt$16384$8$1$")
    assert PASSWORD not in row.password_hash
    assert passwords.verify_password(PASSWORD, row.password_hash)


def test_user_management_is_audited(store, clock):
    store.add("wang", PASSWORD, "monitor", by="cli:root")
    store.add("zhang", PASSWORD, "enforcer", brigade="B1", by="cli:root")
    clock.advance(60)
    store.set_password("wang", "a new password", by="admin:ops")
    store.set_active("wang", False, by="admin:ops")
    store.set_active("wang", False, by="admin:ops")  # no change: not recorded
    store.set_active("wang", True, by="admin:ops")

    events = store.events()
    assert [(e.event, e.username, e.client) for e in reversed(events)] == [
        ("user_added", "wang", "cli:root"),
        ("user_added", "zhang", "cli:root"),
        ("password_changed", "wang", "admin:ops"),
        ("user_disabled", "wang", "admin:ops"),
        ("user_enabled", "wang", "admin:ops"),
    ]
    assert events[-1].detail == "role monitor"
    assert events[-2].detail == "role enforcer brigade B1"
    assert events[0].at == START + timedelta(seconds=60)
    assert all(e.user_id is not None for e in events)
    assert [e.event for e in store.events(limit=2)] == ["user_enabled", "user_disabled"]
    assert kinds(store, "zhang") == ["user_added"]


def test_unknown_users_cannot_be_changed(store):
    with pytest.raises(NotFoundError, match="no user 'ghost'"):
        store.set_password("ghost", PASSWORD)
    with pytest.raises(NotFoundError):
        store.set_active("ghost", False)
    with pytest.raises(NotFoundError):
        store.create_token("ghost", "ci")
    with pytest.raises(NotFoundError):
        store.list_tokens("ghost")
    assert store.events() == []


# -- logins -------------------------------------------------------------------------------


def test_authenticate_the_right_password(store):
    user = store.add("wang", PASSWORD, "monitor")
    assert store.authenticate("wang", PASSWORD, client="10.0.0.7") == user
    assert newest_event(store) == ("login_ok", "wang", user.id, "10.0.0.7")


def test_failures_look_the_same_whatever_the_reason(store):
    user = store.add("wang", PASSWORD, "monitor")
    store.add("zhao", PASSWORD, "monitor")
    store.set_active("zhao", False)
    messages = []
    for username, password in [("wang", "wrong password"), ("ghost", PASSWORD), ("zhao", PASSWORD)]:
        with pytest.raises(LoginFailed) as exc:
            store.authenticate(username, password, client="10.0.0.7")
        messages.append(str(exc.value))
    assert set(messages) == {"invalid username or password"}

    failed = [e for e in reversed(store.events()) if e.event == "login_failed"]
    assert [(e.username, e.detail) for e in failed] == [
        ("wang", "wrong password"),
        ("ghost", "unknown user"),
        ("zhao", "user disabled"),
    ]
    assert failed[0].user_id == user.id
    assert failed[1].user_id is None


def test_an_absurd_username_is_a_failed_login(store):
    with pytest.raises(LoginFailed):
        store.authenticate("x" * 500, PASSWORD, client="c" * 500)
    event = store.events(limit=1)[0]
    assert (event.username, event.client) == ("x" * 64, "c" * 200)
    # PostgreSQL cannot store NUL: it must not turn a login into a server error
    with pytest.raises(LoginFailed):
        store.authenticate("wang\x00", PASSWORD, client="10.0.0.7\x00")
    assert [(e.username, e.client) for e in store.events(username="wang\x00")] == [
        ("wang\ufffd", "10.0.0.7\ufffd")
    ]
    assert store.get("wang\x00") is None
    with pytest.raises(NotFoundError):
        store.set_active("wang\x00", False)


def test_a_hash_made_with_older_parameters_is_upgraded_at_login(store, engine, monkeypatch):
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    user = store.add("wang", PASSWORD, "monitor")
    monkeypatch.undo()
    assert stored(engine, users, id=user.id).password_hash.startswith("scrypt$1024$")
    store.authenticate("wang", PASSWORD, client="10.0.0.7")
    upgraded = stored(engine, users, id=user.id).password_hash
    assert upgraded.startswith("scrypt$16384$")
    assert passwords.verify_password(PASSWORD, upgraded)


def fail(store: UserStore, username: str, client: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(LoginFailed):
            store.authenticate(username, "wrong password", client=client)


def guess(store: UserStore, clock: Clock, username: str, client: str, times: int) -> None:
    """``times`` wrong passwords, each as soon as the client may try again."""
    for _ in range(times):
        while True:
            try:
                store.authenticate(username, "wrong password", client=client)
            except LoginThrottled as exc:
                clock.advance(exc.retry_after_s)
            except LoginFailed:
                break


def wait_of(store: UserStore, username: str, client: str, password: str = PASSWORD) -> int:
    with pytest.raises(LoginThrottled) as exc:
        store.authenticate(username, password, client=client)
    return exc.value.retry_after_s


def test_failures_slow_one_client_down_with_growing_waits(store, clock):
    store.add("wang", PASSWORD, "monitor")
    fail(store, "wang", "10.0.0.7", times=5)  # free
    waits = []
    for _ in range(12):
        wait = wait_of(store, "wang", "10.0.0.7")  # even the right password waits
        waits.append(wait)
        clock.advance(wait)
        fail(store, "wang", "10.0.0.7")
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]  # doubling, capped
    refused = store.events(limit=2, username="wang")[1]
    assert refused.event == "login_throttled"
    assert refused.detail == (
        "too many failures: username from this client (16 failures); wait 900 s"
    )


def test_the_right_password_from_another_client_works_at_once(store, clock):
    store.add("wang", PASSWORD, "monitor")
    guess(store, clock, "wang", "203.0.113.5", 12)  # a stranger guessing at wang
    assert wait_of(store, "wang", "203.0.113.5") > 60
    assert store.authenticate("wang", PASSWORD, client="10.0.0.7").username == "wang"
    # the owner's success does not clear the stranger's record
    assert wait_of(store, "wang", "203.0.113.5") > 60
    # and the owner's own mistakes are free again
    fail(store, "wang", "10.0.0.7", times=4)
    assert store.authenticate("wang", PASSWORD, client="10.0.0.7").username == "wang"


def test_unknown_usernames_are_throttled_alike(store):
    fail(store, "ghost", "10.0.0.7", times=5)
    assert wait_of(store, "ghost", "10.0.0.7") == 1


def test_a_success_from_the_client_resets_its_count(store, clock):
    store.add("wang", PASSWORD, "monitor")
    fail(store, "wang", "10.0.0.7", times=4)
    store.authenticate("wang", PASSWORD, client="10.0.0.7")
    fail(store, "wang", "10.0.0.7", times=4)
    store.authenticate("wang", PASSWORD, client="10.0.0.7")  # 8 failures, never 5 in a row
    fail(store, "wang", "10.0.0.7", times=5)
    assert wait_of(store, "wang", "10.0.0.7") == 1


def test_a_new_password_resets_every_count_for_the_username(store, clock):
    store.add("wang", PASSWORD, "monitor")
    guess(store, clock, "wang", "10.0.0.7", 8)
    assert wait_of(store, "wang", "10.0.0.7") == 8
    store.set_password("wang", "a new password", by="admin:ops")
    assert store.authenticate("wang", "a new password", client="10.0.0.7").username == "wang"


def test_refused_attempts_do_not_extend_the_wait(store, clock):
    store.add("wang", PASSWORD, "monitor")
    guess(store, clock, "wang", "10.0.0.7", 9)
    assert wait_of(store, "wang", "10.0.0.7") == 16
    for _ in range(5):
        clock.advance(3)
        wait_of(store, "wang", "10.0.0.7")
    clock.advance(1)
    assert store.authenticate("wang", PASSWORD, client="10.0.0.7").username == "wang"
    assert kinds(store, "wang")[-7:] == ["login_throttled"] * 6 + ["login_ok"]


def test_failures_are_forgotten_after_the_window(store, clock):
    store.add("wang", PASSWORD, "monitor")
    guess(store, clock, "wang", "10.0.0.7", 10)
    assert wait_of(store, "wang", "10.0.0.7") == 32
    clock.advance(24 * 3600)
    fail(store, "wang", "10.0.0.7", times=5)  # free again
    assert wait_of(store, "wang", "10.0.0.7") == 1


def test_one_client_guessing_at_many_usernames_is_slowed(engine, clock):
    store = UserStore(engine, clock=clock, throttle=Throttle(client_free_failures=6))
    store.add("mine", PASSWORD, "monitor")
    for name in ("a1", "a2", "a3"):
        fail(store, name, "203.0.113.5", times=2)
        clock.advance(10)
    fail(store, "a4", "203.0.113.5")  # the 7th: 6 are free, and the 6th was 10 s ago
    assert wait_of(store, "a5", "203.0.113.5") == 2
    assert (
        store.events(limit=1)[0].detail == "too many failures: this client (7 failures); wait 2 s"
    )
    # Its own account's password does not clear the client's record...
    assert wait_of(store, "mine", "203.0.113.5") == 2
    # ...while other clients are not affected.
    assert store.authenticate("mine", PASSWORD, client="198.51.100.1").username == "mine"
    clock.advance(3600)  # the client's failures leave its hour
    assert store.authenticate("mine", PASSWORD, client="203.0.113.5").username == "mine"


def test_a_username_under_attack_gives_no_free_failures(engine, clock):
    """Many addresses guessing at one username: each is slowed from its first failure on, and
    the owner, from an address that has not failed, still logs in at once."""
    store = UserStore(engine, clock=clock, throttle=Throttle(user_alarm_failures=10))
    store.add("wang", PASSWORD, "monitor")
    for i in range(10):
        fail(store, "wang", f"203.0.113.{i}")
        clock.advance(1)
    fail(store, "wang", "198.51.100.9")  # a new address's first failure...
    assert wait_of(store, "wang", "198.51.100.9") == 1  # ...already costs a wait
    clock.advance(1)
    fail(store, "wang", "198.51.100.9")
    assert wait_of(store, "wang", "198.51.100.9") == 2
    detail = store.events(limit=1)[0].detail
    assert detail.endswith("(2 failures), the username is under attack; wait 2 s")
    assert store.authenticate("wang", PASSWORD, client="10.0.0.7").username == "wang"
    other = store.add("li", PASSWORD, "monitor")  # other usernames are not affected
    fail(store, other.username, "198.51.100.9", times=4)
    store.authenticate("li", PASSWORD, client="198.51.100.9")


def test_both_limits_at_once_wait_for_the_longer(engine, clock):
    throttle = Throttle(free_failures=1, client_free_failures=1)
    store = UserStore(engine, clock=clock, throttle=throttle)
    fail(store, "x1", "203.0.113.5")
    clock.advance(1)
    fail(store, "x2", "203.0.113.5")
    clock.advance(2)
    fail(store, "wang", "203.0.113.5")  # username from the client: 1 (wait 1), client: 3 (4)
    assert wait_of(store, "wang", "203.0.113.5") == 4
    assert store.events(limit=1)[0].detail == (
        "too many failures: username from this client (1 failure) and this client "
        "(3 failures); wait 4 s"
    )


def test_the_default_limits(store):
    assert store.throttle == Throttle(
        free_failures=5,
        client_free_failures=20,
        base_delay_s=1.0,
        max_delay_s=900.0,
        window_s=24 * 3600,
        client_window_s=3600,
        user_alarm_failures=100,
    )
    assert store.session_ttl_s == 8 * 3600


# -- sessions -----------------------------------------------------------------------------


def test_a_session_lasts_its_ttl(store, engine, clock):
    user = store.add("wang", PASSWORD, "monitor")
    token = store.create_session(user, "10.0.0.7")
    assert len(token) >= 43
    row = stored(engine, sessions)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert row.client == "10.0.0.7"

    assert store.session_user(token) == user
    clock.advance(8 * 3600 - 1)
    assert store.session_user(token) == user
    clock.advance(1)
    assert store.session_user(token) is None
    assert store.session_user(token) is None
    assert store.session_user("") is None
    assert store.session_user("not a session") is None
    assert store.session_user("x" * 10_000) is None


def test_last_seen_is_written_at_most_once_a_minute(store, engine, clock):
    user = store.add("wang", PASSWORD, "monitor")
    token = store.create_session(user, "10.0.0.7")
    clock.advance(59)
    store.session_user(token)
    assert stored(engine, sessions).last_seen_at.replace(tzinfo=UTC) == START
    clock.advance(1)
    store.session_user(token)
    assert stored(engine, sessions).last_seen_at.replace(tzinfo=UTC) == START + timedelta(
        seconds=60
    )


def test_logout_ends_the_session(store, engine):
    user = store.add("wang", PASSWORD, "monitor")
    token = store.create_session(user, "10.0.0.7")
    other = store.create_session(user, "10.0.0.8")
    assert store.end_session(token) is True
    assert store.session_user(token) is None
    assert store.session_user(other) == user
    assert store.end_session(token) is False
    assert newest_event(store) == ("logout", "wang", user.id, "10.0.0.7")


def test_disabling_a_user_or_changing_the_password_ends_the_sessions(store):
    wang = store.add("wang", PASSWORD, "monitor")
    li = store.add("li", PASSWORD, "supervisor")
    a, b = store.create_session(wang, "c"), store.create_session(li, "c")
    store.set_active("wang", False)
    assert store.session_user(a) is None
    store.set_active("wang", True)
    assert store.session_user(a) is None  # ended, not merely suspended
    store.set_password("li", "a new password")
    assert store.session_user(b) is None
    assert [e.detail for e in store.events(limit=2)] == ["sessions ended: 1", ""]


def test_expired_sessions_are_cleared_out(store, engine, clock):
    user = store.add("wang", PASSWORD, "monitor")
    store.create_session(user, "c")
    clock.advance(9 * 3600)
    fresh = store.create_session(user, "c")
    with engine.connect() as conn:
        hashes = conn.execute(select(sessions.c.token_hash)).scalars().all()
    assert hashes == [hashlib.sha256(fresh.encode()).hexdigest()]


# -- API tokens ---------------------------------------------------------------------------


def test_an_api_token_acts_as_its_user_until_revoked(store, engine, clock):
    user = store.add("gateway", PASSWORD, "monitor")
    token = store.create_token("gateway", " 省平台对接 ", by="cli:root")
    assert token.startswith("nst_") and len(token) == 4 + 43
    row = stored(engine, api_tokens)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash
    assert row.prefix == token[:8]

    [listed] = store.list_tokens()
    assert (listed.username, listed.name, listed.prefix) == ("gateway", "省平台对接", token[:8])
    assert (listed.created_at, listed.last_used_at, listed.revoked) == (START, None, False)
    assert store.describe_token(token) == listed
    assert store.describe_token("nst_unknown") is None

    assert store.token_user(token) == user
    assert store.list_tokens("gateway")[0].last_used_at == START
    clock.advance(30)
    assert store.token_user(token) == user
    assert store.list_tokens()[0].last_used_at == START  # to the minute
    clock.advance(30)
    store.token_user(token)
    assert store.list_tokens()[0].last_used_at == START + timedelta(seconds=60)

    assert store.token_user("nst_" + "x" * 43) is None
    assert store.token_user("") is None
    assert store.revoke_token(listed.id, by="admin:ops") is True
    assert store.token_user(token) is None
    assert store.revoke_token(listed.id) is False
    assert store.list_tokens()[0].revoked_at == START + timedelta(seconds=60)
    with pytest.raises(NotFoundError, match="no API token 999"):
        store.revoke_token(999)

    created, revoked = (e for e in reversed(store.events()) if e.event.startswith("token"))
    assert (created.event, created.client, created.detail) == (
        "token_created",
        "cli:root",
        f"token {listed.id} '省平台对接'",
    )
    assert (revoked.event, revoked.client, revoked.username) == (
        "token_revoked",
        "admin:ops",
        "gateway",
    )


def test_a_disabled_users_tokens_stop_working_until_enabled(store):
    store.add("gateway", PASSWORD, "monitor")
    token = store.create_token("gateway", "ci")
    store.set_active("gateway", False)
    assert store.token_user(token) is None
    store.set_active("gateway", True)
    assert store.token_user(token) is not None


def test_tokens_need_a_name_and_are_listed_per_user(store):
    store.add("a1", PASSWORD, "monitor")
    store.add("b1", PASSWORD, "admin")
    with pytest.raises(ValueError, match="needs a name"):
        store.create_token("a1", "  ")
    first = store.create_token("a1", "one")
    store.create_token("b1", "two")
    store.create_token("a1", "three")
    assert [t.name for t in store.list_tokens("a1")] == ["one", "three"]
    assert [t.name for t in store.list_tokens()] == ["one", "two", "three"]
    assert first != store.create_token("a1", "one")  # names need not be unique; tokens are


# -- the public surface -------------------------------------------------------------------


def test_the_public_surface_stays_importable():
    import nonsite.auth
    from nonsite.auth import users as facade

    assert [n for n in nonsite.auth.__all__ if not hasattr(nonsite.auth, n)] == []
    assert [n for n in facade.__all__ if not hasattr(facade, n)] == []
    assert nonsite.auth.UserStore is facade.UserStore
