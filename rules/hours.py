"""Layer 1: readings of one outlet-hour → one aggregate per factor.

The streaming engine builds these incrementally and the batch engine with polars; the two are
compared in the tests. Sums are fixed-point integers (value × 10^6, rounded half up) so that
they do not depend on the order readings arrive in or are added up in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

FIXED = 1_000_000
INVALID_FLAG_ORDER = ("D", "M", "C", "B")  # the hour takes the dominant invalid cause (S8)


def to_fixed(value: float) -> int:
    """value × 10^6 rounded half up: the same operations polars performs in batch."""
    return math.floor(value * FIXED + 0.5)


class MinuteRecord(NamedTuple):
    """A minute-data value (CN 2051) as the hour aggregation needs it."""

    factor: str
    t: int
    value: float | None
    flag: str  # "N" when the packet gave none
    zs: float | None  # the reported converted value (ZsAvg), when there is one
    marked: bool  # inside a marked period (标记)


class DeviceHour(NamedTuple):
    """The device's own hour value (CN 2061)."""

    factor: str
    t: int
    value: float | None
    flag: str
    zs: float | None
    marked: bool


class HourAgg(NamedTuple):
    """One factor of one outlet-hour."""

    n: int  # minute records
    n_valid: int  # valid flag, a value, not marked
    sum_valid: int  # fixed-point sum of the valid values
    n_marked: int
    n_d: int
    n_m: int
    n_c: int
    n_b: int
    n_t: int  # values at or over the instrument range (flag T)
    zs_n: int  # valid records that also report a converted value
    zs_sum: int
    dev_value: float | None  # the device's own hour value
    dev_flag: str | None
    dev_zs: float | None
    dev_marked: bool

    @property
    def invalid_flag(self) -> str | None:
        """The dominant invalid flag of the hour (D > M > C > B), if any."""
        for flag, n in zip(
            INVALID_FLAG_ORDER, (self.n_d, self.n_m, self.n_c, self.n_b), strict=True
        ):
            if n:
                return flag
        return None


EMPTY = HourAgg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None, False)


def aggregate(
    minutes: Iterable[MinuteRecord], device: Iterable[DeviceHour], valid_flags: frozenset[str]
) -> dict[str, HourAgg]:
    """The hour's aggregates per factor, from already de-duplicated records."""
    acc: dict[str, list[int]] = {}
    for r in minutes:
        a = acc.get(r.factor)
        if a is None:
            a = acc[r.factor] = [0] * 11
        a[0] += 1
        if r.marked:
            a[3] += 1
        elif r.value is not None and r.flag in valid_flags:
            a[1] += 1
            a[2] += to_fixed(r.value)
            if r.zs is not None:
                a[9] += 1
                a[10] += to_fixed(r.zs)
        if r.flag == "D":
            a[4] += 1
        elif r.flag == "M":
            a[5] += 1
        elif r.flag == "C":
            a[6] += 1
        elif r.flag == "B":
            a[7] += 1
        elif r.flag == "T":
            a[8] += 1
    out = {
        f: HourAgg(
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            a[5],
            a[6],
            a[7],
            a[8],
            a[9],
            a[10],
            None,
            None,
            None,
            False,
        )
        for f, a in acc.items()
    }
    for d in device:
        base = out.get(d.factor, EMPTY)
        out[d.factor] = base._replace(
            dev_value=d.value, dev_flag=d.flag, dev_zs=d.zs, dev_marked=d.marked
        )
    return out
