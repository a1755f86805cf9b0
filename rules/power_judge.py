"""Power-usage rules (C) on one enterprise's meter samples, in event-time order. Shared by the
streaming and batch engines, which decide which samples count and feed them here in order.

- **C0** device state per meter with hysteresis: ON at or above ``on_fraction`` × rated
  power, OFF at or below ``off_fraction`` × rated; a change counts once ``confirm_samples``
  samples agree, from the first of them (so a flapping meter does not flap the state).
- **C1** 产污治污不同步: a production device ON while a control device that serves it is OFF,
  for ``c1_minutes``; an alarm while an emergency order is in force, else a warning.
- **C2** 治污滞后开启: a control device switched ON more than ``c2_lead_s`` after a production
  device it serves started (an event: fires once).
- **C3** 治污提前关闭: a control device switched OFF while its production ran, more than
  ``c3_lag_s`` before the last of that production stopped (an event).
- **C4** 治污低负荷: production ON, the control device ON but below ``low_load_fraction`` of
  its learned baseline (the median of its daily medians while production ran) for
  ``low_load_minutes``.
- **C5** 停限产违规: a device an emergency order names ON while the order is in force (alarm).
- **C6** 错峰生产违规: a device a staggered-production order names ON inside its daily window.
- **C7** 擅自扩大产能: a production device's day (China time) whose level, the median of its
  power while ON, is above ``c7_factor`` × its baseline, the median of the daily P95s (of
  power while ON) of the last ``c7_baseline_days`` earlier days it ran, once ``c7_min_days``
  are learned. A day is judged when the meter's first sample of a later day is, and at
  ``flush`` for the last day; a day finding: fires for every day over, clears once on the
  first judged day that is not.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.findings import Finding, State, Tier
from rules.firing import Episode, Level
from rules.power_params import EnterprisePowerParams, MeterParams, Order
from rules.timebase import CHINA_OFFSET, DAY, day_start

CapacityDay = tuple[float, float, int]  # C7 of one day: level, baseline (kW), days learned

BINS = 50  # C4 daily median from a histogram over [0, 1.5 × rated): 3 % of rated per bin
BIN_SPAN = 1.5
# C7 daily median and P95 from one histogram over [0, 3 × rated): 3 % of rated per bin too, so
# a value is known to within 1.5 % of the rated power (its bin's centre). The range is wider
# than C4's because production beyond its capacity can draw well above the nameplate rating;
# power at or above 3 × rated counts in the top bin (2.985 × rated), which still fires
# against any baseline below 2.49 × rated. At most 255 bins: the daily P95s are kept as bin
# numbers, one byte a day.
C7_BINS = 100
C7_SPAN = 3.0


@dataclass(slots=True)
class _Device:
    state: str | None = None  # "on" / "off", None until known
    since: int = 0
    pending: str | None = None
    pending_since: int = 0
    pending_n: int = 0
    last_p: float = 0.0
    # C4 learning (control devices only): today's histogram and the daily medians, as
    # arrays created on first use (a deque reserves 64 slots even when empty).
    day: int | None = None
    histogram: array[int] | None = None
    medians: array[float] | None = None
    c7: _Capacity | None = None  # C7 learning (production devices with a rating only)


@dataclass(slots=True)
class _Capacity:
    """C7 learning of one production device: the day being learned, its histogram of power
    while ON (created on first use), and the P95 bins of the last ``c7_baseline_days`` days
    that had such samples. About 600 bytes while a day with ON samples is open."""

    day: int
    histogram: array[int] | None = None
    p95s: array[int] | None = None


class PowerJudge:
    def __init__(
        self,
        params: EnterprisePowerParams,
        baselines: Mapping[tuple[str, int], float] | None = None,
        capacity: Mapping[tuple[str, int], CapacityDay] | None = None,
    ) -> None:
        """``baselines``: the C4 baseline of each control device per day, learned beforehand
        (the batch engine computes them with polars); without it they are learned here.
        ``capacity`` likewise: the C7 judgement of each production device per day."""
        self.params = params
        self._baselines = baselines
        self._capacity = capacity
        self._version = params.version
        self._devices: dict[str, _Device] = {m: _Device() for m in params.meters}
        self._episodes: Episode[tuple[str, ...]] = Episode()  # C1, C4, C5, C6 by (rule, ...)
        self._c7: Level[str, int] = Level()  # C7: meter → the first day of its run over the bound
        self._stop_mark: dict[str, int] = {}  # control id → when it stopped while production ran
        self._low_since: dict[str, int] = {}
        self._c2_run: dict[str, int] = {}  # control id → production start C2 was judged for
        self._next_check = -(2**62)  # time at which the conditions must be judged again
        self.always_evaluate = False  # judge on every sample (tests compare both ways)
        self._controls = [m for m in params.meters.values() if m.role == "control" and m.serves]

    def reconfigure(self, params: EnterprisePowerParams) -> None:
        """New parameters for the same enterprise; device states and baselines stay."""
        self.params = params
        self._version = params.version
        self._devices = {m: self._devices.get(m) or _Device() for m in params.meters}
        self._controls = [m for m in params.meters.values() if m.role == "control" and m.serves]

    @property
    def next_check(self) -> int:
        """The time from which the next sample (of any meter) must be judged in full."""
        return self._next_check

    def state(self, meter_id: str) -> str | None:
        d = self._devices.get(meter_id)
        return d.state if d else None

    def state_since(self, meter_id: str) -> tuple[str | None, int]:
        """The meter's C0 state and since when it holds (a confirmed change, backdated)."""
        d = self._devices.get(meter_id)
        return (d.state, d.since) if d else (None, 0)

    def producing(self) -> bool | None:
        """Whether any production device is ON (None while no production state is known)."""
        states = [
            self.state(m.meter_id) for m in self.params.meters.values() if m.role == "production"
        ]
        known = [s for s in states if s is not None]
        return any(s == "on" for s in known) if known else None

    def sample(self, meter_id: str, ts: int, p_kw: float) -> list[Finding]:
        m = self.params.meters.get(meter_id)
        if m is None or (m.rated_kw is None and math.isfinite(p_kw)):
            return []  # power without a rating says nothing about the state
        dev = self._devices[meter_id]
        out: list[Finding] = []
        c7: _Capacity | None = None
        if m.role == "production" and m.rated_kw:
            day = day_start(ts)
            c7 = dev.c7
            if c7 is None:
                c7 = dev.c7 = _Capacity(day)
            elif c7.day != day:  # the meter's first sample of a later day: judge the last one
                out += self._capacity_day(m, c7, learn=True)
                c7.day, c7.histogram = day, None
        pending_before, state_before, since_before = dev.pending, dev.state, dev.since
        change = _step(dev, m, ts, p_kw)
        dev.last_p = p_kw
        if c7 is not None and self._capacity is None and dev.state == "on":
            _count(c7, m, p_kw)
        if change is not None:
            out += self._on_change(m, change[0], change[1], change[2], since_before)
        control = m.role == "control" and bool(m.serves)
        if control:
            self._learn(dev, m, ts, p_kw)
        # The conditions can only change when a state (or a pending change) does, when time
        # passes a deadline (a sustain period, an order's window), or - for C4 - when a
        # control device reports its power: judging only then is the same as judging always.
        moved = dev.state != state_before or dev.pending != pending_before
        if self.always_evaluate or moved or ts >= self._next_check:
            out += self._evaluate(ts)
        elif control and not self._holding(m):
            out += self._low_load(m, dev, any(self._is_on(x) for x in m.serves), ts)
        return out

    def flush(self) -> list[Finding]:
        """The end of the data (a replay's, a test's): judge each production device's last
        day (C7) as if a later sample had closed it, without learning from it."""
        out: list[Finding] = []
        for m in self.params.meters.values():
            c7 = self._devices[m.meter_id].c7
            if c7 is not None and m.role == "production" and m.rated_kw:
                out += self._capacity_day(m, c7, learn=False)
        return out

    def _holding(self, c: MeterParams) -> bool:
        return self._pending(c.meter_id) or any(self._pending(x) for x in c.serves)

    # -- transitions: C2, C3 -------------------------------------------------------------

    def _on_change(
        self, m: MeterParams, old: str | None, new: str, at: int, since_before: int
    ) -> list[Finding]:
        out: list[Finding] = []
        if m.role == "control":
            running = [self._devices[p].since for p in m.serves if self._is_on(p)]
            if new == "on":
                self._stop_mark.pop(m.meter_id, None)
                first_start = running and self._c2_run.get(m.meter_id) != min(running)
                if first_start:
                    self._c2_run[m.meter_id] = min(running)  # judged once per production run
                # Late only if production (re)started while the control was off: a control
                # that went off while production ran ends a C1 episode here, not a late start.
                started = min(running) if running else at
                late = old == "off" and first_start and started >= since_before
                if late and at - started > self.params.c2_lead_s:
                    evidence: dict[str, Any] = {"production_on": started}
                    if ("C1", m.meter_id) in self._episodes:
                        evidence["episode_of"] = "C1"  # one incident: evidence on C1's case
                    out.append(
                        self._event(
                            "C2",
                            m.meter_id,
                            started,
                            at,
                            at - started,
                            self.params.c2_lead_s,
                            evidence,
                        )
                    )
            elif running:
                self._stop_mark[m.meter_id] = at
        elif new == "off":
            for c in self._controls:
                mark = self._stop_mark.get(c.meter_id)
                if m.meter_id not in c.serves or mark is None:
                    continue
                if any(self._is_on(p) for p in c.serves):
                    continue  # production still runs: C1 takes it from here
                del self._stop_mark[c.meter_id]
                if at - mark > self.params.c3_lag_s:
                    out.append(
                        self._event(
                            "C3",
                            c.meter_id,
                            mark,
                            at,
                            at - mark,
                            self.params.c3_lag_s,
                            {"production_off": at},
                        )
                    )
        return out

    # -- ongoing conditions: C1, C4, C5, C6 ------------------------------------------------

    def _evaluate(self, now: int) -> list[Finding]:
        p = self.params
        out: list[Finding] = []
        deadline = 2**62
        emergency = [o for o in p.orders if o.kind == "emergency" and o.start <= now < o.end]
        for c in self._controls:
            control = self._devices[c.meter_id]
            if self._holding(c):
                continue  # a change is being confirmed: hold the judgement until it is
            running = [self._devices[x].since for x in c.serves if self._is_on(x)]
            off = control.state == "off"
            start = max(min(running), control.since) if running and off else None
            holds = start is not None and now - start >= p.c1_minutes * 60
            if start is not None and not holds:
                deadline = min(deadline, start + p.c1_minutes * 60)
            tier: Tier = "alarm" if emergency else "warning"
            ended = self._ended(c.meter_id, c.serves, now)
            evidence: dict[str, Any] = {"production": sorted(x for x in c.serves if self._is_on(x))}
            out += self._episode(("C1", c.meter_id), holds, start or now, ended, tier, evidence)
            out += self._low_load(c, control, bool(running), now)
            low_since = self._low_since.get(c.meter_id)
            if low_since is not None:
                deadline = min(deadline, low_since + c.low_load_minutes * 60)
        for order in p.orders:
            deadline = min(deadline, _next_boundary(order, now))
            window = _window_start(order, now)
            rule = "C5" if order.kind == "emergency" else "C6"
            tier = "alarm" if rule == "C5" else "warning"
            for d in order.devices:
                if self._pending(d):
                    continue
                device = self._devices.get(d)
                on = window is not None and device is not None and device.state == "on"
                since = max(device.since, window) if on and device is not None and window else now
                if on and now - since < p.c5_minutes * 60:
                    deadline = min(deadline, since + p.c5_minutes * 60)
                on = on and now - since >= p.c5_minutes * 60
                ended = device.since if device is not None and device.state == "off" else now
                evidence = {
                    "order": order.reference,
                    "order_start": order.start,
                    "order_end": order.end,
                }
                out += self._episode((rule, d, order.reference), on, since, ended, tier, evidence)
        self._next_check = deadline
        return out

    def _pending(self, meter_id: str) -> bool:
        d = self._devices.get(meter_id)
        return d is not None and d.pending is not None

    def _ended(self, control: str, serves: tuple[str, ...], now: int) -> int:
        """When C1's condition stopped holding: the control's start, or production's stop."""
        c = self._devices[control]
        if c.state == "on":
            return c.since
        stopped = [self._devices[x].since for x in serves if self._devices[x].state == "off"]
        return max(stopped) if stopped else now

    def _low_load(
        self, c: MeterParams, control: _Device, producing: bool, now: int
    ) -> list[Finding]:
        baseline: float | None
        if self._baselines is not None:
            day = control.day
            baseline = None if day is None else self._baselines.get((c.meter_id, day))
        else:
            medians = control.medians
            enough = medians is not None and len(medians) >= c.baseline_min_days
            baseline = median(list(medians)) if enough and medians is not None else None
        low = (
            baseline is not None
            and producing
            and control.state == "on"
            and math.isfinite(control.last_p)
            and control.last_p < c.low_load_fraction * baseline
        )
        if low:
            since = self._low_since.setdefault(c.meter_id, now)
        else:
            self._low_since.pop(c.meter_id, None)
            since = now
        holds = low and now - since >= c.low_load_minutes * 60
        evidence: dict[str, Any] = {"baseline_kw": baseline, "power_kw": control.last_p}
        return self._episode(("C4", c.meter_id), holds, since, now, "warning", evidence)

    def _learn(self, dev: _Device, m: MeterParams, ts: int, p_kw: float) -> None:
        """C4 baseline: the daily median of the control device's power while production ran."""
        day = day_start(ts)
        if self._baselines is not None:
            dev.day = day  # the baselines were learned beforehand
            return
        if dev.day != day:
            if dev.day is not None and dev.histogram is not None and any(dev.histogram):
                if dev.medians is None:
                    dev.medians = array("d")
                dev.medians.append(histogram_median(dev.histogram, m.rated_kw or 0.0))
                if len(dev.medians) > m.baseline_days:
                    del dev.medians[0]
            dev.day = day
            dev.histogram = None
        if (
            dev.state == "on"
            and any(self._is_on(x) for x in m.serves)
            and m.rated_kw
            and math.isfinite(p_kw)
        ):
            if dev.histogram is None:
                dev.histogram = array("I", bytes(4 * BINS))
            b = min(BINS - 1, max(0, int(p_kw / (m.rated_kw * BIN_SPAN) * BINS)))
            dev.histogram[b] += 1

    # -- C7: production above its historical level --------------------------------------

    def _capacity_day(self, m: MeterParams, c7: _Capacity, *, learn: bool) -> list[Finding]:
        """Judge the day ``c7`` learned (and, with ``learn``, add its P95 to the history): a
        day finding, fired for every day over the bound and cleared once on the first judged
        day that is not. A day without a power reading while ON is not judged."""
        judged: CapacityDay | None = None
        if self._capacity is not None:  # learned beforehand (the batch engine)
            judged = self._capacity.get((m.meter_id, c7.day))
        elif c7.histogram is not None:
            rated = m.rated_kw or 0.0
            p95s = c7.p95s
            window = list(p95s[max(0, len(p95s) - m.c7_baseline_days) :]) if p95s else []
            if len(window) >= m.c7_min_days:
                level = capacity_kw(histogram_rank(c7.histogram, 1, 2), rated)
                baseline = median([capacity_kw(b, rated) for b in window])
                judged = (level, baseline, len(window))
            if learn:
                if p95s is None:
                    p95s = c7.p95s = array("B")
                p95s.append(histogram_rank(c7.histogram, 95, 100))
                if len(p95s) > m.c7_baseline_days:
                    del p95s[: len(p95s) - m.c7_baseline_days]
        if judged is None:
            return []
        level, baseline, days = judged
        bound = m.c7_factor * baseline
        evidence: dict[str, Any] = {
            "level_kw": round(level, 3),
            "baseline_kw": round(baseline, 3),
            "days": days,
            "factor": m.c7_factor,
        }
        day = c7.day
        over = level > bound
        change = self._c7.judge(m.meter_id, self._c7.get(m.meter_id, day) if over else None)
        if change is None:
            return []
        state, since = change
        if state == "clear" or since != day:
            evidence["since"] = since
        return [
            self._finding(
                "C7",
                m.meter_id,
                state,
                day,
                day + DAY,
                "warning",
                evidence,
                round(level, 3),
                round(bound, 3),
            )
        ]

    # -- findings ------------------------------------------------------------------------

    def _is_on(self, meter_id: str) -> bool:
        d = self._devices.get(meter_id)
        return d is not None and d.state == "on"

    def _episode(
        self,
        key: tuple[str, ...],
        holds: bool,
        start: int,
        end: int,
        tier: Tier,
        evidence: dict[str, Any],
    ) -> list[Finding]:
        """An episode (``rules.firing.Episode``): fire once when an ongoing condition starts
        to hold (window: from when it began to when it was confirmed); clear once when it ends
        (window: the time it ended)."""
        change = self._episodes.judge(key, holds, start)
        if change is None:
            return []
        state, since = change
        if state == "fire":
            return [self._finding(key[0], key[1], state, start, max(start, end), tier, evidence)]
        ended = max(end, since)
        return [
            self._finding(key[0], key[1], state, ended, ended, tier, {**evidence, "since": since})
        ]

    def _event(
        self,
        rule: str,
        source: str,
        start: int,
        end: int,
        value: float,
        limit: float,
        evidence: dict[str, Any],
    ) -> Finding:
        return self._finding(rule, source, "fire", start, end, "warning", evidence, value, limit)

    def _finding(
        self,
        rule: str,
        source: str,
        state: State,
        start: int,
        end: int,
        tier: Tier,
        evidence: dict[str, Any],
        value: float | None = None,
        limit: float | None = None,
    ) -> Finding:
        return Finding(
            rule=rule,
            state=state,
            enterprise_id=self.params.enterprise_id,
            source_id=source,
            factor=None,
            window_start=start,
            window_end=end,
            tier=tier,
            value=value,
            limit=limit,
            unit="s" if rule in ("C2", "C3") else "kW" if rule == "C7" else "",
            params_id=self.params.params_id,
            params_version=self._version,
            evidence=evidence,
        )


def _step(dev: _Device, m: MeterParams, ts: int, p_kw: float) -> tuple[str | None, str, int] | None:
    """C0 hysteresis: the new state and when it began, when the state changes."""
    if not math.isfinite(p_kw):
        raw: str | None = "on" if p_kw > 0 else "off"  # a reported state (sample_kw)
    else:
        assert m.on_kw is not None
        assert m.off_kw is not None
        raw = "on" if p_kw >= m.on_kw else "off" if p_kw <= m.off_kw else None
    if dev.state is None:
        if raw is not None:
            dev.state, dev.since = raw, ts
        return None
    if raw is None or raw == dev.state:
        dev.pending, dev.pending_n = None, 0
        return None
    if dev.pending == raw:
        dev.pending_n += 1
    else:
        dev.pending, dev.pending_n, dev.pending_since = raw, 1, ts
    if dev.pending_n < m.confirm_samples:
        return None
    old, dev.state, dev.since = dev.state, raw, dev.pending_since
    dev.pending, dev.pending_n = None, 0
    return old, raw, dev.since


def _next_boundary(order: Order, now: int) -> int:
    """The next time after ``now`` at which the order's window opens or closes."""
    if now < order.start:
        return order.start
    if now >= order.end:
        return 2**62
    if order.daily is None:
        return order.end
    midnight = now - (now + CHINA_OFFSET) % DAY
    candidates = [
        midnight + d * DAY + edge
        for d in (0, 1)
        for edge in order.daily
        if midnight + d * DAY + edge > now
    ]
    return min([order.end, *candidates])


def _window_start(order: Order, now: int) -> int | None:
    """The start of the order's window holding ``now``, or None outside it."""
    if not order.start <= now < order.end:
        return None
    if order.daily is None:
        return order.start
    start, end = order.daily
    second = (now + CHINA_OFFSET) % DAY
    midnight = now - second
    if start <= end:
        return max(order.start, midnight + start) if start <= second < end else None
    if second >= start:
        return max(order.start, midnight + start)
    return max(order.start, midnight - DAY + start) if second < end else None


def _count(c7: _Capacity, m: MeterParams, p_kw: float) -> None:
    """C7: a sample taken while the device is ON, into its day's histogram when it is a power
    reading (not a reported state, ±∞) above the OFF threshold (at or below it, the device is
    stopping: a change being confirmed, or a glitch; not production power)."""
    if not math.isfinite(p_kw) or p_kw <= (m.off_kw or 0.0):
        return
    if c7.histogram is None:
        c7.histogram = array("I", bytes(4 * C7_BINS))
    c7.histogram[capacity_bin(p_kw, m.rated_kw or 0.0)] += 1


def capacity_bin(p_kw: float, rated_kw: float) -> int:
    """C7: the histogram bin of a power reading (below 0 in the first, beyond in the last)."""
    return min(C7_BINS - 1, max(0, int(p_kw / (rated_kw * C7_SPAN) * C7_BINS)))


def capacity_kw(b: int, rated_kw: float) -> float:
    """C7: the power a bin stands for, its centre."""
    return (b + 0.5) / C7_BINS * C7_SPAN * rated_kw


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def histogram_rank(histogram: array[int], num: int, den: int) -> int:
    """The first bin at which ``num/den`` of the counts are reached (1/2: the median bin,
    95/100: the P95 bin), in integers so that every engine finds the same bin."""
    total = sum(histogram)
    seen = 0
    for i, n in enumerate(histogram):
        seen += n
        if seen * den >= total * num:
            return i
    return len(histogram) - 1


def histogram_median(histogram: array[int], rated_kw: float) -> float:
    total = sum(histogram)
    seen = 0
    for i, n in enumerate(histogram):
        seen += n
        if seen * 2 >= total:
            return (i + 0.5) / BINS * BIN_SPAN * rated_kw
    return 0.0
