"""An outlet's hours and days as the rules judge them, from raw readings, to show them (the
dashboard's series where no stored values cover a range, and the minute detail's hours): the
batch engine's layer 1 (acceptance of late, future-stamped and duplicate readings; hour
aggregates with their flags and marked periods), the judge's own hour value (A1), and the
records the stream engine keeps of the same hours and days (``rules.history``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ingest.readings import Measurement
from rules.batch import BatchEngine, hour_agg, readings_frames
from rules.history import FLAG_COUNTERS, DayRecord, HourRecord, OpenDays, hour_records
from rules.hours import HourAgg
from rules.judge import HourValue, OutletJudge
from rules.params import OutletParams


def explain_hours(
    engine: BatchEngine, params: OutletParams, readings: Sequence[Measurement]
) -> dict[str, list[HourRecord]]:
    """Per factor, the hours of the outlet of ``params`` in hour order, from its readings in
    arrival order, accepted and aggregated by ``engine`` (which judges that outlet)."""
    if not readings:
        return {}
    frame, _ = readings_frames(readings)
    kept, _ = engine.accepted(frame)
    judge = OutletJudge(params, engine.book)
    key = (params.enterprise_id, params.outlet_id)
    by_hour: dict[int, tuple[dict[str, HourAgg], dict[str, HourValue]]] = {}
    for row in engine.hour_aggregates(kept).iter_rows(named=True):
        if (row["enterprise_id"], row["outlet_id"]) != key:
            continue
        agg = hour_agg(row)
        aggs, values = by_hour.setdefault(row["hour"], ({}, {}))
        aggs[row["factor"]], values[row["factor"]] = agg, judge.hour_value(agg)
    out: dict[str, list[HourRecord]] = {}
    for start in sorted(by_hour):
        for record in hour_records(params, start, *by_hour[start]):
            out.setdefault(record.factor, []).append(record)
    return out


def explain_days(
    params: OutletParams, hours: dict[str, list[HourRecord]], days: Iterable[int]
) -> dict[str, list[DayRecord]]:
    """Per factor of ``hours``, every natural day of ``days`` (day starts): the mean of its
    valid hours and of their converted values, as the daily rule takes them (flow-weighted
    for wastewater by the hours' valid flow)."""
    by_start: dict[int, list[HourRecord]] = {}
    for items in hours.values():
        for h in items:
            by_start.setdefault(h.start, []).append(h)
    sums = OpenDays()
    for start in sorted(by_start):
        sums.add_hour(by_start[start], params.flow_code)
    out: dict[str, list[DayRecord]] = {code: [] for code in hours}
    for day in days:
        for record in sums.close(params, day, hours):
            out[record.factor].append(record)
    return out


__all__ = ["FLAG_COUNTERS", "explain_days", "explain_hours"]
