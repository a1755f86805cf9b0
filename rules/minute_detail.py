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


def readings_frame(details: Sequence[MinuteDetail]) -> pl.DataFrame:
    """The records of many outlet-hours as the batch engine's measurement frame
    (``rules.batch.MEASUREMENT_SCHEMA``), in row order, each arriving a minute after its time.
    Each record carries its block's extremes as its Min and Max: the hour's extremes (A4V)
    come out as the stream saw them. Decoded in bulk: the blocks' records are joined into one
    buffer and split into columns by polars, the only Python loop being one per block."""
    record_parts: list[bytes] = []
    segments: list[tuple[str, str, str, str, int, float, float]] = []
    for d in details:
        data = d.data
        at = 0
        for factor, kind, n in _blocks(d.layout):
            low, high = _doubles(data[at : at + 16])
            body = at + 16
            record_parts.append(data[body : body + 32 * n])
            segments.append((d.enterprise_id, d.outlet_id, factor, KINDS[kind], n, low, high))
            at = body + 32 * n
    if not segments:
        return pl.DataFrame(schema=MEASUREMENT_SCHEMA)
    flat = pl.Series("x", _doubles(b"".join(record_parts)))
    t = flat.gather_every(WIDTH, 0).cast(pl.Int64)
    code = flat.gather_every(WIDTH, 3).cast(pl.Int64)
    seg = pl.DataFrame(
        segments,
        schema={
            "enterprise_id": pl.String,
            "outlet_id": pl.String,
            "factor": pl.String,
            "interval": pl.String,
            "n": pl.Int64,
            "minimum": pl.Float64,
            "maximum": pl.Float64,
        },
        orient="row",
    )
    per_record = seg.select(pl.all().exclude("n").repeat_by(pl.col("n")).explode())
    frame = per_record.with_columns(
        seq=pl.int_range(pl.len(), dtype=pl.Int64),
        t=t,
        received=t + ARRIVAL_DELAY_S,
        value=flat.gather_every(WIDTH, 1).fill_nan(None),
        zs=flat.gather_every(WIDTH, 2).fill_nan(None),
        flag=_flags(code),
    ).with_columns(
        pl.col("minimum").fill_nan(None),
        pl.col("maximum").fill_nan(None),
    )
    return frame.select(list(MEASUREMENT_SCHEMA)).cast(MEASUREMENT_SCHEMA)  # type: ignore[arg-type]


def _flags(code: pl.Series) -> pl.Series:
    """The flag characters of the records' codes, through a table of the 256 byte values."""
    table = {i: chr(i) for i in range(256)}
    return (code % 256).replace_strict(table, return_dtype=pl.String)


__all__ = ["KINDS", "MinuteDetail", "Point", "encode", "points", "readings_frame"]
