"""Layer 2: judge closed windows of one outlet. Shared by the streaming and batch engines.

Hours are judged in event-time order as they close; each judged hour also feeds its natural
day, which is judged when the day closes. The judge keeps, per factor and rule, whether a
condition currently holds, so that it emits ``fire`` for every window in which it holds and
one ``clear`` when it stops (an hour that cannot be judged changes nothing).

Rules here (docs/domain-rules.md §A): A1 valid hourly average (>= 45 valid minutes, invalid
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
from dataclasses import dataclass, field
from typing import Any

from rules.findings import Finding, Tier
from rules.hours import FIXED, HourAgg, to_fixed
from rules.markings import MarkingBook
from rules.params import OutletParams, Thresholds, effective_thresholds
from rules.timebase import DAY, HOUR, day_start

RECOMPUTE_TOLERANCE = 0.02  # A1D: relative difference tolerated between device and recomputed


@dataclass(frozen=True, slots=True)
class HourValue:
    """A factor's value for one hour, as judged."""

    value: float | None  # measured hourly average
    valid: bool
    source: str  # "minutes" or "device"
    valid_minutes: int
    flag: str | None  # the hour's flag: "N" when valid, else the dominant invalid cause


@dataclass(slots=True)
class _DayHours:
    # factor → [valid hours, Σ judged, Σ judged × flow, Σ flow, hours with a valid flow > 0],
    # added hour by hour in event-time order (the same order in both engines).
    values: dict[str, list[float]] = field(default_factory=dict)
    flow: float | None = None  # the valid flow of the hour being judged
    # factor → [minute records received, valid minute records] over the day (B10)
    counts: dict[str, list[int]] = field(default_factory=dict)
    # factor → [(hour start, five-minute means below the bound in it)] (A5-2)
    low: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


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


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


class OutletJudge:
    def __init__(self, params: OutletParams, markings: MarkingBook | None = None) -> None:
        self.params = params
        self.markings = markings
        self.thresholds: dict[str, Thresholds] = {
            code: effective_thresholds(params, fp) for code, fp in params.factors.items()
        }
        # (rule, factor) → (tier, limit) of the condition that currently holds
        self._state: dict[tuple[str, str], tuple[Tier, float | None]] = {}
        self._days: dict[int, _DayHours] = {}
        self._version = params.version  # a digest: computed once, recorded on every finding
        # B4 consecutive over-range hours, B9 consecutive invalid-flag hours, B6 history.
        self._over_hours: dict[str, int] = defaultdict(int)
        self._flag_hours: dict[str, int] = defaultdict(int)
        self._history: dict[str, array[float]] = {}
        self.hour_flow: float | None = None  # the valid flow of the last hour judged

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
        """Factors judged on sub-hour period means (A5-2): code → (period s, fixed bound)."""
        p = self.params
        bound = p.furnace_bound
        return {} if bound is None else {p.furnace_code: (p.furnace_period_s, to_fixed(bound))}

    # -- hours ---------------------------------------------------------------------------

    def hour_value(self, agg: HourAgg) -> HourValue:
        p = self.params
        if agg.n:
            minutes = agg.n_valid * p.minute_interval_min
            valid = minutes >= p.valid_minutes_per_hour
            value = agg.sum_valid / agg.n_valid / FIXED if agg.n_valid else None
            flag = "N" if valid else (agg.invalid_flag or ("M" if agg.n_marked else "D"))
            return HourValue(value, valid, "minutes", minutes, flag)
        valid = agg.dev_value is not None and agg.dev_flag in p.valid_flags and not agg.dev_marked
        return HourValue(agg.dev_value, valid, "device", 0, agg.dev_flag)

    def hour(self, start: int, aggs: dict[str, HourAgg]) -> list[Finding]:
        """Judge one closed outlet-hour."""
        p = self.params
        out: list[Finding] = []
        values = {code: self.hour_value(agg) for code, agg in aggs.items()}
        o2 = values.get(p.o2_code)
        o2_ok = o2 is not None and o2.valid and o2.value is not None and o2.value < 21
        day = self._days.setdefault(day_start(start), _DayHours())
        flow = values.get(p.flow_code)
        day.flow = (
            flow.value if flow is not None and flow.valid and flow.value is not None else None
        )
        self.hour_flow = day.flow  # for the production link (B8-6, C8-2)
        for code, hv in values.items():
            fp = p.factors.get(code)
            if fp is None:
                continue  # a factor the outlet reports but the configuration does not judge
            agg = aggs[code]
            out += self._device_check(code, start, HOUR, agg.dev_value, agg.dev_flag, hv)
            out += self._data_checks(code, start, agg, hv)
            if agg.n:
                counts = day.counts.setdefault(code, [0, 0])
                counts[0] += agg.n
                counts[1] += agg.n_valid
            if code == p.furnace_code and p.furnace_bound is not None:
                out += self._furnace_hour(code, start, agg, day)
            if not hv.valid or hv.value is None:
                continue
            out += self._jump(code, start, hv.value)
            judged = hv.value
            evidence: dict[str, Any] = {"source": hv.source, "measured": _round(hv.value)}
            if hv.source == "minutes":
                evidence["valid_minutes"] = hv.valid_minutes
            if fp.reference_o2 is not None:
                if not o2_ok:
                    reason = "no valid O2 hour value" if not (o2 and o2.valid) else "O2 >= 21 %"
                    out += self._transition(
                        "A2",
                        code,
                        start,
                        HOUR,
                        "warning",
                        None,
                        None,
                        {"reason": reason, "o2": _round(o2.value if o2 else None)},
                    )
                    continue
                assert o2 is not None
                assert o2.value is not None
                out += self._transition("A2", code, start, HOUR, None, None, None, {})
                judged = hv.value * (21 - fp.reference_o2) / (21 - o2.value)
                evidence.update(
                    o2=_round(o2.value), reference_o2=fp.reference_o2, converted=_round(judged)
                )
                out += self._reported_zs(code, start, agg, judged)
            acc = day.values.get(code)
            if acc is None:
                acc = day.values[code] = [0.0, 0.0, 0.0, 0.0, 0.0]
            acc[0] += 1
            acc[1] += judged
            if day.flow is not None and day.flow > 0:
                acc[2] += judged * day.flow
                acc[3] += day.flow
                acc[4] += 1
            t = self.thresholds[code]
            out += self._tiered(
                "A3", code, start, HOUR, judged, t.hour_alarm, t.hour_warning, evidence
            )
            out += self._range("A4V", code, start, HOUR, hv.value, t, evidence)
        out += self._o2_high(start, o2, flow)
        out += self._o2_band(start, o2, flow)
        return out

    # -- data anomalies (B) --------------------------------------------------------------

    def _data_checks(self, code: str, start: int, agg: HourAgg, hv: HourValue) -> list[Finding]:
        """B1 zero, B2 constant, B3 negative, B4 over range, B5 implausible, B9 flags."""
        p = self.params
        fp = p.factors[code]
        out: list[Finding] = []
        if agg.n:  # runs are judged on minute data only
            zero = agg.zero_run * p.minute_interval_min
            const = agg.const_run * p.minute_interval_min
            out += self._flagged(
                "B1", code, start, zero >= p.zero_minutes, zero, p.zero_minutes, "min"
            )
            out += self._flagged(
                "B2", code, start, const >= p.const_minutes, const, p.const_minutes, "min"
            )
        low: float | None
        high: float | None
        if agg.min_valid is not None and agg.max_valid is not None:
            low, high = agg.min_valid / FIXED, agg.max_valid / FIXED
        elif hv.source == "device" and hv.valid and hv.value is not None:
            low = high = hv.value
        else:
            low = high = None
        if low is not None and high is not None:
            negative = not fp.allow_negative and low < 0
            out += self._flagged("B3", code, start, negative, low, 0.0, fp.unit)
            over = agg.n_t > 0 or (
                fp.range_max is not None and to_fixed(high) >= to_fixed(fp.range_max)
            )
            self._over_hours[code] = self._over_hours[code] + 1 if over else 0
            tier: Tier = (
                "alarm" if self._over_hours[code] >= p.over_range_alarm_hours else "warning"
            )
            evidence = {
                "flag_t": agg.n_t,
                "range_max": fp.range_max,
                "hours": self._over_hours[code],
            }
            out += self._transition(
                "B4", code, start, HOUR, tier if over else None, high, fp.range_max, evidence
            )
            pmin, pmax = _plausible(code, fp.plausible_min, fp.plausible_max)
            implausible = (pmin is not None and low < pmin) or (pmax is not None and high > pmax)
            limit = pmin if pmin is not None and low < pmin else pmax
            out += self._transition(
                "B5",
                code,
                start,
                HOUR,
                "warning" if implausible else None,
                low if limit == pmin else high,
                limit,
                {"min": pmin, "max": pmax},
            )
        if not hv.valid and hv.source == "minutes" and hv.flag in ("D", "M", "C"):
            self._flag_hours[code] += 1
            n = self._flag_hours[code]
            tier = "alarm" if n >= p.flag_hours_alarm else "warning"
            hold = n >= p.flag_hours_warning
            out += self._transition(
                "B9",
                code,
                start,
                HOUR,
                tier if hold else None,
                float(n),
                float(p.flag_hours_warning),
                {"flag": hv.flag, "hours": n},
            )
        elif hv.valid:
            self._flag_hours[code] = 0
            out += self._transition("B9", code, start, HOUR, None, 0.0, None, {})
        return out

    def _flagged(
        self, rule: str, code: str, start: int, holds: bool, value: float, limit: float, unit: str
    ) -> list[Finding]:
        return self._transition(
            rule, code, start, HOUR, "warning" if holds else None, value, limit, {"unit": unit}
        )

    def _jump(self, code: str, start: int, value: float) -> list[Finding]:
        """B6: the hourly value jumps by more than k σ of the last 24 valid hours (and by more
        than a fraction of their mean)."""
        p = self.params
        history = self._history.get(code)
        if history is None:  # an array: a deque reserves 64 slots even for one value
            history = self._history[code] = array("d")
        out: list[Finding] = []
        if len(history) >= p.jump_min_history:
            # Plain floats: statistics.pstdev computes with fractions, 30× slower here.
            n = len(history)
            mean = math.fsum(history) / n
            sigma = math.sqrt(math.fsum((x - mean) ** 2 for x in history) / n)
            step = abs(value - history[-1])
            bound = max(p.jump_sigma * sigma, p.jump_relative * abs(mean))
            evidence = {
                "previous": _round(history[-1]),
                "sigma": _round(sigma),
                "mean": _round(mean),
            }
            out = self._transition(
                "B6",
                code,
                start,
                HOUR,
                "warning" if step > bound else None,
                _round(step),
                _round(bound),
                evidence,
            )
        history.append(value)
        if len(history) > 24:
            del history[0]
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
        evidence = {
            "reported": _round(reported),
            "recomputed": _round(recomputed),
            "tolerance": tolerance,
        }
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

    def _o2_high(self, start: int, o2: HourValue | None, flow: HourValue | None) -> list[Finding]:
        """B8-3: O2 near ambient while flue gas flows (dilution, or a leak before the analyser)."""
        p = self.params
        if (
            p.kind != "gas"
            or p.o2_code not in p.factors
            or o2 is None
            or not o2.valid
            or o2.value is None
        ):
            return []
        flowing = flow is not None and flow.valid and flow.value is not None and flow.value > 0
        high = flowing and o2.value >= p.o2_high
        return self._transition(
            "B8-3",
            p.o2_code,
            start,
            HOUR,
            "warning" if high else None,
            _round(o2.value),
            p.o2_high,
            {"flow": _round(flow.value if flow else None)},
        )

    def _o2_band(self, start: int, o2: HourValue | None, flow: HourValue | None) -> list[Finding]:
        """B8-2: the valid hourly O2 outside the band of normal combustion while flue gas
        flows (a furnace run with too much or too little air, or a diluted sample)."""
        p = self.params
        if p.o2_band is None or p.o2_code not in p.factors or o2 is None:
            return []
        if not o2.valid or o2.value is None:
            return []
        low, high = p.o2_band
        flowing = flow is not None and flow.valid and flow.value is not None and flow.value > 0
        outside = flowing and not low <= o2.value <= high
        return self._transition(
            "B8-2",
            p.o2_code,
            start,
            HOUR,
            "warning" if outside else None,
            _round(o2.value),
            high if o2.value > high else low,
            {"band": [low, high], "flow": _round(flow.value if flow else None)},
        )

    def _furnace_hour(self, code: str, start: int, agg: HourAgg, day: _DayHours) -> list[Finding]:
        """A5-3: an hour with a five-minute furnace temperature mean below the bound (预警);
        the count feeds the day's A5-2."""
        p = self.params
        if agg.low_periods:
            day.low.setdefault(code, []).append((start, agg.low_periods))
        if agg.lowest_period is None:
            return []  # no valid period this hour: nothing to judge
        lowest = agg.lowest_period / FIXED
        return self._transition(
            "A5-3",
            code,
            start,
            HOUR,
            "warning" if agg.low_periods else None,
            _round(lowest),
            p.furnace_bound,
            {"low_periods": agg.low_periods, "period_s": p.furnace_period_s},
        )

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
        evidence = {
            "device": _round(dev_value),
            "recomputed": _round(hv.value),
            "tolerance": RECOMPUTE_TOLERANCE,
        }
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

    def day(self, start: int) -> list[Finding]:
        """Judge one closed natural day (China time) from its judged hours."""
        p = self.params
        hours = self._days.pop(start, None)
        if hours is None:
            return []
        out: list[Finding] = []
        expected = DAY // 60 // p.minute_interval_min
        for code, (received, valid) in sorted(hours.counts.items()):
            if code not in p.factors:
                continue
            rate = valid / expected
            counted = {"received": received, "valid": valid, "expected": expected}
            out += self._transition(
                "B10",
                code,
                start,
                DAY,
                "warning" if rate < p.transmission_min else None,
                round(rate, 4),
                p.transmission_min,
                counted,
            )
        caps = None
        if p.marking_caps and self.markings is not None:
            caps = self.markings.cap_usage((p.enterprise_id, p.outlet_id), start + DAY)
        for code, (n, total, weighted_sum, weights, n_weighted) in sorted(hours.values.items()):
            t = self.thresholds[code]
            if t.day_alarm is None and t.day_warning is None:
                continue
            if n < p.valid_hours_per_day:
                continue
            weighted = p.kind == "water" and n_weighted == n
            value = weighted_sum / weights if weighted else total / n
            evidence: dict[str, Any] = {"valid_hours": int(n), "flow_weighted": weighted}
            if caps is not None:
                evidence["marking_caps"] = caps
            out += self._tiered(
                p.daily_rule, code, start, DAY, value, t.day_alarm, t.day_warning, evidence
            )
        out += self._furnace_day(start, hours)
        return out

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
        )

    def open_days(self) -> list[int]:
        return sorted(self._days)

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
        self,
        rule: str,
        code: str,
        start: int,
        length: int,
        value: float,
        t: Thresholds,
        evidence: dict[str, Any],
    ) -> list[Finding]:
        if t.value_low is None and t.value_high is None:
            return []
        if code == self.params.furnace_code:
            return []  # the furnace temperature's lower bound is rule A5-2's, not a per-value one
        low = t.value_low is not None and value < t.value_low
        high = t.value_high is not None and value > t.value_high
        limit = t.value_low if low else t.value_high
        return self._transition(
            rule,
            code,
            start,
            length,
            "alarm" if low or high else None,
            value,
            limit,
            {**evidence, "low": t.value_low, "high": t.value_high},
        )

    def _transition(
        self,
        rule: str,
        code: str,
        start: int,
        length: int,
        tier: Tier | None,
        value: float | None,
        limit: float | None,
        evidence: dict[str, Any],
    ) -> list[Finding]:
        """Fire while the condition holds; clear once when it stops."""
        key = (rule, code)
        before = self._state.get(key)
        if tier is None:
            if before is None:
                return []
            del self._state[key]
            state = "clear"
            tier, limit = before  # a clear names the condition it ends
        else:
            self._state[key] = (tier, limit)
            state = "fire"
        p = self.params
        fp = p.factors[code]
        multiple = None
        if state == "fire" and value is not None and limit:
            multiple = round((value - limit) / limit, 4)
        return [
            Finding(
                rule=rule,
                state=state,  # type: ignore[arg-type]
                enterprise_id=p.enterprise_id,
                source_id=p.outlet_id,
                factor=code,
                window_start=start,
                window_end=start + length,
                tier=tier,
                value=_round(value),
                limit=limit,
                unit=fp.unit,
                multiple=multiple,
                params_id=p.params_id,
                params_version=self._version,
                evidence=evidence,
            )
        ]
