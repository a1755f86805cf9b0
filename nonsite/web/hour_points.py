"""An outlet's hour points (the API's ``HourPoint``) made in columns from a frame of kept hours
(``rules.history_store.read_hour_frame``): a year is 43,800 points, and making a Python dict
of each, then serialising them, was most of a year's answer.

The points' values are rounded as Python's ``round(x, 6)`` rounds them
(``rules.exact_round.rounded``), so the chart shows the digits the rest of nonsite shows (a
finding's evidence, the CSV export).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from rules.exact_round import rounded
from rules.history import HourRecord
from rules.history_store import HOUR_ROW, HOUR_SCHEMA


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
        # (rounded on the column, then nulled: rounded reads its argument many times)
        value=pl.when(valid).then(rounded(pl.col("value"))),
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
