"""B7 of loggers without hour packets in columns, for the batch engine: as
``OutletJudge._missing`` judges it hour by hour, over every closed outlet-hour at once.

An outlet is judged so while it has sent no device hour value (from its first hour packet
on, ``rules.absence`` judges its hours, and this judges nothing more: the prefix of its
hours before that). Between two judged outlet-hours, every hour without data fires
(缺失; one wholly inside a declared 停产 marking excepted), naming the data the later hour
has (minute or real-time); the outlet's next hour with records clears. A configured factor
the outlet's records carried in an earlier hour fires in an hour with records that lacks it
(不完整) and clears in one that has it. The holes are few, so they are listed in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from rules.findings import Finding, State
from rules.firing_columns import level_changes
from rules.judge import outlet_finding, stop_marked
from rules.markings import MarkingBook
from rules.params import OutletParams, Versions
from rules.timebase import HOUR


def missing_findings(
    outlets: pl.DataFrame,
    params: Mapping[tuple[str, str], OutletParams],
    book: MarkingBook,
) -> list[Finding]:
    """B7 over ``outlets`` (``rules.judge_columns.ClosedHours.outlets``)."""
    judged = outlets.with_columns(
        pl.col("device_sent").cum_max().over("okey").alias("sends"),
        pl.col("hour").shift(1).over("okey").alias("before"),
        pl.when(pl.col("realtime_present"))
        .then(pl.lit("realtime"))
        .otherwise(pl.lit("minute"))
        .alias("data"),
        (pl.col("present").list.len() > 0).alias("any_present"),
    ).filter(~pl.col("sends"))
    keys = list(params)
    out = _holes(judged, keys, params, book)
    out += _incomplete(judged, keys, params)
    return out


def _holes(
    judged: pl.DataFrame,
    keys: list[tuple[str, str]],
    params: Mapping[tuple[str, str], OutletParams],
    book: MarkingBook,
) -> list[Finding]:
    """The outlet's own condition: each hour without data between two judged hours holds,
    an hour with records ends it."""
    rows: list[tuple[int, int, str | None, str]] = []
    gaps = judged.filter(pl.col("hour") - pl.col("before") > HOUR)
    for okey, before, hour, data in gaps.select("okey", "before", "hour", "data").iter_rows():
        e, o = keys[okey]
        rows += [
            (okey, h, "warning", data)
            for h in range(before + HOUR, hour, HOUR)
            if not stop_marked(book, e, o, "", h)
        ]
    seen = judged.filter(pl.col("any_present")).select(
        "okey", "hour", pl.lit(None, dtype=pl.String).alias("tier"), "data"
    )
    schema = {"okey": pl.Int64, "hour": pl.Int64, "tier": pl.String, "data": pl.String}
    windows = (
        pl.concat([pl.DataFrame(rows, schema=schema, orient="row"), seen.cast(schema)])  # type: ignore[arg-type]
        .sort("okey", "hour")
        .with_columns(pl.lit(None, dtype=pl.Float64).alias("limit"))
    )
    changes = level_changes(windows, "okey")
    versions = Versions(params)
    out = []
    for okey, hour, state, data in changes.select("okey", "hour", "state", "data").iter_rows():
        evidence: dict[str, Any] = {"missing": True, "data": data} if state == "fire" else {}
        out.append(_finding(params[keys[okey]], versions[keys[okey]], state, None, hour, evidence))
    return out


def _incomplete(
    judged: pl.DataFrame,
    keys: list[tuple[str, str]],
    params: Mapping[tuple[str, str], OutletParams],
) -> list[Finding]:
    """Each configured factor's condition, from the first hour its records came on."""
    configured = pl.DataFrame(
        [(k, code) for k, p in enumerate(params.values()) for code in sorted(p.factors)],
        schema={"okey": pl.Int64, "factor": pl.String},
        orient="row",
    ).with_row_index("fkey")
    first = (
        judged.select("okey", "hour", "present")
        .explode("present")
        .group_by("okey", pl.col("present").alias("factor"))
        .agg(pl.col("hour").min().alias("first"))
    )
    carried = configured.join(first, on=["okey", "factor"])
    windows = (
        judged.select("okey", "hour", "present", "any_present", "data")
        .join(carried, on="okey")
        .filter(pl.col("hour") >= pl.col("first"))
        .with_columns(
            pl.when(pl.col("any_present") & ~pl.col("present").list.contains(pl.col("factor")))
            .then(pl.lit("warning"))
            .alias("tier"),
            pl.lit(None, dtype=pl.Float64).alias("limit"),
        )
        .sort("fkey", "hour")
    )
    changes = level_changes(windows, "fkey")
    versions = Versions(params)
    out = []
    for okey, code, hour, state, data in changes.select(
        "okey", "factor", "hour", "state", "data"
    ).iter_rows():
        evidence = {"incomplete": True, "data": data}
        out.append(_finding(params[keys[okey]], versions[keys[okey]], state, code, hour, evidence))
    return out


def _finding(
    p: OutletParams,
    version: str,
    state: State,
    code: str | None,
    hour: int,
    evidence: dict[str, Any],
) -> Finding:
    window = (hour, hour + HOUR)
    return outlet_finding(p, version, "B7", state, code, window, "warning", None, None, evidence)
