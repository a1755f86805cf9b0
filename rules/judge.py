"""Layer 2: judge closed windows of one outlet. Shared by the streaming and batch engines.

Hours are judged in event-time order as they close; each judged hour also feeds its natural
day, which is judged when the day closes (``rules.windowing``). Its conditions are levels
(``rules.firing.Level``), kept per rule and factor: ``fire`` for every window in which one
holds, one ``clear`` when it stops (an hour that cannot be judged changes nothing); A7 is an
event (fires once).

Rules here (docs/rules.md, "Findings"): A1 valid hourly average (>= 45 valid minutes, invalid
flags and marked periods excluded) or the device's own hour value when there is no minute
data; A1D device value differs from the recomputed one; A2 conversion to the reference O2
impossible (O2 invalid or >= 21 %); A3 hourly exceedance, warning (预警) and alarm (报警)
tiers; A4 daily exceedance on >= N valid hours (flow-weighted for wastewater where the flow
is valid for every hour used), reported as A5-1 for incinerators, whose marks excuse data only
up to yearly caps (the ``MarkingBook`` applies them; the finding shows the year's marked hours);
A4V a value outside an allowed range (pH 6-9); A5-2 more than 5 five-minute furnace
temperature means below 850 ℃ in a natural day (alarm), and A5-3 an hour with any (warning).
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from rules.copies import Signature
from rules.emission import (
    DAY_SUMS,
    AmountHistory,
    add_to_day,
    at_reference_o2,
    daily_mean,
    excess_kg,
    hour_amount_kg,
    substitution_window,
)
from rules.findings import Finding, State, Tier
from rules.firing import Level
from rules.hours import FIXED, HourAgg, to_fixed
from rules.markings import STOPPED_MARK, Marking, MarkingBook
from rules.params import FactorParams, OutletParams, Thresholds, effective_thresholds
from rules.timebase import DAY, HOUR, day_start, month_start, next_month_start, quarter_start

RECOMPUTE_TOLERANCE = 0.02  # A1D: relative difference tolerated between device and recomputed
EXCEEDANCE_RULES = frozenset({"A3", "A4", "A5-1"})  # 超标倍数 is stated for these only
JUMP_HISTORY = 24  # B6: the valid hours a value is compared with
FAULT_FLAGS = ("D", "M", "C")  # B9: an hour invalid for these is counted (F is not a fault)
# Markings that say the source is not running: 停产. A shutdown (停炉/停机) is the process of
# stopping, which draws production power; it is not a claim that nothing runs.
CLAIMS_STOPPED = (STOPPED_MARK,)


class HourValue(NamedTuple):
    """A factor's value for one hour, as judged. (A tuple: made for every factor-hour, and a
    frozen dataclass's construction cost the judge 4 %.)"""

    value: float | None  # measured hourly average
    valid: bool
    source: str  # "minutes" (CN 2051), "realtime" (CN 2011) or "device" (CN 2061)
    valid_minutes: int
    # The hour's flag: "N" when valid, else its most frequent invalid cause (F: stopped);
    # None when only missing data made it invalid.
    flag: str | None
    interval_s: int = 0  # the record interval it was judged with


# A day's sums and counts are arrays: a stream keeps them per factor and open day of every
# outlet, and an array of nine doubles takes 136 bytes where a list of floats took 344.
_ZERO_DAY_SUMS = bytes(8 * (DAY_SUMS + 3))
_ZERO_COUNTS = bytes(8 * 5)


@dataclass(slots=True)
class _DayHours:
    # factor → [valid hours, Σ judged, Σ judged × flow, Σ flow, hours with a valid flow
    # (zero included), Σ judged of the hours without one], added hour by hour in event-time
    # order (the same order in both engines).
    values: dict[str, array[float]] = field(default_factory=dict)
    flow: float | None = None  # the valid flow of the hour being judged
    # factor → [records received, valid records, records expected in the hours judged,
    # hours judged (a bit per hour of the day), the last record interval] (B10); stopped
    # records (F, 停产 markings) are neither received nor expected.
    counts: dict[str, array[int]] = field(default_factory=dict)
    # factor → hours flagged F (停运): an incinerator's day is judged on the hours it ran
    stopped: dict[str, int] = field(default_factory=dict)
    # factor → [(hour start, five-minute means below the bound in it)] (A5-2)
    low: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


class DayTaken(NamedTuple):
    """A factor-by-factor summary of a day's judged hours (:meth:`OutletJudge.take_day`):
    ``sums`` as ``_DayHours.values`` holds them (the day's sums, then its amounts),
    ``counts`` as ``_DayHours.counts`` (B10), ``stopped`` hours (F), ``ultra_low`` (valid
    hours, within the target) for A8, the last hour with an amount (B-sub), and the furnace's
    hours with low five-minute means (A5-2: hour, how many)."""

    sums: dict[str, Sequence[float]]
    counts: dict[str, Sequence[int]]
    stopped: dict[str, int]
    ultra_low: dict[str, tuple[int, int]]
    last_amount: dict[str, int]
    low: dict[str, list[tuple[int, int]]]


# Physical bounds used when the configuration sets none (B5).
DEFAULT_PLAUSIBLE: dict[str, tuple[float, float]] = {
    "a19001": (0.0, 21.0),  # O2 %
    "w01001": (0.0, 14.0),  # pH
    "a01014": (0.0, 100.0),  # flue-gas humidity %
}


def _plausible(
    code: str, low: float | None, high: float | None
) -> tuple[float | None, float | None]:
    default = DEFAULT_PLAUSIBLE.get(code)
    if default is None:
        return low, high
    return (low if low is not None else default[0], high if high is not None else default[1])


def run_minutes(records: int, interval_s: int) -> float:
    """B1, B2: a run of records in minutes, to a tenth (what is compared and stated)."""
    return round(records * interval_s / 60, 1)


def plateau_level(p: OutletParams, fp: FactorParams) -> int | None:
    """B8-7: the fixed-point level a plateau must reach (a share of the range), None where the
    range is not configured."""
    return None if fp.range_max is None else to_fixed(p.plateau_range_share * fp.range_max)


def negative(fp: FactorParams, low: float) -> bool:
    """B3: a negative value where the factor allows none."""
    return not fp.allow_negative and low < 0


class Plausibility(NamedTuple):
    """B5 on an hour's extremes: whether a value lies outside the plausible bounds, the bound
    it is judged against (the lower when the lowest value is under it, else the upper), the
    value stated (the extreme on that bound's side) and the evidence (both bounds)."""

    holds: bool
    limit: float | None
    value: float
    low_bound: float | None
    high_bound: float | None

    @property
    def evidence(self) -> dict[str, Any]:  # built only for a finding: most hours have none
        return {"min": self.low_bound, "max": self.high_bound}


def implausible(code: str, fp: FactorParams, low: float, high: float) -> bool:
    """B5's condition alone (what most hours need)."""
    pmin, pmax = _plausible(code, fp.plausible_min, fp.plausible_max)
    return (pmin is not None and low < pmin) or (pmax is not None and high > pmax)


def plausibility(code: str, fp: FactorParams, low: float, high: float) -> Plausibility:
    pmin, pmax = _plausible(code, fp.plausible_min, fp.plausible_max)
    limit = pmin if pmin is not None and low < pmin else pmax
    holds = implausible(code, fp, low, high)
    return Plausibility(holds, limit, low if limit == pmin else high, pmin, pmax)


def outlet_finding(
    p: OutletParams,
    version: str,
    rule: str,
    state: State,
    code: str | None,
    window: tuple[int, int],
    tier: Tier | None,
    value: float | None,
    limit: float | None,
    evidence: dict[str, Any],
    unit: str | None = None,
) -> Finding:
    """A finding of an outlet's rule as the judge states it: the value rounded, the unit the
    factor's unless the value has its own (minutes, hours, %, a count), the multiple (超标倍数)
    on an exceedance's fire. ``version``: ``p.version``, a digest its caller computes once."""
    if unit is None:
        unit = p.factors[code].unit if code is not None else ""
    multiple = None
    if state == "fire" and rule in EXCEEDANCE_RULES and value is not None and limit:
        multiple = round((value - limit) / limit, 4)
    return Finding(
        rule=rule,
        state=state,
        enterprise_id=p.enterprise_id,
        source_id=p.outlet_id,
        factor=code,
        window_start=window[0],
        window_end=window[1],
        tier=tier,
        value=_round(value),
        limit=None if limit is None else float(limit),  # configured as 100, stated as 100.0
        unit=unit,
        multiple=multiple,
        params_id=p.params_id,
        params_version=version,
        evidence=evidence,
    )


def hour_evidence(
    hv: HourValue,
    fp: FactorParams,
    o2: float | None,
    judged: float,
    amount: float | None,
    t: Thresholds,
) -> dict[str, Any]:
    """A3's evidence: the hour's measured value, the O2 it was converted with and the
    converted value, and the amount emitted and its part above the limit (B-sub)."""
    evidence: dict[str, Any] = {"source": hv.source, "measured": _round(hv.value)}
    if hv.source != "device":
        evidence["valid_minutes"] = hv.valid_minutes
    if fp.reference_o2 is not None:
        evidence.update(o2=_round(o2), reference_o2=fp.reference_o2, converted=_round(judged))
    if amount is not None:
        evidence["emission_kg"] = _round(amount)
        limit = t.hour_alarm if t.hour_alarm is not None else t.hour_warning
        if limit is not None and judged > limit:
            evidence["excess_kg"] = _round(excess_kg(amount, judged, limit))
    return evidence


def conversion_failure(o2_valid: bool, o2: float | None) -> dict[str, Any]:
    """A2's evidence: why the hour's O2 cannot convert (none valid, or at or above 21 %)."""
    reason = "O2 >= 21 %" if o2_valid else "no valid O2 hour value"
    return {"reason": reason, "o2": _round(o2)}


def zs_evidence(reported: float, recomputed: float, tolerance: float) -> dict[str, Any]:
    """B8-5's evidence (its condition: the two differ by more than ``tolerance`` of the
    recomputed value, at least 10⁻⁹)."""
    return {"reported": _round(reported), "recomputed": _round(recomputed), "tolerance": tolerance}


def recompute_evidence(device: float, recomputed: float) -> dict[str, Any]:
    """A1D's evidence (its condition: the two differ by more than ``RECOMPUTE_TOLERANCE`` of
    the recomputed value, at least 10⁻⁹)."""
    return {
        "device": _round(device),
        "recomputed": _round(recomputed),
        "tolerance": RECOMPUTE_TOLERANCE,
    }


def stop_marked(book: MarkingBook, enterprise: str, outlet: str, code: str, hour: int) -> bool:
    """Whether the hour starting at ``hour`` lies wholly in a declared 停产 marking of the
    outlet (``code``: of the factor, "" for the outlet's as a whole)."""
    m = book.marking_at(enterprise, outlet, code, hour, STOPPED_MARK)
    return m is not None and m.end >= hour + HOUR


def pollutant_screening(
    p: OutletParams, thresholds: Mapping[str, Thresholds], valid: Iterable[tuple[str, Any]]
) -> dict[str, dict[str, Any]]:
    """B8-1's evidence beside the O2: the hour's valid values of the outlet's factors judged
    at a reference O2 (``valid``: code, value), each with its hourly limit, in code order."""
    return {
        code: {"measured": _round(value), "limit": thresholds[code].hour_alarm}
        for code, value in sorted(valid)
        if code in p.factors and p.factors[code].reference_o2 is not None and value is not None
    }


def band_evidence(t: Thresholds, level: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """A5-3's evidence of an hourly mean outside its band (``level``: 偏高, 过高, 偏低), after
    ``evidence`` (the furnace's low periods)."""
    return {
        **evidence,
        "band": [t.band_low, t.band_high],
        "band_high_2": t.band_high_2,
        "level": level,
    }


def markings_too_long(
    book: MarkingBook, p: OutletParams, end: int
) -> Iterator[tuple[Marking, float]]:
    """A7: the outlet's declared markings longer than their type allows (with what it
    allows, hours) whose allowed length the data have passed by ``end`` (a judged hour's)."""
    limits = dict(p.marking_max_hours)
    for m in book.declared_for(p.enterprise_id, p.outlet_id):
        if m.start >= end:
            break
        allowed = limits.get(m.type)
        if allowed is None:
            continue
        allowed_s = int(allowed * HOUR)
        if m.end - m.start > allowed_s and m.start + allowed_s < end:
            yield m, allowed


def marking_too_long(p: OutletParams, version: str, m: Marking, allowed: float) -> Finding:
    """A7's finding: an event (it fires once) over the marking's declared span."""
    return Finding(
        rule="A7",
        state="fire",
        enterprise_id=p.enterprise_id,
        source_id=p.outlet_id,
        factor=m.factor,
        window_start=m.start,
        window_end=m.end,
        tier="warning",
        value=round((m.end - m.start) / HOUR, 2),
        limit=allowed,
        unit="h",
        params_id=p.params_id,
        params_version=version,
        evidence={"type": m.type, "factor": m.factor, "allowed_hours": allowed},
    )


def _flows(flow: HourValue | None) -> bool:
    """Whether the hour's flow is valid and above zero: flue gas leaves the stack."""
    return flow is not None and flow.valid and flow.value is not None and flow.value > 0


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# B10's count lives here, beside the rule, rather than in rules/hours.py: the aggregates there
# say what came (records, stopped ones, the interval); what an hour owed is the rule's reading
# of them, which the data-quality figures (nonsite/web/quality.py) count by too.
def transmission_counts(
    agg: HourAgg | None, interval_s: int, stop_marked: bool
) -> tuple[int, int, int]:
    """B10's count of one factor-hour: (records received, valid records, records expected).

    Stopped records (flag F, 停运, or inside a declared 停产 marking: ``HourAgg.n_f``) count on
    neither side. An hour with records is expected ``3600 / its own interval − n_F`` (never
    below 0). An hour without any (``agg`` None, or the device's own hour value alone) is
    expected ``3600 / interval_s``, nothing if it lies wholly in a declared 停产 marking
    (``stop_marked``, read only then)."""
    if agg is not None and agg.n:
        return agg.n - agg.n_f, agg.n_valid, max(0, HOUR // agg.interval_s - agg.n_f)
    return 0, 0, 0 if stop_marked else HOUR // interval_s


class DayCounts(NamedTuple):
    """B10's count of one factor's natural day (:meth:`OutletJudge.day_counts`)."""

    received: int
    valid_records: int
    expected: int
    due_hours: int  # the hours not stopped (flag F, or silent in a declared 停产 marking)
    interval_s: int


def sub_hour_periods(p: OutletParams) -> dict[str, tuple[int, int]]:
    """Factors judged on sub-hour period means (A5-2): code → (period s, fixed bound)."""
    bound = p.furnace_bound
    return {} if bound is None else {p.furnace_code: (p.furnace_period_s, to_fixed(bound))}


def mean_of(history: Sequence[float]) -> float:
    """B6: the mean of the last valid hours (plain floats summed exactly: statistics' mean
    computes with fractions, 30× slower here)."""
    return math.fsum(history) / len(history)


class Jump(NamedTuple):
    """B6 on a valid hourly value and the factor's last 24 valid ones (``history``, oldest
    first): the step from the last, the bound it is judged against (the larger of k σ and a
    fraction of their mean), their mean and σ."""

    step: float
    bound: float
    mean: float
    sigma: float
    previous: float

    @property
    def holds(self) -> bool:
        return self.step > self.bound

    @property
    def evidence(self) -> dict[str, Any]:
        return {
            "previous": _round(self.previous),
            "sigma": _round(self.sigma),
            "mean": _round(self.mean),
        }


def jump(p: OutletParams, history: Sequence[float], value: float) -> Jump:
    """B6: the hourly value against the last valid hours (``jump_min_history`` or more)."""
    mean = mean_of(history)
    sigma = math.sqrt(math.fsum((x - mean) ** 2 for x in history) / len(history))
    bound = max(p.jump_sigma * sigma, p.jump_relative * abs(mean))
    return Jump(abs(value - history[-1]), bound, mean, sigma, history[-1])


def _keep_24(history: array[float], value: float) -> None:
    history.append(value)
    if len(history) > JUMP_HISTORY:
        del history[0]


@lru_cache(maxsize=1024)
def unjudged_hours(judged: int) -> tuple[int, ...]:
    """The hours (0-23) of a day whose bit in ``judged`` is unset: the hours not judged.
    Kept per mask (a fleet's days repeat a few: every hour judged, most often), as a
    replay asks it for every factor-day twice."""
    return tuple(h for h in range(24) if not judged >> h & 1)


class OutletJudge:
    def __init__(self, params: OutletParams, markings: MarkingBook | None = None) -> None:
        self.params = params
        self.markings = markings
        self.thresholds: dict[str, Thresholds] = {
            code: effective_thresholds(params, fp) for code, fp in params.factors.items()
        }
        # (rule, factor) → (tier, limit) of the condition that currently holds
        self._levels: Level[tuple[str, str], tuple[Tier, float | None]] = Level()
        self._days: dict[int, _DayHours] = {}
        self._version = params.version  # a digest: computed once, recorded on every finding
        # B4 consecutive over-range hours, B9 consecutive invalid-flag hours, B6 history.
        self._over_hours: dict[str, int] = defaultdict(int)
        self._flag_hours: dict[str, int] = defaultdict(int)
        self._history: dict[str, array[float]] = {}
        self.hour_flow: float | None = None  # the valid flow of the last hour judged
        self.hour_stopped: str | None = None  # what says its source was stopped (A7-2)
        # B8-8: the last hour's factor series, for the comparison across outlets (kept only
        # for an outlet whose enterprise has others, until the engine hands them on)
        self.share_signatures = False
        self.hour_signatures: tuple[tuple[str, Signature], ...] = ()
        # B7 on minute and real-time data: the last hour judged, the factors the data have
        # carried, and whether the logger sends hour packets (then rules/absence.py judges).
        # (A tuple, and None for what most outlets never need: a judge is kept per outlet,
        # 100,000 of them in a national fleet, and an empty set costs 216 bytes.)
        self._last_hour: int | None = None
        self._carried: tuple[str, ...] = ()
        self._sends_hours = False
        # B-sub: per factor the history of hourly amounts
        self._amounts: dict[str, AmountHistory] | None = None
        # A8: month start → factor → [valid hours, hours within the ultra-low target]
        self._months: dict[int, dict[str, list[int]]] | None = None
        # A7: the markings already judged for their length, by (start, type, factor)
        self._marks_judged: set[tuple[int, str, str | None]] | None = None

    def reconfigure(self, params: OutletParams, markings: MarkingBook | None = None) -> None:
        """New parameters for the same outlet; the state (open days, runs, counters) stays."""
        self.params = params
        self.markings = markings
        self.thresholds = {
            code: effective_thresholds(params, fp) for code, fp in params.factors.items()
        }
        self._version = params.version

    @property
    def periods(self) -> dict[str, tuple[int, int]]:
        return sub_hour_periods(self.params)

    # -- hours ---------------------------------------------------------------------------

    def hour_value(self, agg: HourAgg) -> HourValue:
        """A1: the hour is valid with records covering at least ``valid_minutes_per_hour``
        valid minutes (each record covers one interval, read from the data); its value is
        their mean. Without minute or real-time records, the device's own hour value."""
        p = self.params
        if agg.n:
            covered = agg.covered_s
            valid = agg.n_valid * agg.interval_s >= p.valid_minutes_per_hour * 60
            value = agg.sum_valid / agg.n_valid / FIXED if agg.n_valid else None
            flag = "N" if valid else agg.invalid_flag
            source = "realtime" if agg.realtime else "minutes"
            return HourValue(value, valid, source, covered // 60, flag, agg.interval_s)
        valid = agg.dev_value is not None and agg.dev_flag in p.valid_flags and not agg.dev_marked
        return HourValue(agg.dev_value, valid, "device", 0, agg.dev_flag)

    def hour_values(self, aggs: dict[str, HourAgg]) -> dict[str, HourValue]:
        return {code: self.hour_value(agg) for code, agg in aggs.items()}

    def hour(
        self, start: int, aggs: dict[str, HourAgg], values: dict[str, HourValue] | None = None
    ) -> list[Finding]:
        """Judge one closed outlet-hour (``values``: its :meth:`hour_values`, if the caller
        has them already)."""
        p = self.params
        out: list[Finding] = []
        if values is None:
            values = self.hour_values(aggs)
        o2 = values.get(p.o2_code)
        o2_ok = o2 is not None and o2.valid and o2.value is not None and o2.value < 21
        out += self._missing(start, aggs)
        out += self._marking_lengths(start)
        day = self._days.setdefault(day_start(start), _DayHours())
        flow = values.get(p.flow_code)
        day.flow = (
            flow.value if flow is not None and flow.valid and flow.value is not None else None
        )
        self.hour_flow = day.flow  # for the production link (B8-6, C8-2)
        self.hour_stopped = self._stopped_claim(start, flow)  # ... and A7-2
        for code, hv in values.items():
            fp = p.factors.get(code)
            if fp is None:
                continue  # a factor the outlet reports but the configuration does not judge
            agg = aggs[code]
            out += self._device_check(code, start, HOUR, agg.dev_value, agg.dev_flag, hv)
            out += self._data_checks(code, start, agg, hv)
            if agg.n:
                self._count_records(day, code, start, agg)
            if hv.flag == "F":
                day.stopped[code] = day.stopped.get(code, 0) + 1
            still = day.flow == 0  # a valid zero flow: nothing left the outlet this hour
            # still water's pH was not discharged
            if not (still and p.kind == "water"):
                out += self._range("A4V", code, start, HOUR, agg, hv)
            if code == p.furnace_code and p.furnace_bound is not None:
                out += self._furnace_hour(code, start, agg, day, hv)
            else:
                out += self._band(code, start, hv)
            if not hv.valid or hv.value is None:
                continue
            out += self._jump(code, start, hv.value)
            if still and p.kind == "gas" and code != p.flow_code:
                continue  # not producing: no emission to judge (O2 near ambient inflates 折算)
            judged = hv.value
            if fp.reference_o2 is not None:
                if not o2_ok:
                    o2_valid = o2 is not None and o2.valid
                    evidence = conversion_failure(o2_valid, o2.value if o2 else None)
                    out += self._transition(
                        "A2", code, start, HOUR, "warning", None, None, evidence
                    )
                    continue
                assert o2 is not None
                assert o2.value is not None
                if not self._unchanged("A2", code, False):
                    out += self._transition("A2", code, start, HOUR, None, None, None, {})
                judged = at_reference_o2(hv.value, fp.reference_o2, o2.value)
                out += self._reported_zs(code, start, agg, judged)
            acc = day.values.get(code)
            if acc is None:  # the day's sums, then its amounts: [Σ kg, hours, largest kg]
                acc = day.values[code] = array("d", _ZERO_DAY_SUMS)
            add_to_day(acc, judged, day.flow)
            t = self.thresholds[code]
            amount = self._amount(fp.unit, hv.value, day.flow)
            if amount is not None:  # B-sub: what left the stack
                acc[6] += amount  # B-sub's sums: ``rules.day_columns`` sums them as here
                acc[7] += 1
                acc[8] = max(acc[8], amount)
                self._amount_history(code).last_hour = start
            # A3, but not on a still night of an intermittent discharger (it emitted nothing);
            # its evidence is built only when something holds or ends (most hours: nothing).
            exceeds = (t.hour_warning is not None and judged > t.hour_warning) or (
                t.hour_alarm is not None and judged > t.hour_alarm
            )
            if not still and not self._unchanged("A3", code, exceeds):
                o2_value = o2.value if o2 is not None else None
                evidence = hour_evidence(hv, fp, o2_value, judged, amount, t)
                out += self._tiered(
                    "A3", code, start, HOUR, judged, t.hour_alarm, t.hour_warning, evidence
                )
            if t.ultra_low is not None:  # A8: the month's share of hours within the target
                if self._months is None:
                    self._months = {}
                tally = self._months.setdefault(month_start(start), {}).setdefault(code, [0, 0])
                tally[0] += 1
                tally[1] += judged <= t.ultra_low
        out += self._o2_high(start, o2, flow)
        out += self._o2_band(start, o2, flow)
        out += self._o2_reference(start, o2, flow, values)
        out += self._wet_fgd(start, values.get(p.temperature_code), flow)
        out += self._interval_check(start, aggs)
        out += self._copies(start, aggs)
        return out

    def _plateau(self, code: str, start: int, agg: HourAgg) -> list[Finding]:
        """B8-7: a calibration-like plateau at a span-gas level: at least
        ``plateau_range_share`` of the instrument's range (span gases are 50–90 % of it), so
        judged only where the range is configured; a low round value (10 on an ultra-low
        plant) is ordinary data."""
        fp = self.params.factors[code]
        level = plateau_level(self.params, fp)
        if level is None:
            return []
        holds = agg.plateau_value is not None and agg.plateau_value >= level
        if self._unchanged("B8-7", code, holds):
            return []
        value = agg.plateau_value / FIXED if agg.plateau_value is not None else None
        evidence = {"plateaus": agg.plateaus, "value": value, "range_max": fp.range_max}
        return self._transition(
            "B8-7", code, start, HOUR, "warning" if holds else None, value, None, evidence
        )

    def _copies(self, start: int, aggs: dict[str, HourAgg]) -> list[Finding]:
        """B8-8: two factors of the outlet that report the same series in the hour: the same
        number of valid records, sum, minimum and maximum (a varying series; two real
        analysers do not agree to the 10⁻⁶ on all four), the later code naming the earlier;
        the signatures are kept for the comparison across outlets (``rules.copies``) where
        the enterprise has others."""
        p = self.params
        seen: dict[Signature, str] = {}
        copied: dict[str, str] = {}
        signatures: list[tuple[str, Signature]] = []
        for code in sorted(aggs):
            a = aggs[code]
            if (
                code not in p.factors
                or a.n_valid < p.copy_min_records
                or a.min_valid == a.max_valid
            ):
                continue
            signature = (a.n_valid, a.sum_valid, a.min_valid, a.max_valid)
            signatures.append((code, signature))
            if signature in seen:
                copied[code] = seen[signature]
            else:
                seen[signature] = code
        if self.share_signatures:
            self.hour_signatures = tuple(signatures)
        out: list[Finding] = []
        for code in sorted(p.factors):
            agg = aggs.get(code)
            if agg is None or agg.n_valid < p.copy_min_records:
                continue  # not enough to tell: nothing changes
            same_as = copied.get(code)
            if self._unchanged("B8-8", code, same_as is not None):
                continue
            evidence = {"same_as": same_as, "records": agg.n_valid}
            out += self._transition(
                "B8-8",
                code,
                start,
                HOUR,
                "warning" if same_as else None,
                float(agg.n_valid),
                None,
                evidence,
                unit="条",
            )
        return out

    def _amount(self, unit: str, measured: float | None, flow: float | None) -> float | None:
        """The hour's emission amount in kg, when the outlet's flow is valid."""
        p = self.params
        flow_params = p.factors.get(p.flow_code)
        if measured is None or flow is None or flow_params is None:
            return None
        return hour_amount_kg(measured, unit, flow, flow_params.unit)

    # -- data anomalies (B) --------------------------------------------------------------

    def _data_checks(self, code: str, start: int, agg: HourAgg, hv: HourValue) -> list[Finding]:
        """B1 zero, B2 constant, B3 negative, B4 over range, B5 implausible, B9 flags."""
        p = self.params
        fp = p.factors[code]
        out: list[Finding] = []
        if agg.n:  # runs: on minute or real-time records only
            zero = run_minutes(agg.zero_run, agg.interval_s)
            out += self._flagged(
                "B1", code, start, zero >= p.zero_minutes, zero, p.zero_minutes, "min"
            )
        if agg.n:
            const = run_minutes(agg.const_run, agg.interval_s)
            out += self._flagged(
                "B2", code, start, const >= p.const_minutes, const, p.const_minutes, "min"
            )
        if agg.n:
            out += self._plateau(code, start, agg)
        low: float | None
        high: float | None
        if agg.min_valid is not None and agg.max_valid is not None:
            low, high = agg.min_valid / FIXED, agg.max_valid / FIXED
        elif hv.source == "device" and hv.valid and hv.value is not None:
            low = high = hv.value
        else:
            low = high = None
        if low is not None and high is not None:
            out += self._flagged("B3", code, start, negative(fp, low), low, 0.0, fp.unit)
            out += self._over_range(code, start, agg, fp, high)
            if not self._unchanged("B5", code, implausible(code, fp, low, high)):
                check = plausibility(code, fp, low, high)
                out += self._transition(
                    "B5",
                    code,
                    start,
                    HOUR,
                    "warning" if check.holds else None,
                    check.value,
                    check.limit,
                    check.evidence,
                )
        out += self._fault_flags(code, start, hv)
        return out

    def _fault_flags(self, code: str, start: int, hv: HourValue) -> list[Finding]:
        """B9: hours of minute or real-time records invalid for a fault flag (D, M, C) in a
        row; a valid hour or a stopped one (F) restarts the count, others leave it."""
        p = self.params
        if not hv.valid and hv.source != "device" and hv.flag in FAULT_FLAGS:
            self._flag_hours[code] += 1
            n = self._flag_hours[code]
            tier: Tier = "alarm" if n >= p.flag_hours_alarm else "warning"
            hold = n >= p.flag_hours_warning
            return self._transition(
                "B9",
                code,
                start,
                HOUR,
                tier if hold else None,
                float(n),
                float(p.flag_hours_warning),
                {"flag": hv.flag, "hours": n},
                unit="h",
            )
        if hv.valid or hv.flag == "F":  # a stopped plant (停运) is not a faulty one
            self._flag_hours[code] = 0
            if not self._unchanged("B9", code, False):
                return self._transition("B9", code, start, HOUR, None, 0.0, None, {})
        return []

    def _over_range(
        self, code: str, start: int, agg: HourAgg, fp: FactorParams, high: float
    ) -> list[Finding]:
        """B4: at or over the instrument's range (or flagged T); an alarm after
        ``over_range_alarm_hours`` such hours in a row."""
        over = agg.n_t > 0 or (
            fp.range_max is not None and to_fixed(high) >= to_fixed(fp.range_max)
        )
        hours = self._over_hours[code] = self._over_hours[code] + 1 if over else 0
        if self._unchanged("B4", code, over):
            return []
        tier: Tier = "alarm" if hours >= self.params.over_range_alarm_hours else "warning"
        evidence = {"flag_t": agg.n_t, "range_max": fp.range_max, "hours": hours}
        return self._transition(
            "B4", code, start, HOUR, tier if over else None, high, fp.range_max, evidence
        )

    def _missing(self, start: int, aggs: dict[str, HourAgg]) -> list[Finding]:
        """B7 for loggers that send minute or real-time data but no hour packets: the hours
        between two judged hours that had no data at all (缺失; hours wholly inside a
        declared 停产 marking excepted), and a configured factor the data carried before
        that this hour lacks (不完整). Judged in event time as hours close, so a logger that
        backfills (补发) in time order leaves no hole."""
        self._sends_hours = self._sends_hours or any(
            a.dev_value is not None or a.dev_flag is not None for a in aggs.values()
        )
        last, self._last_hour = self._last_hour, start
        if self._sends_hours:
            return []  # judged on the hour packets (rules/absence.py)
        present = {code for code, a in aggs.items() if a.n}
        data = "realtime" if any(aggs[c].realtime for c in present) else "minute"
        out: list[Finding] = []
        if last is not None:
            for h in range(last + HOUR, start, HOUR):
                if not self._stopped_marked(day_start(h), "", [(h - day_start(h)) // HOUR]):
                    evidence = {"missing": True, "data": data}
                    out += self._transition("B7", None, h, HOUR, "warning", None, None, evidence)
        if present and not self._unchanged("B7", None, False):
            out += self._transition("B7", None, start, HOUR, None, None, None, {})
        for code in (c for c in self._carried if c in self.params.factors):
            lacking = code not in present and bool(present)
            if self._unchanged("B7", code, lacking):
                continue
            evidence = {"incomplete": True, "data": data}
            tier: Tier | None = "warning" if lacking else None
            out += self._transition("B7", code, start, HOUR, tier, None, None, evidence)
        if not present.issubset(self._carried):
            self._carried = tuple(sorted(present.union(self._carried)))
        return out

    def _stopped_claim(self, start: int, flow: HourValue | None) -> str | None:
        """What says the outlet's source was stopped in the hour: a declared 停产 marking over
        the whole hour, or its flow flagged F (停运) (for A7-2)."""
        p = self.params
        for kind in CLAIMS_STOPPED if self.markings is not None else ():
            assert self.markings is not None
            m = self.markings.marking_at(p.enterprise_id, p.outlet_id, "", start, kind)
            if m is not None and m.end >= start + HOUR:
                return kind
        return "F" if flow is not None and flow.flag == "F" else None

    def _count_records(self, day: _DayHours, code: str, start: int, agg: HourAgg) -> None:
        """B10's tallies of an hour with records (``transmission_counts``), and the hour and
        interval they were counted at."""
        counts = day.counts.get(code)
        if counts is None:
            counts = day.counts[code] = array("q", _ZERO_COUNTS)
        received, valid, expected = transmission_counts(agg, agg.interval_s, False)
        counts[0] += received
        counts[1] += valid
        counts[2] += expected
        counts[3] |= 1 << ((start - day_start(start)) // HOUR)
        counts[4] = agg.interval_s

    def _interval_check(self, start: int, aggs: dict[str, HourAgg]) -> list[Finding]:
        """B11: the configured minute-data interval against the one the data shows."""
        override = self.params.interval_override_s
        if override is None:
            return []
        seen = sorted({a.seen_interval_s for a in aggs.values() if a.n and not a.realtime} - {0})
        if not seen:
            return []  # no minute data this hour, or not enough to show the interval
        differs = seen[0] != override
        return self._transition(
            "B11",
            None,
            start,
            HOUR,
            "warning" if differs else None,
            float(seen[0]),
            float(override),
            {"configured_s": override, "seen_s": seen},
            unit="s",
        )

    def _flagged(
        self, rule: str, code: str, start: int, holds: bool, value: float, limit: float, unit: str
    ) -> list[Finding]:
        if self._unchanged(rule, code, holds):
            return []
        tier: Tier | None = "warning" if holds else None
        return self._transition(rule, code, start, HOUR, tier, value, limit, {}, unit=unit)

    def _jump(self, code: str, start: int, value: float) -> list[Finding]:
        """B6 (:func:`jump`) on the factor's last 24 valid hours."""
        p = self.params
        history = self._history.get(code)
        if history is None:  # an array: a deque reserves 64 slots even for one value
            history = self._history[code] = array("d")
        out: list[Finding] = []
        if len(history) >= p.jump_min_history:
            quiet = self._unchanged("B6", code, False)
            if quiet and abs(value - history[-1]) <= p.jump_relative * abs(mean_of(history)):
                # Within the relative part of the bound: no jump whatever σ is, and σ (a sum
                # over 24 hours per factor-hour) was the judge's largest cost in a replay.
                _keep_24(history, value)
                return out
            found = jump(p, history, value)
            if found.holds or not quiet:  # else nothing holds nor ends: no finding to build
                out = self._transition(
                    "B6",
                    code,
                    start,
                    HOUR,
                    "warning" if found.holds else None,
                    _round(found.step),
                    _round(found.bound),
                    found.evidence,
                )
        _keep_24(history, value)
        return out

    def _reported_zs(self, code: str, start: int, agg: HourAgg, recomputed: float) -> list[Finding]:
        """B8-5: the converted value the device reports against the one recomputed here."""
        if agg.zs_n:
            reported: float | None = agg.zs_sum / agg.zs_n / FIXED
        else:
            reported = agg.dev_zs if agg.n == 0 else None
        if reported is None:
            return []
        tolerance = self.params.zs_tolerance
        differs = abs(reported - recomputed) > tolerance * max(abs(recomputed), 1e-9)
        if self._unchanged("B8-5", code, differs):
            return []
        evidence = zs_evidence(reported, recomputed, tolerance)
        return self._transition(
            "B8-5",
            code,
            start,
            HOUR,
            "warning" if differs else None,
            _round(reported),
            _round(recomputed),
            evidence,
        )

    def _while_flowing(
        self,
        rule: str,
        code: str,
        start: int,
        hv: HourValue | None,
        flow: HourValue | None,
        bound: Callable[[float], float | None],
        evidence: dict[str, Any],
    ) -> list[Finding]:
        """A factor's valid hourly value against a bound while flue gas flows (B8-1 to
        B8-4): ``bound`` gives the bound the value passes, or None when it keeps within."""
        if code not in self.params.factors or hv is None or not hv.valid or hv.value is None:
            return []  # an hour that cannot be judged changes nothing
        passed = bound(hv.value) if _flows(flow) else None
        return self._transition(
            rule,
            code,
            start,
            HOUR,
            "warning" if passed is not None else None,
            _round(hv.value),
            passed,
            {**evidence, "flow": _round(flow.value if flow else None)},
        )

    def _o2_high(self, start: int, o2: HourValue | None, flow: HourValue | None) -> list[Finding]:
        """B8-3: O2 near ambient while flue gas flows (dilution, or a leak before the analyser)."""
        p = self.params
        if p.kind != "gas":
            return []
        limit = p.o2_high
        return self._while_flowing(
            "B8-3", p.o2_code, start, o2, flow, lambda v: limit if v >= limit else None, {}
        )

    def _o2_band(self, start: int, o2: HourValue | None, flow: HourValue | None) -> list[Finding]:
        """B8-2: the valid hourly O2 outside the band of normal combustion while flue gas
        flows (a furnace run with too much or too little air, or a diluted sample)."""
        band = self.params.o2_band
        if band is None:
            return []
        low, high = band
        return self._while_flowing(
            "B8-2",
            self.params.o2_code,
            start,
            o2,
            flow,
            lambda v: high if v > high else low if v < low else None,
            {"band": [low, high]},
        )

    def _o2_reference(
        self,
        start: int,
        o2: HourValue | None,
        flow: HourValue | None,
        values: dict[str, HourValue],
    ) -> list[Finding]:
        """B8-1: the valid hourly O2 above the fleet reference for outlets of its kind (the
        90th percentile of their hourly O2, CRAES) while flue gas flows: air let in raises
        the converted values' divisor, or dilutes the sample. The evidence puts the hour's
        pollutants beside their limits (the patent's joint screening)."""
        p = self.params
        reference = p.o2_reference
        if reference is None:
            return []
        screening = pollutant_screening(
            p, self.thresholds, ((code, hv.value) for code, hv in values.items() if hv.valid)
        )
        return self._while_flowing(
            "B8-1",
            p.o2_code,
            start,
            o2,
            flow,
            lambda v: reference if v > reference else None,
            {"reference": reference, "pollutants": screening},
        )

    def _wet_fgd(
        self, start: int, temperature: HourValue | None, flow: HourValue | None
    ) -> list[Finding]:
        """B8-4: a wet-desulphurised outlet's flue gas hotter than a running scrubber lets it
        be (HJ 75 practice: saturated flue gas is about 45–55 ℃), while it flows."""
        p = self.params
        bound = p.wet_fgd_temp_max
        if bound is None:
            return []
        return self._while_flowing(
            "B8-4",
            p.temperature_code,
            start,
            temperature,
            flow,
            lambda v: bound if v > bound else None,
            {},
        )

    def _furnace_hour(
        self, code: str, start: int, agg: HourAgg, day: _DayHours, hv: HourValue
    ) -> list[Finding]:
        """A5-3 for the furnace: an hour with a five-minute mean below the bound (低温预警; the
        count feeds the day's A5-2), or a valid hourly mean outside its band (偏高 / 过高)."""
        p = self.params
        if agg.low_periods:
            day.low.setdefault(code, []).append((start, agg.low_periods))
        if agg.lowest_period is None:
            return []  # no valid period this hour: nothing to judge
        evidence: dict[str, Any] = {"low_periods": agg.low_periods, "period_s": p.furnace_period_s}
        if agg.low_periods:
            lowest = agg.lowest_period / FIXED
            return self._transition(
                "A5-3", code, start, HOUR, "warning", _round(lowest), p.furnace_bound, evidence
            )
        outside = self._outside_band(code, hv)
        if outside is None:
            return self._transition("A5-3", code, start, HOUR, None, None, None, evidence)
        return self._band_transition(code, start, hv, outside, evidence)

    def _band(self, code: str, start: int, hv: HourValue) -> list[Finding]:
        """A5-3: a process factor's valid hourly mean outside its band (预警)."""
        t = self.thresholds[code]
        if t.band_low is None and t.band_high is None:
            return []
        if not hv.valid or hv.value is None:
            return []  # an hour that cannot be judged changes nothing
        outside = self._outside_band(code, hv)
        if outside is None:
            return self._transition("A5-3", code, start, HOUR, None, None, None, {})
        return self._band_transition(code, start, hv, outside, {})

    def _outside_band(self, code: str, hv: HourValue) -> tuple[str, float] | None:
        """(level, the bound passed) when the valid hourly mean lies outside the band."""
        t = self.thresholds[code]
        value = hv.value
        if not hv.valid or value is None:
            return None
        if t.band_high is not None and value > t.band_high:
            severe = t.band_high_2 is not None and value > t.band_high_2
            return ("过高" if severe else "偏高"), t.band_high
        if t.band_low is not None and value < t.band_low:
            return "偏低", t.band_low
        return None

    def _band_transition(
        self,
        code: str,
        start: int,
        hv: HourValue,
        outside: tuple[str, float],
        evidence: dict[str, Any],
    ) -> list[Finding]:
        level, bound = outside
        evidence = band_evidence(self.thresholds[code], level, evidence)
        return self._transition(
            "A5-3", code, start, HOUR, "warning", _round(hv.value), bound, evidence
        )

    def _marking_lengths(self, start: int) -> list[Finding]:
        """A7: a marking longer than its type allows per occurrence, found once the data have
        passed its allowed length (the marking says when it ends: a declared 4-hour excuse
        must not cover a day)."""
        p = self.params
        limits = dict(p.marking_max_hours)
        if not limits or self.markings is None:
            return []
        out: list[Finding] = []
        for m, allowed in markings_too_long(self.markings, p, start + HOUR):
            key = (m.start, m.type, m.factor)
            if self._marks_judged is not None and key in self._marks_judged:
                continue
            if self._marks_judged is None:
                self._marks_judged = set()
            self._marks_judged.add(key)
            out.append(marking_too_long(p, self._version, m, allowed))
        return out

    def _device_check(
        self,
        code: str,
        start: int,
        length: int,
        dev_value: float | None,
        dev_flag: str | None,
        hv: HourValue,
    ) -> list[Finding]:
        """A1D: the device's own value against the value recomputed from its minute data."""
        if hv.source != "minutes" or not hv.valid or hv.value is None or dev_value is None:
            return []
        if dev_flag not in self.params.valid_flags:
            return []
        diff = abs(dev_value - hv.value)
        differs = diff > RECOMPUTE_TOLERANCE * max(abs(hv.value), 1e-9)
        if self._unchanged("A1D", code, differs):
            return []
        evidence = recompute_evidence(dev_value, hv.value)
        return self._transition(
            "A1D",
            code,
            start,
            length,
            "warning" if differs else None,
            _round(dev_value),
            None,
            evidence,
        )

    # -- days ----------------------------------------------------------------------------

    def day_counts(self, start: int) -> dict[str, DayCounts]:
        """B10's count of each configured factor of the open day ``start`` that sent
        something: its records received, valid and expected (the hours with records, then
        those without at the day's interval), its hours due (not stopped) and its interval."""
        hours = self._days.get(start)
        if hours is None:
            return {}
        out = {}
        for code, (received, valid, due, judged, interval) in sorted(hours.counts.items()):
            if code not in self.params.factors:
                continue
            expected = due
            for h in unjudged_hours(judged):
                marked = self._stopped_marked(start, code, [h]) > 0
                expected += transmission_counts(None, interval, marked)[2]
            due_hours = 24 - self._stopped_hours(start, code, hours)
            out[code] = DayCounts(received, valid, expected, due_hours, interval)
        return out

    def day(self, start: int, counts: dict[str, DayCounts] | None = None) -> list[Finding]:
        """Judge one closed natural day (China time) from its judged hours (``counts``: its
        :meth:`day_counts`, if the caller has them already)."""
        p = self.params
        if counts is None:
            counts = self.day_counts(start)
        hours = self._days.pop(start, None)
        if hours is None:
            return []
        out: list[Finding] = []
        for code, (received, valid, expected, _due_hours, interval) in counts.items():
            if not expected:
                continue  # stopped all day: nothing was due
            rate = valid / expected
            counted = {
                "received": received,
                "valid": valid,
                "expected": expected,
                "interval_s": interval,
            }
            out += self._transition(
                "B10",
                code,
                start,
                DAY,
                "warning" if rate < p.transmission_min else None,
                round(rate * 100, 2),
                round(p.transmission_min * 100, 2),
                counted,
                unit="%",
            )
        caps = None
        if p.marking_caps and self.markings is not None:
            caps = self.markings.cap_usage((p.enterprise_id, p.outlet_id), start + DAY)
        for code, acc in sorted(hours.values.items()):
            t = self.thresholds.get(code)
            if t is None:
                continue  # no longer configured
            if t.day_alarm is None and t.day_warning is None:
                continue
            n = int(acc[0])
            evidence: dict[str, Any] = {"valid_hours": n}
            if not self._day_judged(start, code, n, hours, evidence):
                continue
            daily = self._daily_value(acc, evidence)
            if daily is None:
                continue
            if caps is not None:
                evidence["marking_caps"] = caps
            if acc[7]:  # B-sub: the day's amount, invalid hours substituted (HJ 75)
                total = acc[6] + self._substituted(start, code, int(acc[7]), hours, evidence)
                evidence["emission_kg"] = _round(total)
                evidence["emission_hours"] = int(acc[7])
                limit = t.day_alarm if t.day_alarm is not None else t.day_warning
                if limit is not None and daily > limit:
                    evidence["excess_kg"] = _round(excess_kg(total, daily, limit))
            out += self._tiered(
                p.daily_rule, code, start, DAY, daily, t.day_alarm, t.day_warning, evidence
            )
        out += self._furnace_day(start, hours)
        out += self._ultra_low_months(start + DAY)
        for code, history in (self._amounts or {}).items():  # valid today or not
            amounts = hours.values.get(code)
            valid = int(amounts[7]) if amounts is not None else 0
            due = 24 - self._stopped_hours(start, code, hours)
            day_max = amounts[8] if amounts is not None and valid else None
            history.close_day(quarter_start(start), start, day_max, valid, due)
        return out

    def _stopped_hours(self, start: int, code: str, hours: _DayHours) -> int:
        """The day's hours the source was stopped in: flagged F, or silent inside a declared
        停产 marking."""
        counts = hours.counts.get(code)
        judged = counts[3] if counts else 0
        unjudged = unjudged_hours(judged)
        return hours.stopped.get(code, 0) + self._stopped_marked(start, code, unjudged)

    def _amount_history(self, code: str) -> AmountHistory:
        if self._amounts is None:
            self._amounts = {}
        history = self._amounts.get(code)
        if history is None:
            history = self._amounts[code] = AmountHistory()
        return history

    def _substituted(
        self, start: int, code: str, valid: int, hours: _DayHours, evidence: dict[str, Any]
    ) -> float:
        """kg put in for the day's hours without a valid amount that the source was not
        stopped in, by the HJ 75 rule (``rules.emission``); stated in the evidence."""
        missing = 24 - valid - self._stopped_hours(start, code, hours)
        history = self._amounts.get(code) if self._amounts else None
        if missing <= 0 or history is None:
            return 0.0
        last = history.last_hour
        gap = (start + DAY - last) // HOUR - 1
        capture = history.capture(start, quarter_start(start))
        window = substitution_window(capture, gap)
        per_hour = None if window is None else history.largest(window)
        evidence["substituted"] = {
            "hours": missing,
            "window_hours": window,
            "capture": round(capture, 4),
            "kg_per_hour": _round(per_hour),
        }
        return 0.0 if per_hour is None else per_hour * missing

    def _ultra_low_months(self, judged_until: int) -> list[Finding]:
        """A8: each month whose days have all been judged: the share of its valid hours at
        or below the ultra-low target (环大气〔2019〕35号 as third-party tools apply it:
        at least 95 % of hours) [F-impl]."""
        out: list[Finding] = []
        p = self.params
        for month in sorted(self._months or ()):
            end = next_month_start(month)
            if end > judged_until:
                break
            assert self._months is not None
            for code, (n, within) in sorted(self._months.pop(month).items()):
                if code not in self.thresholds:
                    continue  # no longer configured
                share = within / n
                evidence = {
                    "valid_hours": n,
                    "within": within,
                    "target": self.thresholds[code].ultra_low,
                }
                out += self._transition(
                    "A8",
                    code,
                    month,
                    end - month,
                    "warning" if share < p.ultra_low_share else None,
                    round(share * 100, 2),
                    round(p.ultra_low_share * 100, 2),
                    evidence,
                    unit="%",
                )
        return out

    def _day_judged(
        self, start: int, code: str, n: int, hours: _DayHours, evidence: dict[str, Any]
    ) -> bool:
        """Whether a day with ``n`` valid hours is judged: at least ``valid_hours_per_day``
        (HJ 76 附录B: 20 for flue gas). An incinerator's day is its furnace's running time
        (部令第10号: 日均值 of the furnace's 非停运期间): at least as many valid hours as it
        ran, when it ran fewer than that (docs/rules.md, A5-1)."""
        p = self.params
        if n >= p.valid_hours_per_day:
            return True
        if not p.incineration or n < p.incineration_min_hours:
            return False
        running = 24 - self._stopped_hours(start, code, hours)
        evidence["running_hours"] = running
        return n >= running

    def _daily_value(self, acc: Sequence[float], evidence: dict[str, Any]) -> float | None:
        """The day's value from its valid hours (:func:`rules.emission.daily_mean`), with how
        it was weighted in the evidence. None when nothing was discharged."""
        water, n_flow = self.params.kind == "water", acc[4]
        if water and n_flow:
            evidence["weighted_hours"] = int(n_flow)
            evidence["weighted_share"] = round(n_flow / acc[0], 4)
        value, evidence["flow_weighted"] = daily_mean(
            acc, flow_weighted=water, min_flow_hours=self.params.valid_hours_per_day
        )
        return value

    def _stopped_marked(self, start: int, code: str, hours: Sequence[int]) -> int:
        """How many of the day's hours (indexes) lie wholly in a declared 停产 marking."""
        book = self.markings
        if book is None or not hours:
            return 0
        e, o = self.params.enterprise_id, self.params.outlet_id
        return sum(stop_marked(book, e, o, code, start + h * HOUR) for h in hours)

    def _furnace_day(self, start: int, hours: _DayHours) -> list[Finding]:
        """A5-2: more than ``furnace_low_max_per_day`` low five-minute means in the day."""
        p = self.params
        code = p.furnace_code
        if p.furnace_bound is None or code not in hours.counts:
            return []  # no furnace minute data this day: nothing to judge
        low = hours.low.get(code, [])
        n = sum(k for _, k in low)
        evidence = {
            "low_periods": n,
            "allowed": p.furnace_low_max_per_day,
            "bound": p.furnace_bound,
            "hours": [[h, k] for h, k in low],
        }
        return self._transition(
            "A5-2",
            code,
            start,
            DAY,
            "alarm" if n > p.furnace_low_max_per_day else None,
            float(n),
            float(p.furnace_low_max_per_day),
            evidence,
            unit="次",
        )

    def open_days(self) -> list[int]:
        return sorted(self._days)

    def take_day(self, start: int, taken: DayTaken) -> None:
        """A day whose hours the batch engine judged in columns (``rules.day_columns``), as
        :meth:`hour` would have left it for :meth:`day`: its sums and amounts, counts,
        stopped hours, A8 tallies, the furnace's low hours and the last hour of each
        factor's amounts."""
        self._days[start] = _DayHours(
            values={code: array("d", sums) for code, sums in taken.sums.items()},
            counts={code: array("q", counts) for code, counts in taken.counts.items()},
            stopped=dict(taken.stopped),
            low={code: list(hours) for code, hours in taken.low.items()},
        )
        for code, (n, within) in taken.ultra_low.items():
            if self._months is None:
                self._months = {}
            tally = self._months.setdefault(month_start(start), {}).setdefault(code, [0, 0])
            tally[0] += n
            tally[1] += within
        for code, hour in taken.last_amount.items():
            self._amount_history(code).last_hour = hour

    # -- transitions ---------------------------------------------------------------------

    def _tiered(
        self,
        rule: str,
        code: str,
        start: int,
        length: int,
        value: float,
        alarm: float | None,
        warning: float | None,
        evidence: dict[str, Any],
    ) -> list[Finding]:
        if alarm is not None and value > alarm:
            return self._transition(rule, code, start, length, "alarm", value, alarm, evidence)
        if warning is not None and value > warning:
            return self._transition(rule, code, start, length, "warning", value, warning, evidence)
        if alarm is None and warning is None:
            return []
        return self._transition(rule, code, start, length, None, value, None, evidence)

    def _range(
        self, rule: str, code: str, start: int, length: int, agg: HourAgg, hv: HourValue
    ) -> list[Finding]:
        """A4V: every valid value must stay in the allowed range (pH 6-9), so the hour is
        judged on its extremes (the valid records and their own Min/Max fields, or the device
        hour's), not on its mean, and whether or not the hour is valid."""
        t = self.thresholds[code]
        if t.value_low is None and t.value_high is None:
            return []
        if code == self.params.furnace_code:
            return []  # the furnace temperature's lower bound is rule A5-2's, not a per-value one
        if agg.ext_low is not None and agg.ext_high is not None:
            lowest, highest = agg.ext_low / FIXED, agg.ext_high / FIXED
        elif hv.source == "device" and hv.valid and hv.value is not None:
            lowest = hv.value if agg.dev_min is None else min(hv.value, agg.dev_min)
            highest = hv.value if agg.dev_max is None else max(hv.value, agg.dev_max)
        else:
            return []  # no valid value this hour: nothing to judge
        low = t.value_low is not None and lowest < t.value_low
        high = t.value_high is not None and highest > t.value_high
        if self._unchanged(rule, code, low or high):
            return []
        limit = t.value_low if low else t.value_high
        evidence = {
            "source": hv.source,
            "mean": _round(hv.value),
            "min": _round(lowest),
            "max": _round(highest),
            "low": t.value_low,
            "high": t.value_high,
        }
        return self._transition(
            rule,
            code,
            start,
            length,
            "alarm" if low or high else None,
            _round(lowest if low or not high else highest),
            limit,
            evidence,
        )

    def _unchanged(self, rule: str, code: str | None, holds: bool) -> bool:
        """Whether judging the condition now changes nothing: it does not hold and did not
        hold before, so :meth:`_transition` would find nothing. Checked first where a finding's
        evidence costs something to build: in most hours nothing holds or ends."""
        return not holds and (rule, code or "") not in self._levels

    def _transition(
        self,
        rule: str,
        code: str | None,
        start: int,
        length: int,
        tier: Tier | None,
        value: float | None,
        limit: float | None,
        evidence: dict[str, Any],
        unit: str | None = None,
    ) -> list[Finding]:
        """Fire while the condition holds; clear once when it stops. ``unit``: the value's
        own unit when it is not the factor's (minutes, hours, %, a count)."""
        change = self._levels.judge((rule, code or ""), None if tier is None else (tier, limit))
        if change is None:
            return []
        state, (tier, limit) = change  # a clear names the condition it ends
        p = self.params
        window = (start, start + length)
        found = outlet_finding(
            p, self._version, rule, state, code, window, tier, value, limit, evidence, unit
        )
        return [found]
