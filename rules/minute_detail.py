"""The minute detail the rules judged an outlet-hour on, kept as the hour closes: the records
of its minute data (CN 2051) and, for an outlet without them, of its real-time data (CN 2011),
as the stream engine held them (``rules.stream``: after acceptance, one record per factor and
time, the first that arrived).

It answers "this outlet, these hours" from one index range of the service database (a
cluster's web nodes read it as a single machine's do; the raw frames are in the stream) and
feeds ``nonsite replay --from-store`` over months without decoding a frame.

Written by hand, why: a row is one outlet-hour, a few dozen records; Arrow IPC (what polars
writes) spends more on its schema than on them, and no library packs a handful of typed
columns smaller or reads millions back faster than ``array`` does. The layout, per row:

- ``layout``: ``factor:kind:n`` per block, ``;``-separated; kind ``m`` (minute), ``r``
  (real-time) or ``h`` (the device's own hour value, CN 2061: one record); n records;
- ``data``: the blocks in that order, each ``2 + 4n`` float64 in little-endian order: the
  lowest and the highest of its valid records' values and Min/Max fields (NaN: none valid),
  then per record its time (epoch s), value, ZsAvg (NaN: none) and code (the flag's character
  + 256 when inside a marked period + 512 when inside a declared 停产 marking).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import isnan

import polars as pl

from rules.batch import MEASUREMENT_SCHEMA
from rules.hours import DeviceHour

KINDS = {"m": "minute", "r": "rtd", "h": "hour"}
WIDTH = 4  # doubles per record
_NAN = float("nan")
ARRIVAL_DELAY_S = 60  # a replayed record "arrives" a minute after its time (never late)


@dataclass(frozen=True, slots=True)
class MinuteDetail:
    """One outlet-hour's records, packed."""

    enterprise_id: str
    outlet_id: str
    start: int
    layout: str
    data: bytes

    @property
    def records(self) -> int:
        return sum(int(block.rsplit(":", 1)[1]) for block in self.layout.split(";") if block)


@dataclass(frozen=True, slots=True)
class Point:
    """One record, as a chart shows it."""

    t: int
    interval: str  # "minute" or "rtd"
    value: float | None
    flag: str
    zs: float | None
    marked: bool


def _little(buf: array[float]) -> bytes:
    if sys.byteorder == "little":
        return buf.tobytes()
    swapped = array("d", buf)
    swapped.byteswap()
    return swapped.tobytes()


def _doubles(data: bytes) -> array[float]:
    out = array("d")
    out.frombytes(data)
    if sys.byteorder != "little":
        out.byteswap()
    return out


def encode(
    enterprise_id: str,
    outlet_id: str,
    start: int,
    minutes: Mapping[str, array[float]],
    realtime: Mapping[str, array[float]] | None,
    device: Mapping[str, DeviceHour],
) -> MinuteDetail | None:
    """An outlet-hour's detail from the stream engine's open-hour arrays (each ``2 + 4n``
    doubles, this layout's own) and its device hour values; None without any record."""
    layout: list[str] = []
    parts: list[bytes] = []
    for kind, store in (("m", minutes), ("r", realtime or {})):
        for factor, buf in sorted(store.items()):
            n = (len(buf) - 2) // WIDTH
            if n:
                layout.append(f"{factor}:{kind}:{n}")
                parts.append(_little(buf))
    for factor, dev in sorted(device.items()):
        value = _NAN if dev.value is None else dev.value
        zs = _NAN if dev.zs is None else dev.zs
        code = ord((dev.flag or "N")[0]) + (256 if dev.marked else 0)
        layout.append(f"{factor}:h:1")
        parts.append(_little(array("d", (_NAN, _NAN, dev.t, value, zs, code))))
    if not layout:
        return None
    return MinuteDetail(enterprise_id, outlet_id, start, ";".join(layout), b"".join(parts))


def _blocks(layout: str) -> Iterable[tuple[str, str, int]]:
    for block in layout.split(";"):
        factor, kind, n = block.rsplit(":", 2)
        yield factor, kind, int(n)


def points(details: Iterable[MinuteDetail]) -> dict[str, list[Point]]:
    """Per factor the records of the outlet-hours, in (time, minute before real-time) order."""
    out: dict[str, list[Point]] = {}
    for d in details:
        values = _doubles(d.data)
        at = 0
        for factor, kind, n in _blocks(d.layout):
            mine = out.setdefault(factor, [])
            interval = KINDS[kind]
            for i in range(at + 2, at + 2 + WIDTH * n, WIDTH):
                t, value, zs, code = values[i : i + WIDTH]
                c = int(code)
                mine.append(
                    Point(
                        int(t),
                        interval,
                        None if isnan(value) else value,
                        chr(c & 255),
                        None if isnan(zs) else zs,
                        c & 256 != 0,
                    )
                )
            at += 2 + WIDTH * n
    for items in out.values():
        items.sort(key=lambda p: (p.t, p.interval != "minute"))
    return out


def _layout(layout: str) -> tuple[tuple[str, str, int, int], ...]:
    """A row's blocks: factor, interval, records and the block's offset in doubles."""
    out = []
    at = 0
    for factor, kind, n in _blocks(layout):
        out.append((factor, KINDS[kind], n, at))
        at += 2 + WIDTH * n
    return tuple(out)


# A stored row: enterprise, outlet, hour start, layout, data (what a replay reads, millions
# of records, without an object made for each row).
DetailRow = tuple[str, str, int, str, bytes]


def readings_frame(details: Sequence[MinuteDetail]) -> pl.DataFrame:
    """:func:`rows_frame` of detail objects."""
    return rows_frame([(d.enterprise_id, d.outlet_id, d.start, d.layout, d.data) for d in details])


def rows_frame(details: Sequence[DetailRow]) -> pl.DataFrame:
    """The records of many outlet-hours as the batch engine's measurement frame
    (``rules.batch.MEASUREMENT_SCHEMA``), in row order, each arriving a minute after its time.
    Each record carries its block's extremes as its Min and Max: the hour's extremes (A4V)
    come out as the stream saw them.

    Decoded in bulk: the rows' data joined into one buffer of doubles, and each column taken
    from it by an index polars computes from the blocks' offsets; the only Python loop is over
    the rows (a layout, the same hour after hour, parsed once)."""
    if not details:
        return pl.DataFrame(schema=MEASUREMENT_SCHEMA)
    layouts: dict[str, int] = {}
    ents: list[str] = []
    outlets: list[str] = []
    row_layouts: list[int] = []
    bases: list[int] = []
    base = 0
    for enterprise, outlet, _start, layout, data in details:
        ents.append(enterprise)
        outlets.append(outlet)
        row_layouts.append(layouts.setdefault(layout, len(layouts)))
        bases.append(base)
        base += len(data) // 8
    blocks = [
        (number, order, factor, kind, n, at)
        for layout, number in layouts.items()
        for order, (factor, kind, n, at) in enumerate(_layout(layout))
    ]
    layout_frame = pl.DataFrame(
        blocks,
        schema={
            "layout": pl.Int64,
            "order": pl.Int64,
            "factor": pl.String,
            "interval": pl.String,
            "n": pl.Int64,
            "at": pl.Int64,
        },
        orient="row",
    )
    blocks_frame = (
        pl.DataFrame(
            {"enterprise_id": ents, "outlet_id": outlets, "layout": row_layouts, "base": bases},
            schema_overrides={"layout": pl.Int64, "base": pl.Int64},
        )
        .with_row_index("row")
        .join(layout_frame, on="layout")
        .sort("row", "order")
        .select(
            "enterprise_id",
            "outlet_id",
            "factor",
            "interval",
            "n",
            off=pl.col("base") + pl.col("at"),
        )
        .with_columns(first=pl.col("n").cum_sum() - pl.col("n"))
    )
    flat = pl.Series("x", _doubles(b"".join(row[4] for row in details)))
    per_record = blocks_frame.select(pl.exclude("n").repeat_by(pl.col("n")).explode()).with_columns(
        j=pl.int_range(pl.len(), dtype=pl.Int64) - pl.col("first")
    )
    index = (per_record["off"] + 2 + WIDTH * per_record["j"]).cast(pl.UInt64)
    extremes = per_record["off"].cast(pl.UInt64)
    t = flat.gather(index).cast(pl.Int64)
    code = flat.gather(index + 3).cast(pl.Int64)
    frame = per_record.select("enterprise_id", "outlet_id", "factor", "interval").with_columns(
        seq=pl.int_range(pl.len(), dtype=pl.Int64),
        t=t,
        received=t + ARRIVAL_DELAY_S,
        value=flat.gather(index + 1).fill_nan(None),
        flag=_flags(code),
        zs=flat.gather(index + 2).fill_nan(None),
        minimum=flat.gather(extremes).fill_nan(None),
        maximum=flat.gather(extremes + 1).fill_nan(None),
    )
    return frame.select(list(MEASUREMENT_SCHEMA)).cast(MEASUREMENT_SCHEMA)  # type: ignore[arg-type]


def _flags(code: pl.Series) -> pl.Series:
    """The flag characters of the records' codes, through a table of the 256 byte values."""
    table = {i: chr(i) for i in range(256)}
    return (code % 256).replace_strict(table, return_dtype=pl.String)


__all__ = [
    "KINDS",
    "DetailRow",
    "MinuteDetail",
    "Point",
    "encode",
    "points",
    "readings_frame",
    "rows_frame",
]
