"""The streaming engine: readings in arrival order → findings, with small state per outlet.

Windows, watermarks, the grace period, late and future-stamped readings are
``rules.windowing``'s: each outlet's watermark closes its hours and days as its readings move
on, each enterprise's closes its meter samples. A duplicate (same factor, interval and time)
counts once, the first arrival winning.

State per outlet is the open hours' records (bounded by the grace) and the open day's judged
hour values (at most 24 per factor): nothing grows with history.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from math import isnan

from ingest.readings import Measurement, PowerSample, ReadingBatch
from rules.absence import AbsenceWatch
from rules.copies import copy_watches
from rules.findings import Finding
from rules.history import (
    DayRecord,
    HourRecord,
    Kept,
    MeterHourRecord,
    MeterHours,
    OpenDays,
    hour_records,
    with_counts,
)
from rules.hours import (
    REALTIME_QUIET_S,
    DeviceHour,
    MinuteRecord,
    RunState,
    aggregate,
    flag_of,
)
from rules.judge import OutletJudge
from rules.linkage import ProductionLink, production_links
from rules.markings import STOPPED_MARK, Marking, MarkingBook
from rules.minute_detail import MinuteDetail, encode
from rules.params import OutletParams, marking_book
from rules.power_judge import PowerJudge
from rules.power_params import EnterprisePowerParams, sample_kw
from rules.timebase import HOUR
from rules.windowing import (
    END_OF_DATA,
    NO_WATERMARK,
    close,
    closed,
    closed_until,
    closes_at,
    future,
)


@dataclass(slots=True)
class EngineStats:
    readings: int = 0
    late: int = 0
    duplicates: int = 0
    future: int = 0
    unconfigured: int = 0


_NAN = float("nan")


class _OpenHour:
    """The records of one open outlet-hour, compactly: per factor one array of doubles, the
    extremes of its valid records first (their values and Min/Max fields, the pH range's
    concern, kept as they come since min and max do not depend on order), then four per
    record (time, value, converted value, flag code + 256 × marked + 512 × inside a 停产
    marking; NaN for a missing value). An open hour of 10-minute data costs about 270 bytes
    per factor instead of a kilobyte of record objects; records are rebuilt when the hour
    closes. Real-time records (CN 2011) are kept apart, and only for outlets that send no
    minute data (``REALTIME_QUIET_S``)."""

    __slots__ = ("device", "minutes", "realtime")

    def __init__(self) -> None:
        self.minutes: dict[str, array[float]] = {}
        self.realtime: dict[str, array[float]] | None = None
        self.device: dict[str, DeviceHour] = {}

    def add(
        self, m: Measurement, t: int, marked: bool, stop_marked: bool, valid_flags: frozenset[str]
    ) -> bool:
        """Store a minute or real-time record; False when the factor already has one of the
        same kind at ``t`` (a duplicate)."""
        if m.interval == "minute":
            store = self.minutes
        else:
            if self.realtime is None:
                self.realtime = {}
            store = self.realtime
        buf = store.get(m.factor)
        if buf is None:
            buf = store[m.factor] = array("d", (_NAN, _NAN))
        elif float(t) in buf[2::_WIDTH]:
            return False
        flag = flag_of(m.flag)
        value, zs = m.value, m.zs
        if value is not None and not marked and flag in valid_flags:
            low = value if m.minimum is None else min(value, m.minimum)
            high = value if m.maximum is None else max(value, m.maximum)
            buf[0] = low if isnan(buf[0]) else min(buf[0], low)
            buf[1] = high if isnan(buf[1]) else max(buf[1], high)
        buf.extend(
            (
                t,
                _NAN if value is None else value,
                _NAN if zs is None else zs,
                ord(flag[0]) + (256 if marked else 0) + (512 if stop_marked else 0),
            )
        )
        return True

    def records(self, realtime: bool = False) -> list[MinuteRecord]:
        store = self.realtime if realtime else self.minutes
        out = []
        for factor, buf in (store or {}).items():
            for i in range(2, len(buf), _WIDTH):
                t, value, zs, code = buf[i : i + _WIDTH]
                c = int(code)
                out.append(
                    MinuteRecord(
                        factor,
                        int(t),
                        None if isnan(value) else value,
                        chr(c & 255),
                        None if isnan(zs) else zs,
                        c & 256 != 0,
                        stop_marked=c & 512 != 0,
                    )
                )
        return out

    def extremes(self) -> dict[tuple[str, bool], tuple[float, float]]:
        """(factor, real-time) → the lowest and highest of its valid records' values and
        Min/Max fields."""
        out = {}
        for realtime, store in ((False, self.minutes), (True, self.realtime or {})):
            for factor, buf in store.items():
                if not isnan(buf[0]):
                    out[(factor, realtime)] = (buf[0], buf[1])
        return out


_WIDTH = 4  # doubles per stored record


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


class _OutletStream:
    __slots__ = (
        "days",
        "hours",
        "judge",
        "last_minute",
        "latest",
        "next_close",
        "runs",
        "watermark",
    )

    def __init__(self, params: OutletParams, markings: MarkingBook) -> None:
        self.judge = OutletJudge(params, markings)
        self.days = OpenDays()  # the open days' sums of the values kept (rules.history)
        self.runs: dict[str, RunState] = {}
        self.watermark = NO_WATERMARK
        self.hours: dict[int, _OpenHour] = {}
        self.next_close = END_OF_DATA  # watermark at which the earliest open hour closes
        self.last_minute = -(2**62)  # the latest DataTime of its minute data
        # (time, all stopped): whether every reading at the latest DataTime was flagged F
        self.latest: tuple[int, bool] = (-(2**62), False)


# The layout of the engine's state; a snapshot of another layout is not restored (the
# archive is replayed instead). Raise it whenever a pickled class changes its fields.
STATE_FORMAT = 18


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
        self._copies = copy_watches(params)
        self.absence = AbsenceWatch(params, self._power_params)
        self.stats = EngineStats()
        self._outlets_of: dict[str, list[_OutletStream]] = {}  # enterprise → its outlets
        self._production_dirty: set[str] = set()  # enterprises whose state may have changed
        self._production_told: dict[str, bool] = {}  # as last reported
        # The hours and days closed since the rule stage last took them (rules.history).
        self._closed_hours: list[HourRecord] = []
        self._closed_days: list[DayRecord] = []
        self._closed_detail: list[MinuteDetail] = []
        self._closed_meters: list[MeterHourRecord] = []

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
            if future(ts, received, self.max_future):
                stats.future += 1
                continue
            st = self._enterprises.get(s.enterprise_id)
            if st is None:
                link = self._links.get(s.enterprise_id)
                st = self._enterprises[s.enterprise_id] = _PowerStream(params, link)
            if closed(ts, st.watermark, grace):  # a sample is a window of its own
                stats.late += 1
                continue
            kw = sample_kw(s.active_power_kw, s.switch_on)
            if kw is None:
                stats.unconfigured += 1  # neither power nor state: nothing to judge
                continue
            if not st.add(s.meter_id, ts, kw):
                stats.duplicates += 1
                continue
            if ts > st.watermark:
                st.watermark = ts
                out += st.finalize(closed_until(ts, grace), self._closed_meters)
                self._production_dirty.add(s.enterprise_id)
        return out

    def production(self) -> dict[str, bool]:
        """Per enterprise: whether it is producing now (停产 when not), from its production
        meters and its outlets' data flags. Enterprises whose state is not known yet are left
        out."""
        out: dict[str, bool] = {}
        for enterprise in {*self._enterprises, *self._outlets_of}:
            producing = self._producing(enterprise)
            if producing is not None:
                out[enterprise] = producing
        return out

    def take_history(self) -> Kept:
        """The hour and day values and the hours' minute detail closed since the last call
        (the stage stores them with the batch's findings)."""
        kept = Kept(self._closed_hours, self._closed_days, self._closed_detail, self._closed_meters)
        self._closed_hours, self._closed_days, self._closed_detail = [], [], []
        self._closed_meters = []
        return kept

    def production_changes(self) -> dict[str, bool]:
        """The enterprises whose production state changed since the last call, and their new
        state: the service stores these with the batch (only the enterprises a batch touched
        are looked at, not the whole fleet)."""
        dirty, self._production_dirty = self._production_dirty, set()
        out: dict[str, bool] = {}
        for enterprise in sorted(dirty):
            producing = self._producing(enterprise)
            if producing is not None and self._production_told.get(enterprise) != producing:
                self._production_told[enterprise] = producing
                out[enterprise] = producing
        return out

    def _producing(self, enterprise: str) -> bool | None:
        """An outlet whose latest data are flagged F (停运) says its source is stopped, one with
        any other data says it emits; a production meter ON says it produces. Either side
        producing means producing; None while neither knows."""
        ps = self._enterprises.get(enterprise)
        producing = ps.judge.producing() if ps is not None else None
        for st in self._outlets_of.get(enterprise, ()):
            if st.latest[0] > -(2**62):
                producing = bool(producing) or not st.latest[1]
        return producing

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
        copies = copy_watches(self._params)
        for ent, watch in copies.items():
            if ent in self._copies:  # keep the hours waiting
                self._copies[ent].reconfigure(watch.outlets)
                copies[ent] = self._copies[ent]
        self._copies = copies
        for (enterprise, _), st in self._outlets.items():
            st.judge.share_signatures = enterprise in copies
        self.absence.reconfigure(self._params, self._power_params)
        self._outlets_of = {}
        for (enterprise, _), st in self._outlets.items():
            self._outlets_of.setdefault(enterprise, []).append(st)
        self._production_dirty |= {*self._enterprises, *self._outlets_of}

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
                st.judge.share_signatures = key[0] in self._copies
                self._outlets_of.setdefault(key[0], []).append(st)
            if m.data_time is not last_dt:
                last_dt = m.data_time
                t = int(last_dt.timestamp())
            if m.received_at is not last_rt:
                last_rt = m.received_at
                received = int(last_rt.timestamp())
            out += absence.received(key, received, t)
            if future(t, received, self.max_future):
                stats.future += 1
                continue
            interval = m.interval
            if interval != "day":
                latest_t, all_stopped = st.latest
                if t > latest_t:
                    st.latest = (t, flag_of(m.flag) == "F")
                    if st.latest[1] != all_stopped or latest_t == -(2**62):
                        self._production_dirty.add(key[0])
                elif t == latest_t and all_stopped and flag_of(m.flag) != "F":
                    st.latest = (t, False)
                    self._production_dirty.add(key[0])
            if interval == "hour":
                absence.hour_packet(key, t - t % HOUR, m.factor)
            elif interval == "minute":
                st.last_minute = max(st.last_minute, t)
            windowed = interval != "day" and (
                interval != "rtd" or st.last_minute < t - REALTIME_QUIET_S
            )  # real-time values make no hours while the outlet's minute data do
            if windowed:
                h = t - t % HOUR
                if closed(h + HOUR, st.watermark, grace):
                    stats.late += 1
                    continue
                hour = st.hours.get(h)
                if hour is None:
                    hour = st.hours[h] = _OpenHour()
                    st.next_close = min(st.next_close, closes_at(h + HOUR, grace))
                marking = markings.marking_at(key[0], key[1], m.factor, t) if markings else None
                if interval != "hour":
                    stop = marking is not None and (
                        marking.type == STOPPED_MARK
                        or markings.marking_at(key[0], key[1], m.factor, t, STOPPED_MARK)
                        is not None
                    )
                    if not hour.add(m, t, marking is not None, stop, st.judge.params.valid_flags):
                        stats.duplicates += 1
                elif m.factor in hour.device:
                    stats.duplicates += 1
                else:
                    hour.device[m.factor] = DeviceHour(
                        m.factor,
                        t,
                        m.value,
                        flag_of(m.flag),
                        m.zs,
                        marking is not None,
                        m.minimum,
                        m.maximum,
                    )
            if t > st.watermark:
                st.watermark = t
                if t >= st.next_close:
                    out += self._close(st, t)
        return out

    def stopped_outlets(self) -> set[tuple[str, str]]:
        """Outlets whose latest readings are all flagged F (停运): shown as 停产."""
        return {key for key, st in self._outlets.items() if st.latest[1]}

    def _close(self, st: _OutletStream, watermark: int) -> list[Finding]:
        """Judge every hour (and then day) that ``watermark`` closes."""
        out = close(
            sorted(st.hours.items()),
            _KeptDays(st, self._closed_days),
            watermark,
            self.grace,
            partial(self._hour, st),
        )
        st.next_close = closes_at(min(st.hours) + HOUR, self.grace) if st.hours else END_OF_DATA
        return out

    def _hour(self, st: _OutletStream, h: int, hour: _OpenHour) -> list[Finding]:
        """Judge a closed hour, and hand it to the enterprise's production link and copies."""
        del st.hours[h]
        judge = st.judge
        p = judge.params
        aggs = aggregate(
            hour.records(),
            hour.device.values(),
            p.valid_flags,
            st.runs,
            p.interval_override_s,
            p.flow_code,
            judge.periods,
            hour.records(realtime=True),
            p.plateau,
            hour.extremes(),
        )
        values = judge.hour_values(aggs)
        out = judge.hour(h, aggs, values)
        records = hour_records(p, h, aggs, values)
        st.days.add_hour(records, p.flow_code)
        self._closed_hours += records
        detail = encode(p.enterprise_id, p.outlet_id, h, hour.minutes, hour.realtime, hour.device)
        if detail is not None:
            self._closed_detail.append(detail)
        link = self._links.get(p.enterprise_id)
        if link is not None:
            out += link.outlet_hour(p.outlet_id, h, judge.hour_flow, judge.hour_stopped)
        copies = self._copies.get(p.enterprise_id)
        if copies is not None:
            out += copies.outlet_hour(p.outlet_id, h, judge.hour_signatures)
            judge.hour_signatures = ()
        return out

    def flush(self) -> list[Finding]:
        """Close every open window (end of a replay or of a test)."""
        out: list[Finding] = []
        for st in self._outlets.values():
            out += self._close(st, END_OF_DATA)
        for ps in self._enterprises.values():
            out += ps.finalize(END_OF_DATA, self._closed_meters)
            out += ps.judge.flush()  # C7: the last day of each production device
            enterprise = ps.judge.params.enterprise_id
            self._closed_meters += [
                mh.close(enterprise, meter) for meter, mh in ps.hours.items() if mh.start >= 0
            ]
        for copies in self._copies.values():
            out += copies.compare(final=True)
        return out


class _KeptDays:
    """The judge's days as ``windowing.close`` closes them, each also kept as day values."""

    __slots__ = ("closed", "st")

    def __init__(self, st: _OutletStream, closed: list[DayRecord]) -> None:
        self.st, self.closed = st, closed

    def open_days(self) -> list[int]:
        return self.st.judge.open_days()

    def day(self, start: int) -> list[Finding]:
        st = self.st
        judge = st.judge
        counts = judge.day_counts(start)
        self.closed += with_counts(st.days.close(judge.params, start), counts, judge.params, start)
        return judge.day(start, counts)


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

    __slots__ = ("hours", "judge", "link", "pending", "watermark")

    def __init__(self, params: EnterprisePowerParams, link: ProductionLink | None) -> None:
        self.judge = PowerJudge(params)
        self.link = link
        self.pending: dict[str, _MeterQueue] = {}
        self.watermark = NO_WATERMARK
        self.hours: dict[str, MeterHours] = {}  # each meter's open hour (rules.history)

    def add(self, meter: str, ts: int, p_kw: float) -> bool:
        """Queue a sample; False for a duplicate of one waiting."""
        queue = self.pending.get(meter)
        if queue is None:
            queue = self.pending[meter] = _MeterQueue()
        return queue.add(ts, p_kw)

    def finalize(self, upto: int, kept: list[MeterHourRecord]) -> list[Finding]:
        """Judge, in (time, meter) order, the samples stamped at or before ``upto``; the meter
        hours they close go to ``kept``."""
        ready = sorted(
            (ts, meter, kw) for meter, q in self.pending.items() for ts, kw in q.take(upto)
        )
        out: list[Finding] = []
        judge, link, hours = self.judge, self.link, self.hours
        enterprise = judge.params.enterprise_id
        for ts, meter, p_kw in ready:
            out += judge.sample(meter, ts, p_kw)
            state = judge.state(meter)
            if link is not None:
                out += link.sample(meter, ts, p_kw, state)
            mh = hours.get(meter)
            if mh is None:
                mh = hours[meter] = MeterHours()
            closed = mh.sample(enterprise, meter, ts, p_kw, judge.state_since(meter))
            if closed is not None:
                kept.append(closed)
        if link is not None:
            out += link.power_closed(upto)
        return out
