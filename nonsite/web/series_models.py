"""Response bodies of the data-series API (nonsite/web/api/series.py): an outlet's values
against its limits, a meter's samples, and an enterprise's latest values.

Times are aware datetimes in China time (+08:00). Hours and days are given by their start:
an hour is [t, t + 1 h), a day the China natural day [t, t + 24 h).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from nonsite.web.models import ApiModel

Interval = Literal["rtd", "minute", "hour", "day"]


class RequestErrorOut(ApiModel):
    """The answer to a parameter that cannot be read (e.g. a time that is no time)."""

    code: str = Field(description="invalid_request")
    message: str = Field(description="each field and what it must be")
    detail: list[dict[str, Any]] = Field(description="FastAPI's errors, without the input")


class FactorInfo(ApiModel):
    code: str = Field(description="HJ 212-2017 pollutant code, e.g. a21026")
    name: str = Field(description="name and code as the alerts print it, e.g. 二氧化硫(a21026)")
    unit: str
    configured: bool = Field(description="judged by the rules (in the outlet's parameters)")


class RawPoint(ApiModel):
    """One factor's value from one HJ 212 data packet, as the logger sent it."""

    t: datetime = Field(description="DataTime: the instant (rtd) or the window start")
    interval: Interval
    value: float | None = Field(description="Rtd, or Avg of a windowed packet")
    flag: str | None = Field(description="data flag N/F/M/S/D/C/T/B; null when not sent")
    zs: float | None = Field(description="the converted (折算) value the logger reported")


class LatestPoint(RawPoint):
    received_at: datetime


class HourPoint(ApiModel):
    """One factor of one outlet-hour, as the rules judge it (batch engine, layer 1)."""

    t: datetime
    value: float | None = Field(
        description="the valid hourly average (enough valid minutes), or the device's own "
        "hour value when the hour has no minute data; null when the hour is not valid"
    )
    valid: bool
    source: Literal["minutes", "realtime", "device"] = Field(
        description="minute data (CN 2051), real-time data of an outlet that sends no minute "
        "data (CN 2011), or the device's own hour value (CN 2061)"
    )
    flag: str | None = Field(
        description="N when valid, else its most frequent invalid cause (F: stopped, 停运); "
        "null when only missing data made it invalid"
    )
    interval_s: int = Field(
        description="the record interval it was judged with, read from the data"
    )
    converted: float | None = Field(
        description="value converted to the reference O2 (折算) with the hour's valid O2, "
        "for factors judged converted; null otherwise"
    )
    valid_minutes: int = Field(description="valid records × the record interval, at most 60")
    n: int = Field(description="records received (first arrival of each)")
    n_valid: int = Field(description="valid flag, a value, not in a marked period")
    n_marked: int
    flags: dict[str, int] = Field(description="records per flag D, M, C, B, T, F")
    marked: bool = Field(description="some of the hour's data lies in a marked period")
    device_value: float | None = Field(description="the logger's own hour value (CN 2061)")
    device_flag: str | None


class DayPoint(ApiModel):
    """One factor of one China natural day, from its valid hours."""

    t: datetime
    value: float | None = Field(
        description="mean of the valid hourly values, as the daily rule takes it (for "
        "wastewater weighted by the flow of the hours that have a valid one, when those are "
        "enough for a daily value); null with fewer valid hours than required"
    )
    converted: float | None = Field(
        description="mean of the converted hourly values, for factors judged converted"
    )
    valid_hours: int = Field(description="valid hours in the day")
    converted_hours: int = Field(description="hours with a converted value")
    required_hours: int = Field(description="valid hours a daily value needs")
    flow_weighted: bool
    complete: bool = Field(description="the day has ended; otherwise the value is provisional")


class LimitsOut(ApiModel):
    """A factor's limits with the derived warnings filled in (rules.params)."""

    unit: str
    hour_alarm: float | None
    hour_warning: float | None
    day_alarm: float | None
    day_warning: float | None
    value_high: float | None = Field(description="every single value at or below")
    value_low: float | None = Field(description="every single value at or above")
    reference_o2: float | None = Field(
        description="limits apply to values converted to this O2 %; null: to measured values"
    )
    source: str = Field(description="where the limits come from")


class MarkedPeriodOut(ApiModel):
    """A period the enterprise declared (标记): its data is not exceedance evidence."""

    start: datetime
    end: datetime
    type: str
    factor: str | None = Field(description="null: every factor of the outlet")
    reason: str
    over_cap_from: datetime | None = Field(
        description="from this moment the yearly marking cap no longer excuses the data"
    )


class OutletSeriesOut(ApiModel):
    enterprise_id: str
    outlet_id: str
    outlet_name: str
    mn: str
    kind: Literal["gas", "water"]
    since: datetime
    until: datetime
    minute_interval_min: int | None = Field(
        description="the configured minute-data interval; null: read from the data"
    )
    valid_minutes_per_hour: int
    valid_hours_per_day: int
    factors: list[FactorInfo]
    raw: dict[str, list[RawPoint]] = Field(
        description="per factor, in time order; empty when raw=false"
    )
    hourly: dict[str, list[HourPoint]]
    daily: dict[str, list[DayPoint]] = Field(
        description="every natural day overlapping the range, computed from the whole day"
    )
    limits: dict[str, LimitsOut]
    marked: list[MarkedPeriodOut]
    latest: dict[str, LatestPoint] = Field(description="the newest reading per factor")


class PowerPoint(ApiModel):
    t: datetime
    p_kw: float | None = Field(
        description="active power; null when the source gives only a running state "
        "(CN 2021 SBx-RS): switch_on then says whether the facility is on"
    )
    switch_on: bool | None
    energy_kwh: float | None


class PowerLatest(PowerPoint):
    received_at: datetime


class MeterHourPoint(ApiModel):
    """One closed hour of a meter, as the rules kept it."""

    t: datetime
    samples: int
    energy_kwh: float | None = Field(
        description="energy from the samples' power (trapezoid between consecutive samples, "
        "gaps over 15 min left out); null when only states were reported"
    )
    on_minutes: float = Field(description="minutes the device was ON (C0's state)")
    off_minutes: float = Field(description="minutes the device was OFF")
    mean_kw: float | None
    max_kw: float | None


class MeterSeriesOut(ApiModel):
    enterprise_id: str
    meter_id: str
    meter_name: str
    role: Literal["production", "control"]
    since: datetime
    until: datetime
    rated_kw: float | None
    on_kw: float | None = Field(description="ON at or above this power (rated × on fraction)")
    off_kw: float | None = Field(description="OFF at or below this power")
    on_fraction: float
    off_fraction: float
    samples: list[PowerPoint] = Field(description="in time order, first arrival of each time")
    latest: PowerLatest | None
    hourly: list[MeterHourPoint] = Field(
        default_factory=list, description="the closed hours the rules kept, in time order"
    )


class OutletLatestOut(ApiModel):
    outlet_id: str
    outlet_name: str
    mn: str
    kind: Literal["gas", "water"]
    factors: dict[str, LatestPoint]


class MeterLatestOut(ApiModel):
    meter_id: str
    meter_name: str
    role: Literal["production", "control"]
    rated_kw: float | None
    sample: PowerLatest | None


class EnterpriseLatestOut(ApiModel):
    enterprise_id: str
    since: datetime = Field(description="values received from here on were looked at")
    outlets: list[OutletLatestOut]
    meters: list[MeterLatestOut]
