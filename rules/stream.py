"""The streaming engine: readings in arrival order → findings, with small state per outlet.

Event time comes from the readings (DataTime). Each outlet has a watermark: the latest event
time seen from it. An hour closes, and is judged, when the watermark passes its end by the
grace period; a day closes likewise. A reading whose hour had already closed when it arrived
(hour end + grace <= the watermark before it) is late: it is counted and not judged (the raw
archive keeps it, so a replay with ``include_late`` re-evaluates it). Out-of-order readings
within the grace are judged normally; a duplicate (same factor, interval and time) counts
once, the first arrival winning. A reading stamped more than ``max_future_s`` after it was
received is not used (a device clock far ahead would otherwise close every window early).

State per outlet is the open hours' records (bounded by the grace) and the open day's judged
hour values (at most 24 per factor): nothing grows with history.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from math import isnan

from ingest.readings import Measurement, PowerSample, ReadingBatch
from rules.absence import AbsenceWatch
from rules.findings import Finding
from rules.hours import DeviceHour, MinuteRecord, RunState, aggregate
from rules.judge import OutletJudge
from rules.linkage import ProductionLink, production_links
from rules.markings import Marking, MarkingBook
from rules.params import OutletParams, marking_book
from rules.power_judge import PowerJudge
from rules.power_params import EnterprisePowerParams
from rules.timebase import DAY, HOUR


@dataclass(slots=True)
class EngineStats:
    readings: int = 0
    late: int = 0
    duplicates: int = 0
    future: int = 0
    unconfigured: int = 0


_NAN = float("nan")


class _OpenHour:
    """The records of one open outlet-hour, compactly: per factor one array of doubles,
    four per record (time, value, converted value, flag code + 256 × marked; NaN for a
    missing value). An open hour of 10-minute data costs about 260 bytes per factor instead
    of a kilobyte of record objects; records are rebuilt when the hour closes."""

    __slots__ = ("device", "minutes")

    def __init__(self) -> None:
        self.minutes: dict[str, array[float]] = {}
        self.device: dict[str, DeviceHour] = {}

    def add_minute(
        self, factor: str, t: int, value: float | None, flag: str, zs: float | None, marked: bool
    ) -> bool:
        """Store a record; False when the factor already has one at ``t`` (a duplicate)."""
        buf = self.minutes.get(factor)
        if buf is None:
            buf = self.minutes[factor] = array("d")
        elif float(t) in buf[0::4]:
            return False
        code = ord(flag[0]) if flag else 78  # "N"
        buf.extend(
            (
                t,
                _NAN if value is None else value,
                _NAN if zs is None else zs,
                code + (256 if marked else 0),
            )
        )
        return True

    def records(self) -> list[MinuteRecord]:
        out = []
        for factor, buf in self.minutes.items():
            for i in range(0, len(buf), 4):
                t, value, zs, code = buf[i : i + 4]
                c = int(code)
                out.append(
                    MinuteRecord(
                        factor,
                        int(t),
                        None if isnan(value) else value,
                        chr(c & 255),
                        None if isnan(zs) else zs,
                        c >= 256,
                    )
                )
        return out


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


class _OutletStream:
    __slots__ = ("hours", "judge", "next_close", "runs", "watermark")

    def __init__(self, params: OutletParams, markings: MarkingBook) -> None:
        self.judge = OutletJudge(params, markings)
        self.runs: dict[str, RunState] = {}
        self.watermark = -(2**62)
        self.hours: dict[int, _OpenHour] = {}
        self.next_close = 2**62  # watermark at which the earliest open hour closes


# The layout of the engine's state; a snapshot of another layout is not restored (the
# archive is replayed instead). Raise it whenever a pickled class changes its fields.
STATE_FORMAT = 6


class StreamEngine:
    def __init__(
        self,
        params: dict[tuple[str, str], OutletParams],
        *,
        power: dict[str, EnterprisePowerParams] | None = None,
        markings: MarkingBook | Sequence[Marking] | None = None,
        grace_s: int = 3600,
        max_future_s: int = 300,
    ) -> None:
        self.state_format = STATE_FORMAT
        self._params = params
        self._markings = marking_book(markings, params)
        self.grace = grace_s
        self.max_future = max_future_s
        self._outlets: dict[tuple[str, str], _OutletStream] = {}
        self._power_params = power or {}
        self._enterprises: dict[str, _PowerStream] = {}
        self._links = production_links(params, self._power_params)
        self.absence = AbsenceWatch(params, self._power_params)
        self.stats = EngineStats()

    def process(self, batch: ReadingBatch) -> list[Finding]:
        out: list[Finding] = []
        for seen in batch.loggers:
            out += self.absence.received(
                (seen.enterprise_id, seen.outlet_id), _epoch(seen.received_at)
            )
        return out + self.process_measurements(batch.measurements) + self.process_power(batch.power)

    def process_power(self, samples: Iterable[PowerSample]) -> list[Finding]:
        """Meter samples: per enterprise, finalized (event time + grace passed) in time order."""
        out: list[Finding] = []
        stats = self.stats
        grace = self.grace
        for s in samples:
            stats.readings += 1
            params = self._power_params.get(s.enterprise_id)
            if params is None or s.meter_id not in params.meters:
                stats.unconfigured += 1
                continue
            received = _epoch(s.received_at)
            out += self.absence.meter_received((s.enterprise_id, s.meter_id), received)
            ts = _epoch(s.ts)
            if ts > received + self.max_future:
                stats.future += 1
                continue
            st = self._enterprises.get(s.enterprise_id)
            if st is None:
                link = self._links.get(s.enterprise_id)
                st = self._enterprises[s.enterprise_id] = _PowerStream(params, link)
            if ts + grace <= st.watermark:
                stats.late += 1
                continue
            if not st.add(s.meter_id, ts, s.active_power_kw):
                stats.duplicates += 1
                continue
            if ts > st.watermark:
                st.watermark = ts
                out += st.finalize(ts - grace)
        return out

    def production(self) -> dict[str, bool]:
        """Per enterprise with metered production: whether it is producing now (停产 when
        not). Enterprises whose production state is not known yet are left out."""
        out: dict[str, bool] = {}
        for enterprise, ps in self._enterprises.items():
            producing = ps.judge.producing()
            if producing is not None:
                out[enterprise] = producing
        return out

    def reconfigure(self, other: StreamEngine) -> None:
        """Take ``other``'s parameters (a new configuration) and keep this engine's state for
        the outlets and enterprises that are still configured."""
        self._params, self._power_params = other._params, other._power_params
        self._markings, self.grace, self.max_future = other._markings, other.grace, other.max_future
        for key in list(self._outlets):
            params = self._params.get(key)
            if params is None:
                del self._outlets[key]
            else:
                self._outlets[key].judge.reconfigure(params, self._markings)
        links = production_links(self._params, self._power_params)
        for ent, link in links.items():
            if ent in self._links:  # keep the waiting halves and the conditions that hold
                self._links[ent].reconfigure(link.power, link.outlets)
                links[ent] = self._links[ent]
        self._links = links
        for ent in list(self._enterprises):
            power = self._power_params.get(ent)
            if power is None:
                del self._enterprises[ent]
            else:
                self._enterprises[ent].judge.reconfigure(power)
                self._enterprises[ent].link = links.get(ent)
        self.absence.reconfigure(self._params, self._power_params)

    def tick(self, now: int) -> list[Finding]:
        """Judge absence (offline loggers, missing hours) at clock time ``now``."""
        return self.absence.tick(now)

    def process_measurements(self, measurements: Iterable[Measurement]) -> list[Finding]:
        out: list[Finding] = []
        stats = self.stats
        grace = self.grace
        markings = self._markings
        absence = self.absence
        # The readings of one frame share their DataTime and receipt objects: convert each
        # once (datetime.timestamp() was a tenth of the loop).
        last_dt: datetime | None = None
        last_rt: datetime | None = None
        t = received = 0
        for m in measurements:
            stats.readings += 1
            key = (m.enterprise_id, m.outlet_id)
            st = self._outlets.get(key)
            if st is None:
                params = self._params.get(key)
                if params is None:
                    stats.unconfigured += 1
                    continue
                st = self._outlets[key] = _OutletStream(params, markings)
            if m.data_time is not last_dt:
                last_dt = m.data_time
                t = int(last_dt.timestamp())
            if m.received_at is not last_rt:
                last_rt = m.received_at
                received = int(last_rt.timestamp())
            out += absence.received(key, received, t)
            if t > received + self.max_future:
                stats.future += 1
                continue
            interval = m.interval
            if interval == "hour":
                absence.hour_packet(key, t - t % HOUR, m.factor)
            if interval in {"minute", "hour"}:
                h = t - t % HOUR
                if h + HOUR + grace <= st.watermark:
                    stats.late += 1
                    continue
                hour = st.hours.get(h)
                if hour is None:
                    hour = st.hours[h] = _OpenHour()
                    st.next_close = min(st.next_close, h + HOUR + grace)
                marked = (
                    bool(markings) and markings.marking_at(key[0], key[1], m.factor, t) is not None
                )
                flag = m.flag or "N"
                if interval == "minute":
                    if not hour.add_minute(m.factor, t, m.value, flag, m.zs, marked):
                        stats.duplicates += 1
                elif m.factor in hour.device:
                    stats.duplicates += 1
                else:
                    hour.device[m.factor] = DeviceHour(m.factor, t, m.value, flag, m.zs, marked)
            if t > st.watermark:
                st.watermark = t
                if t >= st.next_close:
                    out += self._close(st, t)
        return out

    def _close(self, st: _OutletStream, watermark: int) -> list[Finding]:
        """Judge every hour (and then day) whose end + grace the watermark has reached."""
        out: list[Finding] = []
        judge = st.judge
        for h in sorted(st.hours):
            if h + HOUR + self.grace > watermark:
                break
            for d in judge.open_days():
                if d + DAY + self.grace <= watermark and d + DAY <= h:
                    out += judge.day(d)
            hour = st.hours.pop(h)
            p = judge.params
            aggs = aggregate(
                hour.records(),
                hour.device.values(),
                p.valid_flags,
                st.runs,
                p.minute_interval_s,
                p.flow_code,
                judge.periods,
            )
            out += judge.hour(h, aggs)
            link = self._links.get(p.enterprise_id)
            if link is not None:
                out += link.outlet_hour(p.outlet_id, h, judge.hour_flow)
        for d in judge.open_days():
            if d + DAY + self.grace <= watermark:
                out += judge.day(d)
        st.next_close = min(st.hours, default=2**62 - HOUR - self.grace) + HOUR + self.grace
        return out

    def flush(self) -> list[Finding]:
        """Close every open window (end of a replay or of a test)."""
        out: list[Finding] = []
        for st in self._outlets.values():
            out += self._close(st, 2**62)
        for ps in self._enterprises.values():
            out += ps.finalize(2**62)
        return out


class _MeterQueue:
    """One meter's samples waiting for the grace to pass: times and kW in two arrays sorted
    by time, 16 bytes a sample. (A dict of (time, meter) → kW took about 200: with an hour's
    grace and 20,000 meters sampled every minute, 250 MB.)"""

    __slots__ = ("kw", "ts")

    def __init__(self) -> None:
        self.ts = array("q")
        self.kw = array("d")

    def add(self, ts: int, kw: float) -> bool:
        """False for a time already waiting (a duplicate)."""
        times = self.ts
        if not times or ts > times[-1]:  # in order: the usual case
            times.append(ts)
            self.kw.append(kw)
            return True
        i = bisect_left(times, ts)
        if i < len(times) and times[i] == ts:
            return False
        times.insert(i, ts)
        self.kw.insert(i, kw)
        return True

    def take(self, upto: int) -> list[tuple[int, float]]:
        """The samples stamped at or before ``upto``, removed."""
        n = bisect_right(self.ts, upto)
        if not n:
            return []
        out = list(zip(self.ts[:n], self.kw[:n], strict=True))
        del self.ts[:n]
        del self.kw[:n]
        return out


class _PowerStream:
    """One enterprise's meter samples waiting for the grace to pass, and its judge."""

    __slots__ = ("judge", "link", "pending", "watermark")

    def __init__(self, params: EnterprisePowerParams, link: ProductionLink | None) -> None:
        self.judge = PowerJudge(params)
        self.link = link
        self.pending: dict[str, _MeterQueue] = {}
        self.watermark = -(2**62)

    def add(self, meter: str, ts: int, p_kw: float) -> bool:
        """Queue a sample; False for a duplicate of one waiting."""
        queue = self.pending.get(meter)
        if queue is None:
            queue = self.pending[meter] = _MeterQueue()
        return queue.add(ts, p_kw)

    def finalize(self, upto: int) -> list[Finding]:
        """Judge, in (time, meter) order, the samples stamped at or before ``upto``."""
        ready = sorted(
            (ts, meter, kw) for meter, q in self.pending.items() for ts, kw in q.take(upto)
        )
        out: list[Finding] = []
        judge, link = self.judge, self.link
        for ts, meter, p_kw in ready:
            out += judge.sample(meter, ts, p_kw)
            if link is not None:
                out += link.sample(meter, ts, p_kw, judge.state(meter))
        if link is not None:
            out += link.power_closed(upto)
        return out
