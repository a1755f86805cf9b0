"""Rules that fire on absence, driven by a clock: B8 logger offline, B7 missing hour data.

These judge *receipt* time against the clock, never device time. The service ticks them
with its wall clock; a replay ticks them at regular intervals of receipt time; tests tick a
manual clock. Readings received at or before a tick are taken into account before it.

- **B8 offline**: nothing received from an outlet's logger for longer than
  ``offline_after_s``. Fires at the first tick past the deadline, with the window
  [last receipt, last receipt + offline_after_s) whatever the tick times; clears at the next
  receipt.
- **B7 missing hour**: no hour packet (CN 2061) for an hour by ``hour_deadline_s`` after the
  hour ended, judged once both the clock and the logger's own data (its latest DataTime) are
  past that deadline. Only for loggers that have sent hour packets before (a new or
  minute-only logger is not expected to); a factor the logger has reported in hour packets
  before and that an hour packet lacks is reported for that factor (不完整). A logger that
  sends nothing is B8's (which inhibits B7's cases anyway); one that backfills history after
  an outage (补发) is judged on what it backfills, hour by hour, not flagged for hours that
  are still on their way.
- **Clock jumps**: a tick far after the previous one (the clock was stepped, or the service
  was down) starts a warm-up of ``offline_after_s`` in which nothing is judged absent, so that
  the backlog queued at the broker can arrive first; a tick that goes backwards is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rules.findings import Finding, State
from rules.firing import Episode, Level
from rules.params import OutletParams
from rules.power_params import EnterprisePowerParams, MeterParams
from rules.timebase import HOUR

JUMP_S = 300  # a gap between ticks longer than this is treated as a clock jump or a restart


@dataclass(slots=True)
class _Watch:
    params: OutletParams
    version: str
    last_received: int | None = None
    progress: int = -(2**62)  # the latest DataTime received: how far the logger has got
    next_hour: int | None = None  # the next hour to check for B7
    expected: set[str] = field(default_factory=set)  # factors seen in hour packets
    received: dict[int, set[str]] = field(default_factory=dict)  # hour → factors received


@dataclass(slots=True)
class _MeterWatch:
    params: MeterParams
    version: str
    last_received: int | None = None


class AbsenceWatch:
    def __init__(
        self,
        params: dict[tuple[str, str], OutletParams],
        power: dict[str, EnterprisePowerParams] | None = None,
    ) -> None:
        self._params = params
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._meters: dict[tuple[str, str], _MeterWatch] = {}
        # B8 and C8 are episodes (since the last receipt), B7 a level judged hour by hour
        self._offline: Episode[tuple[str, str]] = Episode()
        self._meters_offline: Episode[tuple[str, str]] = Episode()
        self._missing: Level[tuple[str, str], bool] = Level()
        for e in (power or {}).values():
            for m in e.meters.values():
                self._meters[(e.enterprise_id, m.meter_id)] = _MeterWatch(m, e.version)
        self._last_tick: int | None = None
        self._warm_until = -(2**62)

    def reconfigure(
        self,
        params: dict[tuple[str, str], OutletParams],
        power: dict[str, EnterprisePowerParams],
    ) -> None:
        """New parameters; what has been seen (last receipts, hours expected) stays."""
        self._params = params
        for key in list(self._watches):
            p = params.get(key)
            if p is None:
                del self._watches[key]
            else:
                self._watches[key].params, self._watches[key].version = p, p.version
        self._offline.retain(self._watches)
        self._missing.retain(self._watches)
        meters: dict[tuple[str, str], _MeterWatch] = {}
        for e in power.values():
            for m in e.meters.values():
                old = self._meters.get((e.enterprise_id, m.meter_id))
                new = _MeterWatch(m, e.version)
                if old is not None:
                    new.last_received = old.last_received
                meters[(e.enterprise_id, m.meter_id)] = new
        self._meters = meters
        self._meters_offline.retain(meters)

    def _watch(self, key: tuple[str, str]) -> _Watch | None:
        w = self._watches.get(key)
        if w is None:
            p = self._params.get(key)
            if p is None:
                return None
            w = self._watches[key] = _Watch(p, p.version)
        return w

    def received(
        self, key: tuple[str, str], received_t: int, data_t: int | None = None
    ) -> list[Finding]:
        """A packet from the outlet's logger arrived (with data of time ``data_t``): it is
        alive, and has got that far."""
        w = self._watch(key)
        if w is None:
            return []
        if data_t is not None and data_t > w.progress:
            w.progress = data_t
        out: list[Finding] = []
        if self._offline.end(key) is not None:
            out.append(
                self._finding(
                    w, "B8", "clear", None, received_t, received_t, None, {"back_at": received_t}
                )
            )
        if w.last_received is None or received_t > w.last_received:
            w.last_received = received_t
        return out

    def meter_received(self, key: tuple[str, str], received_t: int) -> list[Finding]:
        """A sample from a meter arrived (C8)."""
        w = self._meters.get(key)
        if w is None:
            return []
        out: list[Finding] = []
        if self._meters_offline.end(key) is not None:
            out.append(
                self._meter_finding(w, "clear", received_t, received_t, {"back_at": received_t})
            )
        if w.last_received is None or received_t > w.last_received:
            w.last_received = received_t
        return out

    def hour_packet(self, key: tuple[str, str], hour: int, factor: str) -> None:
        """An hour value (CN 2061) for ``hour`` arrived."""
        w = self._watch(key)
        if w is None:
            return
        w.expected.add(factor)
        if w.next_hour is None:
            w.next_hour = hour + HOUR  # first seen: the hours before were not expected
        if hour >= w.next_hour:
            w.received.setdefault(hour, set()).add(factor)

    def tick(self, now: int) -> list[Finding]:
        last = self._last_tick
        if last is not None and now < last:
            return []  # the clock went backwards: ignore until it passes the last tick
        if last is not None and now - last > JUMP_S:
            longest = max(
                [w.params.offline_after_s for w in self._watches.values()]
                + [m.params.offline_after_s for m in self._meters.values()],
                default=0,
            )
            self._warm_until = now + longest
        self._last_tick = now
        if now < self._warm_until:
            return []
        out: list[Finding] = []
        for key, w in self._watches.items():
            out += self._check(key, w, now)
        for key, m in self._meters.items():
            after = m.params.offline_after_s
            start = m.last_received
            if start is not None and now - start > after and self._meters_offline.begin(key, start):
                out.append(
                    self._meter_finding(m, "fire", start, start + after, {"last_received": start})
                )
        return out

    def _meter_finding(
        self, w: _MeterWatch, state: State, start: int, end: int, evidence: dict[str, object]
    ) -> Finding:
        p = w.params
        return Finding(
            rule="C8",
            state=state,
            enterprise_id=p.enterprise_id,
            source_id=p.meter_id,
            factor=None,
            window_start=start,
            window_end=end,
            tier="warning",
            limit=float(p.offline_after_s),
            unit="s",
            params_id=f"{p.enterprise_id}/power",
            params_version=w.version,
            evidence=dict(evidence),
        )

    def _check(self, key: tuple[str, str], w: _Watch, now: int) -> list[Finding]:
        p = w.params
        out: list[Finding] = []
        start = w.last_received
        if (
            start is not None
            and now - start > p.offline_after_s
            and self._offline.begin(key, start)
        ):
            out.append(
                self._finding(
                    w,
                    "B8",
                    "fire",
                    None,
                    start,
                    start + p.offline_after_s,
                    float(p.offline_after_s),
                    {"last_received": start},
                )
            )
        judged_until = min(now, w.progress)
        while w.next_hour is not None and w.next_hour + HOUR + p.hour_deadline_s < judged_until:
            hour = w.next_hour
            got = w.received.pop(hour, set())
            lacking = sorted(w.expected - got)
            change = self._missing.judge(key, None if got else True)
            if change is not None:
                fired = change[0] == "fire"
                evidence: dict[str, object] = {"deadline_s": p.hour_deadline_s} if fired else {}
                out.append(
                    self._finding(w, "B7", change[0], None, hour, hour + HOUR, None, evidence)
                )
            if got:  # 不完整: an event per factor the packet lacks
                for factor in lacking:
                    out.append(
                        self._finding(
                            w, "B7", "fire", factor, hour, hour + HOUR, None, {"incomplete": True}
                        )
                    )
            w.next_hour = hour + HOUR
        return out

    def _finding(
        self,
        w: _Watch,
        rule: str,
        state: State,
        factor: str | None,
        start: int,
        end: int,
        limit: float | None,
        evidence: dict[str, object],
    ) -> Finding:
        p = w.params
        return Finding(
            rule=rule,
            state=state,
            enterprise_id=p.enterprise_id,
            source_id=p.outlet_id,
            factor=factor,
            window_start=start,
            window_end=end,
            tier="warning",
            limit=limit,
            unit="s" if rule == "B8" else "",
            params_id=p.params_id,
            params_version=w.version,
            evidence=dict(evidence),
        )


def replay_ticks(first: int, last: int, every: int) -> Iterable[int]:
    """Regular ticks covering [first, last], for a replay."""
    t = first - first % every + every
    while t <= last + every:
        yield t
        t += every
