"""The fleet's ratings from the database and the configuration, on SQLite and PostgreSQL: the
effective transmission rate of the last days from the kept days (counted from the day the
service first held the enterprise's data), the supervision class, and the configured weights."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import insert

from ingest.china_time import CHINA_TZ
from nonsite.config.load import parse_config
from nonsite.risk_rating import fleet_inputs, rate_fleet
from nonsite.rule_wiring import rule_setup
from rules.history_store import Partitions
from rules.store import day_values

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=CHINA_TZ)
TODAY = NOW.date()


def config(**risk: object):
    def enterprise(eid: str, cls: str) -> dict:
        outlet = {
            "id": "DA001", "kind": "gas", "mn": f"MN{eid}", "pw": "1",
            "preset": "thermal_power_coal_boiler",
        }  # fmt: skip
        return {"id": eid, "name": eid, "supervision_class": cls, "outlets": [outlet]}

    doc = {
        "risk": risk,
        "enterprises": [enterprise("E1", "key"), enterprise("E2", "general")],
    }
    return parse_config(doc, "risk.toml", env={})


def kept_day(eid: str, day_offset: int, factor: str, valid: int, expected: int = 144) -> dict:
    start = datetime.combine(TODAY - timedelta(days=day_offset), time(), CHINA_TZ)
    return {
        "enterprise_id": eid, "outlet_id": "DA001", "factor": factor,
        "start": int(start.timestamp()), "value": 10.0, "converted": 10.0, "valid_hours": 24,
        "converted_hours": 24, "required_hours": 20, "flow_weighted": False,
        "received": valid, "valid_records": valid, "expected": expected, "due_hours": 24,
        "interval_s": 600,
    }  # fmt: skip


def test_transmission_counts_from_the_first_day_held_and_the_class_stands(engine):
    cfg = config()
    factors = sorted(rule_setup(cfg).params[("E1", "DA001")].factors)
    rows = []
    # E1 held from 10 days ago: 5 whole days, then 5 days at half (72 of 144 records valid).
    for offset in range(1, 11):
        valid = 144 if offset > 5 else 72
        rows += [kept_day("E1", offset, f, valid) for f in factors]
    with engine.begin() as conn:
        Partitions().ensure(conn, day_values, [r["start"] for r in rows])  # PostgreSQL's months
        conn.execute(insert(day_values), rows)
    inputs = fleet_inputs(engine, cfg, TODAY)
    assert inputs["E1"].transmission_rate == 0.75  # 10 days held, not 30 due
    assert inputs["E2"].transmission_rate is None  # nothing held: no figure
    [e1, e2] = rate_fleet(engine, cfg, NOW, trigger="on_demand")
    lines = {c.kind: c for c in e1.contributions}
    assert lines["transmission"].count == 15  # percentage points below 90 %
    assert lines["transmission"].points == 15
    assert lines["class"].points == 10  # 重点监管
    assert (e1.score, e1.color) == (25, "yellow")
    assert (e2.score, e2.contributions) == (0, ())


def test_the_configured_weights_and_thresholds_are_used(engine):
    cfg = config(points={"transmission": 0.5}, class_points={"key": 30}, yellow_at=10, red_at=35)
    [e1, _] = rate_fleet(engine, cfg, NOW, trigger="on_demand")
    assert [(c.kind, c.points) for c in e1.contributions] == [("class", 30)]
    assert e1.color == "yellow"
    assert e1.weights.points["violation"] == 30  # not configured: the default
