"""The hour points made in columns round as Python rounds (``nonsite.web.hour_points``)."""

from __future__ import annotations

import math
import random

import polars as pl

from nonsite.web.hour_points import rounded


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
