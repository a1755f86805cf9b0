"""Python's ``round(x, digits)`` and division by a constant over a polars column, exactly:
for values computed in columns that must equal what the Python code computes (the hour
points the API shows, the batch engine's conditions on rounded values and hour values:
``rules.judge_columns``)."""

from __future__ import annotations

from typing import Final

import polars as pl

# Dekker's split of a double into two halves of 26 bits (Veltkamp's constant 2^27 + 1).
_SPLIT: Final = 134_217_729.0
# Beyond 2^52 / 10^digits, x·10^digits has no fraction left to round: x is returned as it
# is, as Python's round() returns it (for 6 digits about 4.5e9: no concentration comes near).
_WHOLE: Final = 2.0**52


def divided(x: pl.Expr, by: float) -> pl.Expr:
    """``x / by`` correctly rounded, as Python divides. polars divides by a constant as a
    product with its reciprocal, which is not (458.20937999999995 for 458.20938): the divisor
    is made a column of its own."""
    return x / (x.is_null().cast(pl.Float64) * 0.0 + by)


def _halves(x: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    c = x * _SPLIT
    high = c - (c - x)
    return high, x - high


def rounded(x: pl.Expr, digits: int = 6) -> pl.Expr:
    """``x`` rounded to ``digits`` decimals exactly as Python's ``round(x, digits)``: half to
    even on the exact binary value. polars' own ``round`` rounds x·10^digits as computed in
    floating point, and differs from Python's at ties (a mean like 40.1234565, common with
    fixed-point sums divided by a small count). Written by hand because no library rounds a
    column so: the exact product x·10^digits is p + err (Dekker's two-product, from plain
    multiplications), and only when p lands on a half does err decide which way."""
    scale = 10.0**digits
    p = x * scale
    x_high, x_low = _halves(x)
    s_high = float(scale * _SPLIT - (scale * _SPLIT - scale))
    s_low = scale - s_high
    err = ((x_high * s_high - p) + x_high * s_low + x_low * s_high) + x_low * s_low
    below = p.floor()
    tie = (p - below) == 0.5
    whole = (
        pl.when(tie & (err > 0))
        .then(below + 1)
        .when(tie & (err < 0))
        .then(below)
        .otherwise(p.round(0, mode="half_to_even"))
    )
    quotient = divided(whole, scale)
    # A negative x rounded to zero keeps its sign (-0.0), as Python's round keeps it.
    signed = pl.when((quotient == 0) & (x < 0)).then(-0.0).otherwise(quotient)
    return pl.when(x.abs() >= _WHOLE / scale).then(x).otherwise(signed)
