"""The hour judge's rules in columns, for the batch engine: layer 2 over the frame of hour
aggregates (``BatchEngine.hour_aggregates``) instead of one ``OutletJudge.hour`` call per
outlet-hour.

Why: the replay from the store judges a month of a fleet, hundreds of thousands of
outlet-hours, and the Python judge's checks per factor-hour were most of its time. A rule
judged here is judged over every closed hour of every outlet at once: its condition is a
column, its fire and clear ``rules.firing_columns.level_changes``, and a finding is built in
Python only where something fires or clears (most hours: nothing), by the judge's own
functions where it has one (B5's bound, A3's evidence). The batch engine never calls
``OutletJudge.hour``: the days are summed in columns and judged by ``OutletJudge.day``
(``rules.day_columns``), an enterprise's production link and its watch of copies across
outlets are handed each outlet's hours from here. The streaming engine judges the same
rules in the ``OutletJudge`` hour by hour, and the two engines' findings are tested equal
(``tests/rules/test_judge_columns.py``, ``tests/rules/test_stream_equals_batch.py``).

``closed_hours`` gives the frames (``ClosedHours``); the rules, one module each where they
need more than a column:

- here: B1, B2 (runs of zeros, of one value: ``rules.judge.run_minutes``, minutes to a
  tenth rounded as Python rounds); B3 (negative); B4 (at or over the range or flagged T, an
  alarm after ``over_range_alarm_hours`` in a row); B5 (``rules.judge.plausibility``); B8-7
  (a plateau at the span-gas level, ``rules.judge.plateau_level``); B8-8 within an outlet
  (factors of one hour with the same varying series, the later code naming the first; across
  an enterprise's outlets it is ``rules.copies``', handed the signatures); B9 (fault-flagged
  hours in a row, restarted by a valid or a stopped hour, left by others); A1D (the device's
  hour value against the recomputed one); A4V (every value within the allowed range, on the
  hour's extremes); B8-1 to B8-4 (O2 above the fleet's reference, outside its band, near
  ambient, and a wet scrubber's flue gas too hot, while flue gas flows);
- ``rules.jump_columns``: B6; ``rules.exceedance_columns``: A2, A3, B8-5 (the value at the
  reference O2); ``rules.missing_columns``: B7 of loggers without hour packets.

B1, B2 and B8-7 judge a configured factor's hour with minute or real-time records, B8-8 one
with ``copy_min_records`` valid records or more; B3, B4 and B5 one with valid records (their
lowest and highest valid values) or, without any records, a valid device hour value; B9
every configured factor's hour, valid as A1 says (``OutletJudge.hour_value``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

import polars as pl

from rules.copies import CopyWatch, Signature
from rules.day_columns import day_findings
from rules.emission import flow_per_hour
from rules.exact_round import divided, rounded
from rules.exceedance_columns import EXCEEDANCE_COLUMN_RULES, exceedance_findings
from rules.findings import Finding, Tier
from rules.firing_columns import level_changes
from rules.hours import FIXED, INVALID_FLAG_ORDER
from rules.judge import (
    FAULT_FLAGS,
    RECOMPUTE_TOLERANCE,
    band_evidence,
    marking_too_long,
    markings_too_long,
    outlet_finding,
    plateau_level,
    plausibility,
    pollutant_screening,
    recompute_evidence,
    run_minutes,
    stop_marked,
)
from rules.jump_columns import jump_findings
from rules.linkage import ProductionLink
from rules.markings import STOPPED_MARK, MarkingBook
from rules.missing_columns import missing_findings
from rules.params import OutletParams, Versions, effective_thresholds
from rules.timebase import HOUR
from rules.windowing import closed

COLUMN_RULES = (
    frozenset({"A1D", "A4V", "A5-3", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8-1", "B8-2"})
    | frozenset({"A7", "B8-3", "B8-4", "B8-7", "B8-8", "B9", "B11"})
    | EXCEEDANCE_COLUMN_RULES
)

OUTLET = ["enterprise_id", "outlet_id"]
CONDITION_KEY = [*OUTLET, "factor"]
FACTOR = "fkey"  # an outlet's factor as one integer: windows over it cost far less


def _outlet_table(params: Mapping[tuple[str, str], OutletParams]) -> pl.DataFrame:
    """Each configured outlet (``okey``: its position) with what these rules read of it."""
    rows = [
        (
            *(okey, enterprise, outlet, p.kind == "gas", p.flow_code, p.o2_code),
            *(p.valid_minutes_per_hour, p.over_range_alarm_hours),
            *(p.flag_hours_warning, p.flag_hours_alarm),
            *(p.zero_minutes, p.const_minutes, p.copy_min_records),
            *(p.jump_min_history, p.jump_relative, p.zs_tolerance, p.o2_high),
            *(p.o2_band or (None, None)),
            *(p.o2_reference, p.wet_fgd_temp_max, p.temperature_code, p.furnace_bound),
        )
        for okey, ((enterprise, outlet), p) in enumerate(params.items())
    ]
    return pl.DataFrame(
        rows,
        schema={
            "okey": pl.Int64,
            "enterprise_id": pl.String,
            "outlet_id": pl.String,
            "gas": pl.Boolean,
            "flow_code": pl.String,
            "o2_code": pl.String,
            "valid_minutes": pl.Int64,
            "over_alarm_hours": pl.Int64,
            "flag_warning_hours": pl.Int64,
            "flag_alarm_hours": pl.Int64,
            "zero_minutes": pl.Float64,
            "const_minutes": pl.Float64,
            "copy_min_records": pl.Int64,
            "jump_min_history": pl.Int64,
            "jump_relative": pl.Float64,
            "zs_tolerance": pl.Float64,
            "o2_high": pl.Float64,
            "o2_band_low": pl.Float64,
            "o2_band_high": pl.Float64,
            "o2_reference": pl.Float64,
            "wet_fgd_temp_max": pl.Float64,
            "temperature_code": pl.String,
            "furnace_bound": pl.Float64,
        },
        orient="row",
    )


def _factor_table(params: Mapping[tuple[str, str], OutletParams]) -> pl.DataFrame:
    """Each configured factor (``fkey``: one integer) with what these rules read of it."""
    rows = []
    for okey, p in enumerate(params.values()):
        for code, fp in p.factors.items():
            bounds = plausibility(code, fp, 0.0, 0.0)  # only its bounds are read here
            t = effective_thresholds(p, fp)
            flow = p.factors.get(p.flow_code)
            per_hour = None if flow is None else flow_per_hour(fp.unit, flow.unit)
            rows.append(
                (
                    *(okey, code, fp.allow_negative),
                    *(bounds.low_bound, bounds.high_bound, fp.range_max),
                    *(plateau_level(p, fp), fp.reference_o2, t.hour_alarm, t.hour_warning),
                    *(per_hour, t.ultra_low, t.value_low, t.value_high),
                    code == p.furnace_code,
                    *(t.band_low, t.band_high, t.band_high_2),
                )
            )
    return pl.DataFrame(
        rows,
        schema={
            "okey": pl.Int64,
            "factor": pl.String,
            "allow_negative": pl.Boolean,
            "pmin": pl.Float64,
            "pmax": pl.Float64,
            "range_max": pl.Float64,
            "plateau_level": pl.Int64,
            "reference_o2": pl.Float64,
            "hour_alarm": pl.Float64,
            "hour_warning": pl.Float64,
            "flow_per_hour": pl.Float64,  # null: no amount (no flow, or units that differ)
            "ultra_low": pl.Float64,
            "value_low": pl.Float64,
            "value_high": pl.Float64,
            "furnace": pl.Boolean,
            "band_low": pl.Float64,
            "band_high": pl.Float64,
            "band_high_2": pl.Float64,
        },
        orient="row",
    ).with_row_index("fkey")


def by_number(values: pl.Series, number: str = "okey") -> pl.Expr:
    """The row's entry of a table's column (``values``, in the order of its numbers), by
    the row's number of it (``okey``, ``fkey``): gathered, cheaper than a join."""
    return pl.lit(values).gather(pl.col(number)).alias(values.name)


def valid_flag(params: Mapping[tuple[str, str], OutletParams], flag: str) -> pl.Expr:
    """Whether the row's ``flag`` column (a letter) is one its outlet (``okey``) takes as
    valid: one test per distinct set of flags (a fleet has few), not a join per row."""
    okeys_of: dict[frozenset[str], list[int]] = {}
    for k, p in enumerate(params.values()):
        okeys_of.setdefault(frozenset(p.valid_flags), []).append(k)
    if len(okeys_of) == 1:
        return pl.col(flag).is_in(sorted(next(iter(okeys_of))))
    expr = pl.lit(value=False)
    for flags, okeys in okeys_of.items():
        expr = expr | (pl.col("okey").is_in(okeys) & pl.col(flag).is_in(sorted(flags)))
    return expr


def _invalid_flag() -> pl.Expr:
    """``HourAgg.invalid_flag``: the most frequent invalid cause (ties in the order D, M, C,
    B, F), M for an hour invalid only for being marked, else null."""
    counts = [pl.col(f"n_{f.lower()}").fill_null(0) for f in INVALID_FLAG_ORDER]
    best = pl.max_horizontal(counts)
    expr = pl.when(pl.col("n_marked").fill_null(0) > 0).then(pl.lit("M")).otherwise(None)
    for flag, count in reversed(list(zip(INVALID_FLAG_ORDER, counts, strict=True))):
        expr = pl.when((best > 0) & (count == best)).then(pl.lit(flag)).otherwise(expr)
    return expr


class ClosedHours(NamedTuple):
    """What the column rules judge: ``hours``, the closed hours of configured factors sorted
    by factor (``fkey``) and hour; ``outlets``, each closed outlet-hour (every factor the
    outlet sent in it counted: what B7 and the days read) sorted by outlet (``okey``) and
    hour."""

    hours: pl.DataFrame
    outlets: pl.DataFrame


def closed_hours(
    aggs: pl.DataFrame,
    params: Mapping[tuple[str, str], OutletParams],
    watermarks: pl.DataFrame,
    grace_s: int,
) -> ClosedHours:
    """The closed hours (``ClosedHours``). A factor's hour has its validity, value and flag
    (A1, ``OutletJudge.hour_value``), whether its value is the device's (no records), its
    extremes (``low``, ``high``; null when the hour has nothing to judge them on), the
    outlet's valid flow of the hour (``flow``; ``flow_value`` valid or not) and its O2 hour
    (``o2``, ``o2_valid``), and the factor's and outlet's parameters. An outlet-hour has
    whether the logger sent a device hour value (``device_sent``), the factors with records
    (``present``) and whether those are real-time ones (``realtime_present``).
    ``watermarks``: each outlet's (``watermark``)."""
    fixed = float(FIXED)
    records = pl.col("n") > 0
    device_valid = (
        pl.col("dev_value").is_not_null()
        & pl.col("dev_flag_ok").fill_null(value=False)
        & ~pl.col("dev_marked").fill_null(value=False)
    )
    minute_valid = pl.col("n_valid") * pl.col("interval_s") >= pl.col("valid_minutes") * 60
    extremes = pl.col("min_valid").is_not_null() & pl.col("max_valid").is_not_null()
    device_extreme = ~records & device_valid
    counts = (
        "n",
        "n_t",
        "zero_run",
        "const_run",
        "interval_s",
        "plateaus",
        "n_valid",
        "zs_n",
        "n_f",
    )
    # Every factor's hour (configured or not: the flow and O2 are read wherever they come),
    # by the outlet's number where ``aggs`` has it (``BatchEngine``'s), else by its names.
    # The parameters are gathered by the outlet's and the factor's numbers, and the wide
    # tables only once the hours are sorted: each join or sort of a frame copies all of its
    # columns, and the parameters are most of them.
    table = _outlet_table(params)
    if "okey" in aggs.columns:
        every = aggs.lazy().with_columns(pl.col("okey").cast(pl.Int64))
    else:
        every = aggs.lazy().join(table.lazy().select("okey", *OUTLET), on=OUTLET).drop(OUTLET)
    watermark = table.join(watermarks, on=OUTLET, how="left").get_column("watermark")
    narrow = ("flow_code", "o2_code", "valid_minutes")
    every = (
        every.with_columns(
            by_number(watermark, "okey"), *(by_number(table[c], "okey") for c in narrow)
        )
        .filter(closed(pl.col("hour") + HOUR, pl.col("watermark"), grace_s))
        .with_columns(valid_flag(params, "dev_flag").alias("dev_flag_ok"))
        .with_columns(pl.col(*counts).fill_null(0), pl.col("realtime").fill_null(value=False))
        .with_columns(
            pl.when(records).then(minute_valid).otherwise(device_valid).alias("valid"),
            (~records).alias("device"),
            pl.when(records)
            .then(
                pl.when(pl.col("n_valid") > 0).then(
                    divided(pl.col("sum_valid") / pl.col("n_valid"), fixed)
                )
            )
            .otherwise(pl.col("dev_value"))
            .alias("value"),
        )
        .with_columns(
            pl.when(~records)
            .then(pl.col("dev_flag"))
            .when(pl.col("valid"))
            .then(pl.lit("N"))
            .otherwise(_invalid_flag())
            .alias("flag")
        )
    )
    flow = every.filter(pl.col("factor") == pl.col("flow_code")).select(
        "okey",
        "hour",
        pl.when(pl.col("valid")).then(pl.col("value")).alias("flow"),
        pl.col("value").alias("flow_value"),  # valid or not: what B8's evidence shows
        pl.col("flag").alias("flow_flag"),
    )
    o2 = every.filter(pl.col("factor") == pl.col("o2_code")).select(
        "okey", "hour", pl.col("value").alias("o2"), pl.col("valid").alias("o2_valid")
    )
    factors = _factor_table(params)
    wide = [c for c in table.columns if c not in ("okey", *narrow)]
    hours = (
        every.join(factors.lazy().select(FACTOR, "okey", "factor"), on=["okey", "factor"])
        .join(flow, on=["okey", "hour"], how="left")
        .join(o2, on=["okey", "hour"], how="left")
        .sort(FACTOR, "hour")
        .with_columns(
            *(by_number(table[c], "okey") for c in wide),
            *(by_number(factors[c], FACTOR) for c in factors.columns[3:]),
        )
        .with_columns(
            pl.when(extremes)
            .then(divided(pl.col("min_valid"), fixed))
            .when(device_extreme)
            .then(pl.col("dev_value"))
            .alias("low"),
            pl.when(extremes)
            .then(divided(pl.col("max_valid"), fixed))
            .when(device_extreme)
            .then(pl.col("dev_value"))
            .alias("high"),
        )
    )
    outlets = (
        every.group_by("okey", "hour")
        .agg(
            (pl.col("dev_value").is_not_null() | pl.col("dev_flag").is_not_null())
            .any()
            .alias("device_sent"),
            pl.col("factor").filter(records).alias("present"),
            pl.col("realtime").filter(records).any().alias("realtime_present"),
            # B11: the intervals the minute data show (0: not shown yet)
            pl.col("seen_interval_s")
            .filter(records & ~pl.col("realtime") & (pl.col("seen_interval_s") != 0))
            .unique()
            .sort()
            .alias("seen_s"),
        )
        .join(flow, on=["okey", "hour"], how="left")
        .sort("okey", "hour")
        .with_columns(by_number(table[c], "okey") for c in OUTLET)
    )
    # In memory: the streaming engine (polars' default) took twice as long on these plans
    # (0.73-0.86 s against 0.35 for a month of 200 outlets; its gathers of the parameters by
    # number, most likely, are made per morsel); the other plans here measured alike in both.
    # An empty result of the in-memory engine has some parameters' columns mistyped
    # (polars 2.1: Int64 or Boolean for Float64, tested): it is given the plan's types.
    plans = [hours, outlets]
    done = pl.collect_all(plans, engine="in-memory")
    typed = [
        f.cast(p.collect_schema()) if f.is_empty() else f for f, p in zip(done, plans, strict=True)
    ]
    return ClosedHours(*typed)


def _marking_length_findings(
    outlets: pl.DataFrame, params: Mapping[tuple[str, str], OutletParams], book: MarkingBook
) -> list[Finding]:
    """A7 (``OutletJudge._marking_lengths``): each declared marking longer than its type
    allows, once the outlet's judged hours have passed its allowed length: an event, so
    judged once on the outlet's last closed hour."""
    limited = [k for k, p in enumerate(params.values()) if p.marking_max_hours]
    if not limited:
        return []
    last = outlets.filter(pl.col("okey").is_in(limited)).group_by("okey").agg(pl.max("hour"))
    keys, versions = list(params), Versions(params)
    out = []
    for okey, hour in sorted(last.iter_rows()):
        p = params[keys[okey]]
        seen = set()
        for m, allowed in markings_too_long(book, p, hour + HOUR):
            if (m.start, m.type, m.factor) not in seen:
                seen.add((m.start, m.type, m.factor))
                out.append(marking_too_long(p, versions[keys[okey]], m, allowed))
    return out


def _hand_signatures(
    hours: pl.DataFrame, outlets: pl.DataFrame, copies: Mapping[int, CopyWatch]
) -> None:
    """Each closed hour of the outlets in ``copies`` handed to their enterprise's watch, in
    hour order, with the signatures of its varying series (``OutletJudge._copies``: valid
    records, their sum, minimum and maximum; ``copy_min_records`` or more; by code)."""
    wanted = pl.col("okey").is_in(list(copies))
    varying = (
        hours.lazy()
        .filter(
            wanted
            & (pl.col("n_valid") >= pl.col("copy_min_records"))
            & (pl.col("min_valid") != pl.col("max_valid"))
        )
        .sort("okey", "hour", "factor")
        .select("okey", "hour", "factor", "n_valid", "sum_valid", "min_valid", "max_valid")
        .collect()
    )
    signatures: dict[tuple[int, int], list[tuple[str, Signature]]] = {}
    for okey, hour, code, *signature in varying.iter_rows():
        signatures.setdefault((okey, hour), []).append((code, tuple(signature)))
    for okey, outlet, hour in (
        outlets.filter(wanted).select("okey", "outlet_id", "hour").iter_rows()
    ):
        copies[okey].outlet_hour(outlet, hour, tuple(signatures.get((okey, hour), ())), wait=False)


def _interval_findings(
    outlets: pl.DataFrame, params: Mapping[tuple[str, str], OutletParams]
) -> list[Finding]:
    """B11 (``OutletJudge._interval_check``): an outlet's configured minute-data interval
    against the smallest its minute data show in the hour, judged where they show one."""
    overrides = pl.DataFrame(
        [(k, p.interval_override_s) for k, p in enumerate(params.values())],
        schema={"okey": pl.Int64, "override_s": pl.Int64},
        orient="row",
    ).filter(pl.col("override_s").is_not_null())
    if overrides.is_empty():
        return []
    seen = pl.col("seen_s").list.first()
    windows = (
        outlets.join(overrides, on="okey")
        .filter(pl.col("seen_s").list.len() > 0)
        .sort("okey", "hour")
        .with_columns(
            pl.when(seen != pl.col("override_s")).then(pl.lit("warning")).alias("tier"),
            pl.col("override_s").cast(pl.Float64).alias("limit"),
        )
    )
    keys, versions = list(params), Versions(params)
    out = []
    for okey, hour, state, tier, limit, override, shown in (
        level_changes(windows, "okey")
        .select("okey", "hour", "state", "tier", "limit", "override_s", "seen_s")
        .iter_rows()
    ):
        p = params[keys[okey]]
        evidence = {"configured_s": override, "seen_s": shown}
        window = (hour, hour + HOUR)
        out.append(
            outlet_finding(
                p, versions[keys[okey]], "B11", state, None, window, tier,
                float(shown[0]), limit, evidence, unit="s",
            )
        )  # fmt: skip
    return out


def _linked_hours(
    outlets: pl.DataFrame, okey: int, link: ProductionLink, book: MarkingBook
) -> list[Finding]:
    """An outlet's closed hours handed to its enterprise's production link in hour order, as
    the judge hands them (``rules.batch._hour``): its valid flow, and what says its source
    was stopped (``OutletJudge._stopped_claim``: a 停产 marking over the hour, or the flow
    flagged F)."""
    out: list[Finding] = []
    rows = outlets.filter(pl.col("okey") == okey).select(
        "enterprise_id", "outlet_id", "hour", "flow", "flow_flag"
    )
    for enterprise, outlet, hour, flow, flow_flag in rows.iter_rows():
        if stop_marked(book, enterprise, outlet, "", hour):
            stopped: str | None = STOPPED_MARK
        else:
            stopped = "F" if flow_flag == "F" else None
        out += link.outlet_hour(outlet, hour, flow, stopped)
    return out


def _hours_in_a_row(holds: pl.Expr, restarts: pl.Expr) -> pl.Expr:
    """How many of a factor's hours in a row ``holds``, counted since the last hour that
    ``restarts`` the count (0 there); rows sorted by factor (``fkey``) and hour. (A running
    sum less its value where the count last began: no grouping.)"""
    begins = pl.col(FACTOR).ne_missing(pl.col(FACTOR).shift(1)) | restarts
    total = holds.cast(pl.Int64).cum_sum()
    before = pl.when(begins).then(total - holds.cast(pl.Int64)).forward_fill()
    return total - before


Stated = tuple[Any, Any, dict[str, Any], str | None]  # value, limit, evidence, unit
Builder = Callable[[OutletParams, str, dict[str, Any]], Stated]


def column_findings(
    aggs: pl.DataFrame,
    params: Mapping[tuple[str, str], OutletParams],
    watermarks: pl.DataFrame,
    grace_s: int,
    book: MarkingBook,
    limits: Mapping[int, int],
    links: Mapping[int, ProductionLink] | None = None,
    copies: Mapping[int, CopyWatch] | None = None,
) -> list[Finding]:
    """The findings of ``COLUMN_RULES`` over every closed hour in ``aggs`` (``book``: the
    declared markings), and of the closed days (``limits``: by ``okey``, the watermark an
    outlet's windows close at); each outlet with a production link (``links``, by ``okey``)
    hands it its hours, and each in an enterprise of several outlets (``copies``) its
    factors' signatures (B8-8 across outlets, compared by the caller)."""
    # One plan per rule over the closed hours, collected together: polars' cost per step is
    # what counts on a few hours of many outlets (a replay's hours are many).
    both = closed_hours(aggs, params, watermarks, grace_s)
    closed = both.hours
    hours = closed.lazy().with_row_index(_ROW)
    low, high, pmin, pmax = pl.col("low"), pl.col("high"), pl.col("pmin"), pl.col("pmax")
    warning, alarm = pl.lit("warning"), pl.lit("alarm")
    no_limit = pl.lit(None, dtype=pl.Float64).alias("limit")
    judged = hours.filter(low.is_not_null() & high.is_not_null())
    b3 = judged.with_columns(
        pl.when(~pl.col("allow_negative") & (low < 0)).then(warning).alias("tier"), no_limit
    )
    # B5 holds at "warning" only, so the condition's column says on which side of the bounds
    # the value is: what a clear names (that bound).
    b5 = judged.with_columns(
        pl.when(pmin.is_not_null() & (low < pmin))
        .then(pl.lit("low"))
        .when(pmax.is_not_null() & (high > pmax))
        .then(pl.lit("high"))
        .alias("tier"),
        no_limit,
    )
    # Fixed-point as the judge compares them (``rules.hours.to_fixed``, the same operations).
    over = (pl.col("n_t") > 0) | (
        pl.col("range_max").is_not_null()
        & ((high * FIXED + 0.5).floor() >= (pl.col("range_max") * FIXED + 0.5).floor())
    )
    b4 = judged.with_columns(over.alias("over")).with_columns(
        _hours_in_a_row(pl.col("over"), ~pl.col("over")).alias("hours")
    )
    b4 = b4.with_columns(
        pl.when(~pl.col("over"))
        .then(None)
        .when(pl.col("hours") >= pl.col("over_alarm_hours"))
        .then(alarm)
        .otherwise(warning)
        .alias("tier"),
        no_limit,
    )
    fault = ~pl.col("valid") & ~pl.col("device") & pl.col("flag").is_in(FAULT_FLAGS)
    restart = ~fault & (pl.col("valid") | (pl.col("flag") == "F"))
    b9 = (
        hours.with_columns(fault.fill_null(value=False).alias("fault"))
        .with_columns(restart.fill_null(value=False).alias("restart"))
        .filter(pl.col("fault") | pl.col("restart"))  # other hours change nothing
        .with_columns(_hours_in_a_row(pl.col("fault"), pl.col("restart")).alias("hours"))
    )
    b9 = b9.with_columns(
        pl.when(~pl.col("fault"))
        .then(None)
        .when(pl.col("hours") >= pl.col("flag_alarm_hours"))
        .then(alarm)
        .when(pl.col("hours") >= pl.col("flag_warning_hours"))
        .then(warning)
        .alias("tier"),
        no_limit,
    )
    # B1, B2 and B8-7 on hours with records: runs of zeros and of one value, in minutes to a
    # tenth as the judge rounds them (``run_minutes``: Python's round, exactly in columns);
    # a plateau at the span-gas level where the range is configured.
    records = hours.filter(pl.col("n") > 0).with_columns(
        _run_minutes("zero_run").alias("zero_run_minutes"),
        _run_minutes("const_run").alias("const_run_minutes"),
    )
    b1 = records.with_columns(
        pl.when(_rounded_tenth("zero_run_minutes") >= pl.col("zero_minutes"))
        .then(warning)
        .alias("tier"),
        no_limit,
    )
    b2 = records.with_columns(
        pl.when(_rounded_tenth("const_run_minutes") >= pl.col("const_minutes"))
        .then(warning)
        .alias("tier"),
        no_limit,
    )
    b8_7 = records.filter(pl.col("plateau_level").is_not_null()).with_columns(
        pl.when(pl.col("plateau_value") >= pl.col("plateau_level")).then(warning).alias("tier"),
        no_limit,
    )
    # B8-8 within an outlet: factors of one hour with the same valid series (records, sum,
    # minimum, maximum; a varying one), the later code naming the first in code order. The
    # first is found among the hours whose series another factor's repeats (few; a window
    # over every hour cost half of all these rules) and joined on by row.
    enough = pl.col("n_valid") >= pl.col("copy_min_records")
    series = ["okey", "hour", "n_valid", "sum_valid", "min_valid", "max_valid"]
    varying = enough & (pl.col("min_valid") != pl.col("max_valid"))
    repeated = (
        hours.filter(varying)
        .filter(pl.struct(series).is_duplicated())
        .select(_ROW, pl.col("factor").min().over(series).alias("first"))
    )
    first = pl.col("first")
    b8_8 = (
        hours.filter(enough)
        .join(repeated, on=_ROW, how="left", maintain_order="left")
        .with_columns(
            pl.when(first.is_not_null() & (pl.col("factor") != first)).then(first).alias("same_as")
        )
        .with_columns(
            pl.when(pl.col("same_as").is_not_null()).then(warning).alias("tier"), no_limit
        )
    )
    # A1D: the device's valid hour value beside a valid hour of minute records.
    a1d = hours.filter(
        (pl.col("n") > 0)
        & ~pl.col("realtime").fill_null(value=False)
        & pl.col("valid")
        & pl.col("value").is_not_null()
        & pl.col("dev_value").is_not_null()
        & pl.col("dev_flag_ok").fill_null(value=False)
    ).with_columns(
        pl.when(
            (pl.col("dev_value") - pl.col("value")).abs()
            > RECOMPUTE_TOLERANCE * pl.max_horizontal(pl.col("value").abs(), pl.lit(1e-9))
        )
        .then(warning)
        .alias("tier"),
        no_limit,
    )
    # B8-3: a gas outlet's valid O2 hour at or above ``o2_high`` while flue gas flows.
    flows = (pl.col("flow") > 0).fill_null(value=False)
    b8_3 = hours.filter(
        pl.col("gas") & (pl.col("factor") == pl.col("o2_code")) & pl.col("valid")
        & pl.col("value").is_not_null()
    ).with_columns(
        pl.when(flows & (pl.col("value") >= pl.col("o2_high"))).then(warning).alias("tier"),
        pl.col("o2_high").alias("limit"),
    )  # fmt: skip
    # B8-1, B8-2, B8-4: a valid hour of O2 (or of the flue gas's temperature) past a bound
    # while flue gas flows (``OutletJudge._while_flowing``), where the outlet sets the bound.
    v = pl.col("value")

    def while_flowing(code: str, setting: str, passed: pl.Expr) -> pl.LazyFrame:
        return hours.filter(
            (pl.col("factor") == pl.col(code))
            & pl.col(setting).is_not_null()
            & pl.col("valid")
            & v.is_not_null()
        ).with_columns(
            pl.when(flows & passed.is_not_null()).then(warning).alias("tier"),
            passed.alias("limit"),
        )

    band_low, band_high, reference = (
        pl.col("o2_band_low"), pl.col("o2_band_high"), pl.col("o2_reference")
    )  # fmt: skip
    b8_2 = while_flowing(
        "o2_code",
        "o2_band_high",
        pl.when(v > band_high).then(band_high).when(v < band_low).then(band_low),
    )
    b8_1 = while_flowing("o2_code", "o2_reference", pl.when(v > reference).then(reference))
    fgd = pl.col("wet_fgd_temp_max")
    b8_4 = while_flowing("temperature_code", "wet_fgd_temp_max", pl.when(v > fgd).then(fgd))
    # A5-3: the furnace's hour with a five-minute mean below its bound, else its valid mean
    # outside its band (judged where it has a valid period); a process factor's valid mean
    # outside its band (``OutletJudge._furnace_hour``, ``_band``).
    band_lo, band_hi, band_hi_2 = pl.col("band_low"), pl.col("band_high"), pl.col("band_high_2")
    above = band_hi.is_not_null() & (v > band_hi)
    below = band_lo.is_not_null() & (v < band_lo)
    outside = pl.col("valid") & v.is_not_null() & (above | below)
    furnace = pl.col("furnace") & pl.col("furnace_bound").is_not_null()
    low_now = furnace & (pl.col("low_periods") > 0)
    a5_3 = hours.filter(
        (furnace & pl.col("lowest_period").is_not_null())
        | (~furnace & (band_lo.is_not_null() | band_hi.is_not_null()) & pl.col("valid"))
        & v.is_not_null()
    ).with_columns(
        pl.when(low_now | outside).then(warning).alias("tier"),
        pl.when(low_now)
        .then(pl.col("furnace_bound"))
        .when(outside & above)
        .then(band_hi)
        .when(outside)
        .then(band_lo)
        .alias("limit"),
        pl.when(~outside)
        .then(None)
        .when(above & band_hi_2.is_not_null() & (v > band_hi_2))
        .then(pl.lit("过高"))
        .when(above)
        .then(pl.lit("偏高"))
        .otherwise(pl.lit("偏低"))
        .alias("level"),
    )
    # A4V: every valid value within the allowed range (pH 6-9), judged on the hour's extremes
    # (the valid records' and their Min/Max fields, or the device hour's), valid hour or not;
    # not the furnace temperature's (A5-2's), nor a still water outlet's (nothing discharged).
    fixed = float(FIXED)
    extremes = pl.col("ext_low").is_not_null() & pl.col("ext_high").is_not_null()
    device_value = pl.col("device") & pl.col("valid") & pl.col("value").is_not_null()
    still_water = ~pl.col("gas") & (pl.col("flow") == 0).fill_null(value=False)
    value_low, value_high = pl.col("value_low"), pl.col("value_high")
    lowest, highest = pl.col("lowest"), pl.col("highest")
    a4v = (
        hours.filter(
            (value_low.is_not_null() | value_high.is_not_null()) & ~pl.col("furnace") & ~still_water
        )
        .with_columns(
            pl.when(extremes)
            .then(divided(pl.col("ext_low"), fixed))
            .when(device_value)
            .then(pl.min_horizontal("value", "dev_min"))
            .alias("lowest"),
            pl.when(extremes)
            .then(divided(pl.col("ext_high"), fixed))
            .when(device_value)
            .then(pl.max_horizontal("value", "dev_max"))
            .alias("highest"),
        )
        .filter(lowest.is_not_null())
        .with_columns(
            (value_low.is_not_null() & (lowest < value_low)).alias("is_low"),
            (value_high.is_not_null() & (highest > value_high)).alias("is_high"),
        )
        .with_columns(
            pl.when(pl.col("is_low") | pl.col("is_high")).then(alarm).alias("tier"),
            pl.when(pl.col("is_low")).then(value_low).otherwise(value_high).alias("limit"),
        )
    )
    rules: tuple[tuple[str, pl.LazyFrame, Builder], ...] = (
        ("A1D", a1d, _a1d),
        ("A4V", a4v, _a4v),
        ("A5-3", a5_3, _a5_3),
        ("B8-3", b8_3, _b8_3),
        ("B8-2", b8_2, _b8_2),
        ("B8-1", b8_1, partial(_b8_1, {})),  # its screening: once its rows are known
        ("B8-4", b8_4, _b8_4),
        ("B1", b1, _b1),
        ("B2", b2, _b2),
        ("B3", b3, _b3),
        ("B4", b4, _b4),
        ("B5", b5, _b5),
        ("B8-7", b8_7, _b8_7),
        ("B8-8", b8_8, _b8_8),
        ("B9", b9, _b9),
    )
    # The exceedances, B6 and the days in two threads beside this one: each is part polars
    # (which computes without the interpreter's lock) and part Python, and the parts
    # overlap (measured 1.1× the three in turn, on two cores). Their findings in one order.
    with ThreadPoolExecutor(max_workers=2) as pool:
        exceeded = pool.submit(exceedance_findings, closed, params)
        jumped = pool.submit(jump_findings, closed, params)
        judged_days = pool.submit(day_findings, closed, both.outlets, params, book, limits, grace_s)
        changes = _changed_rows(closed, [windows for _, windows, _ in rules])
        missing = missing_findings(both.outlets, params, book)
        out = jumped.result() + exceeded.result() + missing + judged_days.result()
    out += _interval_findings(both.outlets, params)
    out += _marking_length_findings(both.outlets, params, book)
    if copies:
        _hand_signatures(closed, both.outlets, copies)
    for okey, link in sorted((links or {}).items()):
        out += _linked_hours(both.outlets, okey, link, book)
    for (rule, _, builder), changed in zip(rules, changes, strict=True):
        if rule == "B8-1":  # its evidence: the hour's pollutants beside their limits
            builder = partial(_b8_1, _screened(closed, changed))  # noqa: PLW2901
        out += _findings(rule, params, changed.iter_rows(named=True), builder)
    return out


_ROW = "row_of_hours"  # a closed hour's row number


def _changed_rows(closed: pl.DataFrame, plans: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    """Each rule's rows that fire or clear (``level_changes``): the closed hours' rows with
    the columns the rule's plan added (a plan adds columns; it changes none of the closed
    hours' own). Each plan is collected with only its row numbers and those columns, so
    polars reads only the columns its conditions need (the closed hours have some 90, most
    of them parameters) and gathers whole rows only where something changed."""
    known = set(closed.columns)
    narrow = []
    for plan in plans:
        changes = level_changes(plan, FACTOR)
        added = [c for c in changes.collect_schema().names() if c not in known and c != _ROW]
        narrow.append(changes.select(_ROW, *added))
    return [
        closed[changed.get_column(_ROW)].with_columns(changed.drop(_ROW))
        for changed in pl.collect_all(narrow)
    ]


def _run_minutes(records: str) -> pl.Expr:
    """``rules.judge.run_minutes`` in columns, before its tenth (``_rounded_tenth``): the
    division as Python does it. A column of its own: inside ``rounded``, which reads its
    argument many times, polars would compute it again for each."""
    return divided(pl.col(records) * pl.col("interval_s"), 60)


def _rounded_tenth(minutes: str) -> pl.Expr:
    """``_run_minutes``' column to the tenth, as ``round(x, 1)``."""
    return rounded(pl.col(minutes), 1)


# What each rule states on a row that fires or clears: the value, the limit (a clear's: what
# held), the evidence, and the unit when it is not the factor's; as OutletJudge states them.


def _a5_3(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    level = row["level"]
    evidence: dict[str, Any] = {}
    if row["furnace"] and row["furnace_bound"] is not None:
        evidence = {"low_periods": row["low_periods"], "period_s": p.furnace_period_s}
        if row["low_periods"]:  # below the bound: the lowest five-minute mean
            return _rounded(row["lowest_period"] / FIXED), row["limit"], evidence, None
    if level is None:  # within: a clear
        return None, row["limit"], evidence, None
    t = effective_thresholds(p, p.factors[code])
    return _rounded(row["value"]), row["limit"], band_evidence(t, level, evidence), None


def _a4v(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    lowest, highest = row["lowest"], row["highest"]
    source = "device" if row["device"] else "realtime" if row["realtime"] else "minutes"
    evidence = {
        "source": source,
        "mean": _rounded(row["value"]),
        "min": _rounded(lowest),
        "max": _rounded(highest),
        "low": row["value_low"],
        "high": row["value_high"],
    }
    stated = lowest if row["is_low"] or not row["is_high"] else highest
    return _rounded(stated), row["limit"], evidence, None


def _a1d(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    evidence = recompute_evidence(row["dev_value"], row["value"])
    return evidence["device"], None, evidence, None


def _b8_3(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    return round(row["value"], 6), row["limit"], {"flow": _rounded(row["flow_value"])}, None


def _b8_2(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    band = [row["o2_band_low"], row["o2_band_high"]]
    return _rounded(row["value"]), row["limit"], _flowing({"band": band}, row), None


def _b8_4(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    return _rounded(row["value"]), row["limit"], _flowing({}, row), None


Screened = dict[tuple[int, int], list[tuple[str, float]]]


def _screened(hours: pl.DataFrame, changed: pl.DataFrame) -> Screened:
    """For B8-1's rows that fire or clear: the valid values, in their outlet-hour, of the
    factors judged at a reference O2."""
    if changed.is_empty():
        return {}
    converted = (
        hours.select("okey", "hour", "factor", "value", "valid", "reference_o2")
        .filter(
            pl.col("valid") & pl.col("value").is_not_null() & pl.col("reference_o2").is_not_null()
        )
        .join(changed.select("okey", "hour").unique(), on=["okey", "hour"], how="semi")
    )
    out: Screened = {}
    for okey, hour, code, value in converted.select("okey", "hour", "factor", "value").iter_rows():
        out.setdefault((okey, hour), []).append((code, value))
    return out


def _b8_1(screened: Screened, p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    thresholds = {c: effective_thresholds(p, fp) for c, fp in p.factors.items()}
    values = screened.get((row["okey"], row["hour"]), [])
    evidence = {
        "reference": row["o2_reference"],
        "pollutants": pollutant_screening(p, thresholds, values),
    }
    return _rounded(row["value"]), row["limit"], _flowing(evidence, row), None


def _flowing(evidence: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A B8 while-flowing rule's evidence, with the hour's flow (valid or not)."""
    return {**evidence, "flow": _rounded(row["flow_value"])}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _b1(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    return run_minutes(row["zero_run"], row["interval_s"]), p.zero_minutes, {}, "min"


def _b2(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    return run_minutes(row["const_run"], row["interval_s"]), p.const_minutes, {}, "min"


def _b8_7(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    top = row["plateau_value"]
    value = top / FIXED if top is not None else None
    range_max = p.factors[code].range_max
    return value, None, {"plateaus": row["plateaus"], "value": value, "range_max": range_max}, None


def _b8_8(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    records = row["n_valid"]
    return float(records), None, {"same_as": row["same_as"], "records": records}, "条"


def _b3(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    return row["low"], 0.0, {}, None


def _b4(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    range_max = p.factors[code].range_max
    hours = row["hours"] if row["state"] == "fire" else 0
    return (
        row["high"],
        range_max,
        {"flag_t": row["n_t"], "range_max": range_max, "hours": hours},
        None,
    )


def _b5(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    check = plausibility(code, p.factors[code], row["low"], row["high"])
    if row["state"] == "fire":
        limit = check.limit
    else:  # the bound the condition held against: the side it was outside
        limit = check.low_bound if row["tier"] == "low" else check.high_bound
    return check.value, limit, check.evidence, None


def _b9(p: OutletParams, code: str, row: dict[str, Any]) -> Stated:
    if row["state"] == "clear":  # stated in the factor's unit, as the judge's clear is
        return 0.0, float(p.flag_hours_warning), {}, None
    hours = row["hours"]
    return float(hours), float(p.flag_hours_warning), {"flag": row["flag"], "hours": hours}, "h"


def _findings(
    rule: str,
    params: Mapping[tuple[str, str], OutletParams],
    rows: Iterable[dict[str, Any]],
    builder: Builder,
) -> list[Finding]:
    out = []
    versions = Versions(params)
    for row in rows:
        key = (row["enterprise_id"], row["outlet_id"])
        p = params[key]
        version = versions[key]
        code = row["factor"]
        value, limit, evidence, unit = builder(p, code, row)
        tier: Tier = "warning" if rule == "B5" else row["tier"]
        window = (row["hour"], row["hour"] + HOUR)
        state = row["state"]
        out.append(
            outlet_finding(
                p, version, rule, state, code, window, tier, value, limit, evidence, unit
            )
        )
    return out
