"""Power-usage rule parameters (分表计电 / 用电监控): meters, their links, and orders.

All thresholds are [I] defaults of the rule catalogue (docs/rules.md, "Power usage" and C0-C8
in "Findings"): no public standard text gives them, so every one is configurable per meter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from rules.params import _digest

MeterRole = Literal["production", "control"]
OrderKind = Literal["emergency", "staggered"]


def sample_kw(active_power_kw: float | None, switch_on: bool | None) -> float | None:
    """The power a sample stands for. A source that reports only the device's state (HJ 212
    CN 2021 ``SBx-RS``, a meter's breaker) stands for +∞ when on and −∞ when off: decisive
    for the C0 state whatever the thresholds, and no power reading to learn from or tally
    (``math.isfinite``). None when the sample carries neither."""
    if active_power_kw is not None:
        return active_power_kw
    if switch_on is None:
        return None
    return math.inf if switch_on else -math.inf


@dataclass(frozen=True, slots=True)
class MeterParams:
    enterprise_id: str
    meter_id: str
    role: MeterRole
    rated_kw: float | None = None
    on_fraction: float = 0.10  # C0: ON at or above this share of the rated power
    off_fraction: float = 0.05  # ... OFF at or below this share; in between the state holds
    confirm_samples: int = 3  # ... and a change counts after this many samples agree
    serves: tuple[str, ...] = ()  # a control device: the production devices it treats
    outlets: tuple[str, ...] = ()  # a production device: the outlets it emits through
    low_load_fraction: float = 0.5  # C4: below this share of the learned baseline ...
    low_load_minutes: int = 30  # ... for this long while production runs
    baseline_days: int = 30  # C4: days of daily medians the baseline is learned from
    baseline_min_days: int = 3  # C4: judged only once this many days are learned
    # C7 (a production device): its day's level above this multiple of its baseline [I] ...
    c7_factor: float = 1.2
    c7_baseline_days: int = 30  # ... the median of the daily P95s of this many earlier days
    c7_min_days: int = 7  # ... judged only once this many days are learned
    offline_after_s: int = 1800  # C8: no sample for this long [I]

    @property
    def on_kw(self) -> float | None:
        return None if self.rated_kw is None else self.rated_kw * self.on_fraction

    @property
    def off_kw(self) -> float | None:
        return None if self.rated_kw is None else self.rated_kw * self.off_fraction


@dataclass(frozen=True, slots=True)
class Order:
    """An emergency order (停限产 / 应急减排: listed devices must stop in [start, end)) or a
    staggered-production order (错峰: listed devices must not run within the daily window
    ``daily`` = (from, to) seconds after midnight China time, on days in [start, end))."""

    kind: OrderKind
    start: int
    end: int
    devices: tuple[str, ...]
    reference: str = ""  # the order's number, for the finding's evidence
    daily: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True, weakref_slot=True)  # weakly held by params._DIGESTS
class EnterprisePowerParams:
    enterprise_id: str
    meters: dict[str, MeterParams] = field(default_factory=dict)
    orders: tuple[Order, ...] = ()
    c1_minutes: int = 10  # C1: production on with a control device off for this long [I]
    c2_lead_s: int = 300  # C2: control device on this much after production started [I]
    c3_lag_s: int = 300  # C3: control device off this much before production stopped [I]
    c5_minutes: int = 5  # C5/C6: a device on this long inside an order's window [I]

    @property
    def params_id(self) -> str:
        return f"{self.enterprise_id}/power"

    @property
    def version(self) -> str:
        return _digest(self)
