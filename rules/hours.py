"""Layer 1: readings of one outlet-hour → one aggregate per factor.

The streaming engine builds these incrementally and the batch engine with polars; the two are
compared in the tests. Sums are fixed-point integers (value × 10^6, rounded half up) so that
they do not depend on the order readings arrive in or are added up in.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import NamedTuple

FIXED = 1_000_000
# The hour takes its most frequent invalid cause; ties go to the first here (S8's order, with
# F, 停运, last: a stopped plant is not a faulty one).
INVALID_FLAG_ORDER = ("D", "M", "C", "B", "F")


# The record interval is read from the data (HJ 212 loggers send minute data every 1–30
# minutes and real-time data every 30–3600 s, and nobody configures that per outlet): the
# most frequent spacing between consecutive records of a factor in an hour, once at least
# ``INTERVAL_EVIDENCE`` spacings agree; the smallest such value of the last 24 hours is used,
# so that an hour with records missing (spacings of two or three intervals) does not pass for
# a coarser logger. Until the data has shown it, the finest interval is assumed: an hour is
# then never taken as better covered than it is (it may be judged invalid, never falsely
# valid).
class Plateau(NamedTuple):
    """B8-7's calibration-like plateau (all [I], ``OutletParams``): how long it lasts, the
    round value it sits at (fixed-point: a multiple of this), and the step into and out of
    it, in per cent of its value."""

    min_s: int = 180
    max_s: int = 900
    round_fixed: int = 10 * 1_000_000
    step_pct: int = 50


PLATEAU = Plateau()
INTERVAL_EVIDENCE = 2
INTERVAL_WINDOW_S = 86400
ASSUMED_MINUTE_INTERVAL_S = 60  # HJ 212's finest MinInterval (1 min)
ASSUMED_REALTIME_INTERVAL_S = 30  # HJ 212's finest RtdInterval (30 s)
REALTIME_SUFFIX = "@rtd"  # run and interval state of a factor's real-time records
# Real-time values (CN 2011) make an outlet's hours only while it has sent no minute data
# (CN 2051) stamped within this long before them: most loggers send both, and minute data
# are the standard's basis for the hour (so real-time values are not even kept then). Half an
# hour: three 10-minute windows, as a minute record arrives after its window; once minute
# data stop, real-time data take over half an hour later.
REALTIME_QUIET_S = 30 * 60


def to_fixed(value: float) -> int:
    """value × 10^6 rounded half up: the same operations polars performs in batch."""
    return math.floor(value * FIXED + 0.5)


class MinuteRecord(NamedTuple):
    """A minute-data value (CN 2051), or a real-time value (CN 2011) of an outlet that sends
    no minute data, as the hour aggregation needs it."""

    factor: str
    t: int
    value: float | None
    flag: str  # "N" when the packet gave none
    zs: float | None  # the reported converted value (ZsAvg), when there is one
    marked: bool  # inside a marked period (标记)
    minimum: float | None = None  # the record's own Min field
    maximum: float | None = None  # ... and Max field
    stop_marked: bool = False  # inside a declared 停产 marking: counted as stopped, like F


class DeviceHour(NamedTuple):
    """The device's own hour value (CN 2061)."""

    factor: str
    t: int
    value: float | None
    flag: str
    zs: float | None
    marked: bool
    minimum: float | None = None  # the packet's Min / Max fields
    maximum: float | None = None


class HourAgg(NamedTuple):
    """One factor of one outlet-hour."""

    n: int  # records (minute records, or real-time records when there are none)
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
    n_f: int = 0  # stopped: flag F (停运), or inside a declared 停产 marking
    interval_s: int = 0  # the record interval the hour is judged with
    seen_interval_s: int = 0  # the interval the data shows (0: not shown yet)
    realtime: bool = False  # the records are real-time values (CN 2011)
    # Fixed-point extremes of the valid records including their own Min/Max fields (the
    # values every reading must respect, pH 6-9), and the device hour's Min/Max fields.
    ext_low: int | None = None
    ext_high: int | None = None
    dev_min: float | None = None
    dev_max: float | None = None
    plateaus: int = 0  # B8-7: calibration-like plateaus that ended in the hour
    plateau_value: int | None = None  # ... the highest of their values (fixed-point)

    @property
    def invalid_flag(self) -> str | None:
        """The most frequent invalid cause of the hour (ties: D > M > C > B > F); M for an
        hour invalid only for being marked; None when nothing but missing data explains it."""
        counts = (self.n_d, self.n_m, self.n_c, self.n_b, self.n_f)
        best = max(counts)
        if best:
            return INVALID_FLAG_ORDER[counts.index(best)]
        return "M" if self.n_marked else None

    @property
    def covered_s(self) -> int:
        """Seconds of the hour covered by valid records."""
        return min(3600, self.n_valid * self.interval_s)


EMPTY = HourAgg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None, False)


class RunState:
    """A factor's state carried from one closed hour to the next: its zero and constant runs,
    its last record and the intervals its data has shown (a sliding-window minimum kept as a
    monotonic queue of (hour, interval) pairs, each packed in one int: one state per outlet ×
    factor, and the queue nearly always holds one pair).

    A run continues only over consecutive records (exactly one interval apart) that are
    *eligible*: a valid flag, a value, not marked, and the outlet producing (a valid flow of 0
    at the same time means it is not). Zero values extend the zero run; identical non-zero
    values the constant run.
    """

    __slots__ = ("const", "intervals", "last_fixed", "last_t", "last_valid", "run_entry", "zero")

    def __init__(self) -> None:
        self.last_t = -(2**62)
        self.last_fixed = 0
        self.last_valid = False
        self.zero = 0
        self.const = 0
        self.run_entry: int | None = None  # the valid value just before the current run
        # the (hour, interval) queue, each pair one int; usually a single one, kept bare
        self.intervals: int | tuple[int, ...] = ()

    def derived_interval(self, hour: int, seen: int) -> int | None:
        """Record ``seen`` (0: nothing shown) for ``hour`` and return the smallest interval
        shown in the 24 hours up to it, or None when none was."""
        q = _entries(self.intervals)
        if seen:
            while q and q[-1] & _VALUE_MASK >= seen:
                q.pop()
            q.append(hour // 3600 << _VALUE_BITS | seen)
        while q and (q[0] >> _VALUE_BITS) * 3600 <= hour - INTERVAL_WINDOW_S:
            q.pop(0)
        self.intervals = q[0] if len(q) == 1 else tuple(q)
        return q[0] & _VALUE_MASK if q else None

    def step(
        self,
        t: int,
        fixed: int | None,
        eligible: bool,
        interval_s: int,
        plateau: Plateau = PLATEAU,
    ) -> tuple[int, int, int | None]:
        """Advance by one record: the zero and constant runs it is part of, and the value of
        the calibration-like plateau it ends (B8-7, ``is_plateau``), if it ends one."""
        consecutive = t - self.last_t == interval_s
        ended, value, entry = self.const, self.last_fixed, self.run_entry
        previous_valid = self.last_valid and consecutive
        if not eligible or fixed is None:
            self.zero = self.const = 0
        elif fixed == 0:
            self.zero = self.zero + 1 if consecutive else 1
            self.const = 0
        else:
            same = consecutive and self.const > 0 and fixed == self.last_fixed
            self.const = self.const + 1 if same else 1
            self.zero = 0
            if self.const == 1:  # a new run: the value it stepped from, if it is known
                self.run_entry = self.last_fixed if previous_valid else None
        plateau_value: int | None = None
        if ended and self.const != ended + 1:
            exit_value = fixed if eligible and consecutive else None
            if is_plateau(ended, interval_s, value, entry, exit_value, plateau):
                plateau_value = value
        self.last_t = t
        self.last_fixed = fixed if fixed is not None else 0
        self.last_valid = eligible and fixed is not None
        return self.zero, self.const, plateau_value


_VALUE_BITS = 20  # an interval (s) in the low bits of a queue entry, the hour index above
_VALUE_MASK = (1 << _VALUE_BITS) - 1


def _entries(queue: int | tuple[int, ...]) -> list[int]:
    return [queue] if isinstance(queue, int) else list(queue)


def flag_of(flag: str | None) -> str:
    """A reading's data flag as the rules take it: its first letter; none (or an empty
    field, ``a21026-Flag=;``) is N."""
    return flag[0] if flag else "N"


def is_plateau(
    records: int,
    interval_s: int,
    value: int,
    entry: int | None,
    exit_value: int | None,
    plateau: Plateau,
) -> bool:
    """B8-7, a calibration-like plateau (fixed-point values): a run of ``records`` identical
    non-zero values lasting 3–15 minutes, at a round value (a multiple of 10 in the factor's
    unit, as span gases are), stepped into from a valid value and out to one by at least half
    of its own value, and not flagged C: what a span check looks like when the analyser does
    not say it is calibrating [I] (the numbers: ``plateau``)."""
    if records < 2 or value == 0 or value % plateau.round_fixed:
        return False
    if not plateau.min_s <= records * interval_s <= plateau.max_s:
        return False
    if entry is None or exit_value is None:
        return False
    step = plateau.step_pct * abs(value)
    return 100 * abs(value - entry) >= step and 100 * abs(value - exit_value) >= step


def seen_interval(gaps: Iterable[int]) -> int:
    """The most frequent spacing (the smallest among equally frequent ones) when at least
    ``INTERVAL_EVIDENCE`` spacings show it; 0 otherwise."""
    counts = Counter(g for g in gaps if g > 0)
    if not counts:
        return 0
    best = max(counts.values())
    if best < INTERVAL_EVIDENCE:
        return 0
    return min(g for g, n in counts.items() if n == best)


def aggregate(
    minutes: Iterable[MinuteRecord],
    device: Iterable[DeviceHour],
    valid_flags: frozenset[str],
    runs: dict[str, RunState] | None = None,
    interval_override_s: int | None = None,
    flow_code: str | None = None,
    periods: Mapping[str, tuple[int, int]] | None = None,
    realtime: Iterable[MinuteRecord] = (),
    plateau: Plateau = PLATEAU,
    extremes: Mapping[tuple[str, bool], tuple[float, float]] | None = None,
) -> dict[str, HourAgg]:
    """The hour's aggregates per factor, from already de-duplicated records of one hour.

    A factor's minute records are used when it has any this hour, else its real-time records
    (an outlet that sends only CN 2011). ``runs`` carries the runs and intervals across hours
    (records must come hour by hour in event-time order); without it each hour starts afresh.
    ``interval_override_s`` is a configured minute-data interval (real-time data is always
    read from the data). ``periods`` maps a factor to (period length s, fixed-point lower
    bound) for the sub-hour period means of A5-2. ``extremes``: (factor, real-time) → the
    lowest and highest of the valid records and their Min/Max fields, when the caller kept
    them instead of each record's fields (the streaming engine).
    """
    runs = {} if runs is None else runs
    chosen = sorted(minutes, key=lambda r: (r.factor, r.t))
    with_minutes = {r.factor for r in chosen}
    rtd = sorted(
        (r for r in realtime if r.factor not in with_minutes), key=lambda r: (r.factor, r.t)
    )
    rtd_factors = {r.factor for r in rtd}
    records = chosen + rtd
    not_producing = {
        r.t
        for r in records
        if r.factor == flow_code
        and r.value is not None
        and r.flag in valid_flags
        and not r.marked
        and r.value <= 0
    }
    groups: dict[str, list[MinuteRecord]] = {}
    for r in records:
        groups.setdefault(r.factor, []).append(r)
    out: dict[str, HourAgg] = {}
    for factor, group in groups.items():
        is_rtd = factor in rtd_factors
        key = factor + REALTIME_SUFFIX if is_rtd else factor
        state = runs.get(key)
        if state is None:
            state = runs[key] = RunState()
        agg = _factor_hour(
            group, state, valid_flags, not_producing, is_rtd, interval_override_s, plateau
        )
        kept = extremes.get((factor, is_rtd)) if extremes else None
        if kept is not None:
            low, high = to_fixed(kept[0]), to_fixed(kept[1])
            agg = agg._replace(
                ext_low=low if agg.ext_low is None else min(agg.ext_low, low),
                ext_high=high if agg.ext_high is None else max(agg.ext_high, high),
            )
        out[factor] = agg
    if periods:
        for factor, (low, lowest) in _low_periods(records, periods, valid_flags).items():
            out[factor] = out[factor]._replace(low_periods=low, lowest_period=lowest)
    for d in device:
        base = out.get(d.factor, EMPTY)
        out[d.factor] = base._replace(
            dev_value=d.value,
            dev_flag=d.flag,
            dev_zs=d.zs,
            dev_marked=d.marked,
            dev_min=d.minimum,
            dev_max=d.maximum,
        )
    return out


def _factor_hour(
    records: list[MinuteRecord],
    state: RunState,
    valid_flags: frozenset[str],
    not_producing: set[int],
    is_rtd: bool,
    override_s: int | None,
    plateau: Plateau,
) -> HourAgg:
    """One factor's records of one hour (sorted by time) → its aggregate; advances ``state``."""
    hour = records[0].t - records[0].t % 3600
    previous = state.last_t
    gaps = []
    for r in records:
        if previous > -(2**62):
            gaps.append(r.t - previous)
        previous = r.t
    seen = seen_interval(gaps)
    derived = state.derived_interval(hour, seen)
    assumed = ASSUMED_REALTIME_INTERVAL_S if is_rtd else ASSUMED_MINUTE_INTERVAL_S
    used = override_s if override_s is not None and not is_rtd else derived or assumed
    n = n_valid = sum_valid = n_marked = n_f = zs_n = zs_sum = 0
    flags = dict.fromkeys("DMCBT", 0)
    low = high = ext_low = ext_high = None
    zero_best = const_best = plateaus = 0
    plateau_value: int | None = None
    for r in records:
        n += 1
        fixed = None
        if r.marked:
            n_marked += 1
        elif r.value is not None and r.flag in valid_flags:
            fixed = to_fixed(r.value)
            n_valid += 1
            sum_valid += fixed
            low = fixed if low is None else min(low, fixed)
            high = fixed if high is None else max(high, fixed)
            lo = fixed if r.minimum is None else min(fixed, to_fixed(r.minimum))
            hi = fixed if r.maximum is None else max(fixed, to_fixed(r.maximum))
            ext_low = lo if ext_low is None else min(ext_low, lo)
            ext_high = hi if ext_high is None else max(ext_high, hi)
            if r.zs is not None:
                zs_n += 1
                zs_sum += to_fixed(r.zs)
        if r.flag in flags:
            flags[r.flag] += 1
        if r.flag == "F" or r.stop_marked:
            n_f += 1
        eligible = fixed is not None and r.t not in not_producing
        zero, const, ended = state.step(r.t, fixed, eligible, used, plateau)
        if ended is not None:
            plateaus += 1
            plateau_value = ended if plateau_value is None else max(plateau_value, ended)
        zero_best = max(zero_best, zero)
        const_best = max(const_best, const)
    return HourAgg(
        n,
        n_valid,
        sum_valid,
        n_marked,
        flags["D"],
        flags["M"],
        flags["C"],
        flags["B"],
        flags["T"],
        zs_n,
        zs_sum,
        None,
        None,
        None,
        False,
        low,
        high,
        zero_best,
        const_best,
        n_f=n_f,
        interval_s=used,
        seen_interval_s=derived or 0,
        realtime=is_rtd,
        ext_low=ext_low,
        ext_high=ext_high,
        plateaus=plateaus,
        plateau_value=plateau_value,
    )


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
