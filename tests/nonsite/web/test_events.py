"""Live updates: the event stream carries each case change the caller may see, and resumes
from Last-Event-ID without missing or repeating one."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from alerts.workflow import Actor
from tests.alerts.conftest import finding


def read_events(
    url: str,
    cookies,
    n: int,
    headers=None,
    timeout=15.0,
    started: threading.Event | None = None,
    got: list[dict] | None = None,
) -> list[dict]:
    """The first ``n`` events of the stream (appended to ``got`` as they come, when given);
    ``started`` is set once the stream has begun (its first line: it starts at the head)."""
    got = [] if got is None else got
    with (
        httpx.Client(base_url=url, cookies=cookies, timeout=timeout) as client,
        client.stream("GET", "/api/v1/events", headers=headers or {}) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        event: dict = {}
        for line in resp.iter_lines():
            if started is not None:
                started.set()
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "data" in event:
                got.append(event)
                event = {}
                if len(got) >= n:
                    break
    return got


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_enterprise_sees_only_its_own_changes_live_and_resumes(site):
    client = site.login("ent1")
    cookies = dict(client.cookies)
    box: dict = {}
    started = threading.Event()
    reader = threading.Thread(
        target=lambda: box.setdefault("events", read_events(site.url, cookies, 2, started=started))
    )
    reader.start()
    assert started.wait(20)  # the stream starts at the current head: begun before the writes
    with site.ctx.db.begin() as conn:  # another enterprise's case first, then two of E1's
        site.ctx.book.apply(conn, [finding(enterprise="E2", source="DA002")])
        site.ctx.book.apply(conn, [finding("B6", tier="warning", limit=None)])
    reader.join(20)
    events = box["events"]
    assert {e["data"]["enterprise_id"] for e in events} == {"E1"}
    assert [e["data"]["action"] for e in events] == ["sense", "remind"]
    # Reconnecting with the first id as Last-Event-ID gives the second again, nothing else.
    again = read_events(site.url, cookies, 1, headers={"Last-Event-ID": str(events[0]["id"])})
    assert again[0]["id"] == events[1]["id"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_stream_needs_a_login(site):
    site.client.cookies.clear()
    r = site.client.get("/api/v1/events")
    assert r.status_code == 401
    assert r.json()["code"] == "not_logged_in"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_change_committed_after_a_later_one_is_still_sent(site):
    """Several writers (the workers of a cluster, a person's action beside the pipeline):
    a transaction that took its event id first may commit after one that took a later id.
    The stream has sent the later one by then; the earlier one must still follow."""
    client = site.login("admin")
    cookies = dict(client.cookies)
    box: dict = {}
    started, sent = threading.Event(), []

    def read() -> None:
        try:
            box["events"] = read_events(site.url, cookies, 3, timeout=20, started=started, got=sent)
        except httpx.HTTPError as exc:  # fewer than three came: the assertion says which
            box["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(20)  # the stream starts at the current head: begun before the writes
    slow = site.ctx.db.connect()
    slow_tx = slow.begin()  # a person's note on E2's case: its event id taken, not committed
    site.ctx.book.act(
        slow, site.cases["e2_warning"], "comment", Actor("sup", "supervisor"), note="稍后提交"
    )
    with site.ctx.db.begin() as conn:  # later ids, committed first
        site.ctx.book.apply(conn, [finding("B6", tier="warning", limit=None)])
    for _ in range(200):  # until the stream has sent the later ones
        if len(sent) >= 2:
            break
        threading.Event().wait(0.1)
    assert len(sent) == 2, sent
    slow_tx.commit()
    slow.close()
    reader.join(30)
    assert "error" not in box, box
    events = box["events"]
    assert [e["data"]["enterprise_id"] for e in events] == ["E1", "E1", "E2"]
    assert len({e["id"] for e in events}) == 3
    assert events[2]["id"] < events[0]["id"]  # the earlier id, sent after the later ones
