"""Production power against the CEMS of the outlets it emits through (one enterprise).

A production meter may name the outlets its emissions leave by (``MeterParams.outlets``).
Each closed hour then has two halves: the outlet's valid hourly flow (from the outlet judge)
and, per linked meter, how many samples it sent, how many found the device ON (C0) and how
many read zero power (from the meter samples, in event-time order). When both halves of an
(outlet, hour) are known the hour is judged:

- **B8-6** 流量异常偏低: a linked production device ON for at least ``producing_fraction`` of
  its samples while the hourly flow is below the outlet's ``flow_low`` (废气流量异常下限值).
- **C8-2** 电表零值: a linked meter read zero in every sample of the hour while the outlet's
  flow shows production (at or above ``flow_low``, or above 0 when none is set) - the second
  condition of the catalogue's C8: a bypassed or dead meter.
- **A7-2** 标记与用电不符: the outlet says its source is stopped (its data flagged F, 停运, or
  the hour inside a declared shutdown or 停产 marking) while a linked production device is ON
  for at least ``producing_fraction`` of its samples: a false marking is itself a finding.

The two sides close hours in event-time order, each at its own pace; a half waits for the
other until that side has closed a later hour without it (an hour without data on one side is
not judged). The hours judged are therefore the hours both sides delivered, in hour order, in
whatever order the halves arrived: the streaming and batch engines judge the same hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rules.findings import Finding, Tier
from rules.firing import Level
from rules.params import OutletParams
from rules.power_params import EnterprisePowerParams
from rules.timebase import HOUR

Tally = tuple[int, int, int]  # samples, samples with the device ON, samples reading zero


class ProductionLink:
    def __init__(self, power: EnterprisePowerParams, outlets: Mapping[str, OutletParams]) -> None:
        self._hour: int | None = None  # the power hour being tallied
        self._tally: dict[str, list[int]] = {}
        self._power: dict[tuple[str, int], dict[str, Tally]] = {}  # power halves waiting
        # outlet halves waiting: the valid flow, and what says the source is stopped
        self._flow: dict[tuple[str, int], tuple[float | None, str | None]] = {}
        self._outlet_closed: dict[str, int] = {}  # outlet → the last hour it closed
        self._power_closed = -(2**62)  # every power hour before this one is closed
        self._levels: Level[tuple[str, str], Tier] = Level()  # (rule, outlet): what holds
        self.reconfigure(power, outlets)

    def reconfigure(
        self, power: EnterprisePowerParams, outlets: Mapping[str, OutletParams]
    ) -> None:
        """New parameters; the waiting halves and the conditions that hold stay."""
        self.power = power
        self.outlets = dict(outlets)
        feeds: dict[str, list[str]] = {}
        for m in power.meters.values():
            if m.role != "production":
                continue
            for outlet in m.outlets:
                if outlet in self.outlets:
                    feeds.setdefault(outlet, []).append(m.meter_id)
        self.meters_of = {o: tuple(sorted(ms)) for o, ms in feeds.items()}
        self.linked = {m for ms in self.meters_of.values() for m in ms}

    def __bool__(self) -> bool:
        return bool(self.meters_of)

    # -- the power half ------------------------------------------------------------------

    def sample(self, meter_id: str, ts: int, p_kw: float, state: str | None) -> list[Finding]:
        """A judged meter sample (in event-time order) and the device state after it."""
        if meter_id not in self.linked:
            return []
        hour = ts - ts % HOUR
        out: list[Finding] = []
        if self._hour is not None and hour > self._hour:
            out = self._close_power_hour()
        self._hour = hour
        tally = self._tally.setdefault(meter_id, [0, 0, 0])
        tally[0] += 1
        tally[1] += state == "on"
        tally[2] += -math.inf < p_kw <= 0  # a reading of zero, not a reported state
        return out

    def power_closed(self, upto: int) -> list[Finding]:
        """Every sample stamped at or before ``upto`` has been judged."""
        out: list[Finding] = []
        if self._hour is not None and upto >= self._hour + HOUR - 1:
            out = self._close_power_hour()
        closed = (upto + 1) - (upto + 1) % HOUR
        if closed > self._power_closed:
            self._power_closed = closed
            for key in [k for k in self._flow if k[1] < closed]:
                del self._flow[key]  # the power side has nothing for that hour
        return out

    def _close_power_hour(self) -> list[Finding]:
        hour = self._hour
        assert hour is not None
        tallies = {m: (t[0], t[1], t[2]) for m, t in self._tally.items()}
        self._tally, self._hour = {}, None
        return self.power_hour(hour, tallies)

    def power_hour(self, hour: int, tallies: Mapping[str, Tally]) -> list[Finding]:
        """The linked meters' tallies of a closed power hour (the batch engine counts them
        with polars; the stream through ``sample``). Hours must come in order."""
        out: list[Finding] = []
        for outlet, meters in self.meters_of.items():
            half = {m: tallies[m] for m in meters if m in tallies}
            if not half:
                continue
            key = (outlet, hour)
            if key in self._flow:
                out += self._judge(outlet, hour, self._flow.pop(key), half)
            elif hour > self._outlet_closed.get(outlet, -(2**62)):
                self._power[key] = half
        return out

    # -- the outlet half -----------------------------------------------------------------

    def outlet_hour(
        self, outlet: str, hour: int, flow: float | None, stopped: str | None = None
    ) -> list[Finding]:
        """The outlet closed ``hour``; ``flow`` is its valid hourly flow (None: not valid);
        ``stopped`` what says its source was stopped (flag F, a marking type), if anything."""
        if outlet not in self.meters_of:
            return []
        self._outlet_closed[outlet] = hour
        for key in [k for k in self._power if k[0] == outlet and k[1] < hour]:
            del self._power[key]  # the outlet skipped that hour: it will never deliver it
        key = (outlet, hour)
        half = self._power.pop(key, None)
        if half is not None:
            return self._judge(outlet, hour, (flow, stopped), half)
        if hour >= self._power_closed:
            self._flow[key] = (flow, stopped)
        return []

    # -- judgement -----------------------------------------------------------------------

    def _judge(
        self,
        outlet: str,
        hour: int,
        outlet_half: tuple[float | None, str | None],
        half: dict[str, Tally],
    ) -> list[Finding]:
        flow, stopped = outlet_half
        p = self.outlets[outlet]
        fraction = p.producing_fraction
        producing = sorted(m for m, (n, on, _) in half.items() if n and on >= fraction * n)
        meters = {m: {"samples": n, "on": on, "zero": z} for m, (n, on, z) in half.items()}
        out = self._transition(
            "A7-2",
            p,
            hour,
            stopped is not None and bool(producing),
            None,
            None,
            {"stopped": stopped, "producing": producing, "meters": meters},
            factor=None,  # about the outlet as a whole, not its flow
        )
        if flow is None:
            return out  # no valid flow: the flow rules cannot judge the hour
        zero = sorted(m for m, (n, _, z) in half.items() if n and z == n)
        evidence: dict[str, Any] = {"flow": round(flow, 6), "meters": meters}
        if p.flow_low is not None:
            low = bool(producing) and flow < p.flow_low
            out += self._transition("B8-6", p, hour, low, flow, p.flow_low, evidence)
        shows_production = flow >= p.flow_low if p.flow_low is not None else flow > 0
        dead = bool(zero) and shows_production
        out += self._transition(
            "C8-2", p, hour, dead, flow, p.flow_low, {**evidence, "zero_meters": zero}
        )
        return out

    def _transition(
        self,
        rule: str,
        p: OutletParams,
        hour: int,
        holds: bool,
        value: float | None,
        limit: float | None,
        evidence: dict[str, Any],
        *,
        factor: str | None = "",
    ) -> list[Finding]:
        """A level condition (``rules.firing.Level``): fire in every hour it holds, clear once;
        ``factor`` defaults to the flow's."""
        if factor == "":
            factor = p.flow_code
        change = self._levels.judge((rule, p.outlet_id), "warning" if holds else None)
        if change is None:
            return []
        state, tier = change
        power = rule == "C8-2"
        return [
            Finding(
                rule=rule,
                state=state,
                enterprise_id=p.enterprise_id,
                source_id=p.outlet_id,
                factor=factor,
                window_start=hour,
                window_end=hour + HOUR,
                tier=tier,
                value=None if value is None else round(value, 6),
                limit=limit,
                unit=p.factors[factor].unit if factor in p.factors else "",
                params_id=self.power.params_id if power else p.params_id,
                params_version=self.power.version if power else p.version,
                evidence=evidence,
            )
        ]


def production_links(
    outlets: Mapping[tuple[str, str], OutletParams],
    power: Mapping[str, EnterprisePowerParams],
) -> dict[str, ProductionLink]:
    """A link per enterprise whose production meters name one of its outlets."""
    out: dict[str, ProductionLink] = {}
    for ent, params in power.items():
        mine = {o: p for (e, o), p in outlets.items() if e == ent}
        link = ProductionLink(params, mine)
        if link:
            out[ent] = link
    return out
