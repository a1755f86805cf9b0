"""A person's action is taken once, however often its request arrives, and waits through a
database failover instead of failing.

On SQLite and PostgreSQL (the ``site`` fixture), over real HTTP. The lost reply is a commit
that happened while the server saw its connection fail (the database failing over as it
acknowledged): the API runs the transaction again and must find the action done. The outage is
a real TCP proxy in front of PostgreSQL, cut and restored.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from alerts.schema import case_events
from nonsite.auth import passwords
from nonsite.config.load import parse_config
from tests.alerts.conftest import finding
from tests.nonsite.tcp_proxy import TcpProxy
from tests.nonsite.web.conftest import CONFIG, api_login, serving, web_context

KEY = "form-7f3a9c2e41d04b8a"


def comments(site: Any, case_id: int) -> list[str]:
    with site.ctx.db.connect() as conn:
        return list(
            conn.execute(
                sa.select(case_events.c.note).where(
                    case_events.c.case_id == case_id, case_events.c.action == "comment"
                )
            ).scalars()
        )


def comment(client: httpx.Client, case_id: int, note: str, key: str | None = KEY) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"/api/v1/cases/{case_id}/actions/comment", json={"note": note}, headers=headers
    )


def test_an_action_sent_twice_under_its_key_is_taken_once(site):
    client = site.login("monitor")
    case_id = site.cases["e1_warning"]
    first = comment(client, case_id, "已电话联系企业")
    again = comment(client, case_id, "已电话联系企业")  # the reply was lost: the form resends
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["version"] == first.json()["version"]
    assert comments(site, case_id) == ["已电话联系企业"]
    # Without a key each request is its own action.
    assert comment(client, case_id, "再次联系", key=None).status_code == 200
    assert comment(client, case_id, "再次联系", key=None).status_code == 200
    assert comments(site, case_id).count("再次联系") == 2


def test_a_key_sent_again_for_another_case_is_refused(site):
    client = site.login("monitor")
    assert comment(client, site.cases["e1_warning"], "已联系").status_code == 200
    other = comment(client, site.cases["e2_warning"], "已联系")
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "key_reused"
    assert comments(site, site.cases["e2_warning"]) == []
    bad = comment(client, site.cases["e1_warning"], "已联系", key="short")
    assert bad.status_code == 422


def test_a_commit_whose_reply_is_lost_is_not_taken_twice(site):
    """The database commits, then the connection fails before the server hears it: the API
    retries the transaction, finds its key, and answers with the case once changed."""
    client = site.login("monitor")
    case_id = site.cases["e1_warning"]
    lost = {"armed": True}

    @event.listens_for(site.ctx.db, "before_cursor_execute")
    def mark(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO action_requests"):
            conn.info["acting"] = True  # the action's own transaction

    @event.listens_for(site.ctx.db, "commit")
    def commit_then_fail(conn: sa.Connection) -> None:
        if conn.info.pop("acting", False) and lost["armed"]:
            lost["armed"] = False
            conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
            conn.invalidate()
            raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("connection lost"))

    try:
        for key in (KEY, None):  # the client's key, and the API's own for its retries
            lost["armed"] = True
            note = f"复核 {key}"
            r = comment(client, case_id, note, key=key)
            assert r.status_code == 200, r.text
            assert not lost["armed"], "the lost reply was not simulated"
            assert comments(site, case_id).count(note) == 1
    finally:
        event.remove(site.ctx.db, "commit", commit_then_fail)
        event.remove(site.ctx.db, "before_cursor_execute", mark)


@pytest.mark.integration
def test_an_action_waits_through_an_outage_and_is_answered_when_the_database_is_back(
    pg_url, monkeypatch
):
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    target = sa.engine.make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        config = parse_config({**CONFIG, "database": {"retry_s": 20}}, "test.toml", env={})
        ctx = web_context(config, url)
        with ctx.db.begin() as conn:
            [case_id] = ctx.book.apply(conn, [finding("B2", tier="warning", limit=None)]).opened
        with serving(ctx, timeout=40) as (_server, client):
            api_login(client, "monitor")
            proxy.cut()
            answer: list[httpx.Response] = []
            sent = time.monotonic()
            thread = threading.Thread(
                target=lambda: answer.append(comment(client, case_id, "停电期间的复核"))
            )
            thread.start()
            time.sleep(2.0)
            assert thread.is_alive(), "answered while the database was away"
            proxy.restore()
            thread.join(30)
            assert answer and answer[0].status_code == 200, answer[0].text if answer else None
            waited = time.monotonic() - sent
            assert 2.0 <= waited < 20
            with ctx.db.connect() as conn:
                notes = conn.execute(
                    sa.select(case_events.c.note).where(case_events.c.action == "comment")
                ).scalars()
                assert list(notes) == ["停电期间的复核"]


@pytest.mark.integration
def test_an_outage_longer_than_the_wait_is_answered_503_in_chinese(pg_url, monkeypatch):
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
    target = sa.engine.make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        config = parse_config({**CONFIG, "database": {"retry_s": 1}}, "test.toml", env={})
        ctx = web_context(config, url)
        with serving(ctx, timeout=20) as (_server, client):
            api_login(client, "monitor")
            proxy.cut()
            r = comment(client, 1, "停电期间")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "database_unavailable"
            assert "数据库暂时不可用" in r.json()["message"]
            assert r.headers["Retry-After"] == "5"


def test_a_comment_without_a_version_is_taken_on_the_case_as_it_is_now(site):
    """The rules change a case (another hour counted) between the action's read and its
    write: a request that named no version is run again on the case as it is, not refused."""
    client = site.login("monitor")
    case_id = site.cases["e1_warning"]
    other = sa.create_engine(site.ctx.db.url)
    bumped = {"armed": True}

    @event.listens_for(site.ctx.db, "before_cursor_execute")
    def change_meanwhile(_conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if bumped["armed"] and statement.startswith("UPDATE cases"):
            bumped["armed"] = False
            with other.begin() as conn:  # another writer (the pipeline) commits first
                conn.execute(
                    sa.text("UPDATE cases SET version = version + 1 WHERE id = :id"),
                    {"id": case_id},
                )

    try:
        r = comment(client, case_id, "复核：企业已整改", key=None)
        assert not bumped["armed"], "the concurrent change was not made"
        assert r.status_code == 200, r.text
        assert comments(site, case_id) == ["复核：企业已整改"]
        pinned = client.post(
            f"/api/v1/cases/{case_id}/actions/comment",
            json={"note": "旧版本", "version": 1},
        )
        assert pinned.status_code == 409  # a request that named an old version is refused
    finally:
        event.remove(site.ctx.db, "before_cursor_execute", change_meanwhile)
        other.dispose()
