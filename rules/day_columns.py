"""The days of outlets whose hours are all judged in columns, for the batch engine: what
``OutletJudge.hour`` adds to each natural day as it judges the day's hours, summed in
columns (``DayTaken``), and the day then judged by ``OutletJudge.day`` itself (B10, A4 or
A5-1, A5-2, B-sub's amounts, A8's months: their formulas keep one home).

The sums are those ``rules.emission.add_to_day`` and the judge's amounts make, hour by hour
in hour order: a running sum's last value (``cum_sum``), which adds in order as the judge
does (polars' ``sum`` adds in another order, and rounds otherwise). An hour is counted where
the judge counts it (``rules.exceedance_columns.converted_hours``). A day is judged as
``rules.windowing.close`` judges it: once an hour of the outlet after it was judged, or the
watermark closed it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import polars as pl

from rules.emission import amount_kg
from rules.exceedance_columns import converted_hours
from rules.findings import Finding
from rules.judge import DayTaken, OutletJudge
from rules.markings import MarkingBook
from rules.params import OutletParams
from rules.timebase import CHINA_OFFSET, DAY, HOUR
from rules.windowing import closed

_DAY = (pl.col("hour") - (pl.col("hour") + CHINA_OFFSET) % DAY).alias("day")  # day_start


def _in_order(x: pl.Expr) -> pl.Expr:
    """The sum of a group's values added in row order from 0.0 (``+ 0.0``: a first -0.0)."""
    return x.cum_sum().last() + 0.0


def day_findings(
    hours: pl.DataFrame,
    outlets: pl.DataFrame,
    params: Mapping[tuple[str, str], OutletParams],
    book: MarkingBook,
    limits: Mapping[int, int],
    grace_s: int,
) -> list[Finding]:
    """The days of the outlets in ``limits`` (``okey`` → the watermark their windows close
    at), from ``hours`` and ``outlets`` (``rules.judge_columns.ClosedHours``)."""
    wanted = pl.col("okey").is_in(list(limits))
    # lazily: each plan below then copies only the columns it reads of the wide hours
    closed_hours, outlets = hours.lazy().filter(wanted), outlets.filter(wanted)
    judged, flow, amount = pl.col("judged"), pl.col("flow"), pl.col("amount")
    weighted = flow.is_not_null() & (flow >= 0)
    none = pl.lit(0.0)
    sums = (
        converted_hours(closed_hours)
        .with_columns(
            _DAY,
            pl.when(flow.is_not_null() & pl.col("flow_per_hour").is_not_null())
            .then(amount_kg(pl.col("value"), flow, pl.col("flow_per_hour")))
            .alias("amount"),
        )
        .group_by("okey", "factor", "day")
        .agg(  # as ``add_to_day`` and the judge's amounts: [n, Σ, Σ×flow, Σ flow, ...]
            pl.len().cast(pl.Float64).alias("n"),
            _in_order(judged).alias("total"),
            _in_order(pl.when(weighted).then(judged * flow).otherwise(none)).alias("weighted"),
            _in_order(pl.when(weighted).then(flow).otherwise(none)).alias("weights"),
            weighted.sum().cast(pl.Float64).alias("n_flow"),
            _in_order(pl.when(weighted).then(none).otherwise(judged)).alias("unweighted"),
            _in_order(amount.fill_null(0.0)).alias("kg"),
            amount.is_not_null().sum().cast(pl.Float64).alias("kg_hours"),
            pl.max_horizontal(none, amount.max()).alias("kg_max"),
            pl.col("hour").filter(amount.is_not_null()).max().alias("last_amount"),
            pl.col("ultra_low").is_not_null().sum().alias("ul_hours"),
            (judged <= pl.col("ultra_low")).sum().alias("ul_within"),
        )
    )
    index = pl.col("hour") - pl.col("day")
    counts = (
        closed_hours.filter(pl.col("n") > 0)
        .with_columns(_DAY)
        .group_by("okey", "factor", "day")
        .agg(  # B10's, as ``OutletJudge._count_records``
            (pl.col("n") - pl.col("n_f")).sum().alias("received"),
            pl.col("n_valid").sum().alias("valid"),
            pl.max_horizontal(pl.lit(0), HOUR // pl.col("interval_s") - pl.col("n_f"))
            .sum()
            .alias("expected"),
            pl.lit(2, dtype=pl.Int64).pow(index // HOUR).sum().alias("judged"),
            pl.col("interval_s").last(),
        )
    )
    stopped = (
        closed_hours.filter(pl.col("flag") == "F")
        .with_columns(_DAY)
        .group_by("okey", "factor", "day")
        .agg(pl.len().alias("stopped"))
    )
    low = (  # A5-2's, as ``OutletJudge._furnace_hour``: hour by hour, in order
        closed_hours.filter(
            pl.col("furnace") & pl.col("furnace_bound").is_not_null() & (pl.col("low_periods") > 0)
        )
        .with_columns(_DAY)
        .select("okey", "factor", "day", "hour", "low_periods")
    )
    days = outlets.lazy().with_columns(_DAY).group_by("okey", "day").agg()
    sums_f, counts_f, stopped_f, low_f, days_f = pl.collect_all([sums, counts, stopped, low, days])
    taken: dict[tuple[int, int], DayTaken] = defaultdict(lambda: DayTaken({}, {}, {}, {}, {}, {}))
    for row in sums_f.iter_rows():
        okey, code, day, *acc = row[:12]
        t = taken[(okey, day)]
        t.sums[code] = acc
        last_amount, ul_hours, ul_within = row[12:]
        if last_amount is not None:
            t.last_amount[code] = last_amount
        if ul_hours:
            t.ultra_low[code] = (ul_hours, ul_within)
    for okey, code, day, *record_counts in counts_f.iter_rows():
        taken[(okey, day)].counts[code] = record_counts
    for okey, code, day, n in stopped_f.iter_rows():
        taken[(okey, day)].stopped[code] = n
    for okey, code, day, hour, k in low_f.iter_rows():
        taken[(okey, day)].low.setdefault(code, []).append((hour, k))
    last_hour = dict(outlets.group_by("okey").agg(pl.col("hour").max()).iter_rows())
    by_outlet: dict[int, list[int]] = defaultdict(list)
    for okey, day in days_f.sort("okey", "day").iter_rows():
        # judged once a later hour of the outlet was, or the watermark closed it
        if last_hour[okey] >= day + DAY or closed(day + DAY, limits[okey], grace_s):
            by_outlet[okey].append(day)
    keys = list(params)
    out: list[Finding] = []
    for okey, outlet_days in sorted(by_outlet.items()):
        judge = OutletJudge(params[keys[okey]], book)
        for day in outlet_days:
            judge.take_day(day, taken[(okey, day)])
            out += judge.day(day)
    return out
