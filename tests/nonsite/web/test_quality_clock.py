"""A drifting clock is a data-quality finding: the data-quality figures carry the drift of each
enterprise's loggers' clocks as last read (ingest.commands), the largest first in sign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from ingest.commands.store import logger_commands, request

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def read_clock(site, mn: str, drift_s: float, at: datetime) -> None:
    with site.ctx.db.begin() as conn:
        command_id = request(
            conn, mn=mn, kind="time_get", cn="1011", requested_by="auto:clock", reason="核对",
            now=at,
        )  # fmt: skip
        conn.execute(
            update(logger_commands)
            .where(logger_commands.c.id == command_id)
            .values(status="done", drift_s=drift_s, answered_at=at)
        )


def test_the_clock_drift_of_its_loggers_is_in_the_data_quality_figures(site):
    in_window = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    read_clock(site, "MN1", 40.0, in_window - timedelta(hours=1))
    read_clock(site, "MN1", -185.0, in_window)  # the latest read counts
    read_clock(site, "MN2", 900.0, in_window - timedelta(days=3))  # outside the last 24 h
    doc = site.login("monitor").get("/api/v1/quality", params={"window": "24h"}).json()
    by_id = {e["enterprise_id"]: e for e in doc["enterprises"]}
    assert by_id["E1"]["clock_drift_s"] == -185.0
    assert by_id["E2"]["clock_drift_s"] is None
    week = site.login("monitor").get("/api/v1/quality", params={"window": "7d"}).json()
    assert {e["enterprise_id"]: e for e in week["enterprises"]}["E2"]["clock_drift_s"] == 900.0
