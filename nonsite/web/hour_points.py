"""An outlet's hour points (the API's ``HourPoint``) made in columns from a frame of kept hours
(``rules.history_store.read_hour_frame``): a year is 43,800 points, and making a Python dict
of each, then serialising them, was most of a year's answer.

The points' values are rounded as Python's ``round(x, 6)`` rounds them (:func:`rounded`), so
the chart shows the digits the rest of nonsite shows (a finding's evidence, the CSV export).
"""

from __future__ import annotations

import json
from typing import Any, Final

import polars as pl

from rules.history import HourRecord
from rules.history_store import HOUR_ROW, HOUR_SCHEMA

# Dekker's split of a double into two halves of 26 bits (Veltkamp's constant 2^27 + 1).
_SPLIT: Final = 134_217_729.0
# Beyond this |x|, x·10^digits has no fraction left to round: x is returned as it is, as
# Python's round() returns it (up to 2^52 / 10^6; no concentration or flow comes near).
_LARGEST: Final = 2.0**52 / 10.0**6


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
    # polars divides by a constant as a product with its reciprocal, which is not correctly
    # rounded (458.20937999999995 for 458.20938): the divisor is made a column of its own.
    divisor = x.is_null().cast(pl.Float64) * 0.0 + scale
    quotient = whole / divisor
    # A negative x rounded to zero keeps its sign (-0.0), as Python's round keeps it.
    signed = pl.when((quotient == 0) & (x < 0)).then(-0.0).otherwise(quotient)
    return pl.when(x.abs() >= _LARGEST).then(x).otherwise(signed)


def records_frame(records: list[HourRecord]) -> pl.DataFrame:
    """Hour records (explained from raw readings) as rows of a kept-hours frame."""
    rows = [tuple(getattr(r, f) for f in HOUR_ROW) for r in records]
    return pl.DataFrame(rows, schema=HOUR_SCHEMA, orient="row")


def hour_points(hours: pl.DataFrame) -> pl.DataFrame:
    """The points of a kept-hours frame: its factor, then ``HourPoint``'s fields in order."""
    valid = pl.col("valid")
    return hours.select(
        "factor",
        t=pl.from_epoch("start", "s").dt.convert_time_zone("Asia/Shanghai"),
        value=rounded(pl.when(valid).then(pl.col("value"))),
        valid=valid,
        source="source",
        flag="flag",
        interval_s="interval_s",
        converted=rounded(pl.col("converted")),
        valid_minutes="valid_minutes",
        n="n",
        n_valid="n_valid",
        n_marked="n_marked",
        flags=pl.struct(D="n_d", M="n_m", C="n_c", B="n_b", T="n_t", F="n_f"),
        marked=(pl.col("n_marked") > 0) | pl.col("device_marked"),
        device_value="device_value",
        device_flag="device_flag",
    )


def points_json(points: pl.DataFrame) -> bytes:
    """``{factor: [point, ...]}`` as JSON, factors in the frame's order, written by polars (a
    year's points in tens of milliseconds, its floats written as Python and pydantic write
    them, the time in China time with its offset)."""
    encoded = points.select(
        "factor",
        point=pl.struct(
            pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"), pl.exclude("factor", "t")
        ).struct.json_encode(),
    )
    joined = encoded.group_by("factor", maintain_order=True).agg(pl.col("point").str.join(","))
    body = ",".join(f"{json.dumps(code)}:[{text}]" for code, text in joined.iter_rows())
    return ("{" + body + "}").encode()


def points_dicts(points: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """``{factor: [point, ...]}`` as dicts (to validate into models, or to write a CSV)."""
    return {
        code: part.to_dicts()
        for (code,), part in points.partition_by("factor", as_dict=True, include_key=False).items()
    }
