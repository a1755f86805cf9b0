"""Meter samples in batch: what polars computes so that the power judge sees only the samples
that can change something.

The streaming engine hands every sample to ``PowerJudge.sample``. Most samples change nothing:
a device keeps its state (C0), no change is being confirmed, and its power says nothing new
about C4. The batch engine computes with polars, for every sample, what the judge would
compute about it in isolation:

- the C0 state after it and whether a change is pending (hysteresis with confirmation is a
  run-length question: a state is confirmed by the ``confirm_samples``-th sample of a run of
  agreeing raw classes, or by the first classified sample of the meter);
- each control device's C4 baseline per day (the daily median of its power, from the same
  50-bin histogram, while it and a production device it serves were ON, and the median of
  the last 30 such days) and whether a sample could be "low" against it;
- per production meter linked to an outlet, the hourly tallies of samples, ON and zero;
- each rated production device's C7 judgement per day: the day's level (the median bin of
  its power while ON, from the same 100-bin histogram the judge keeps), its P95 bin, and the
  baseline (the median of the last ``c7_baseline_days`` earlier P95s, once ``c7_min_days``
  are known).

A sample is then an *event* when the state or a pending change moves at it, when it is its
control device's first sample of a day (the baseline changes) or its rated production
device's (the day before is judged, C7), or when it or the device's previous sample could
be low. The judge receives the events and, because it also judges on deadlines (a sustain
period ending, an order's window opening), the first sample at or after its next deadline.
Judging only these gives the findings of judging every sample; the power tests and the
simulated month compare both engines finding by finding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import polars as pl

from rules.linkage import Tally
from rules.power_judge import (
    BIN_SPAN,
    BINS,
    C7_BINS,
    C7_SPAN,
    CapacityDay,
    capacity_kw,
    median,
)
from rules.power_params import EnterprisePowerParams
from rules.timebase import CHINA_OFFSET, DAY, HOUR

ON, OFF = 1, 0


class EnterpriseSamples(NamedTuple):
    """One enterprise's samples in judging order, and which of them are events."""

    ts: list[int]  # ascending
    meter: list[str]
    p_kw: list[float]
    events: list[int]  # indices of the event samples, ascending


class PowerPlan(NamedTuple):
    samples: dict[str, EnterpriseSamples]
    baselines: dict[str, dict[tuple[str, int], float]]  # enterprise → (control, day) → kW
    capacity: dict[str, dict[tuple[str, int], CapacityDay]]  # enterprise → (meter, day) → C7
    tallies: dict[str, list[tuple[int, dict[str, Tally]]]]  # enterprise → hours in order


def _meter_table(power: Mapping[str, EnterprisePowerParams]) -> pl.DataFrame:
    """Each meter's parameters, with integer keys numbered in (enterprise, meter) order:
    sorting and windows over them are much cheaper than over the strings."""
    meters = sorted((e, m_id, m) for e, p in power.items() for m_id, m in p.meters.items())
    enterprises = {e: k for k, e in enumerate(sorted(power))}
    rows = [
        (
            e,
            m.meter_id,
            enterprises[e],
            k,
            m.rated_kw,
            m.on_kw,
            m.off_kw,
            m.confirm_samples,
            m.role == "control" and bool(m.serves),
            m.low_load_fraction,
            bool(m.outlets) and m.role == "production",
            m.role == "production" and bool(m.rated_kw),
        )
        for k, (e, _, m) in enumerate(meters)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "enterprise_id": pl.String,
            "meter_id": pl.String,
            "ekey": pl.Int32,
            "mkey": pl.Int32,
            "rated": pl.Float64,
            "on_kw": pl.Float64,
            "off_kw": pl.Float64,
            "confirm": pl.Int64,
            "is_control": pl.Boolean,
            "low_fraction": pl.Float64,
            "linked": pl.Boolean,
            "is_c7": pl.Boolean,
        },
        orient="row",
    )


def _c0(df: pl.DataFrame) -> pl.DataFrame:
    """C0 state after each sample and whether a change is pending, per meter."""
    meter = "mkey"
    raw = (
        pl.when(pl.col("p_kw") == math.inf)  # a reported state (rules.power_params.sample_kw)
        .then(ON)
        .when(pl.col("p_kw") == -math.inf)
        .then(OFF)
        .when(pl.col("rated").is_null())
        .then(None)
        .when(pl.col("p_kw") >= pl.col("on_kw"))
        .then(ON)
        .when(pl.col("p_kw") <= pl.col("off_kw"))
        .then(OFF)
        .otherwise(None)
        .cast(pl.Int8)
    )
    df = df.with_columns(raw.alias("raw"))
    same_run = pl.col("raw").is_not_null() & (
        pl.col("raw") == pl.col("raw").shift(1).over(meter)
    ).fill_null(value=False)
    df = df.with_columns(
        (~same_run).cum_sum().over(meter).alias("run"),
        (pl.col("raw").is_not_null().cum_sum().over(meter) == 1)
        .and_(pl.col("raw").is_not_null())
        .alias("first_classified"),
    )
    df = df.with_columns((pl.int_range(pl.len()).over([meter, "run"]) + 1).alias("pos"))
    confirming = pl.col("raw").is_not_null() & (
        (pl.col("pos") == pl.col("confirm")) | pl.col("first_classified")
    )
    df = df.with_columns(
        pl.when(confirming).then(pl.col("raw")).forward_fill().over(meter).alias("state")
    )
    pending = (
        pl.col("raw").is_not_null()
        & pl.col("state").is_not_null()
        & (pl.col("raw") != pl.col("state"))
    )
    df = df.with_columns(pending.alias("pending"))
    moved = (
        pl.col("pending")
        | pl.col("pending").shift(1).over(meter).fill_null(value=False)
        | (pl.col("state").is_not_null() & pl.col("state").shift(1).over(meter).is_null())
        | (pl.col("state") != pl.col("state").shift(1).over(meter)).fill_null(value=False)
    )
    return df.with_columns((_judged() & moved).alias("c0_event"))


def _judged() -> pl.Expr:
    """Samples the judge takes up: a rated meter's, or a reported state (PowerJudge.sample)."""
    return pl.col("rated").is_not_null() | pl.col("p_kw").is_infinite()


def _producing(df: pl.DataFrame, power: Mapping[str, EnterprisePowerParams]) -> pl.DataFrame:
    """For every control sample: is a production device it serves ON at that point of the
    judging order (after that device's last earlier sample)?"""
    pairs = pl.DataFrame(
        [
            (e, m.meter_id, served)
            for e, p in power.items()
            for m in p.meters.values()
            if m.role == "control"
            for served in m.serves
        ],
        schema={"enterprise_id": pl.String, "meter_id": pl.String, "served": pl.String},
        orient="row",
    )
    controls = df.filter(pl.col("is_control")).select("enterprise_id", "meter_id", "order")
    served = df.select(
        "enterprise_id",
        pl.col("meter_id").alias("served"),
        "order",
        (pl.col("state") == ON).fill_null(value=False).alias("served_on"),
    ).sort("order")
    joined = (
        controls.join(pairs, on=["enterprise_id", "meter_id"])
        .sort("order")
        # Both sides are sorted by ``order``; polars cannot check that within ``by`` groups.
        .join_asof(
            served,
            on="order",
            by=["enterprise_id", "served"],
            strategy="backward",
            check_sortedness=False,
        )
    )
    producing = joined.group_by("order").agg(
        pl.col("served_on").fill_null(value=False).any().alias("producing")
    )
    return df.join(producing, on="order", how="left").with_columns(
        pl.col("producing").fill_null(value=False)
    )


def _baselines(
    df: pl.DataFrame, power: Mapping[str, EnterprisePowerParams]
) -> dict[str, dict[tuple[str, int], float]]:
    """C4 baseline per control device and day it sent samples: the median of the daily
    medians of the last ``baseline_days`` earlier days it learned (at least ``min`` days)."""
    controls = df.filter(pl.col("is_control"))
    learning = controls.filter(
        (pl.col("state") == ON)
        & pl.col("producing")
        & pl.col("rated").is_not_null()
        & pl.col("p_kw").is_finite()
    )
    bins = (pl.col("p_kw") / (pl.col("rated") * BIN_SPAN) * BINS).cast(pl.Int64).clip(0, BINS - 1)
    hist = (
        learning.with_columns(bins.alias("bin"))
        .group_by("enterprise_id", "meter_id", "day", "bin")
        .agg(pl.len().alias("n"), pl.col("rated").first())
        .sort("enterprise_id", "meter_id", "day", "bin")
        .with_columns(
            pl.col("n").cum_sum().over("enterprise_id", "meter_id", "day").alias("seen"),
            pl.col("n").sum().over("enterprise_id", "meter_id", "day").alias("total"),
        )
        .filter(pl.col("seen") * 2 >= pl.col("total"))
        .group_by("enterprise_id", "meter_id", "day")
        .agg(pl.col("bin").min(), pl.col("rated").first())
        .with_columns(((pl.col("bin") + 0.5) / BINS * BIN_SPAN * pl.col("rated")).alias("median"))
    )
    medians: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for e, m, day, value in hist.select("enterprise_id", "meter_id", "day", "median").iter_rows():
        medians.setdefault((e, m), []).append((day, value))
    days = controls.select("enterprise_id", "meter_id", "day").unique()
    out: dict[str, dict[tuple[str, int], float]] = {}
    for (e, m), day_list in _grouped(days.iter_rows()).items():
        meter = power[e].meters[m]
        learned = sorted(medians.get((e, m), []))
        table = out.setdefault(e, {})
        k = 0
        for day in sorted(day_list):
            while k < len(learned) and learned[k][0] < day:
                k += 1
            window = [v for _, v in learned[max(0, k - meter.baseline_days) : k]]
            if len(window) >= meter.baseline_min_days:
                table[(m, day)] = median(window)
    return out


def _capacity(
    df: pl.DataFrame, power: Mapping[str, EnterprisePowerParams]
) -> dict[str, dict[tuple[str, int], CapacityDay]]:
    """C7 per rated production device and day it ran: the level (the median of its power
    while ON), the baseline (the median of the P95s of the last ``c7_baseline_days`` earlier
    days it ran) and how many days that is; only days with at least ``c7_min_days``. The
    bins and ranks are those of ``PowerJudge`` (``capacity_bin``, ``histogram_rank``)."""
    learning = df.filter(
        pl.col("is_c7")
        & (pl.col("state") == ON)
        & pl.col("p_kw").is_finite()
        & (pl.col("p_kw") > pl.col("off_kw"))  # not a stop being confirmed (see ``_count``)
    )
    scaled = pl.col("p_kw") / (pl.col("rated") * C7_SPAN) * C7_BINS
    daily = (
        learning.with_columns(scaled.clip(0, C7_BINS - 1).cast(pl.Int64).alias("bin"))
        .group_by("enterprise_id", "meter_id", "day", "bin")
        .agg(pl.len().cast(pl.Int64).alias("n"))
        .sort("enterprise_id", "meter_id", "day", "bin")
        .with_columns(
            pl.col("n").cum_sum().over("enterprise_id", "meter_id", "day").alias("seen"),
            pl.col("n").sum().over("enterprise_id", "meter_id", "day").alias("total"),
        )
        .group_by("enterprise_id", "meter_id", "day")
        .agg(
            pl.col("bin").filter(pl.col("seen") * 2 >= pl.col("total")).min().alias("level"),
            pl.col("bin").filter(pl.col("seen") * 100 >= pl.col("total") * 95).min().alias("p95"),
        )
        .sort("enterprise_id", "meter_id", "day")
    )
    out: dict[str, dict[tuple[str, int], CapacityDay]] = {}
    history: dict[tuple[str, str], list[int]] = {}
    for e, m, day, level, p95 in daily.iter_rows():
        meter = power[e].meters[m]
        rated = meter.rated_kw or 0.0
        p95s = history.setdefault((e, m), [])
        window = p95s[max(0, len(p95s) - meter.c7_baseline_days) :]
        if len(window) >= meter.c7_min_days:
            baseline = median([capacity_kw(b, rated) for b in window])
            out.setdefault(e, {})[(m, day)] = (capacity_kw(level, rated), baseline, len(window))
        p95s.append(p95)
    return out


def _grouped(rows: object) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for e, m, day in rows:  # type: ignore[attr-defined]
        out.setdefault((e, m), []).append(day)
    return out


def plan(df: pl.DataFrame, power: Mapping[str, EnterprisePowerParams]) -> PowerPlan:
    """``df``: the accepted samples (enterprise_id, meter_id, ts, p_kw), one per meter and ts."""
    meter = ["enterprise_id", "meter_id"]
    df = (
        df.select("enterprise_id", "meter_id", "ts", "p_kw")
        .join(_meter_table(power), on=meter)
        .sort("ekey", "ts", "mkey")
        .with_row_index("order")
        .with_columns((pl.col("ts") - (pl.col("ts") + CHINA_OFFSET) % DAY).alias("day"))
    )
    df = _producing(_c0(df), power)
    baselines = _baselines(df, power)
    capacity = _capacity(df, power)
    base = pl.DataFrame(
        [(e, m, day, v) for e, t in baselines.items() for (m, day), v in t.items()],
        schema={
            "enterprise_id": pl.String,
            "meter_id": pl.String,
            "day": pl.Int64,
            "baseline": pl.Float64,
        },
        orient="row",
    )
    df = df.join(base, on=[*meter, "day"], how="left")
    could_be_low = (
        pl.col("is_control")
        & pl.col("baseline").is_not_null()
        & (pl.col("state") == ON)
        & pl.col("p_kw").is_finite()
        & (pl.col("p_kw") < pl.col("low_fraction") * pl.col("baseline"))
    ).fill_null(value=False)
    first_of_day = (pl.col("is_control") | pl.col("is_c7")) & (
        pl.col("day") != pl.col("day").shift(1).over("mkey")
    ).fill_null(value=True)
    df = df.sort("order").with_columns(could_be_low.alias("low"))
    event = pl.col("c0_event") | (
        _judged()
        & (
            first_of_day
            | pl.col("low")
            | pl.col("low").shift(1).over("mkey").fill_null(value=False)
        )
    )
    df = df.with_columns(event.alias("event"))
    samples: dict[str, EnterpriseSamples] = {}
    for (enterprise,), part in df.partition_by("enterprise_id", as_dict=True).items():
        samples[str(enterprise)] = EnterpriseSamples(
            part.get_column("ts").to_list(),
            part.get_column("meter_id").to_list(),
            part.get_column("p_kw").to_list(),
            part.get_column("event").arg_true().to_list(),
        )
    return PowerPlan(samples, baselines, capacity, _tallies(df))


def _tallies(df: pl.DataFrame) -> dict[str, list[tuple[int, dict[str, Tally]]]]:
    """Per enterprise and hour, in order: each linked production meter's tally."""
    counts = (
        df.filter(pl.col("linked"))
        .with_columns((pl.col("ts") - pl.col("ts") % HOUR).alias("hour"))
        .group_by("enterprise_id", "hour", "meter_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            (pl.col("state") == ON).fill_null(value=False).sum().cast(pl.Int64).alias("on"),
            ((pl.col("p_kw") <= 0) & pl.col("p_kw").is_finite()).sum().cast(pl.Int64).alias("zero"),
        )
        .sort("enterprise_id", "hour", "meter_id")
    )
    out: dict[str, list[tuple[int, dict[str, Tally]]]] = {}
    for e, hour, m, n, on, zero in counts.iter_rows():
        hours = out.setdefault(e, [])
        if not hours or hours[-1][0] != hour:
            hours.append((hour, {}))
        hours[-1][1][m] = (n, on, zero)
    return out
