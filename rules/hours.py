"""Layer 1: readings of one outlet-hour → one aggregate per factor.

The streaming engine builds these incrementally and the batch engine with polars; the two are
compared in the tests. Sums are fixed-point integers (value × 10^6, rounded half up) so that
they do not depend on the order readings arrive in or are added up in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
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
    min_valid: int | None = None  # fixed-point extremes of the valid values
    max_valid: int | None = None
    zero_run: int = 0  # longest run of consecutive zero values reached in the hour (records)
    const_run: int = 0  # longest run of consecutive identical non-zero values (records)
    # Sub-hour periods (A5-2: five-minute means of the furnace temperature) whose mean of the
    # valid values lies below the factor's lower bound, and the lowest period mean (fixed).
    low_periods: int = 0
    lowest_period: int | None = None

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


class RunState:
    """Zero and constant runs of one factor, carried from one closed hour to the next.

    A run continues only over consecutive records (exactly one minute interval apart) that
    are *eligible*: a valid flag, a value, not marked, and the outlet producing (a valid flow
    of 0 at the same time means it is not). Zero values extend the zero run; identical
    non-zero values the constant run.
    """

    __slots__ = ("const", "last_fixed", "last_t", "zero")

    def __init__(self) -> None:
        self.last_t = -(2**62)
        self.last_fixed = 0
        self.zero = 0
        self.const = 0

    def step(self, t: int, fixed: int | None, eligible: bool, interval_s: int) -> tuple[int, int]:
        consecutive = t - self.last_t == interval_s
        if not eligible or fixed is None:
            self.zero = self.const = 0
        elif fixed == 0:
            self.zero = self.zero + 1 if consecutive else 1
            self.const = 0
        else:
            same = consecutive and self.const > 0 and fixed == self.last_fixed
            self.const = self.const + 1 if same else 1
            self.zero = 0
        self.last_t = t
        self.last_fixed = fixed if fixed is not None else 0
        return self.zero, self.const


def aggregate(
    minutes: Iterable[MinuteRecord],
    device: Iterable[DeviceHour],
    valid_flags: frozenset[str],
    runs: dict[str, RunState] | None = None,
    interval_s: int = 600,
    flow_code: str | None = None,
    periods: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, HourAgg]:
    """The hour's aggregates per factor, from already de-duplicated records.

    ``runs`` carries the zero/constant runs across hours (records must come hour by hour in
    event-time order); without it runs are not computed. ``periods`` maps a factor to
    (period length s, fixed-point lower bound) for the sub-hour period means of A5-2.
    """
    records = sorted(minutes, key=lambda r: (r.factor, r.t))
    not_producing = {
        r.t
        for r in records
        if r.factor == flow_code
        and r.value is not None
        and r.flag in valid_flags
        and not r.marked
        and r.value <= 0
    }
    acc: dict[str, list[int]] = {}
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    longest: dict[str, list[int]] = {}  # factor → [zero run, constant run]
    for r in records:
        a = acc.get(r.factor)
        if a is None:
            a = acc[r.factor] = [0] * 11
            longest[r.factor] = [0, 0]
        a[0] += 1
        fixed = None
        if r.marked:
            a[3] += 1
        elif r.value is not None and r.flag in valid_flags:
            fixed = to_fixed(r.value)
            a[1] += 1
            a[2] += fixed
            low[r.factor] = min(low.get(r.factor, fixed), fixed)
            high[r.factor] = max(high.get(r.factor, fixed), fixed)
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
        if runs is not None:
            state = runs.get(r.factor)
            if state is None:
                state = runs[r.factor] = RunState()
            eligible = fixed is not None and r.t not in not_producing
            zero, const = state.step(r.t, fixed, eligible, interval_s)
            best = longest[r.factor]
            best[0] = max(best[0], zero)
            best[1] = max(best[1], const)
    lows = _low_periods(records, periods, valid_flags) if periods else {}
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
            low.get(f),
            high.get(f),
            longest[f][0],
            longest[f][1],
            *lows.get(f, (0, None)),
        )
        for f, a in acc.items()
    }
    for d in device:
        base = out.get(d.factor, EMPTY)
        out[d.factor] = base._replace(
            dev_value=d.value, dev_flag=d.flag, dev_zs=d.zs, dev_marked=d.marked
        )
    return out


def _low_periods(
    records: list[MinuteRecord],
    periods: Mapping[str, tuple[int, int]],
    valid_flags: frozenset[str],
) -> dict[str, tuple[int, int | None]]:
    """Per factor: how many periods have a mean of valid values below the bound, and the
    lowest period mean (fixed-point, floored). A record counts in the period its time is in."""
    sums: dict[tuple[str, int], list[int]] = {}
    for r in records:
        spec = periods.get(r.factor)
        if spec is None or r.marked or r.value is None or r.flag not in valid_flags:
            continue
        acc = sums.setdefault((r.factor, r.t // spec[0]), [0, 0])
        acc[0] += to_fixed(r.value)
        acc[1] += 1
    out: dict[str, tuple[int, int | None]] = {}
    for (factor, _), (total, n) in sums.items():
        bound = periods[factor][1]
        low, lowest = out.get(factor, (0, None))
        mean = total // n
        out[factor] = (
            low + (total < bound * n),
            mean if lowest is None else min(lowest, mean),
        )
    return out
