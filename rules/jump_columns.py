"""B6 in columns, for the batch engine: a valid hourly value that jumps by more than k σ of
the factor's last 24 valid hours and by more than a fraction of their mean
(``rules.judge.jump``, the formula's one home).

Why not all in columns: the judge sums the hours exactly (``math.fsum``), and a rolling sum
in columns is not exact, so a column can only say where the answer is sure. Most hours are
sure: their step from the last value is well within the relative part of the bound
(``jump_relative`` × |mean|), which no σ can lower. The rest (a step near or past that part,
a mean near zero) are judged by ``rules.judge.jump`` itself on the same history, and so are
the hours that fire or clear, for their evidence. The level's fire and clear over the
judged hours is ``rules.firing_columns.level_changes``, as for the other column rules.

A factor's history is its valid hours in the batch, in hour order; an hour is judged once
``jump_min_history`` of them came before it (as ``OutletJudge._jump``: a batch starts with
no history).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from rules.findings import Finding
from rules.firing_columns import level_changes
from rules.judge import JUMP_HISTORY, Jump, jump, outlet_finding
from rules.params import OutletParams, Versions
from rules.timebase import HOUR

FACTOR = "fkey"
# How far (relative to the window's mean of |value|) a rolling mean may be from the exact
# one: far above what sums of 24 doubles lose, far below any step worth a finding.
_SURE = 1e-9
_DRIFT = 1e-15  # ten times a double's rounding (2⁻⁵³ ≈ 1.1e-16)


def jump_findings(
    hours: pl.DataFrame, params: Mapping[tuple[str, str], OutletParams]
) -> list[Finding]:
    """B6 over ``hours`` (``rules.judge_columns.closed_hours``: sorted by factor and hour)."""
    value = pl.col("value")
    valued = hours.select(
        "okey", "factor", FACTOR, "hour", "value", "jump_min_history", "jump_relative", "valid",
    ).filter(pl.col("valid") & value.is_not_null()).drop("valid")  # fmt: skip
    row = pl.int_range(pl.len())
    begins = pl.col(FACTOR).ne_missing(pl.col(FACTOR).shift(1))
    prior = value.shift(1)  # within a factor (each expression below is windowed over it)
    since = row - pl.when(begins).then(row).forward_fill()  # the factor's hours before
    frame = valued.with_columns(
        row.alias("row"),
        since.clip(upper_bound=JUMP_HISTORY).alias("n"),
        since.alias("since"),
        (value - prior).abs().over(FACTOR).alias("step"),
        prior.rolling_mean(JUMP_HISTORY, min_samples=1).over(FACTOR).alias("mean"),
        prior.abs().rolling_mean(JUMP_HISTORY, min_samples=1).over(FACTOR).alias("size"),
        prior.abs().cum_max().over(FACTOR).alias("largest"),
    ).filter(pl.col("n") >= pl.col("jump_min_history"))
    # A rolling sum kept by adding and taking away may carry the rounding of every value it
    # passed over, up to about (additions) × 24 × the largest value × 2⁻⁵³: bounded with a
    # factor of ten to spare, beside the window's own.
    drift = _DRIFT * JUMP_HISTORY * pl.col("since") * pl.col("largest")
    margin = pl.col("jump_relative") * pl.max_horizontal(_SURE * pl.col("size"), drift)
    sure_quiet = pl.col("step") < pl.col("jump_relative") * pl.col("mean").abs() - margin
    values = valued.get_column("value").to_list()
    rows, lengths = frame.get_column("row").to_list(), frame.get_column("n").to_list()
    keys = list(params)  # ``okey`` numbers the outlets in this order
    okeys = frame.get_column("okey").to_list()  # named only where judged: few rows

    def judged_at(i: int) -> Jump:
        """``rules.judge.jump`` on judged row ``i``: its history is the rows before it."""
        r = rows[i]
        return jump(params[keys[okeys[i]]], values[r - lengths[i] : r], values[r])

    tiers: list[str | None] = [None] * frame.height
    limits: list[float | None] = [None] * frame.height
    judged: dict[int, Jump] = {}  # what a finding states, judged once
    for i in frame.with_row_index("i").filter(~sure_quiet).get_column("i").to_list():
        found = judged[i] = judged_at(i)
        if found.holds:
            tiers[i], limits[i] = "warning", round(found.bound, 6)
    changes = level_changes(
        frame.with_columns(
            pl.Series("tier", tiers, dtype=pl.String), pl.Series("limit", limits, dtype=pl.Float64)
        ).with_row_index("i"),
        FACTOR,
    )
    out = []
    versions = Versions(params)
    for i, hour, code, state, limit in changes.select(
        "i", "hour", "factor", "state", "limit"
    ).iter_rows():
        outlet = keys[okeys[i]]
        p, version = params[outlet], versions[outlet]
        found = judged[i] if i in judged else judged_at(i)
        window = (hour, hour + HOUR)
        step = round(found.step, 6)
        out.append(
            outlet_finding(
                p, version, "B6", state, code, window, "warning", step, limit, found.evidence
            )
        )
    return out
