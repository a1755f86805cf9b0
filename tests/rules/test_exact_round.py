"""A column rounds as Python's ``round`` rounds (``rules.exact_round``): to 6 decimals (the
hour points the API shows) and to 1 (B1's and B2's minutes in the batch engine's columns)."""

from __future__ import annotations

import math
import random

import polars as pl

from rules.exact_round import rounded


def _cases() -> list[float | None]:
    rng = random.Random(22)
    out: list[float | None] = [rng.uniform(-500, 500) for _ in range(20_000)]
    # Ties at the seventh decimal, as a mean of fixed-point sums over a small count makes them
    out += [round(rng.uniform(0, 500), 7) for _ in range(20_000)]
    out += [k / 2e6 for k in range(1, 40_000, 2)]
    out += [-(k / 2e6) for k in range(1, 4_000, 2)]
    out += [(k * 10**6 + 500_001) / 1e12 for k in range(200)]
    # Flows in m³/h, the largest values an outlet reports, and beyond what rounding changes
    out += [rng.uniform(1e5, 5e7) for _ in range(2_000)]
    out += [5e9 + 0.3, 2.0**53, 1e20, -1e20]
    out += [0.0, -0.0, 1e-9, -1e-9, 1e-7, 5e-7, -5e-7, 1.5e-6, 2.5e-6, None]
    out += [math.inf, -math.inf]
    return out


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def test_a_column_rounds_as_pythons_round_ties_included():
    values = _cases()
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    got = frame.select(rounded(pl.col("x"))).to_series().to_list()
    wrong = [
        (x, g, round(x, 6) if x is not None else None)
        for x, g in zip(values, got, strict=True)
        if not _same(g, round(x, 6) if x is not None else None)
    ]
    assert wrong == []
    nan = pl.DataFrame({"x": [math.nan]}).select(rounded(pl.col("x"))).item()
    assert math.isnan(nan)


def test_polars_own_round_differs_at_the_ties_which_is_why():
    ties = [k / 2e6 for k in range(1, 40_000, 2)]
    own = pl.Series(ties).round(6).to_list()
    assert any(a != round(x, 6) for a, x in zip(own, ties, strict=True))


def test_minutes_of_a_run_round_to_a_tenth_as_python_rounds_them():
    # B1 and B2: round(records × interval / 60, 1), near the ties of every interval in use
    seconds = [n * i for i in (1, 5, 10, 15, 20, 30, 60, 90, 600) for n in range(400)]
    minutes = pl.DataFrame({"s": seconds}).select(pl.col("s") / (pl.col("s") * 0 + 60))
    got = minutes.select(rounded(pl.col("s"), 1)).to_series().to_list()
    assert got == [round(s / 60, 1) for s in seconds]
