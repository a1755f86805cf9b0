"""What the rules computed, kept: each outlet-hour's factor values and each natural day's.

The stream engine makes these as it closes windows and the rule stage writes them with the
batch's findings (``rules.history_store``), so that charts, exports, reports and the
data-quality figures read what the rules saw instead of decoding raw frames again. The
explanation of a range from raw data (``rules.explain``, the batch engine) makes the same
records; the one home of an hour's shown values (its mean, the value at the reference O2) and a
day's (the mean of its valid hours, flow-weighted for wastewater) is here.

Shown, not judged: every factor the outlet sent has its hours, configured or not; a day value
is the mean of the valid hours whether or not a daily limit applies, in measured and in
converted terms. What the daily rule judged is in its finding's evidence.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from rules.emission import DAY_SUMS, add_to_day, at_reference_o2, daily_mean
from rules.hours import HourAgg
from rules.judge import DayCounts, HourValue
from rules.minute_detail import MinuteDetail
from rules.params import OutletParams
from rules.timebase import HOUR, day_start

# The records of each flag an hour counts: HourAgg's one-letter counters n_d ... n_f, in its
# order (D, M, C, B, T, F).
FLAG_COUNTERS = tuple(
    (name[2:].upper(), name) for name in HourAgg._fields if name.startswith("n_") and len(name) == 3
)


@dataclass(frozen=True, slots=True)
class HourRecord:
    """One factor of one outlet-hour as the rules judged it (A1)."""

    enterprise_id: str
    outlet_id: str
    factor: str
    start: int  # epoch seconds
    value: float | None  # the hourly mean (or the device's hour value), valid or not
    valid: bool
    source: str  # "minutes", "realtime" or "device"
    flag: str | None  # N when valid, else the most frequent invalid cause; None: missing data
    converted: float | None  # the valid value at the reference O2, for factors judged so
    valid_minutes: int
    interval_s: int
    n: int  # records
    n_valid: int
    n_marked: int
    n_d: int
    n_m: int
    n_c: int
    n_b: int
    n_t: int
    n_f: int
    device_value: float | None
    device_flag: str | None
    device_marked: bool

    @property
    def valid_value(self) -> float | None:
        return self.value if self.valid and self.value is not None else None

    @property
    def marked(self) -> bool:
        return self.n_marked > 0 or self.device_marked

    @property
    def flags(self) -> dict[str, int]:
        return {flag: getattr(self, name) for flag, name in FLAG_COUNTERS}

    @property
    def invalid_reason(self) -> str | None:
        """Why the hour is not valid: its flag (D, M, C, B, F: 停运), ``marked`` (inside a
        marked period), ``missing`` (too few valid records); None when valid."""
        if self.valid:
            return None
        if self.flag not in (None, "N"):
            return self.flag
        return "marked" if self.marked else "missing"


def converted_value(hv: HourValue, reference_o2: float | None, o2: float | None) -> float | None:
    """An hour's value at the reference O2 (折算): for a valid hour of a factor judged so, with
    the hour's valid O2 below 21 %; None otherwise."""
    if not hv.valid or hv.value is None or reference_o2 is None or o2 is None or o2 >= 21:
        return None
    return at_reference_o2(hv.value, reference_o2, o2)


def hour_records(
    params: OutletParams,
    start: int,
    aggs: Mapping[str, HourAgg],
    values: Mapping[str, HourValue],
) -> list[HourRecord]:
    """Every factor of one closed outlet-hour, from its aggregates and the judge's values."""
    o2 = values.get(params.o2_code)
    o2_value = o2.value if o2 is not None and o2.valid else None
    out = []
    for code in sorted(values):
        hv, agg = values[code], aggs[code]
        fp = params.factors.get(code)
        out.append(
            HourRecord(
                params.enterprise_id,
                params.outlet_id,
                code,
                start,
                hv.value,
                hv.valid,
                hv.source,
                hv.flag,
                converted_value(hv, fp.reference_o2 if fp else None, o2_value),
                hv.valid_minutes,
                hv.interval_s,
                agg.n,
                agg.n_valid,
                agg.n_marked,
                agg.n_d,
                agg.n_m,
                agg.n_c,
                agg.n_b,
                agg.n_t,
                agg.n_f,
                agg.dev_value,
                agg.dev_flag,
                agg.dev_marked,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class DayRecord:
    """One factor of one natural day (China time), from its valid hours."""

    enterprise_id: str
    outlet_id: str
    factor: str
    start: int
    value: float | None  # None with fewer valid hours than required
    converted: float | None
    valid_hours: int
    converted_hours: int
    required_hours: int
    flow_weighted: bool
    # B10's count of the day (configured factors; kept by the stream, not explained): records
    # received, valid and expected, hours due (not stopped), the record interval.
    received: int | None = None
    valid_records: int | None = None
    expected: int | None = None
    due_hours: int | None = None
    interval_s: int | None = None


def with_counts(
    records: list[DayRecord], counts: Mapping[str, DayCounts], params: OutletParams, start: int
) -> list[DayRecord]:
    """A day's records with B10's counts; a configured factor counted without hours of its
    own shown (none valid) gets a record too."""
    by_factor = {r.factor: r for r in records}
    for code in counts:
        if code not in by_factor:
            [by_factor[code]] = OpenDays().close(params, start, [code])
    return [
        replace(r, **counts[r.factor]._asdict()) if r.factor in counts else r
        for r in sorted(by_factor.values(), key=lambda r: r.factor)
    ]


@dataclass(frozen=True, slots=True)
class MeterHourRecord:
    """One meter's hour: its energy and how long its device was on and off (C0's state)."""

    enterprise_id: str
    meter_id: str
    start: int
    samples: int
    energy_kwh: float | None  # None: only states reported (a breaker), no power
    on_s: int  # seconds on, from each sample's state until the next sample
    off_s: int
    mean_kw: float | None
    max_kw: float | None


# A gap between two samples longer than this is not integrated (the meter was silent: its
# energy and state then are unknown, not the last sample's).
METER_GAP_S = 15 * 60


class MeterHours:
    """One meter's open hour, sample by sample in time order (after C0 has judged each):
    energy by the trapezoid rule between consecutive samples, the time until the next sample
    counted to the state the device was in; an interval is counted to the hour it starts in.
    A stream keeps one per meter (a few numbers)."""

    __slots__ = ("energy", "last", "max_kw", "n", "n_power", "off", "on", "start", "sum_kw")

    def __init__(self) -> None:
        self.start = -1
        self.last: tuple[int, float, str | None] | None = None  # time, kW, state
        self.n = self.n_power = 0
        self.energy = self.sum_kw = 0.0
        self.max_kw: float | None = None
        self.on = self.off = 0

    def sample(
        self,
        enterprise_id: str,
        meter_id: str,
        ts: int,
        p_kw: float,
        state: tuple[str | None, int],
    ) -> MeterHourRecord | None:
        """Count a sample with C0's state after it and since when it holds (a change is
        confirmed some samples after it began: the time since then goes to the new state, as
        far back as this open hour); the previous hour's record when this one begins a later
        hour."""
        closed = None
        last = self.last
        now, since = state
        if last is not None and 0 < ts - last[0] <= METER_GAP_S:
            dt = ts - last[0]
            if math.isfinite(last[1]) and math.isfinite(p_kw):
                self.energy += (last[1] + p_kw) / 2 * dt / 3600
            if last[2] == "on":
                self.on += dt
            elif last[2] == "off":
                self.off += dt
            if last[2] in ("on", "off") and now in ("on", "off") and now != last[2]:
                moved = max(0, ts - max(since, self.start))
                moved = min(moved, self.on if last[2] == "on" else self.off)
                if last[2] == "on":
                    self.on -= moved
                    self.off += moved
                else:
                    self.off -= moved
                    self.on += moved
        hour = ts - ts % HOUR
        if hour != self.start:
            if self.start >= 0:
                closed = self.close(enterprise_id, meter_id)
            self.start = hour
        self.n += 1
        if math.isfinite(p_kw):
            self.n_power += 1
            self.sum_kw += p_kw
            self.max_kw = p_kw if self.max_kw is None else max(self.max_kw, p_kw)
        self.last = (ts, p_kw, now)
        return closed

    def close(self, enterprise_id: str, meter_id: str) -> MeterHourRecord:
        record = MeterHourRecord(
            enterprise_id,
            meter_id,
            self.start,
            self.n,
            round(self.energy, 6) if self.n_power else None,
            self.on,
            self.off,
            round(self.sum_kw / self.n_power, 6) if self.n_power else None,
            self.max_kw,
        )
        self.n = self.n_power = 0
        self.energy = self.sum_kw = 0.0
        self.max_kw = None
        self.on = self.off = 0
        self.start = -1
        return record


class Kept(NamedTuple):
    """What the stream engine closed since the rule stage last took it."""

    hours: list[HourRecord]
    days: list[DayRecord]
    detail: list[MinuteDetail]
    meters: list[MeterHourRecord]


# Per factor in a day's sums: a presence mark, the values' sums, the converted values' sums.
_STRIDE = 1 + 2 * DAY_SUMS
_NO_SUMS = array("d", bytes(8 * _STRIDE))


class OpenDays:
    """The sums of an outlet's open days, hour by hour in event-time order: per day and factor
    the valid hours' values and their converted values, each with the hour's valid flow for
    wastewater's weighting (``rules.emission``). A stream keeps one per outlet; an explanation
    one per query.

    A day's sums are one array for all the outlet's factors (per factor, in the order of
    ``factors``: a presence mark, then ``DAY_SUMS`` sums of the values and as many of the
    converted values): 100,000 outlets keep theirs, and one array per factor and kind took
    twice the memory."""

    __slots__ = ("days", "factors")

    def __init__(self) -> None:
        self.factors: tuple[str, ...] = ()  # as they first came
        self.days: dict[int, array[float]] = {}

    def add_hour(self, records: Iterable[HourRecord], flow_code: str) -> None:
        """The records of one outlet-hour (all its factors)."""
        hour = list(records)
        if not hour:
            return
        flow = next((r.valid_value for r in hour if r.factor == flow_code), None)
        offsets = [self._offset(r.factor) for r in hour]
        width = max(offsets) + _STRIDE
        day = self.days.get(start := day_start(hour[0].start))
        if day is None:  # sized at once: an array grown piecemeal reserves half as much again
            day = self.days[start] = array("d", bytes(8 * width))
        elif len(day) < width:  # a factor new this day
            day.frombytes(bytes(8 * (width - len(day))))
        for r, at in zip(hour, offsets, strict=True):
            day[at] = 1.0
            if (value := r.valid_value) is not None:
                add_to_day(day, value, flow, at + 1)
            if r.converted is not None:
                add_to_day(day, r.converted, flow, at + 1 + DAY_SUMS)

    def _offset(self, factor: str) -> int:
        try:
            return self.factors.index(factor) * _STRIDE
        except ValueError:
            self.factors += (factor,)
            return (len(self.factors) - 1) * _STRIDE

    def open_days(self) -> list[int]:
        return sorted(self.days)

    def close(
        self, params: OutletParams, start: int, factors: Iterable[str] | None = None
    ) -> list[DayRecord]:
        """The day starting at ``start``, per factor it has (and per one of ``factors``
        without hours: no value), its sums let go."""
        day = self.days.pop(start, None) or array("d")
        present = {
            code: at
            for code, at in zip(self.factors, range(0, len(day), _STRIDE), strict=False)
            if day[at]
        }
        required = params.valid_hours_per_day
        water = params.kind == "water"
        out = []
        for code in sorted(set(present) | set(factors or ())):
            at = present.get(code)
            sums = _NO_SUMS if at is None else day[at : at + _STRIDE]
            measured, converted = sums[1 : 1 + DAY_SUMS], sums[1 + DAY_SUMS :]
            value, weighted = daily_mean(measured, flow_weighted=water, min_flow_hours=required)
            in_converted, _ = daily_mean(converted, flow_weighted=water, min_flow_hours=required)
            out.append(
                DayRecord(
                    params.enterprise_id,
                    params.outlet_id,
                    code,
                    start,
                    value if measured[0] >= required else None,
                    in_converted if converted[0] >= required else None,
                    int(measured[0]),
                    int(converted[0]),
                    required,
                    weighted,
                )
            )
        return out


__all__ = [
    "FLAG_COUNTERS",
    "DayRecord",
    "HourRecord",
    "Kept",
    "MeterHourRecord",
    "MeterHours",
    "OpenDays",
    "converted_value",
    "hour_records",
    "with_counts",
]
