"""Builders for rule scenarios: an outlet's parameters and its readings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from ingest.china_time import CHINA_TZ
from ingest.readings import Measurement
from rules.params import FactorParams, OutletParams, Thresholds
from rules.store import declare_marking
from tests.rules.factors import COD, FLOW_GAS, FLOW_WATER, O2, SO2

T0 = datetime(2026, 11, 21, 0, 0, tzinfo=CHINA_TZ)  # a China midnight: day and hour start


def gas_outlet(**kw) -> OutletParams:
    factors = {
        SO2: FactorParams(
            SO2, "mg/m³", Thresholds(hour_alarm=100, hour_warning=80, day_alarm=90), reference_o2=6
        ),
        O2: FactorParams(O2, "%"),
        FLOW_GAS: FactorParams(FLOW_GAS, "m³/s"),
    }
    return replace(OutletParams("E1", "DA001", "gas", factors=factors), **kw)


def water_outlet(**kw) -> OutletParams:
    factors = {
        COD: FactorParams(COD, "mg/L", Thresholds(day_alarm=50)),
        FLOW_WATER: FactorParams(FLOW_WATER, "L/s"),
        "w01001": FactorParams("w01001", "", Thresholds(value_low=6, value_high=9)),
    }
    return replace(OutletParams("E2", "DW001", "water", factors=factors), **kw)


def reading(
    factor: str,
    at: datetime,
    value: float | None,
    *,
    interval: str = "minute",
    flag: str | None = "N",
    zs: float | None = None,
    received: datetime | None = None,
    outlet: tuple[str, str] = ("E1", "DA001"),
    seq: int = 0,
) -> Measurement:
    return Measurement(
        outlet[0],
        outlet[1],
        "MN",
        factor,
        interval,
        at,
        value,
        None,
        None,
        None,
        zs,
        flag,
        None,  # type: ignore[arg-type]
        received or at + timedelta(minutes=1),
        seq,
    )


def minutes(
    factor: str, hour: datetime, values: list[float | None], *, every: int = 10, **kw
) -> list[Measurement]:
    """Minute records of one hour, one per ``every`` minutes."""
    return [
        reading(factor, hour + timedelta(minutes=every * i), v, **kw) for i, v in enumerate(values)
    ]


def hour_of(factor: str, hour: datetime, value: float, **kw) -> list[Measurement]:
    """A full valid hour: six 10-minute records averaging ``value`` (varied, as real data is,
    so that they do not form a constant-value run)."""
    spread = [-0.3, 0.3, -0.2, 0.2, -0.1, 0.1] if value else [0.0] * 6
    return minutes(factor, hour, [value + d for d in spread], **kw)


def tick(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def declare_day(conn: Connection, type_: str, reason: str) -> None:
    """E1's outlet DA001 declared online (by ent1) as ``type_`` for 2026-11-24 UTC."""
    declare_marking(
        conn,
        enterprise_id="E1",
        outlet_id="DA001",
        type=type_,
        start=datetime(2026, 11, 24, tzinfo=UTC),
        end=datetime(2026, 11, 25, tzinfo=UTC),
        factor=None,
        reason=reason,
        declared_by="ent1",
    )
