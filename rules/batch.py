"""The batch engine: the same rules over a polars frame of readings (replay, backtest, oracle).

Layer 1 (which readings count, and the hour aggregates) is computed here with polars,
independently of the streaming code; layer 2 (the judgement of closed windows) over all
closed hours at once, in columns (``rules.judge_columns``), and the days by the shared
``OutletJudge`` from sums made in columns (``rules.day_columns``). The acceptance rules are
the streaming engine's, from the arrival order (``seq``): future-stamped and late readings
as ``rules.windowing`` defines them, evaluated on columns (the watermark before a reading:
the running maximum of its outlet's earlier ones); among the rest the first arrival of
(factor, time) wins. ``include_late`` judges late readings too (a re-evaluation with all the
data, unlike what the stream saw).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import polars as pl

from ingest.readings import Measurement, PowerSample
from rules import power_batch
from rules.absence import AbsenceWatch
from rules.copies import copy_watches
from rules.findings import Finding
from rules.hours import (
    ASSUMED_MINUTE_INTERVAL_S,
    ASSUMED_REALTIME_INTERVAL_S,
    FIXED,
    INTERVAL_EVIDENCE,
    INTERVAL_WINDOW_S,
    REALTIME_QUIET_S,
    HourAgg,
)
from rules.judge import sub_hour_periods
from rules.judge_columns import by_number, column_findings, valid_flag
from rules.linkage import ProductionLink, production_links
from rules.markings import STOPPED_MARK, Marking, MarkingBook
from rules.params import OutletParams, marking_book
from rules.power_judge import PowerJudge
from rules.power_params import EnterprisePowerParams, sample_kw
from rules.timebase import HOUR
from rules.windowing import END_OF_DATA, NO_WATERMARK, closed, closed_until, future

MEASUREMENT_SCHEMA: dict[str, Any] = {
    "seq": pl.Int64,
    "enterprise_id": pl.String,
    "outlet_id": pl.String,
    "factor": pl.String,
    "interval": pl.String,
    "t": pl.Int64,
    "received": pl.Int64,
    "value": pl.Float64,
    "flag": pl.String,
    "zs": pl.Float64,
    "minimum": pl.Float64,
    "maximum": pl.Float64,
}


# The kinds of record, in the order a series' records sort in (minute before real-time).
INTERVALS = pl.Enum(["minute", "rtd", "hour"])

# Accepted records (``BatchEngine.accepted``, ``run_accepted``): the outlet by its number in
# the parameters (``okey``), the factor as text or as an Enum (its order: the series'), the
# flag as the rules take it (``_flag``: one letter).
ACCEPTED_SCHEMA: dict[str, Any] = {
    "okey": pl.Int32,
    "factor": pl.String,
    "interval": INTERVALS,
    "t": pl.Int64,
    "hour": pl.Int64,
    "value": pl.Float64,
    "flag": pl.String,
    "zs": pl.Float64,
    "minimum": pl.Float64,
    "maximum": pl.Float64,
}


POWER_SCHEMA: dict[str, Any] = {
    "seq": pl.Int64,
    "enterprise_id": pl.String,
    "meter_id": pl.String,
    "ts": pl.Int64,
    "received": pl.Int64,
    "p_kw": pl.Float64,
}


def readings_frames(
    readings: Iterable[Measurement | PowerSample],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Measurements and meter samples in one arrival order, as two frames sharing ``seq``."""
    measurements: list[tuple[Any, ...]] = []
    power: list[tuple[Any, ...]] = []
    for i, r in enumerate(readings):
        if isinstance(r, Measurement):
            measurements.append(_measurement_row(i, r))
        else:
            kw = sample_kw(r.active_power_kw, r.switch_on)
            if kw is None:
                continue  # neither power nor state (the stream counts it as unconfigured)
            ts, received = int(r.ts.timestamp()), int(r.received_at.timestamp())
            power.append((i, r.enterprise_id, r.meter_id, ts, received, kw))
    return (
        pl.DataFrame(measurements, schema=MEASUREMENT_SCHEMA, orient="row"),
        pl.DataFrame(power, schema=POWER_SCHEMA, orient="row"),
    )


def _measurement_row(i: int, m: Measurement) -> tuple[Any, ...]:
    t, received = int(m.data_time.timestamp()), int(m.received_at.timestamp())
    return (
        i,
        m.enterprise_id,
        m.outlet_id,
        m.factor,
        m.interval,
        t,
        received,
        m.value,
        m.flag,
        m.zs,
        m.minimum,
        m.maximum,
    )


def measurements_frame(measurements: Iterable[Measurement]) -> pl.DataFrame:
    """Readings in arrival order as a frame (``seq`` is the arrival position)."""
    rows = [_measurement_row(i, m) for i, m in enumerate(measurements)]
    return pl.DataFrame(rows, schema=MEASUREMENT_SCHEMA, orient="row")


Ticks = tuple[int, int, int]  # (first tick, seconds between ticks, number of ticks)


class BatchStats(NamedTuple):
    readings: int
    late: int
    duplicates: int
    future: int
    unconfigured: int


def _flag() -> pl.Expr:
    """The data flag as the rules take it (``rules.hours.flag_of``): its first letter, N when
    there is none or it is empty."""
    flag = pl.col("flag")
    return (
        pl.when(flag.is_null() | (flag == "")).then(pl.lit("N")).otherwise(flag.str.slice(0, 1))
    ).alias("flag")


def _fixed(col: str) -> pl.Expr:
    return (pl.col(col) * FIXED + 0.5).floor().cast(pl.Int64)


class BatchEngine:
    def __init__(
        self,
        params: dict[tuple[str, str], OutletParams],
        *,
        power: dict[str, EnterprisePowerParams] | None = None,
        markings: MarkingBook | Sequence[Marking] | None = None,
        grace_s: int = 3600,
        max_future_s: int = 300,
    ) -> None:
        self.params = params
        self.power = power or {}
        self.book = marking_book(markings, params)
        self.markings = self.book.excused()  # as far as they excuse data (yearly caps applied)
        self.grace = grace_s
        self.max_future = max_future_s
        self._links: dict[str, ProductionLink] = {}
        self.stats: BatchStats | None = None  # measurements and, after ``run``, meter samples too
        self.power_stats: BatchStats | None = None

    @property
    def okeys(self) -> dict[tuple[str, str], int]:
        """Each outlet's number (``okey``): its position in the parameters."""
        return {key: k for k, key in enumerate(self.params)}

    # -- layer 1: acceptance and hour aggregates --------------------------------------

    def accepted(
        self, frame: pl.DataFrame, *, include_late: bool = False
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Accepted minute/hour readings (with hour and marked columns), and each outlet's
        final watermark."""
        # An integer key per outlet: windows over it are much cheaper than over two strings.
        keys = pl.DataFrame(
            [(e, o, k) for k, (e, o) in enumerate(self.params)],
            schema={"enterprise_id": pl.String, "outlet_id": pl.String, "okey": pl.Int32},
            orient="row",
        )
        total = frame.height
        # The outlet's names leave here (they come back on the hour aggregates): every
        # step after copies fewer columns.
        df = _with_outlet_keys(frame, keys)
        if not df.get_column("seq").is_sorted():
            df = df.sort("seq", maintain_order=True)
        unconfigured = total - df.height
        in_time = df.filter(~future(pl.col("t"), pl.col("received"), self.max_future))
        future_stamped = df.height - in_time.height
        # Rows are in arrival order, so a running maximum per outlet is its watermark.
        minute_t = pl.when(pl.col("interval") == "minute").then(pl.col("t")).otherwise(-(2**62))
        df = in_time.with_columns(
            pl.col("t").cum_max().shift(1, fill_value=NO_WATERMARK).over("okey").alias("wm_before"),
            (pl.col("t") - pl.col("t") % HOUR).alias("hour"),
            # the latest minute-data time among the outlet's earlier readings (and this one)
            minute_t.cum_max().over("okey").alias("minute_before"),
        )
        watermarks = self._watermarks(df)
        realtime_used = (pl.col("interval") == "rtd") & (
            pl.col("minute_before") < pl.col("t") - REALTIME_QUIET_S
        )
        windowed = df.filter(pl.col("interval").is_in(["minute", "hour"]) | realtime_used)
        late_mask = closed(pl.col("hour") + HOUR, pl.col("wm_before"), self.grace)
        late = windowed.filter(late_mask).height
        if not include_late:
            windowed = windowed.filter(~late_mask)
        # The first arrival of each record, and of each device hour value (rows in arrival
        # order). The two are not merged back into arrival order: nothing after needs it.
        records = windowed.filter(pl.col("interval") != "hour").filter(
            pl.struct("okey", "interval", "factor", "t").is_first_distinct()
        )
        device = windowed.filter(pl.col("interval") == "hour").filter(
            pl.struct("okey", "factor", "hour").is_first_distinct()
        )
        kept = pl.concat([records, device])
        duplicates = windowed.height - kept.height
        self.stats = BatchStats(total, late, duplicates, future_stamped, unconfigured)
        kept = (
            kept.select(list(ACCEPTED_SCHEMA)).cast({"interval": INTERVALS}).with_columns(_flag())
        )
        return self._with_marks(kept), watermarks

    def _with_marks(self, kept: pl.DataFrame) -> pl.DataFrame:
        """Accepted records with whether a declared marking covers them (``marked``) and
        whether a 停产 marking does (``stop_marked``)."""
        okeys = self.okeys
        stops = [m for m in self.markings if m.type == STOPPED_MARK]
        return kept.with_columns(
            self._marked(self.markings, okeys).alias("marked"),
            self._marked(stops, okeys).alias("stop_marked"),
        )

    def _names(self) -> pl.DataFrame:
        """Each outlet's number (``okey``) and names."""
        return (
            pl.DataFrame(
                list(self.params),
                schema={"enterprise_id": pl.String, "outlet_id": pl.String},
                orient="row",
            )
            .with_row_index("okey")
            .with_columns(pl.col("okey").cast(pl.Int32))
        )

    def _watermarks(self, kept: pl.DataFrame) -> pl.DataFrame:
        """Each outlet's latest record time, by name."""
        return (
            kept.group_by("okey")
            .agg(pl.col("t").max().alias("watermark"))
            .join(self._names(), on="okey")
            .select("enterprise_id", "outlet_id", "watermark")
        )

    @staticmethod
    def _marked(markings: Sequence[Marking], okeys: dict[tuple[str, str], int]) -> pl.Expr:
        expr = pl.lit(value=False)
        for m in markings:
            okey = okeys.get((m.enterprise_id, m.outlet_id))
            if okey is None:
                continue  # an outlet not judged: none of its readings is here
            hit = (pl.col("okey") == okey) & (pl.col("t") >= m.start) & (pl.col("t") < m.end)
            if m.factor is not None:
                hit = hit & (pl.col("factor") == m.factor)
            expr = expr | hit
        return expr

    def _outlet_table(self) -> pl.DataFrame:
        """Per outlet (``okey``: its position in the parameters, as ``accepted`` numbers
        them) what the run and interval columns need."""
        return pl.DataFrame(
            [
                (k, p.interval_override_s, p.flow_code, *p.plateau)
                for k, p in enumerate(self.params.values())
            ],
            schema={
                "okey": pl.Int32,
                "override_s": pl.Int64,
                "flow_code": pl.String,
                "plateau_min_s": pl.Int64,
                "plateau_max_s": pl.Int64,
                "plateau_round": pl.Int64,
                "plateau_step_pct": pl.Int64,
            },
            orient="row",
        )

    def hour_aggregates(self, kept: pl.DataFrame) -> pl.DataFrame:
        """The aggregates of each outlet-hour's factors (``rules.hours.HourAgg``'s fields) of
        accepted records, sorted by outlet (named), hour and factor."""
        outlet = ["enterprise_id", "outlet_id"]
        group = ["okey", "hour", "factor"]
        return (
            self._hour_aggregates(kept)
            .sort(group)
            .join(self._names(), on="okey", maintain_order="left")
            .select(*outlet, "hour", "factor", pl.exclude(*outlet, *group))
        )

    def _hour_aggregates(self, kept: pl.DataFrame) -> pl.DataFrame:
        """``hour_aggregates`` by outlet number (``okey``), in no order."""
        outlets = self._outlet_table()
        group = ["okey", "hour", "factor"]
        realtime = pl.col("interval") == "rtd"
        # One integer per series (outlet, factor, minute or real-time; ``// 2``: outlet and
        # factor): the records are sorted, grouped and joined on it and carry no strings,
        # which cost several times as much; the names come back on the hours at the end.
        records = _records_only(kept)
        enum = isinstance(records.schema["factor"], pl.Enum)
        factor_key = pl.col("factor") if enum else pl.col("factor").cast(pl.Categorical)
        factor_key = factor_key.to_physical().cast(pl.Int64)
        factors = records.select(factor_key.max()).item() or 0
        series = (pl.col("okey").cast(pl.Int64) * (factors + 1) + factor_key) * 2 + realtime.cast(
            pl.Int64
        )
        records = records.with_columns(
            realtime.alias("realtime"), series.alias("series")
        ).with_columns((pl.col("series") // 2).alias("fseries"))
        names = (
            records.select("fseries", "okey", "factor")
            .unique("fseries")
            .with_columns(pl.col("factor").cast(pl.String))
        )
        # the outlets' flow series (a lookup of one integer per record, not a string's)
        flow_code = by_number(outlets.get_column("flow_code"))
        flows = names.filter(pl.col("factor") == flow_code).get_column("fseries")
        if records.get_column("realtime").any():
            # a factor's real-time records make its hour only when it has no minute records
            records = records.filter(
                ~pl.col("realtime") | pl.col("realtime").all().over("fseries", "hour")
            )
        records = records.select(
            "series",
            "fseries",
            "okey",
            "hour",
            "t",
            "flag",
            "realtime",
            "value",
            "zs",
            "minimum",
            "maximum",
            "marked",
            "stop_marked",
            pl.col("fseries").is_in(flows.implode()).alias("is_flow"),
            (
                ~pl.col("marked") & pl.col("value").is_not_null() & valid_flag(self.params, "flag")
            ).alias("valid"),
        ).with_columns(pl.when(pl.col("valid")).then(_fixed("value")).alias("fixed"))
        records = self._runs(self._intervals(records))
        valid = pl.col("valid")
        valid_zs = valid & pl.col("zs").is_not_null()
        # What the hours sum, count and bound, made per record first: inside ``agg`` a
        # condition per group costs polars several times as much (measured 5× for zs_sum).
        counted = records.select(
            "hour_row",
            "fseries",
            "hour",
            "valid",
            "fixed",
            valid_zs.alias("zs_n"),
            pl.when(valid_zs).then(_fixed("zs")).alias("zs_sum"),
            "zero_len",
            "const_len",
            "interval_s",
            "derived",
            "realtime",
            pl.min_horizontal("fixed", pl.when(valid).then(_fixed("minimum"))).alias("ext_low"),
            pl.max_horizontal("fixed", pl.when(valid).then(_fixed("maximum"))).alias("ext_high"),
        )
        # One group per series-hour (``hour_row``, numbered by ``_intervals``): after the
        # filter above, an outlet's factor has one series in an hour. The groups kept in
        # their order (measured, polars then spends half the time), which is the hours'
        # numbers: row k of ``agg`` is hour_row k.
        agg = counted.group_by("hour_row", maintain_order=True).agg(
            pl.first("fseries", "hour"),
            pl.len().cast(pl.Int64).alias("n"),
            valid.sum().cast(pl.Int64).alias("n_valid"),
            pl.col("fixed").sum().cast(pl.Int64).alias("sum_valid"),
            pl.col("zs_n").sum().cast(pl.Int64),
            pl.col("zs_sum").sum().cast(pl.Int64),
            pl.col("fixed").min().alias("min_valid"),
            pl.col("fixed").max().alias("max_valid"),
            pl.col("zero_len").max().cast(pl.Int64).alias("zero_run"),
            pl.col("const_len").max().cast(pl.Int64).alias("const_run"),
            pl.col("interval_s").first(),
            pl.col("derived").first().fill_null(0).alias("seen_interval_s"),
            pl.col("realtime").first(),
            pl.col("ext_low").min(),
            pl.col("ext_high").max(),
        )
        agg = agg.with_columns(self._rare_counts(records, agg.height))
        low = self._low_periods(records, names)
        if low.height:
            agg = agg.join(low, on=["fseries", "hour"], how="left")
        else:  # (most fleets: a join copies every column of the hours)
            agg = agg.with_columns(pl.lit(None, dtype=pl.Int64).alias(c) for c in low.columns[2:])
        # The outlet and factor of each hour by its series: a lookup of one column (a join
        # copies every column of the hours).
        okey, factor = (names.get_column(c) for c in ("okey", "factor"))
        fseries = names.get_column("fseries")
        agg = agg.with_columns(
            pl.col("fseries").replace_strict(fseries, okey, return_dtype=okey.dtype).alias("okey"),
            pl.col("fseries")
            .replace_strict(fseries, factor, return_dtype=pl.String)
            .alias("factor"),
        )
        # (cast: with no series, polars leaves the lookups the series' own integers)
        agg = agg.cast({"okey": okey.dtype, "factor": pl.String}).select(
            *group, pl.exclude(*group, "fseries", "hour_row")
        )
        device = (
            kept.filter(pl.col("interval") == "hour")
            .with_columns(pl.col("factor").cast(pl.String))
            .select(
                *group,
                pl.col("value").alias("dev_value"),
                pl.col("flag").alias("dev_flag"),
                pl.col("zs").alias("dev_zs"),
                pl.col("marked").alias("dev_marked"),
                pl.col("minimum").alias("dev_min"),
                pl.col("maximum").alias("dev_max"),
            )
        )
        if device.is_empty():  # (loggers without device hour values: a join copies every column)
            return agg.with_columns(
                pl.lit(None, dtype=dtype).alias(name)
                for name, dtype in device.schema.items()
                if name not in group
            )
        return agg.join(device, on=group, how="full", coalesce=True)

    @staticmethod
    def _rare_counts(records: pl.DataFrame, hours: int) -> list[pl.Series]:
        """Per series-hour (``hour_row``, ``hours`` of them), the counts of what few records
        have: invalid flags, marked periods, plateaus (and the highest plateau's value).
        Counted over those records alone and set on their hours by number: most hours
        have none, and a sum per hour over every record cost as much as the hours' sums."""
        flags = {f"n_{f.lower()}": pl.col("flag") == f for f in "DMCBT"}
        stopped = (pl.col("flag") == "F") | pl.col("stop_marked")
        rare = records.filter(
            pl.col("flag").is_in(list("DMCBTF"))
            | pl.col("marked")
            | pl.col("stop_marked")
            | pl.col("plateau")
        )
        counted = rare.group_by("hour_row").agg(
            pl.col("marked").sum().cast(pl.Int64).alias("n_marked"),
            *[flag.sum().cast(pl.Int64).alias(name) for name, flag in flags.items()],
            stopped.sum().cast(pl.Int64).alias("n_f"),
            pl.col("plateau").sum().cast(pl.Int64).alias("plateaus"),
            pl.col("plateau_value").max(),
        )
        at = counted.get_column("hour_row")
        return [
            pl.repeat(None if name == "plateau_value" else 0, hours, dtype=pl.Int64, eager=True)
            .scatter(at, counted.get_column(name))
            .alias(name)
            for name in counted.columns[1:]
        ]

    def _intervals(self, records: pl.DataFrame) -> pl.DataFrame:
        """Each record's spacing from the previous record of its series, and the interval
        its hour is judged with: the same definition as ``rules.hours``. Rows come out
        sorted by series and time, numbered (``row``), each series' first marked
        (``key_start``): what ``_runs`` reads its runs from."""
        records = _by_series_and_time(records)
        records = records.with_columns(
            pl.col("series").ne_missing(pl.col("series").shift(1)).alias("key_start"),
            pl.int_range(pl.len()).alias("row"),
        ).with_columns(
            (pl.col("t") - _previous("t")).alias("gap"),
            # the record's hour of its series, numbered in this order: its hours are
            # gathered by that number rather than joined on (series, hour)
            (pl.col("key_start") | (pl.col("hour") != pl.col("hour").shift(1)))
            .cum_sum()
            .sub(1)
            .alias("hour_row"),
        )
        # The spacing each series-hour shows (``seen_interval``), taken without grouping the
        # records where every record after the hour's first has the spacing of the one
        # after the first (a regular hour: nearly all). Then that spacing is the most
        # frequent: the first record's (from the hour before, or none at a series' start),
        # if another, is seen once, less than INTERVAL_EVIDENCE. The irregular hours'
        # records alone are grouped. (Each step on the columns it reads: an eager filter
        # copies every column.)
        assert INTERVAL_EVIDENCE >= 2, "a spacing seen once would be evidence: group every hour"
        first = pl.col("hour_row") != pl.col("hour_row").shift(1, fill_value=-1)
        second = first.shift(1, fill_value=True)
        irregular = ~first & ~second & pl.col("gap").ne_missing(pl.col("gap").shift(1))
        marks = records.select(first.alias("first"), irregular.cum_sum().alias("irregular"))
        at_end = pl.col("row").shift(-1, fill_value=records.height) - 1
        gap, irregulars = records.get_column("gap"), marks.get_column("irregular")
        hours = (
            records.select("hour_row", "series", "okey", "realtime", "hour", "row", "gap")
            .filter(marks.get_column("first"))
            .with_columns(at_end.alias("end"))
            .with_columns(
                (pl.lit(irregulars).gather("end") - pl.lit(irregulars).gather("row")).alias(
                    "irregular"
                ),
                pl.lit(gap).gather("end").alias("last_gap"),
            )
        )
        agree = (
            pl.col("end")
            - pl.col("row")
            + (pl.col("gap") == pl.col("last_gap")).fill_null(value=False)
        )
        hours = hours.with_columns(
            pl.when(
                (pl.col("irregular") == 0) & (pl.col("last_gap") > 0) & (agree >= INTERVAL_EVIDENCE)
            )
            .then(pl.col("last_gap"))
            .alias("seen")
        )
        if hours.get_column("irregular").gt(0).any():
            uneven = hours.filter(pl.col("irregular") > 0).get_column("hour_row")
            spacings = (
                records.select("hour_row", "gap")
                .filter(pl.col("hour_row").is_in(uneven.implode()) & (pl.col("gap") > 0))
                .group_by("hour_row", "gap")
                .agg(pl.len().alias("k"))
                .filter(pl.col("k") >= INTERVAL_EVIDENCE)
                .sort(["hour_row", "k", "gap"], descending=[False, True, False])
                .unique("hour_row", keep="first")
                .select("hour_row", pl.col("gap").alias("uneven_seen"))
            )
            hours = hours.join(spacings, on="hour_row", how="left", maintain_order="left")
            hours = hours.with_columns(pl.coalesce("seen", "uneven_seen"))
        hours = (
            hours.select("hour_row", "series", "okey", "realtime", "hour", "seen")
            .with_columns(
                pl.col("seen")
                .rolling_min_by("hour", window_size=f"{INTERVAL_WINDOW_S}i", closed="right")
                .over("series")
                .alias("derived")
            )
            .join(
                self._outlet_table().select("okey", "override_s"),
                on="okey",
                how="left",
                maintain_order="left",
            )
            .with_columns(
                pl.when(pl.col("realtime"))
                .then(pl.col("derived").fill_null(ASSUMED_REALTIME_INTERVAL_S))
                .otherwise(pl.coalesce("override_s", "derived", pl.lit(ASSUMED_MINUTE_INTERVAL_S)))
                .alias("interval_s")
            )
        )
        row = records.get_column("hour_row")
        return records.with_columns(
            hours.get_column("derived").gather(row), hours.get_column("interval_s").gather(row)
        )

    def _low_periods(self, minute: pl.DataFrame, names: pl.DataFrame) -> pl.DataFrame:
        """A5-2: per outlet-hour and factor (``fseries``, named in ``names``), the sub-hour
        periods whose mean of the valid values lies below the bound, and the lowest period
        mean (fixed-point, floored)."""
        specs = pl.DataFrame(
            [
                (okey, code, period_s, bound)
                for okey, p in enumerate(self.params.values())
                for code, (period_s, bound) in sub_hour_periods(p).items()
            ],
            schema={"okey": pl.Int32, "factor": pl.String, "period_s": pl.Int64, "bound": pl.Int64},
            orient="row",
        ).join(names.select("fseries", "okey", "factor"), on=["okey", "factor"])
        if specs.is_empty():  # no furnace among the outlets (most fleets)
            schema = {"fseries": pl.Int64, "hour": pl.Int64}
            counts = {"low_periods": pl.Int64, "lowest_period": pl.Int64}
            return pl.DataFrame(schema={**schema, **counts})
        periods = (
            minute.select("fseries", "hour", "t", "fixed", "valid")
            .filter(pl.col("valid") & pl.col("fseries").is_in(specs.get_column("fseries")))
            .join(specs.select("fseries", "period_s", "bound"), on="fseries")
            .group_by(["fseries", "hour", pl.col("t") // pl.col("period_s")])
            .agg(
                pl.col("fixed").sum().alias("total"),
                pl.len().cast(pl.Int64).alias("k"),
                pl.col("bound").first(),
            )
        )
        return periods.group_by(["fseries", "hour"]).agg(
            (pl.col("total") < pl.col("bound") * pl.col("k"))
            .sum()
            .cast(pl.Int64)
            .alias("low_periods"),
            (pl.col("total") // pl.col("k")).min().alias("lowest_period"),
        )

    def _runs(self, records: pl.DataFrame) -> pl.DataFrame:
        """Zero and constant run lengths per record: the same definition as ``RunState``.

        Over rows sorted by series and time (``_intervals``), so a series' records are
        contiguous: the previous record of the series is the row before unless the series
        began there, and a run's length is the distance to the row that began it. Windows
        (``over``) per series and run computed the same, but a group per run cost 0.75 s
        for 1.3 M records."""
        outlets = self._outlet_table()
        # The times the outlet's flow was stopped, as one integer with the outlet (okey
        # below 2³¹, epoch seconds below 2³²): a lookup of one integer, not a join on two.
        at = pl.col("okey").cast(pl.Int64) * 2**32 + pl.col("t")
        stopped = records.filter(
            pl.col("is_flow") & pl.col("valid") & (pl.col("value") <= 0)
        ).select(at.unique())
        df = records.with_columns(
            (at.is_in(stopped.to_series()) if stopped.height else pl.lit(value=False)).alias(
                "stopped"
            )
        )
        eligible = pl.col("valid") & ~pl.col("stopped")
        df = df.with_columns(
            (eligible & (pl.col("fixed") == 0)).alias("is_zero"),
            (eligible & (pl.col("fixed") != 0)).alias("is_const"),
            (pl.col("gap") == pl.col("interval_s")).fill_null(value=False).alias("consecutive"),
        )
        zero_cont = pl.col("is_zero") & pl.col("consecutive") & _previous("is_zero")
        const_cont = (
            pl.col("is_const")
            & pl.col("consecutive")
            & _previous("is_const")
            & (pl.col("fixed") == _previous("fixed"))
        )
        df = df.with_columns(
            (~zero_cont.fill_null(value=False)).alias("zero_start"),
            (~const_cont.fill_null(value=False)).alias("const_start"),
        )
        df = df.with_columns(
            pl.when(pl.col("is_zero"))
            .then(pl.col("row") - _run_start("zero_start") + 1)
            .otherwise(0)
            .alias("zero_len"),
            pl.when(pl.col("is_const"))
            .then(pl.col("row") - _run_start("const_start") + 1)
            .otherwise(0)
            .alias("const_len"),
        )
        return self._plateaus(df, outlets)

    @staticmethod
    def _plateaus(df: pl.DataFrame, outlets: pl.DataFrame) -> pl.DataFrame:
        """B8-7: whether each record ends a calibration-like plateau (``rules.hours.is_plateau``,
        the same definition in columns; rows as ``_runs`` leaves them), and the plateau's
        value where it does. Judged only on the records that end a run of one value of at
        least two records (few): the outlet's plateau settings gathered for those alone."""
        valid = pl.col("is_zero") | pl.col("is_const")
        valid_before = _previous(valid).fill_null(value=False) & pl.col("consecutive")
        starts = (pl.col("const_len") == 1) & valid_before
        df = df.with_columns(  # the value a run stepped from, then spread over the run
            pl.when(starts).then(_previous("fixed")).alias("run_entry")
        ).with_columns(pl.col("run_entry").gather(_run_start("const_start")))
        ended = _previous("const_len")
        value = _previous("fixed")
        entry = _previous("run_entry")
        exit_value = pl.when(valid & pl.col("consecutive")).then(pl.col("fixed"))
        # lazily: polars then computes the previous record's values once, not per use
        ends = (
            df.lazy()
            .select(
                "row",
                "okey",
                "interval_s",
                ended.alias("ended"),
                value.alias("value"),
                entry.alias("entry"),
                exit_value.alias("exit_value"),
                (pl.col("const_len") != ended + 1).alias("ends"),
            )
            .filter((pl.col("ended") >= 2) & pl.col("ends"))
            .collect()
        )
        settings = ("plateau_min_s", "plateau_max_s", "plateau_round", "plateau_step_pct")
        v, step = pl.col("value"), pl.col("plateau_step_pct")
        plateau = (
            (v != 0)
            & (v % pl.col("plateau_round") == 0)
            & (pl.col("ended") * pl.col("interval_s")).is_between(
                pl.col("plateau_min_s"), pl.col("plateau_max_s")
            )
            & (100 * (v - pl.col("entry")).abs() >= step * v.abs())
            & (100 * (v - pl.col("exit_value")).abs() >= step * v.abs())
        ).fill_null(value=False)
        found = (
            ends.with_columns(*(by_number(outlets.get_column(c)) for c in settings))
            .filter(plateau)
            .select("row", "value")
        )
        rows = found.get_column("row")
        return df.with_columns(
            pl.repeat(value=False, n=df.height, eager=True).scatter(rows, True).alias("plateau"),
            pl.repeat(None, n=df.height, dtype=pl.Int64, eager=True)
            .scatter(rows, found.get_column("value"))
            .alias("plateau_value"),
        )

    # -- layer 2: judging the closed windows ---------------------------------------------

    def run(
        self,
        frame: pl.DataFrame,
        *,
        flush: bool = True,
        include_late: bool = False,
        ticks: Ticks | None = None,
        power_frame: pl.DataFrame | None = None,
    ) -> list[Finding]:
        """All findings: measurement windows (closed ones, or all with ``flush``), meter
        samples, then the absence rules at ``ticks`` (none when not given)."""
        if power_frame is None:
            power_frame = pl.DataFrame(schema=POWER_SCHEMA)
        # Outlet hours first, then meter samples: the links pair their hours either way.
        self._links = production_links(self.params, self.power)
        out = self._windows(frame, flush=flush, include_late=include_late)
        out += self.power_findings(power_frame, flush=flush)
        if self.stats is not None and self.power_stats is not None:
            self.stats = BatchStats(
                *(a + b for a, b in zip(self.stats, self.power_stats, strict=True))
            )
        if ticks is not None:
            out += self.absence(frame, ticks, power_frame)
        return out

    def power_findings(self, frame: pl.DataFrame, *, flush: bool = True) -> list[Finding]:
        """C rules: samples accepted as the stream accepts them, judged in (time, meter) order."""
        meters = pl.DataFrame(
            [(e, m) for e, p in self.power.items() for m in p.meters],
            schema={"enterprise_id": pl.String, "meter_id": pl.String},
            orient="row",
        )
        configured = frame.join(meters, on=["enterprise_id", "meter_id"], how="semi").sort("seq")
        in_time = configured.filter(~future(pl.col("ts"), pl.col("received"), self.max_future))
        wm = pl.col("ts").cum_max().shift(1, fill_value=NO_WATERMARK)
        wm = wm.over("enterprise_id", order_by="seq")
        late = closed(pl.col("ts"), pl.col("wm"), self.grace)  # a sample is a window of its own
        on_time = in_time.with_columns(wm.alias("wm")).filter(~late)
        df = on_time.unique(["enterprise_id", "meter_id", "ts"], keep="first", maintain_order=True)
        self.power_stats = BatchStats(
            frame.height,
            in_time.height - on_time.height,
            on_time.height - df.height,
            configured.height - in_time.height,
            frame.height - configured.height,
        )
        final = df.group_by("enterprise_id").agg(pl.col("ts").max().alias("watermark"))
        upto = {
            e: END_OF_DATA if flush else closed_until(wm, self.grace) for e, wm in final.iter_rows()
        }
        if not flush:
            df = df.join(final, on="enterprise_id").filter(
                closed(pl.col("ts"), pl.col("watermark"), self.grace)
            )
        planned = power_batch.plan(df, self.power)
        out: list[Finding] = []
        for enterprise in sorted(planned.samples):
            baselines = planned.baselines.get(enterprise, {})
            capacity = planned.capacity.get(enterprise, {})
            judge = PowerJudge(self.power[enterprise], baselines=baselines, capacity=capacity)
            out += _judge_events(judge, planned.samples[enterprise])
            if flush:
                out += judge.flush()  # C7: the last day of each production device
        for enterprise, link in self._links.items():
            for hour, tallies in planned.tallies.get(enterprise, []):
                out += link.power_hour(hour, tallies)
            if enterprise in upto:
                out += link.power_closed(upto[enterprise])
        return out

    def absence(
        self, frame: pl.DataFrame, ticks: Ticks, power_frame: pl.DataFrame | None = None
    ) -> list[Finding]:
        """B7/B8/C8 at regular ticks: receipts reduced per source and inter-tick interval to
        what the rules need (the first receipt, for a clear, and the latest), then the shared
        ``AbsenceWatch`` replayed over them with the ticks."""
        first, every, count = ticks
        if power_frame is None:
            power_frame = pl.DataFrame(schema=POWER_SCHEMA)
        outlet = ["enterprise_id", "outlet_id"]
        keys = pl.DataFrame(
            list(self.params),
            schema={"enterprise_id": pl.String, "outlet_id": pl.String},
            orient="row",
        )
        # The stream runs tick τ when the first reading received after τ arrives, so a reading
        # comes before every tick at or after the latest receipt time seen so far (in arrival
        # order): that running maximum, not its own receipt time, places it between ticks.
        placed = (
            pl.concat([frame.select("seq", "received"), power_frame.select("seq", "received")])
            .sort("seq")
            .with_columns(pl.col("received").cum_max().alias("seen_until"))
            .select(
                "seq",
                ((pl.col("seen_until") - first + every - 1) // every)
                .clip(lower_bound=0)
                .alias("bucket"),
            )
        )
        df = frame.join(keys, on=outlet, how="semi").join(placed, on="seq")
        receipts = _receipts(df, outlet)
        meter_receipts = _receipts(
            power_frame.join(placed, on="seq"), ["enterprise_id", "meter_id"]
        )
        packets = (
            df.filter(
                (pl.col("interval") == "hour")
                & ~future(pl.col("t"), pl.col("received"), self.max_future)
            )
            .with_columns((pl.col("t") - pl.col("t") % HOUR).alias("hour"))
            .sort("seq")
            .select(*outlet, "bucket", "hour", "factor")
        )
        by_bucket = _by_bucket(receipts)
        meters_by_bucket = _by_bucket(meter_receipts)
        packets_by_bucket: dict[int, list[tuple[str, str, int, str]]] = {}
        for e, o, b, h, factor in packets.iter_rows():
            packets_by_bucket.setdefault(b, []).append((e, o, h, factor))
        watch = AbsenceWatch(self.params, self.power)
        out: list[Finding] = []
        last_bucket = max([count, *by_bucket, *packets_by_bucket, *meters_by_bucket])
        for k in range(last_bucket + 1):
            for e, o, f, latest, progress in by_bucket.get(k, ()):
                out += watch.received((e, o), f)
                out += watch.received((e, o), latest, progress)
            for e, m, f, latest, _none in meters_by_bucket.get(k, ()):
                out += watch.meter_received((e, m), f)
                out += watch.meter_received((e, m), latest)
            for e, o, h, factor in packets_by_bucket.get(k, ()):
                watch.hour_packet((e, o), h, factor)
            if k < count:
                out += watch.tick(first + k * every)
        return out

    def run_accepted(
        self, records: pl.DataFrame, others: pl.DataFrame, *, unconfigured: int = 0
    ) -> list[Finding]:
        """All findings, with every window flushed, of ``records`` taken as accepted
        (``ACCEPTED_SCHEMA``: what the stream engine took, as ``rules.minute_detail`` keeps
        it) and of the measurement frame ``others`` (accepted as ``run`` accepts a frame);
        ``unconfigured``: the records of outlets not judged, left out by the caller. The
        records are judged faster in the order of their series (outlet, factor, interval,
        time): they are sorted only when not in it."""
        self._links = production_links(self.params, self.power)
        kept = self._with_marks(records)
        if others.height:
            more, _ = self.accepted(others)
            factor = kept.schema["factor"]
            kept = pl.concat([kept, more.with_columns(pl.col("factor").cast(factor))])
        else:
            self.stats = BatchStats(0, 0, 0, 0, 0)
        assert self.stats is not None
        self.stats = self.stats._replace(
            readings=self.stats.readings + records.height + unconfigured,
            unconfigured=self.stats.unconfigured + unconfigured,
        )
        out = self._judged(kept, self._watermarks(kept), flush=True)
        return out + self.power_findings(pl.DataFrame(schema=POWER_SCHEMA))

    def _windows(self, frame: pl.DataFrame, *, flush: bool, include_late: bool) -> list[Finding]:
        kept, watermarks = self.accepted(frame, include_late=include_late)
        return self._judged(kept, watermarks, flush=flush)

    def _judged(
        self, kept: pl.DataFrame, watermarks: pl.DataFrame, *, flush: bool
    ) -> list[Finding]:
        aggs = self._hour_aggregates(kept)
        final = {(r[0], r[1]): r[2] for r in watermarks.iter_rows()}
        if flush:
            watermarks = watermarks.with_columns(pl.lit(END_OF_DATA).alias("watermark"))
        # The rules are judged over all the hours at once, in columns (rules.judge_columns),
        # the days by the judge from the columns' sums (rules.day_columns).
        copies = copy_watches(self.params)
        keys = list(self.params)
        limits = {
            okey: END_OF_DATA if flush else final.get(key, NO_WATERMARK)
            for okey, key in enumerate(keys)
        }
        links = {k: self._links[e] for k, (e, _) in enumerate(keys) if e in self._links}
        watches = {k: copies[e] for k, (e, _) in enumerate(keys) if e in copies}
        out = column_findings(
            aggs, self.params, watermarks, self.grace, self.book, limits, links, watches
        )
        for watch in copies.values():
            out += watch.compare(final=flush)
        return out


def _by_series_and_time(records: pl.DataFrame) -> pl.DataFrame:
    """``records`` sorted by series and time: by one integer made of the two when it fits
    (half the time of a sort on two columns: most of a sort is moving the rows)."""
    t = records.get_column("t")
    if records.is_empty():
        return records
    low, high = t.min(), t.max()
    top = records.get_column("series").max()
    if high - low >= 2**32 or top >= 2**31:  # type: ignore[operator]
        return records.sort(["series", "t"])
    key = records.select(pl.col("series") * 2**32 + (pl.col("t") - low)).to_series()
    if key.is_sorted():  # read from the store in this order (``rules.minute_detail``)
        return records
    return records.sort(pl.lit(key))


def _with_outlet_keys(frame: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its outlet's key (``okey``) for its names, rows of outlets not in
    ``keys`` left out. Joined per run of rows of one outlet, not per row: a frame read from
    the store comes outlet by outlet, and one in arrival order a message at a time."""
    outlet = ["enterprise_id", "outlet_id"]
    run = frame.select(pl.struct(outlet).rle_id().alias("run")).get_column("run")
    runs = (
        frame.select(*outlet)
        .with_columns(run)
        .filter(run != run.shift(1, fill_value=-1))
        .join(keys, on=outlet)
        .select("run", "okey")
    )
    return frame.with_columns(run).join(runs, on="run", maintain_order="left").drop(*outlet, "run")


def _records_only(kept: pl.DataFrame) -> pl.DataFrame:
    """The minute and real-time records of ``kept``, without the device hour values: a slice
    where those come last (read from the store), else a filter (which copies every row)."""
    device = kept.get_column("interval") == "hour"
    n = int(device.sum())
    if n == 0 or device.slice(kept.height - n).all():
        return kept.head(kept.height - n)
    return kept.filter(~device)


def _previous(expr: str | pl.Expr) -> pl.Expr:
    """The value on the previous record of the same key (null on a key's first): rows sorted
    by key with a ``key_start`` column (``BatchEngine._runs``)."""
    e = pl.col(expr) if isinstance(expr, str) else expr
    return pl.when(pl.col("key_start")).then(None).otherwise(e.shift(1))


def _run_start(start: str) -> pl.Expr:
    """The row that began each record's run: the latest row at or before it where ``start``
    holds (a key's first row always does)."""
    return pl.when(pl.col(start)).then(pl.col("row")).forward_fill()


def _judge_events(judge: PowerJudge, samples: power_batch.EnterpriseSamples) -> list[Finding]:
    """Judge the event samples, and the first sample at or after each deadline the judge
    sets: the findings of judging every sample (see ``rules.power_batch``)."""
    ts, meters, p_kw, events = samples
    n, n_events = len(ts), len(events)
    out: list[Finding] = []
    e, k = 0, -1
    while True:
        next_event = events[e] if e < n_events else n
        due = max(bisect_left(ts, judge.next_check), k + 1)
        k = min(next_event, due)
        if k >= n:
            return out
        out += judge.sample(meters[k], ts[k], p_kw[k])
        if k == next_event:
            e += 1


_INT_FIELDS = (
    "n",
    "n_valid",
    "sum_valid",
    "n_marked",
    "n_d",
    "n_m",
    "n_c",
    "n_b",
    "n_t",
    "zs_n",
    "zs_sum",
    "zero_run",
    "const_run",
    "low_periods",
    "n_f",
    "interval_s",
    "seen_interval_s",
    "plateaus",
)
_BOOL_FIELDS = ("dev_marked", "realtime")


def hour_agg(row: dict[str, Any]) -> HourAgg:
    """A row of ``BatchEngine.hour_aggregates`` (as a dict) as the judge's ``HourAgg``."""
    return HourAgg._make(
        row.get(f) or 0
        if f in _INT_FIELDS
        else bool(row.get(f))
        if f in _BOOL_FIELDS
        else row.get(f)
        for f in HourAgg._fields
    )


def _receipts(df: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Per source and bucket: the first receipt (arrival order), the latest receipt time and
    the latest data time (a logger's progress; meters have none)."""
    return (
        df.sort("seq")
        .group_by([*key, "bucket"], maintain_order=True)
        .agg(
            pl.col("received").first().alias("first"),
            pl.col("received").max().alias("latest"),
            (pl.col("t").max() if "t" in df.columns else pl.lit(None)).alias("progress"),
            pl.col("seq").first().alias("order"),
        )
        .sort(["bucket", "order"])
        .select(*key, "bucket", "first", "latest", "progress")
    )


Received = tuple[str, str, int, int, int | None]


def _by_bucket(receipts: pl.DataFrame) -> dict[int, list[Received]]:
    out: dict[int, list[Received]] = {}
    for a, b, bucket, first, latest, progress in receipts.iter_rows():
        out.setdefault(bucket, []).append((a, b, first, latest, progress))
    return out
