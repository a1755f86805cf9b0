"""Rule parameters: what a finding is judged against, per outlet × factor and per meter.

Every number the rule catalogue tags [I] (docs/rules.md, "Parameters") is a parameter here with
that default, and every finding records the parameter set it was judged with (``params_id`` and a
``version`` that changes whenever any value in the set changes).

Limits are *thresholds*: a window (``hour``, ``day``, or ``value`` for every single reading),
a tier (预警 ``warning`` or 报警 ``alarm``) and an upper and/or lower bound. Presets from the
emission-standard tables fill them in; the configuration overrides single values.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache, partial
from typing import Literal

from rules.hours import Plateau, to_fixed
from rules.markings import Marking, MarkingBook, MarkingCap

Window = Literal["hour", "day", "value"]
Tier = Literal["warning", "alarm"]
OutletKind = Literal["gas", "water"]

O2_CODE = "a19001"
INCINERATION_O2_BAND = (6.0, 10.0)  # B8-2: O2 of normal combustion, % (CJJ/T 212)
GAS_FLOW_CODE = "a00000"
WATER_FLOW_CODE = "w00000"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The limits of one factor. ``None`` means "not judged"."""

    hour_alarm: float | None = None
    hour_warning: float | None = None
    day_alarm: float | None = None
    day_warning: float | None = None
    value_high: float | None = None  # every single value must stay at or below (alarm)
    value_low: float | None = None  # ... and at or above (pH 6-9, furnace >= 850 °C)
    # A5-3: the band a process factor's valid hourly mean keeps in normal operation (预警):
    # a furnace's 1-h mean above 1200 ℃ is 偏高 and above ``band_high_2`` (1300) 过高; a bag
    # filter's pressure drop stays within 500–2000 Pa.
    band_low: float | None = None
    band_high: float | None = None
    band_high_2: float | None = None
    # A8: an ultra-low emission target (超低排放) on the converted hourly value, assessed as
    # the share of a month's valid hours at or below it (``ultra_low_share``).
    ultra_low: float | None = None

    def merged(self, other: Thresholds) -> Thresholds:
        """``other``'s values where it sets them, ours elsewhere."""
        mine = asdict(self)
        mine.update({k: v for k, v in asdict(other).items() if v is not None})
        return Thresholds(**mine)


@dataclass(frozen=True, slots=True)
class FactorParams:
    """Parameters of one outlet × factor."""

    factor: str
    unit: str = ""
    thresholds: Thresholds = Thresholds()
    # Convert to the reference O2 (折算) before judging; None: judge the measured value.
    reference_o2: float | None = None
    # Instrument range upper limit (B4 over range); plausibility bounds (B5).
    range_max: float | None = None
    plausible_min: float | None = None
    plausible_max: float | None = None
    allow_negative: bool = False  # B3 does not apply (temperatures)
    source: str = ""  # where the limits come from, e.g. "GB 13223-2011 Table 1"


@dataclass(frozen=True, slots=True, weakref_slot=True)  # weakly held by _DIGESTS
class OutletParams:
    """Parameters of one outlet: its factors and the window and validity rules."""

    enterprise_id: str
    outlet_id: str
    kind: OutletKind
    factors: dict[str, FactorParams] = field(default_factory=dict)
    preset: tuple[str, ...] = ()
    # The length a CN 2051 record covers (MinInterval): read from the data (rules/hours.py);
    # a value here overrides it, and the data disagreeing with it is a finding (B11).
    minute_interval_min: int | None = None
    valid_minutes_per_hour: int = 45  # A1: "不少于45分钟的有效数据" [F]
    valid_hours_per_day_gas: int = 20  # HJ 212 Appendix D: day = mean of >= 20 valid hours
    valid_hours_per_day_water: int = 18  # 75 % [I]
    valid_flags: frozenset[str] = frozenset({"N", "T"})  # T: kept, and raised as over range
    # Warnings derived where a window has an alarm limit but no warning limit of its own.
    warning_fraction: float | None = 0.8  # [I]
    hourly_warning_for_daily_limit: bool = True  # water: an hour above the daily limit warns
    zs_tolerance: float = 0.01  # B8-5: reported 折算 vs recomputed, relative [I]
    o2_code: str = O2_CODE
    # Data anomalies (B), all [I] defaults.
    zero_minutes: int = 60  # B1: consecutive zero values for this long while producing
    const_minutes: int = 60  # B2: consecutive identical values for this long
    over_range_alarm_hours: int = 3  # B4: over range this many hours in a row is an alarm
    jump_sigma: float = 5.0  # B6: a change of the hourly value above k σ of the last 24 h ...
    jump_relative: float = 0.5  # ... and above this fraction of their mean
    jump_min_history: int = 12  # ... judged once this many valid hours are known
    flag_hours_warning: int = 4  # B9: fault/maintenance/calibration flags this many hours
    flag_hours_alarm: int = 120  # ... and this many (5 days) for an alarm
    transmission_min: float = 0.9  # B10: effective transmission rate per day
    o2_high: float = 19.0  # B8-3: O2 this high while flue gas flows: dilution suspected
    # B8-2: the O2 band of normal combustion (incinerators 6–10 %, CJJ/T 212); None: not judged.
    o2_band: tuple[float, float] | None = None
    offline_after_s: int = 600  # B8: a logger silent this long is offline (minute-reporting) [I]
    hour_deadline_s: int = 1800  # B7: an hour packet is missing this long after the hour [I]
    # MSW incineration (A5): the daily exceedance is A5-1 and marks excuse data only up to
    # yearly caps; A5-2 counts the furnace temperature's 5-minute means below its lower bound.
    incineration: bool = False
    # A5-1: a day the furnace ran fewer hours than ``valid_hours_per_day`` is judged on its
    # running hours if they are all valid and at least this many (docs/rules.md) [I].
    incineration_min_hours: int = 1
    # A7: the longest a marking of a type may last per occurrence, in hours (incinerators,
    # HJ 1307 as quoted by the plants' rule sheets: start-up, shutdown, fault, accident 4 h).
    marking_max_hours: tuple[tuple[str, float], ...] = ()
    ultra_low_share: float = 0.95  # A8: a month's valid hours at or below the target [F-impl]
    # B8-1: valid hourly O2 above this (the 90th percentile of similar outlets' hourly O2, a
    # fleet reference computed by ``nonsite replay --o2-reference``) while flue gas flows;
    # None: not judged.
    o2_reference: float | None = None
    # B8-4: a wet-desulphurised flue gas is saturated and cool; a valid hourly flue-gas
    # temperature above this while it flows says the scrubber is bypassed or not running [I];
    # None: the outlet has no wet FGD (not judged).
    wet_fgd_temp_max: float | None = None
    temperature_code: str = "a01012"  # 烟气温度
    # B8-7: a calibration-like plateau (a round value held with steps in and out, no C
    # flag) lasting this many minutes [I].
    plateau_min_minutes: int = 3
    plateau_max_minutes: int = 15
    plateau_range_share: float = 0.4  # ... at a level of at least this share of the range
    plateau_round: float = 10.0  # ... at a multiple of this (in the factor's unit)
    plateau_step_pct: int = 50  # ... stepped into and out of by this much of its value
    copy_min_records: int = 6  # B8-8: identical series of at least this many valid records [I]
    marking_caps: tuple[MarkingCap, ...] = ()
    furnace_code: str = "a01901"  # 炉膛内焚烧平均温度
    furnace_period_s: int = 300  # 五分钟均值
    furnace_low_max_per_day: int = 5  # A5-2: more than this many low means in a natural day
    # Production power against the CEMS (rules/linkage.py): B8-6 flow below ``flow_low``
    # (废气流量异常下限值, in the flow's unit) while a linked production device is ON for at
    # least ``producing_fraction`` of its samples in the hour.
    flow_low: float | None = None
    producing_fraction: float = 0.5

    @property
    def plateau(self) -> Plateau:
        return Plateau(
            self.plateau_min_minutes * 60,
            self.plateau_max_minutes * 60,
            to_fixed(self.plateau_round),
            self.plateau_step_pct,
        )

    @property
    def interval_override_s(self) -> int | None:
        return None if self.minute_interval_min is None else self.minute_interval_min * 60

    @property
    def flow_code(self) -> str:
        return GAS_FLOW_CODE if self.kind == "gas" else WATER_FLOW_CODE

    @property
    def valid_hours_per_day(self) -> int:
        return (
            self.valid_hours_per_day_gas if self.kind == "gas" else self.valid_hours_per_day_water
        )

    @property
    def daily_rule(self) -> str:
        """The rule a daily exceedance is reported as (A5-1 for incinerators)."""
        return "A5-1" if self.incineration else "A4"

    @property
    def furnace_bound(self) -> float | None:
        """The furnace temperature's lower bound when A5-2 is judged for this outlet."""
        fp = self.factors.get(self.furnace_code)
        return fp.thresholds.value_low if fp is not None else None

    @property
    def params_id(self) -> str:
        return f"{self.enterprise_id}/{self.outlet_id}"

    @property
    def version(self) -> str:
        """A short digest of every value: it changes exactly when a parameter changes."""
        return _digest(self)


class Versions:
    """Each outlet's ``OutletParams.version`` (a digest of every value), computed once: the
    column rules state findings of many outlets from one table of parameters."""

    def __init__(self, params: Mapping[tuple[str, str], OutletParams]) -> None:
        self._params = params
        self._known: dict[tuple[str, str], str] = {}

    def __getitem__(self, key: tuple[str, str]) -> str:
        version = self._known.get(key)
        if version is None:
            version = self._known[key] = self._params[key].version
        return version


def effective_thresholds(outlet: OutletParams, params: FactorParams) -> Thresholds:
    """The thresholds with derived warnings filled in."""
    return _with_warnings(
        params.thresholds, outlet.warning_fraction, outlet.hourly_warning_for_daily_limit
    )


# Kept per distinct input (a fleet's factors share a few sets of limits): a replay asks for
# every configured factor's (8,000 of them), and ``replace`` costs 8 µs each.
@lru_cache(maxsize=4096)
def _with_warnings(
    t: Thresholds, fraction: float | None, hourly_warning_for_daily_limit: bool
) -> Thresholds:
    hour_warning, day_warning = t.hour_warning, t.day_warning
    if hour_warning is None and t.hour_alarm is not None and fraction is not None:
        hour_warning = round(t.hour_alarm * fraction, 6)
    if day_warning is None and t.day_alarm is not None and fraction is not None:
        day_warning = round(t.day_alarm * fraction, 6)
    if (
        hour_warning is None
        and t.day_alarm is not None
        and t.hour_alarm is None
        and hourly_warning_for_daily_limit
    ):
        hour_warning = t.day_alarm
    return replace(t, hour_warning=hour_warning, day_warning=day_warning)


def marking_book(
    markings: MarkingBook | Sequence[Marking] | None,
    params: Mapping[tuple[str, str], OutletParams],
) -> MarkingBook:
    """The markings as a book with each outlet's yearly caps (a book is taken as it is)."""
    if isinstance(markings, MarkingBook):
        return markings
    return MarkingBook(markings or (), {key: p.marking_caps for key, p in params.items()})


# The digests computed, by object: parameter objects are frozen and slotted, so a digest cannot
# be cached on the object itself, and computing one (a JSON dump) on every finding is too slow.
# Each entry holds its object weakly and goes when the object does (before its id can be
# reused): a configuration rebuilt (every marking declared online rebuilds them all) leaves
# nothing behind here.
_DIGESTS: dict[int, tuple[weakref.ref[object], str]] = {}


def _digest(value: object) -> str:
    """A short, stable digest of a parameter set; computed once per object (it is frozen)."""
    key = id(value)
    cached = _DIGESTS.get(key)
    if cached is not None and cached[0]() is value:
        return cached[1]
    digest = _compute_digest(value)
    _DIGESTS[key] = (weakref.ref(value, partial(_forget, key)), digest)
    return digest


def _forget(key: int, ref: weakref.ref[object]) -> None:
    """The object of ``ref`` is gone: drop its entry (unless another object's took the id)."""
    cached = _DIGESTS.get(key)
    if cached is not None and cached[0] is ref:
        del _DIGESTS[key]


def _compute_digest(value: object) -> str:
    def default(o: object) -> object:
        if isinstance(o, frozenset):
            return sorted(o)
        raise TypeError(type(o))

    text = json.dumps(asdict(value), sort_keys=True, default=default)  # type: ignore[call-overload]
    return hashlib.sha256(text.encode()).hexdigest()[:12]
