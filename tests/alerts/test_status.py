"""An enterprise's status: 报警 over 离线 over 预警 over 停产 over 正常."""

import sqlalchemy as sa

from alerts.status import enterprise_status
from rules.store import record_production
from tests.alerts.conftest import finding


def status(store):
    with store.connect() as conn:
        return enterprise_status(conn, "E1")


def test_status_from_open_cases_and_production(store, book):
    assert status(store)["status"] == "normal"
    with store.begin() as conn:
        record_production(conn, {"E1": False})
    assert (status(store)["status"], status(store)["status_zh"]) == ("stopped", "停产")
    with store.begin() as conn:
        book.apply(conn, [finding("B2", tier="warning", limit=None)])
    assert status(store)["status"] == "warning"  # a warning needs attention even when stopped
    with store.begin() as conn:
        book.apply(conn, [finding("B8", tier="warning", factor=None, limit=None)])
    assert status(store)["status_zh"] == "离线"
    with store.begin() as conn:
        book.apply(conn, [finding(source="DA002")])
    assert (status(store)["status_zh"], status(store)["open_alarms"]) == ("报警", 1)


def test_production_since_moves_only_when_the_state_changes(store):
    from rules.store import production

    with store.begin() as conn:
        record_production(conn, {"E1": True})
    with store.connect() as conn:
        first = conn.execute(sa.select(production.c.since)).scalar_one()
    with store.begin() as conn:
        record_production(conn, {"E1": True})  # a restarted service says the same again
    with store.connect() as conn:
        assert conn.execute(sa.select(production.c.since)).scalar_one() == first
    with store.begin() as conn:
        record_production(conn, {"E1": False})
    with store.connect() as conn:
        row = conn.execute(sa.select(production)).one()
    assert row.producing is False and row.since != first
