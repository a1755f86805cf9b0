"""Every instant the API takes comes back as the same instant, whatever UTC offset it was given
with, on SQLite and PostgreSQL (issue 16, defect 3: SQLite used to drop the offset, storing
``18:00+08:00`` as ``18:00Z``, eight hours late)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import StatementError

from alerts.schema import silences
from alerts.workflow import Actor
from tests.alerts.conftest import finding

CHINA = timezone(timedelta(hours=8))
WEST = timezone(timedelta(hours=-5))


def instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no offset"
    return value


def test_a_declared_marking_keeps_its_instants(site):
    start = "2026-12-10T18:00:30.123456+08:00"
    end = "2026-12-10T16:30:00-05:00"  # = 2026-12-11T05:30+08:00
    client = site.login("ent1")
    body = {"outlet": "DA001", "type": "maintenance", "start": start, "end": end, "reason": "检修"}
    r = client.post("/api/v1/markings", json=body)
    assert r.status_code == 201, r.text
    assert (instant(r.json()["start"]), instant(r.json()["end"])) == (
        instant(start),
        instant(end),
    )
    [stored] = [m for m in client.get("/api/v1/markings").json() if m["source"] == "declared"]
    assert (instant(stored["start"]), instant(stored["end"])) == (instant(start), instant(end))
    [shown] = [
        m for m in client.get("/api/v1/enterprises/E1").json()["markings"] if m["reason"] == "检修"
    ]
    assert instant(shown["start"]) == datetime(2026, 12, 10, 10, 0, 30, 123456, tzinfo=UTC)


def test_a_silence_keeps_its_instants(site):
    starts = "2027-01-05T08:15:00.000001+08:00"
    ends = "2027-01-05T09:15:00-05:00"
    client = site.login("supervisor")
    r = client.post(
        "/api/v1/silences",
        json={"reason": "停产检修", "enterprise_id": "E1", "starts_at": starts, "ends_at": ends},
    )
    assert r.status_code == 201, r.text
    [stored] = client.get("/api/v1/silences", params={"include_ended": True}).json()
    assert (instant(stored["starts_at"]), instant(stored["ends_at"])) == (
        instant(starts),
        instant(ends),
    )


def test_a_work_order_keeps_its_due_date(site):
    with site.ctx.db.begin() as conn:
        [case] = site.ctx.book.apply(conn, [finding("A1", enterprise="E2")]).opened
    due = "2026-12-10T18:00:00+08:00"
    client = site.login("supervisor")
    r = client.post(f"/api/v1/cases/{case}/actions/dispatch", json={"due_at": due})
    assert r.status_code == 200, r.text
    detail = client.get(f"/api/v1/cases/{case}").json()
    assert instant(detail["work_order"]["due_at"]) == instant(due)
    [order] = [o for o in client.get("/api/v1/work-orders").json() if o["case_id"] == case]
    assert instant(order["due_at"]) == datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    # the audit trail and the live feed carry instants too
    [dispatched] = [e for e in detail["events"] if e["action"] == "dispatch"]
    assert instant(dispatched["at"]) <= datetime.now(UTC)


def test_the_case_queue_filters_by_instant(site):
    """``since`` (on last_seen) and ``until`` (on opened_at) given with any offset mean the same
    instants as in UTC."""
    client = site.login("monitor")
    items = client.get("/api/v1/cases").json()["items"]
    assert len(items) == 3
    seen = max(instant(c["last_seen"]) for c in items)
    opened = max(instant(c["opened_at"]) for c in items)

    def count(**params: datetime) -> int:
        r = client.get("/api/v1/cases", params={k: v.isoformat() for k, v in params.items()})
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    second = timedelta(seconds=1)
    for zone in (UTC, CHINA, WEST):
        assert count(since=seen.astimezone(zone)) == 3, zone
        assert count(since=(seen + second).astimezone(zone)) == 0, zone
        assert count(until=(opened + second).astimezone(zone)) == 3, zone
        assert count(until=(opened - timedelta(minutes=10)).astimezone(zone)) == 0, zone


def test_times_read_from_the_database_are_utc(site):
    """What the store reads back is aware UTC on both databases, so the API's answers carry an
    offset (a naive time would be read as the browser's local time)."""
    with site.ctx.db.begin() as conn:
        site.ctx.book.act(
            conn, site.cases["e2_warning"], "comment", Actor("m", "monitor"), note="看过"
        )
    detail = site.login("monitor").get(f"/api/v1/cases/{site.cases['e2_warning']}").json()
    for text in [detail["case"]["opened_at"], *(e["at"] for e in detail["events"])]:
        assert instant(text).utcoffset() == timedelta(0), text


def test_a_time_without_an_offset_is_china_time(site):
    """As in the series API and the CLI: a naive time in a body or a query is China time."""
    client = site.login("ent1")
    body = {
        "outlet": "DA001",
        "type": "maintenance",
        "start": "2026-12-10T18:00:00",
        "end": "2026-12-10T20:00",
        "reason": "检修",
    }
    r = client.post("/api/v1/markings", json=body)
    assert r.status_code == 201, r.text
    [stored] = [m for m in client.get("/api/v1/markings").json() if m["source"] == "declared"]
    assert instant(stored["start"]) == datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    assert instant(stored["end"]) == datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    items = client.get("/api/v1/cases").json()["items"]
    seen = max(instant(c["last_seen"]) for c in items).astimezone(CHINA).replace(tzinfo=None)
    assert client.get("/api/v1/cases", params={"since": seen.isoformat()}).json()["total"] == len(
        items
    )
    later = (seen + timedelta(seconds=1)).isoformat()
    assert client.get("/api/v1/cases", params={"since": later}).json()["total"] == 0


def test_rows_written_before_the_fix_read_back_as_utc(site):
    """The stored representation did not change: a row as SQLAlchemy wrote it before (SQLite:
    UTC wall-clock text; PostgreSQL: timestamptz) reads back as the same UTC instant."""
    with site.ctx.db.begin() as conn:
        if conn.dialect.name == "sqlite":
            value = "2027-02-01 04:05:06.000007"
        else:
            value = "2027-02-01 12:05:06.000007+08:00"
        conn.exec_driver_sql(
            "INSERT INTO silences (enterprise_id, source_id, rule, reason, created_by, starts_at,"
            " ends_at, created_at) VALUES ('E1', NULL, NULL, 'old', 'x', "
            f"'{value}', '{value}', '{value}')"
        )
    [row] = site.login("monitor").get("/api/v1/silences", params={"include_ended": True}).json()
    assert instant(row["ends_at"]) == datetime(2027, 2, 1, 4, 5, 6, 7, tzinfo=UTC)


def test_the_store_refuses_a_naive_instant(site):
    """No code path may store a time whose instant nobody knows."""
    naive = datetime(2027, 2, 1, 4, 5)
    row = {"reason": "x", "created_by": "x", "starts_at": naive, "ends_at": naive}
    with (
        pytest.raises(StatementError, match="naive datetime 2027-02-01T04:05:00"),
        site.ctx.db.begin() as conn,
    ):
        conn.execute(insert(silences).values(created_at=naive, **row))
