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
from typing import NamedTuple

import polars as pl

from rules.batch import ACCEPTED_SCHEMA, INTERVALS, MEASUREMENT_SCHEMA
from rules.hours import DeviceHour
from rules.timebase import HOUR

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
    come out as the stream saw them."""
    if not details:
        return pl.DataFrame(schema=MEASUREMENT_SCHEMA)
    outlets = {(e, o): k for k, (e, o) in enumerate(dict.fromkeys((r[0], r[1]) for r in details))}
    names = pl.DataFrame(
        list(outlets), schema={"enterprise_id": pl.String, "outlet_id": pl.String}, orient="row"
    ).with_row_index("okey")
    decoded = _decoded(details, outlets, in_series_order=False)
    return (
        decoded.with_row_index("seq")
        .join(names, on="okey", maintain_order="left")
        .with_columns(
            pl.col("seq").cast(pl.Int64),
            pl.col("factor").cast(pl.String),
            pl.col("interval").cast(pl.String),
            received=pl.col("t") + ARRIVAL_DELAY_S,
        )
        .select(list(MEASUREMENT_SCHEMA))
        .cast(MEASUREMENT_SCHEMA)  # type: ignore[arg-type]
    )


class StoredRecords(NamedTuple):
    """Stored outlet-hours for the batch engine (``BatchEngine.run_accepted``)."""

    records: pl.DataFrame  # accepted records (``rules.batch.ACCEPTED_SCHEMA``), series order
    others: pl.DataFrame  # the rows of outlets with real-time records, to be accepted
    unconfigured: int  # records of outlets not judged (left out)


def stored_records(
    details: Sequence[DetailRow], okeys: Mapping[tuple[str, str], int]
) -> StoredRecords:
    """The records of many outlet-hours (rows in any order) as the batch engine's accepted
    records, keyed by ``okeys`` (the engine's outlet numbers), sorted by outlet, factor and
    hour: what the
    stream engine took is what the rules take again, without the acceptance by arrival (the
    arrival times are not kept; a record arrives a minute after its time, never late, and
    each record is there once).

    The outlets with real-time records go through acceptance all the same
    (``StoredRecords.others``, their rows in hour order): which of them make an hour depends
    on when the outlet's minute records arrived, and that order is only the rows'."""
    configured, others, unconfigured = [], [], 0
    with_realtime = {(e, o) for e, o, _s, layout, _d in details if ":r:" in layout}
    for row in details:
        key = (row[0], row[1])
        if key not in okeys:
            unconfigured += _records(row[3])
        elif key in with_realtime:
            others.append(row)
        else:
            configured.append(row)
    records = _decoded(configured, okeys, in_series_order=True)
    others.sort(key=lambda row: (row[2], row[0], row[1]))
    return StoredRecords(records, rows_frame(others), unconfigured)


def _records(layout: str) -> int:
    return sum(n for _f, _k, n in _blocks(layout))


def _decoded(
    details: Sequence[DetailRow], okeys: Mapping[tuple[str, str], int], *, in_series_order: bool
) -> pl.DataFrame:
    """The records of ``details`` (of outlets in ``okeys``) in ``ACCEPTED_SCHEMA``: in row
    order, or sorted by outlet, factor, interval and hour (the device hour values last), the
    order the batch engine judges series in.

    Decoded in bulk: the rows' data joined into one buffer of doubles, and each column taken
    from it by an index polars computes from the blocks' offsets; the only Python loop is over
    the rows (a layout, the same hour after hour, parsed once)."""
    if not details:
        return pl.DataFrame(schema=ACCEPTED_SCHEMA)
    layouts: dict[str, int] = {}
    keys: list[int] = []
    row_layouts: list[int] = []
    starts: list[int] = []
    by_size: dict[int, list[bytes]] = {}  # the rows' data by its length: see _flat
    placed: list[tuple[int, int]] = []
    for enterprise, outlet, start, layout, data in details:
        keys.append(okeys[(enterprise, outlet)])
        starts.append(start)
        row_layouts.append(layouts.setdefault(layout, len(layouts)))
        same = by_size.setdefault(len(data), [])
        placed.append((len(data), len(same)))
        same.append(data)
    offsets, at = {}, 0
    for size, same in by_size.items():
        offsets[size] = at
        at += len(same) * (size // 8)
    bases = [offsets[size] + k * (size // 8) for size, k in placed]
    blocks = [
        (number, order, factor, kind, n, at)
        for layout, number in layouts.items()
        for order, (factor, kind, n, at) in enumerate(_layout(layout))
    ]
    factors = pl.Enum(sorted({b[2] for b in blocks}))
    layout_frame = pl.DataFrame(
        blocks,
        schema={
            "layout": pl.Int64,
            "order": pl.Int64,
            "factor": factors,
            "interval": INTERVALS,
            "n": pl.Int64,
            "at": pl.Int64,
        },
        orient="row",
    )
    blocks_frame = (
        pl.DataFrame(
            {"okey": keys, "layout": row_layouts, "base": bases, "start": starts},
            schema={"okey": pl.Int32, "layout": pl.Int64, "base": pl.Int64, "start": pl.Int64},
        )
        .with_row_index("row")
        .join(layout_frame, on="layout")
    )
    order: list[str | pl.Expr] = ["row", "order"]
    if in_series_order:  # as one integer: a sort on one column moves the rows once
        series = pl.col("okey").cast(pl.Int64) * len(factors.categories)
        series = series + pl.col("factor").to_physical().cast(pl.Int64)
        kinds = len(INTERVALS.categories)
        series = series * kinds + pl.col("interval").to_physical().cast(pl.Int64)
        span = len(okeys) * len(factors.categories) * kinds
        last = (pl.col("interval") == "hour").cast(pl.Int64) * span  # device values last
        # then by hour (a series has one block an hour), whatever the rows' order
        first, final = min(starts), max(starts)
        hour = (pl.col("start") - first) // HOUR
        order = [(last + series) * ((final - first) // HOUR + 1) + hour]
    flat = pl.lit(_flat(by_size))
    off = pl.col("base") + pl.col("at")
    # A block's extremes taken once per block (every record of it carries them), not once
    # per record: a gather from the few blocks costs a fraction of one from the buffer.
    blocks_frame = blocks_frame.sort(order).select(
        "okey",
        "factor",
        "interval",
        "n",
        off=off,
        minimum=flat.gather(off).fill_nan(None),
        maximum=flat.gather(off + 1).fill_nan(None),
    )
    # per record: its block (for the block's columns) and where its doubles start; the
    # columns taken in one select, which polars computes in parallel
    block = blocks_frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).repeat_by("n").explode()
    ).to_series()
    records = blocks_frame.select(
        pl.int_ranges(pl.col("off") + 2, pl.col("off") + 2 + WIDTH * pl.col("n"), WIDTH)
        .explode()
        .cast(pl.UInt64)
    ).to_series()
    index, t = pl.col("index"), pl.col("t")
    return (
        blocks_frame.select(
            pl.col("okey", "factor", "interval", "minimum", "maximum").gather(block)
        )
        .with_columns(index=records)
        .with_columns(
            t=flat.gather(index).cast(pl.Int64),
            value=flat.gather(index + 1).fill_nan(None),
            flag=_flags(flat.gather(index + 3).cast(pl.Int64)),
            zs=flat.gather(index + 2).fill_nan(None),
        )
        .with_columns(hour=t - t % HOUR)
        .select(list(ACCEPTED_SCHEMA))
    )


def _flat(by_size: Mapping[int, list[bytes]]) -> pl.Series:
    """The doubles of the rows' data, the rows of each length in turn: polars reads each
    row's bytes as an array of that many doubles (little-endian, as stored), which costs a
    fraction of building a series from Python's ``array``."""
    parts = [
        pl.Series(same, dtype=pl.Binary)
        .bin.reinterpret(dtype=pl.Array(pl.Float64, size // 8), endianness="little")
        .arr.explode()
        for size, same in by_size.items()
    ]
    return pl.concat(parts) if parts else pl.Series(dtype=pl.Float64)


def _flags(code: pl.Expr) -> pl.Expr:
    """The flag characters of the records' codes, gathered from a table of the 256 byte
    values."""
    return pl.lit(_FLAG_TABLE).gather((code % 256).cast(pl.UInt32))


_FLAG_TABLE = pl.Series("flag", [chr(i) for i in range(256)], dtype=pl.String)


__all__ = [
    "KINDS",
    "DetailRow",
    "MinuteDetail",
    "Point",
    "StoredRecords",
    "encode",
    "points",
    "readings_frame",
    "rows_frame",
    "stored_records",
]
