"""``Level`` (``rules.firing``) over columns: the fire and clear of a condition judged window
by window, for the batch engine's rules that are judged in columns (``rules.judge_columns``).

The same semantics as ``Level.judge`` called once per judged window of each key, in order: a
window in which the condition holds fires (every such window), the first judged window in
which it no longer holds clears naming what held (its tier and limit), and any other window
finds nothing. Windows that were not judged are not rows here, so they change nothing, as a
rule that does not ask changes nothing in ``Level``. A batch starts with nothing held.
``tests/rules/test_firing_columns.py`` checks the two agree on random sequences.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def level_changes(windows: Frame, key: str) -> Frame:
    """The rows of ``windows`` that fire or clear, with ``state`` ("fire" | "clear").

    ``windows``: the judged windows of each condition (``key``: one column), sorted by key
    and then in judging order, with the condition that holds in each as ``tier`` (null:
    nothing holds) and ``limit``. On a clear row ``tier`` and ``limit`` become what held in
    the window before (as ``Level`` names the condition a clear ends); every other column is
    the row's own. (Over sorted rows the window before is the row before, unless the key
    begins there: no grouping, which cost several times as much.)"""
    begins = pl.col(key).ne_missing(pl.col(key).shift(1))
    held_tier = pl.when(begins).then(None).otherwise(pl.col("tier").shift(1))
    held_limit = pl.when(begins).then(None).otherwise(pl.col("limit").shift(1))
    holds = pl.col("tier").is_not_null()
    return windows.with_columns(
        pl.when(holds)
        .then(pl.lit("fire"))
        .when(held_tier.is_not_null())
        .then(pl.lit("clear"))
        .alias("state"),
        pl.when(holds).then(pl.col("tier")).otherwise(held_tier).alias("tier"),
        pl.when(holds).then(pl.col("limit")).otherwise(held_limit).alias("limit"),
    ).filter(pl.col("state").is_not_null())
