"""An outlet's hours and days as the rules judge them, to show them (the dashboard's series):
the batch engine's layer 1 (acceptance of late, future-stamped and duplicate readings; hour
aggregates with their flags and marked periods), the judge's own hour value (A1), the value
at the reference O2 and the daily means by the rules' formulas (``rules.emission``).

Shown, not judged: the day values are those of every factor with valid hours, whether or not
a daily limit applies, in measured and in converted terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingest.readings import Measurement
from rules.batch import BatchEngine, hour_agg, readings_frames
from rules.emission import DAY_SUMS, add_to_day, at_reference_o2, daily_mean
from rules.hours import HourAgg
from rules.judge import HourValue, OutletJudge
from rules.params import OutletParams
from rules.timebase import day_start

# The records of each flag an hour counts: HourAgg's one-letter counters n_d ... n_f, in its
# order (D, M, C, B, T, F).
FLAG_COUNTERS = tuple(
    (name[2:].upper(), name) for name in HourAgg._fields if name.startswith("n_") and len(name) == 3
)


@dataclass(frozen=True, slots=True)
class FactorHour:
    """One factor of one outlet-hour."""

    start: int  # epoch seconds
    agg: HourAgg
    value: HourValue  # as the judge values it
    converted: float | None  # the valid value at the reference O2, for factors judged so

    @property
    def valid_value(self) -> float | None:
        hv = self.value
        return hv.value if hv.valid and hv.value is not None else None

    @property
    def marked(self) -> bool:
        return self.agg.n_marked > 0 or self.agg.dev_marked

    @property
    def flags(self) -> dict[str, int]:
        return {flag: getattr(self.agg, name) for flag, name in FLAG_COUNTERS}


@dataclass(frozen=True, slots=True)
class DayValue:
    """One factor of one natural day (China time), from its valid hours."""

    start: int
    value: float | None  # None with fewer valid hours than required
    converted: float | None
    valid_hours: int
    converted_hours: int
    required_hours: int
    flow_weighted: bool


def explain_hours(
    engine: BatchEngine, params: OutletParams, readings: Sequence[Measurement]
) -> dict[str, list[FactorHour]]:
    """Per factor, the hours of the outlet of ``params`` in hour order, from its readings in
    arrival order, accepted and aggregated by ``engine`` (which judges that outlet)."""
    if not readings:
        return {}
    frame, _ = readings_frames(readings)
    kept, _ = engine.accepted(frame)
    judge = OutletJudge(params, engine.book)
    key = (params.enterprise_id, params.outlet_id)
    by_hour: dict[int, dict[str, tuple[HourAgg, HourValue]]] = {}
    for row in engine.hour_aggregates(kept).iter_rows(named=True):
        if (row["enterprise_id"], row["outlet_id"]) != key:
            continue
        agg = hour_agg(row)
        by_hour.setdefault(row["hour"], {})[row["factor"]] = (agg, judge.hour_value(agg))
    out: dict[str, list[FactorHour]] = {}
    for start in sorted(by_hour):
        factors = by_hour[start]
        o2 = factors.get(params.o2_code)
        o2_value = o2[1].value if o2 is not None and o2[1].valid else None
        for code in sorted(factors):
            agg, hv = factors[code]
            fp = params.factors.get(code)
            converted = None
            if (
                hv.valid
                and hv.value is not None
                and fp is not None
                and fp.reference_o2 is not None
                and o2_value is not None
                and o2_value < 21
            ):
                converted = at_reference_o2(hv.value, fp.reference_o2, o2_value)
            out.setdefault(code, []).append(FactorHour(start, agg, hv, converted))
    return out


def explain_days(
    params: OutletParams, hours: dict[str, list[FactorHour]], days: range
) -> dict[str, list[DayValue]]:
    """Per factor of ``hours``, every natural day of ``days`` (day starts): the mean of its
    valid hours and of their converted values, as the daily rule takes them (flow-weighted
    for wastewater by the hours' valid flow)."""
    flows = {h.start: h.valid_value for h in hours.get(params.flow_code, [])}
    required = params.valid_hours_per_day
    water = params.kind == "water"
    out: dict[str, list[DayValue]] = {}
    for code, items in hours.items():
        sums = {day: ([0.0] * DAY_SUMS, [0.0] * DAY_SUMS) for day in days}
        for h in items:
            day_sums = sums.get(day_start(h.start))
            if day_sums is None:
                continue
            value = h.valid_value
            if value is not None:
                add_to_day(day_sums[0], value, flows.get(h.start))
            if h.converted is not None:
                add_to_day(day_sums[1], h.converted, flows.get(h.start))
        points = []
        for day, (measured, converted) in sums.items():
            value, weighted = daily_mean(measured, flow_weighted=water, min_flow_hours=required)
            in_converted, _ = daily_mean(converted, flow_weighted=water, min_flow_hours=required)
            points.append(
                DayValue(
                    start=day,
                    value=value if measured[0] >= required else None,
                    converted=in_converted if converted[0] >= required else None,
                    valid_hours=int(measured[0]),
                    converted_hours=int(converted[0]),
                    required_hours=required,
                    flow_weighted=weighted,
                )
            )
        out[code] = points
    return out
