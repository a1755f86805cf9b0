"""Emission formulas, each with one home: the amount (排放量, HJ 212 附录D, HJ 75), the
concentration at the reference O2 (折算) and the daily mean of a factor's valid hours.

An hour's amount is its concentration times the volume that left in it. Flue gas: mg/m³ ×
m³/s (the standard-state flow a00000); wastewater: mg/L × L/s (w00000): both give
C × Q × 3600 s × 10⁻⁶ kg/mg = 0.0036 × C × Q kg. A flow reported per hour (m³/h) is taken
as it is. The amount uses the *measured* concentration: the converted one (折算) is what the
limit is stated in, not what left the stack. The part above the limit is the amount times
(judged − limit) / judged, the converted excess carried back to the measured basis.
"""

from __future__ import annotations

from array import array
from collections.abc import MutableSequence, Sequence
from typing import Any

from rules.timebase import DAY

# Flow units (as configured or from the HJ 212 code table) → m³ (or L) per hour, per unit.
_PER_HOUR = {"m³/s": 3600.0, "m3/s": 3600.0, "L/s": 3600.0, "l/s": 3600.0, "m³/h": 1.0, "m3/h": 1.0}
# Volume units per concentration unit that make mg: mg/m³ with m³, mg/L with L.
_MATCH = {"mg/m³": ("m³", "m3"), "mg/m3": ("m³", "m3"), "mg/L": ("L", "l"), "mg/l": ("L", "l")}


def flow_per_hour(conc_unit: str, flow_unit: str) -> float | None:
    """The flow unit's volume per hour, when it combines with the concentration's unit into
    mg (None: it does not, and no amount is stated)."""
    per_hour = _PER_HOUR.get(flow_unit)
    volumes = _MATCH.get(conc_unit)
    if per_hour is None or volumes is None or not flow_unit.startswith(volumes):
        return None
    return per_hour


def hour_amount_kg(conc: float, conc_unit: str, flow: float, flow_unit: str) -> float | None:
    """kg emitted in an hour at ``conc`` and ``flow`` (None: units that do not combine)."""
    per_hour = flow_per_hour(conc_unit, flow_unit)
    return None if per_hour is None else amount_kg(conc, flow, per_hour)


def amount_kg(conc: Any, flow: Any, per_hour: Any) -> Any:
    """The amount itself, on numbers or on columns alike (the same operations in order)."""
    return conc * flow * per_hour * 1e-6


def excess_kg(amount_kg: float, judged: float, limit: float) -> float:
    """The part of ``amount_kg`` above ``limit`` (0 when the judged value is not above it)."""
    if judged <= limit or judged <= 0:
        return 0.0
    return amount_kg * (judged - limit) / judged


def at_reference_o2(measured: float, reference_o2: float, o2: float) -> float:
    """折算: a flue-gas concentration at the O2 content its limit is stated at (GB 13223,
    HJ 75): measured × (21 − reference) / (21 − O2), in per cent, O2 below 21."""
    return measured * (21 - reference_o2) / (21 - o2)


# A factor's day as its daily value needs it, summed hour by hour in event-time order (the
# same order in both engines): [valid hours, Σ value, Σ value × flow, Σ flow, hours with a
# valid flow (zero included), Σ value of the hours without one]. A list: the judge keeps one
# per factor and open day, with its amounts after these.
DAY_SUMS = 6


def add_to_day(sums: MutableSequence[float], value: float, flow: float | None, at: int = 0) -> None:
    """Count one valid hour's value, and its valid flow (None: none) for the weighting, in the
    sums starting at index ``at`` of ``sums``."""
    sums[at] += 1
    sums[at + 1] += value
    if flow is not None and flow >= 0:  # a zero-flow hour weighs 0
        sums[at + 2] += value * flow
        sums[at + 3] += flow
        sums[at + 4] += 1
    else:
        sums[at + 5] += value


def daily_mean(
    sums: Sequence[float], *, flow_weighted: bool, min_flow_hours: int
) -> tuple[float | None, bool]:
    """The day's value from its valid hours, and whether it is flow-weighted: their mean; with
    ``flow_weighted`` (wastewater, HJ 212 附录D) weighted by each hour's flow, a zero-flow hour
    weighing 0 and an hour without a valid flow left out of the weighting (not guessed), when
    the hours with a valid flow are themselves enough (``min_flow_hours``). None when nothing
    was discharged (no flow in any valid hour), or without hours."""
    n, total, weighted_sum, weights, n_flow, unweighted = sums[:DAY_SUMS]
    if not n:
        return None, False
    if not flow_weighted or not n_flow or n_flow < min_flow_hours:
        return total / n, False
    if weights > 0:
        return weighted_sum / weights, True
    if n_flow == n:
        return None, False
    return unweighted / (n - n_flow), False  # flow known only where it was zero


# HJ 75-2017 修约 of the emission amount of invalid hours (docs/rules.md, B-sub):
# with the quarter's valid-data capture at or above 90 %, a gap of at most 24 hours takes the
# largest hourly amount of the previous 180 valid hours, a longer gap of the previous 720;
# from 75 % to 90 %, of the previous 2160 valid hours; below 75 % the standard gives no value.
# Amounts only: a substituted hour is never exceedance evidence.
HISTORY_DAYS = 30  # daily maxima kept: 720 valid hours at most (the 2160-hour window is cut)


def substitution_window(capture: float, gap_hours: int) -> int | None:
    """Valid hours to take the maximum over, or None when nothing may be substituted."""
    if capture >= 0.9:
        return 180 if gap_hours <= 24 else 720
    if capture >= 0.75:
        return 2160
    return None


class AmountHistory:
    """A factor's hourly emission amounts as the substitution needs them: per day the largest
    valid hourly amount and the number of valid hours (the last ``HISTORY_DAYS`` days, so the
    windows are counted in whole days: the maximum may include up to a day more than the
    standard's hours), and the quarter's capture counts."""

    __slots__ = ("due", "hours", "last_day", "last_hour", "maxima", "quarter", "valid")

    def __init__(self) -> None:
        self.last_hour = 0  # the last hour with a valid amount
        self.last_day: int | None = None  # the last day counted
        self.maxima: array[float] | None = None  # created at the first day's close
        self.hours: array[int] | None = None
        self.quarter = 0  # start of the quarter the counts are for
        self.valid = 0  # valid hours in the quarter so far
        self.due = 0  # hours the source was not stopped in the quarter so far

    def capture(self, day: int, quarter: int) -> float:
        """The quarter's valid-data capture before ``day``: its valid hours over its due ones,
        the days the outlet sent nothing due whole."""
        if quarter != self.quarter:
            return 0.0  # nothing counted in this quarter yet
        due = self.due + self._missed(day, quarter)
        return self.valid / due if due else 0.0

    def _missed(self, day: int, quarter: int) -> int:
        """Hours of the days between the last counted one and ``day`` (none counted)."""
        if self.last_day is None or day - self.last_day <= DAY:
            return 0
        return (day - max(self.last_day + DAY, quarter)) // 3600

    def largest(self, window_hours: int) -> float | None:
        """The largest hourly amount of the last ``window_hours`` valid hours (whole days)."""
        seen, best = 0, None
        if self.maxima is None or self.hours is None:
            return None
        for i in range(len(self.maxima) - 1, -1, -1):
            if self.hours[i]:
                m = float(self.maxima[i])
                best = m if best is None else max(best, m)
                seen += self.hours[i]
            if seen >= window_hours:
                break
        return best

    def close_day(
        self, quarter: int, day: int, day_max: float | None, valid: int, due: int
    ) -> None:
        """Count a closed day: its largest valid hourly amount, its valid hours, and the hours
        the source was not stopped (``due``). Days the outlet never closed since the last one
        (it sent nothing) were due whole: a silent logger lowers the capture."""
        missed = self._missed(day, quarter)
        if quarter != self.quarter:
            self.quarter, self.valid, self.due = quarter, 0, 0
        self.last_day = day
        self.valid += valid
        self.due += due + missed
        if self.maxima is None or self.hours is None:
            self.maxima, self.hours = array("f"), array("B")
        self.maxima.append(day_max or 0.0)
        self.hours.append(valid if day_max is not None else 0)
        if len(self.maxima) > HISTORY_DAYS:
            del self.maxima[0]
            del self.hours[0]
