"""Data series from the raw archive: an outlet's values against its limits, a meter's samples,
an enterprise's latest values (what the dashboard charts and the case page draw).

The raw archive is the only store of readings, so a series is decoded from it on demand: the
messages of the outlet's topics received within the range widened by a slack for late data
(the archive is indexed by receive time, not event time), decoded by the pipeline's own
``MessageProcessor``, and aggregated by the batch engine's layer 1 (acceptance, hour
aggregates) and the judge's hour value, so a chart shows the hours exactly as the rules saw
them: the same valid-minute threshold, flags, marked periods, late and duplicate handling.

Which topics carry an outlet's frames is decided with the configured subscriptions (the
``TopicRouter``) and the registry, not a hard-coded pattern: a topic the router gives the
``hj212`` kind is read for MN X when its sender is X (a logger publishing on its own topic) or
a gateway whose entry lists X (those payloads are kept only when they contain X). Meters
likewise with the ``power`` kind, and through the ``hj212`` topics of their logger's MN when
an HJ 212 logger reports them. The pipeline's ``MessageProcessor`` then applies the same
attribution checks as ingest, so a frame that ingest refused (another sender's MN) is on no
chart, and a case and its chart rest on the same frames.

What the hour values see: the outlet's readings decoded from the messages received within
[start of the first day − slack, end of the last day + slack] (whole China natural days, for
the day values), in archive order, so acceptance (future-stamped, late, duplicate readings) is
decided as the rules decided it. Two approximations, both at the edges: readings received
outside that window are unknown here, and real-time (CN 2011) frames outside the requested
range are not decoded (they feed no hour value; they only advance the outlet's watermark).

Speed: reading by topic needs an index on (topic, received_us), which the archive's own
schema does not have. The reader adds it (``CREATE INDEX IF NOT EXISTS``): a purely additive
index that the archive's writer, its retention and the pipeline ignore, built once in a
background thread on a writable connection of its own (the reads use read-only connections
like the pipeline's). Building it holds the archive's write lock for its duration (about a
second per million messages); the archiver waits for it (busy timeout) and retries without
acknowledging meanwhile, so nothing is lost. Until it exists, or when the archive is read-only,
the same queries run on the receive-time index, only slower.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter

from alerts.templates import factor_name
from ingest.archive import ArchivedMessage, open_readonly
from ingest.china_time import CHINA_TZ, china_local
from ingest.hj212.codes import pollutant_table
from ingest.processor import MessageProcessor
from ingest.readings import Measurement, PowerSample
from nonsite.config.model import Config, EnterpriseConfig, MeterConfig, OutletConfig
from nonsite.rule_wiring import build_markings, build_outlet_params, build_power_params
from nonsite.web.series_models import (
    DayPoint,
    EnterpriseLatestOut,
    FactorInfo,
    HourPoint,
    LatestPoint,
    LimitsOut,
    MarkedPeriodOut,
    MeterLatestOut,
    MeterSeriesOut,
    OutletLatestOut,
    OutletSeriesOut,
    PowerLatest,
    PowerPoint,
    RawPoint,
)
from nonsite.wiring import build_policy, build_registry, build_router
from rules.batch import BatchEngine, hour_agg, readings_frames
from rules.hours import HourAgg
from rules.judge import HourValue, OutletJudge
from rules.markings import Marking, MarkingBook
from rules.params import OutletParams, effective_thresholds, marking_book
from rules.timebase import DAY, HOUR, day_start, to_datetime

log = logging.getLogger(__name__)

TOPIC_INDEX = "messages_topic_received"
CREATE_TOPIC_INDEX = f"CREATE INDEX IF NOT EXISTS {TOPIC_INDEX} ON messages (topic, received_us)"
INDEX_BUSY_S = 30.0  # wait this long for the archiver's transaction before building
INDEX_RETRY_S = 600.0  # after a failed build (read-only archive, busy), try again this late

DEFAULT_RANGE = timedelta(hours=48)
MAX_RANGE = timedelta(days=31)
SLACK = timedelta(days=2)  # late data: read what was received this long after the range
LATEST_HOURS = 6
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # ranges outside these years are refused
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

_RANK = {"day": 0, "hour": 1, "minute": 2, "rtd": 3}  # at one time, the finest reading is latest
_DATATIME = re.compile(rb"DataTime=(\d{14})")
_CHUNK = 500  # topics per query (SQLite's variable limit is far higher)
# The topics of the archive, from the (topic, received_us) index: one seek per distinct topic.
_DISTINCT_TOPICS = """
WITH RECURSIVE t(topic) AS (
    SELECT MIN(topic) FROM messages
    UNION ALL
    SELECT (SELECT MIN(topic) FROM messages WHERE topic > t.topic) FROM t WHERE t.topic IS NOT NULL
)
SELECT topic FROM t WHERE topic IS NOT NULL
"""
_RAW_POINTS = TypeAdapter(dict[str, list[RawPoint]])


class RangeError(ValueError):
    """A time range the API refuses (422)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownSourceError(LookupError):
    """No such enterprise, outlet or meter in the configuration (404)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    since: datetime  # as given (aware), China time
    until: datetime
    lo: int  # epoch seconds: an event time t is in the range when lo <= t < hi
    hi: int


def resolve_range(
    since: datetime | None, until: datetime | None, now: datetime | None = None
) -> TimeRange:
    """[since, until) of event time; defaults: until now, since 48 h before until. Naive
    datetimes are China time. At most ``MAX_RANGE`` long, within the years 2000-2099."""
    end = china_local(until) if until is not None else (now or datetime.now(UTC))
    if not EARLIEST <= end <= LATEST:
        raise RangeError("bad_range", "until must lie between 2000 and 2100")
    start = china_local(since) if since is not None else end - DEFAULT_RANGE
    if not EARLIEST <= start <= LATEST:
        raise RangeError("bad_range", "since must lie between 2000 and 2100")
    if start >= end:
        raise RangeError("bad_range", "since must be before until")
    if end - start > MAX_RANGE:
        raise RangeError("range_too_long", f"a range spans at most {MAX_RANGE.days} days")
    return TimeRange(
        start.astimezone(CHINA_TZ),
        end.astimezone(CHINA_TZ),
        math.ceil(start.timestamp()),
        math.ceil(end.timestamp()),
    )


def _us(seconds: int | float) -> int:
    return int(seconds * 1_000_000)


def _datatime_epoch(text: bytes) -> int | None:
    try:
        return int(
            datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                int(text[12:14]),
                tzinfo=CHINA_TZ,
            ).timestamp()
        )
    except ValueError:
        return None


def _event_filter(need: tuple[int, int], windows: tuple[int, int]) -> Callable[[bytes], bool]:
    """Keep an HJ 212 payload when one of its DataTimes lies in ``need`` (every reading is
    wanted), or in ``windows`` and not all its frames are real-time data (only minute and
    hour data feed the hour and day values). A payload whose DataTimes cannot all be read
    here is kept: the decoder decides."""

    def keep(payload: bytes) -> bool:
        found = _DATATIME.findall(payload)
        if not found or len(found) != payload.count(b"DataTime"):
            return True
        times = [_datatime_epoch(f) for f in found]
        if None in times:
            return True
        if any(need[0] <= t < need[1] for t in times if t is not None):
            return True
        if not any(windows[0] <= t < windows[1] for t in times if t is not None):
            return False
        return payload.count(b"CN=2011") != payload.count(b"CN=")

    return keep


def _keep_all(_payload: bytes) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Wanted:
    mns: frozenset[str] = frozenset()
    meters: frozenset[str] = frozenset()


class SeriesReader:
    """Answers series queries from one archive file, for one configuration. Thread-safe: every
    query opens its own read-only connection and its own processor."""

    def __init__(
        self,
        config: Config,
        archive_path: Path,
        *,
        slack: timedelta = SLACK,
        build_index: bool = True,
    ) -> None:
        self.config = config
        self.path = archive_path
        self.slack_s = int(slack.total_seconds())
        self.registry = build_registry(config)
        self.policy = replace(build_policy(config), reply_topic="")  # a reader answers nobody
        self.params = build_outlet_params(config)
        self.power = build_power_params(config)
        self.markings = build_markings(config)
        self.grace_s = config.rules.grace_s
        self.max_future_s = config.rules.max_future_s
        self.max_future = timedelta(seconds=self.max_future_s)
        self._build_index = build_index
        self._index_lock = threading.Lock()
        self._index_state: Literal["unknown", "building", "ready", "unavailable"] = "unknown"
        self._index_thread: threading.Thread | None = None
        self._index_retry_at = 0.0

    # -- the topic index -----------------------------------------------------------------

    def ensure_topic_index(self, *, wait: bool = False) -> bool:
        """True when the archive has the (topic, received_us) index. Otherwise starts building
        it in the background (once; again ``INDEX_RETRY_S`` after a failure) and, with
        ``wait``, waits for the build."""
        with self._index_lock:
            if self._index_state == "ready":
                return True
            thread = self._index_thread if self._index_state == "building" else None
            if thread is None:
                if not self.path.exists():
                    return False
                if self._has_index():
                    self._index_state = "ready"
                    return True
                if not self._build_index or time.monotonic() < self._index_retry_at:
                    return False
                self._index_state = "building"
                thread = threading.Thread(
                    target=self._create_index, name="series-topic-index", daemon=True
                )
                self._index_thread = thread
                thread.start()
        if wait:
            thread.join()
            return self.topic_index_ready
        return False

    @property
    def topic_index_ready(self) -> bool:
        return self._index_state == "ready"

    def _has_index(self) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (TOPIC_INDEX,)
            ).fetchone()
        return row is not None

    def _create_index(self) -> None:
        started = time.perf_counter()
        try:
            conn = sqlite3.connect(self.path, timeout=INDEX_BUSY_S, isolation_level=None)
            try:
                conn.execute(CREATE_TOPIC_INDEX)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning(
                "cannot add the index %s to %s (%s): series read by receive time only",
                TOPIC_INDEX,
                self.path,
                exc,
            )
            with self._index_lock:
                self._index_state = "unavailable"
                self._index_retry_at = time.monotonic() + INDEX_RETRY_S
            return
        log.info(
            "added the index %s to %s in %.1f s",
            TOPIC_INDEX,
            self.path,
            time.perf_counter() - started,
        )
        with self._index_lock:
            self._index_state = "ready"

    # -- archive access ------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = open_readonly(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def _messages(
        self,
        wanted: _Wanted,
        received_from_us: int,
        received_until_us: int,
        keep: Callable[[bytes], bool] = _keep_all,
    ) -> list[ArchivedMessage]:
        """The archived messages that may carry the wanted sources' data, received in
        [from, until], in archive order."""
        if not self.path.exists():
            return []
        indexed = self.ensure_topic_index()
        out: list[ArchivedMessage] = []
        with self._connect() as conn:
            if indexed:
                topics = [r[0] for r in conn.execute(_DISTINCT_TOPICS)]
            else:
                topics = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT topic FROM messages WHERE received_us BETWEEN ? AND ?",
                        (received_from_us, received_until_us),
                    )
                ]
            selected = self._select_topics(topics, wanted)
            names = sorted(selected)
            for i in range(0, len(names), _CHUNK):
                chunk = names[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                # full_size NULL: not an oversized message whose start alone is archived
                rows = conn.execute(
                    "SELECT seq, received_us, topic, payload FROM messages "
                    f"WHERE topic IN ({marks}) AND received_us BETWEEN ? AND ? "
                    "AND full_size IS NULL",
                    (*chunk, received_from_us, received_until_us),
                )
                for seq, received_us, topic, payload in rows:
                    needles = selected[topic]
                    if needles and not any(n in payload for n in needles):
                        continue
                    if keep(payload):
                        out.append(ArchivedMessage(seq, received_us, topic, payload))
        out.sort(key=lambda m: m.seq)
        return out

    def _select_topics(self, topics: Iterable[str], wanted: _Wanted) -> dict[str, list[bytes]]:
        """Topic → byte strings one of which a payload must contain (empty: take all)."""
        router = build_router(self.config)
        mn_needles = [mn.encode() for mn in sorted(wanted.mns)]
        meter_needles = [m.encode() for m in sorted(wanted.meters)]
        out: dict[str, list[bytes]] = {}
        for topic in topics:
            route = router.route(topic)
            if route is None:
                continue
            sender = route.sender
            gateway = self.registry.gateway(sender)
            if route.kind == "hj212" and wanted.mns:
                if sender in wanted.mns:
                    out[topic] = [] if len(wanted.mns) == 1 else [sender.encode()]
                elif gateway is not None and not gateway.mns.isdisjoint(wanted.mns):
                    out[topic] = mn_needles
            elif route.kind == "power" and wanted.meters:
                if sender in wanted.meters:
                    out[topic] = []  # the topic names the meter: readings may omit it
                elif gateway is not None and not gateway.meters.isdisjoint(wanted.meters):
                    out[topic] = meter_needles  # a gateway: each reading names its meter
        return out

    def _decode(
        self, messages: Sequence[ArchivedMessage]
    ) -> tuple[list[Measurement], list[PowerSample]]:
        processor = MessageProcessor(self.registry, build_router(self.config), self.policy)
        measurements: list[Measurement] = []
        power: list[PowerSample] = []
        for i in range(0, len(messages), 5000):
            done = processor.process(messages[i : i + 5000])
            measurements += done.readings.measurements
            power += done.readings.power
        return measurements, power

    # -- lookups ------------------------------------------------------------------------

    def _enterprise(self, enterprise_id: str) -> EnterpriseConfig:
        for e in self.config.enterprises:
            if e.id == enterprise_id:
                return e
        raise UnknownSourceError(f"enterprise {enterprise_id}")

    def _outlet(self, enterprise_id: str, outlet_id: str) -> tuple[EnterpriseConfig, OutletConfig]:
        ent = self._enterprise(enterprise_id)
        for o in ent.outlets:
            if o.id == outlet_id:
                return ent, o
        raise UnknownSourceError(f"outlet {outlet_id} of enterprise {enterprise_id}")

    def _meter(self, enterprise_id: str, meter_id: str) -> tuple[EnterpriseConfig, MeterConfig]:
        ent = self._enterprise(enterprise_id)
        for m in ent.meters:
            if m.id == meter_id:
                return ent, m
        raise UnknownSourceError(f"meter {meter_id} of enterprise {enterprise_id}")

    # -- outlets -------------------------------------------------------------------------

    def outlet_series(
        self,
        enterprise_id: str,
        outlet_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        raw: bool = True,
        now: datetime | None = None,
    ) -> OutletSeriesOut:
        ent, outlet = self._outlet(enterprise_id, outlet_id)
        key = (ent.id, outlet.id)
        params = self.params[key]
        span = resolve_range(since, until, now)
        now_s = (now or datetime.now(UTC)).timestamp()
        # Day values need whole days; the acceptance of late data needs what arrived after.
        days = (day_start(span.lo), day_start(span.hi - 1) + DAY)
        windows = (days[0], days[1] + self.grace_s + HOUR)
        messages = self._messages(
            _Wanted(mns=frozenset({outlet.mn})),
            _us(days[0] - self.slack_s),
            _us(days[1] + self.slack_s),
            _event_filter((span.lo, span.hi), windows),
        )
        decoded, _ = self._decode(messages)
        readings = [m for m in decoded if m.enterprise_id == ent.id and m.outlet_id == outlet.id]
        book = marking_book(
            [m for m in self.markings if (m.enterprise_id, m.outlet_id) == key], {key: params}
        )
        in_range = [m for m in readings if span.since <= m.data_time < span.until]
        hours = self._hours(params, book, readings)
        hourly = {
            code: points
            for code, items in hours.items()
            if (points := [p for t, p in items if t + HOUR > span.lo and t < span.hi])
        }
        seen = {m.factor for m in in_range} | set(hourly)
        return OutletSeriesOut(
            enterprise_id=ent.id,
            outlet_id=outlet.id,
            outlet_name=outlet.name,
            mn=outlet.mn,
            kind=outlet.kind,
            since=span.since,
            until=span.until,
            minute_interval_min=params.minute_interval_min,
            valid_minutes_per_hour=params.valid_minutes_per_hour,
            valid_hours_per_day=params.valid_hours_per_day,
            factors=_factors(params, seen),
            raw=_raw(in_range) if raw else {},
            hourly=hourly,
            daily=_daily(params, hours, days, now_s),
            limits=_limits(params),
            marked=_marked(ent, outlet, book, span),
            latest=self._latest_points(in_range),
        )

    def _hours(
        self, params: OutletParams, book: MarkingBook, readings: list[Measurement]
    ) -> dict[str, list[tuple[int, HourPoint]]]:
        """Per factor, (hour start, point) in hour order, from the batch engine's layer 1."""
        if not readings:
            return {}
        engine = BatchEngine(
            {(params.enterprise_id, params.outlet_id): params},
            markings=book,
            grace_s=self.grace_s,
            max_future_s=self.max_future_s,
        )
        frame, _ = readings_frames(readings)
        kept, _ = engine.accepted(frame)
        aggs = engine.hour_aggregates(kept)
        judge = OutletJudge(params, book)
        by_hour: dict[int, dict[str, tuple[HourAgg, HourValue]]] = {}
        for row in aggs.iter_rows(named=True):
            agg = hour_agg(row)
            by_hour.setdefault(row["hour"], {})[row["factor"]] = (agg, judge.hour_value(agg))
        out: dict[str, list[tuple[int, HourPoint]]] = {}
        for hour in sorted(by_hour):
            factors = by_hour[hour]
            o2 = factors.get(params.o2_code)
            o2_value = _valid_value(o2[1]) if o2 is not None else None
            for code in sorted(factors):
                agg, hv = factors[code]
                fp = params.factors.get(code)
                value = _valid_value(hv)
                converted = None
                if (
                    value is not None
                    and fp is not None
                    and fp.reference_o2 is not None
                    and o2_value is not None
                    and o2_value < 21
                ):
                    converted = value * (21 - fp.reference_o2) / (21 - o2_value)
                out.setdefault(code, []).append(
                    (
                        hour,
                        HourPoint(
                            t=to_datetime(hour),
                            value=_round(value),
                            valid=hv.valid,
                            source=hv.source,  # type: ignore[arg-type]
                            flag=hv.flag,
                            converted=_round(converted),
                            valid_minutes=hv.valid_minutes,
                            interval_s=hv.interval_s,
                            n=agg.n,
                            n_valid=agg.n_valid,
                            n_marked=agg.n_marked,
                            flags={
                                "D": agg.n_d,
                                "M": agg.n_m,
                                "C": agg.n_c,
                                "B": agg.n_b,
                                "T": agg.n_t,
                                "F": agg.n_f,
                            },
                            marked=agg.n_marked > 0 or agg.dev_marked,
                            device_value=agg.dev_value,
                            device_flag=agg.dev_flag,
                        ),
                    )
                )
        return out

    def _latest_points(self, readings: Iterable[Measurement]) -> dict[str, LatestPoint]:
        best: dict[str, Measurement] = {}
        for m in readings:
            if m.data_time > m.received_at + self.max_future:
                continue  # stamped in the future: the rules do not use it either
            old = best.get(m.factor)
            if old is None or (m.data_time, _RANK[m.interval]) > (
                old.data_time,
                _RANK[old.interval],
            ):
                best[m.factor] = m
        return {
            code: LatestPoint(
                t=m.data_time.astimezone(CHINA_TZ),
                interval=m.interval,
                value=m.value,
                flag=m.flag,
                zs=m.zs,
                received_at=m.received_at.astimezone(CHINA_TZ),
            )
            for code, m in sorted(best.items())
        }

    # -- meters --------------------------------------------------------------------------

    def meter_series(
        self,
        enterprise_id: str,
        meter_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        now: datetime | None = None,
    ) -> MeterSeriesOut:
        ent, meter = self._meter(enterprise_id, meter_id)
        span = resolve_range(since, until, now)
        messages = self._messages(
            _Wanted(mns=_meter_mns([meter]), meters=frozenset({meter.id})),
            _us(span.lo - self.slack_s),
            _us(span.hi + self.slack_s),
        )
        _, decoded = self._decode(messages)
        samples: dict[datetime, PowerSample] = {}
        for p in decoded:  # in arrival order: the first sample of each time counts
            mine = p.enterprise_id == ent.id and p.meter_id == meter.id
            if mine and span.since <= p.ts < span.until:
                samples.setdefault(p.ts, p)
        ordered = sorted(samples.values(), key=lambda p: p.ts)
        mp = self.power[ent.id].meters[meter.id]
        return MeterSeriesOut(
            enterprise_id=ent.id,
            meter_id=meter.id,
            meter_name=meter.name,
            role=meter.role,
            since=span.since,
            until=span.until,
            rated_kw=mp.rated_kw,
            on_kw=_round(mp.on_kw),
            off_kw=_round(mp.off_kw),
            on_fraction=mp.on_fraction,
            off_fraction=mp.off_fraction,
            samples=[_power_point(p) for p in ordered],
            latest=self._latest_sample(ordered),
        )

    def _latest_sample(self, samples: Iterable[PowerSample]) -> PowerLatest | None:
        best: PowerSample | None = None
        for p in samples:
            if p.ts > p.received_at + self.max_future:
                continue
            if best is None or p.ts > best.ts:
                best = p
        if best is None:
            return None
        return PowerLatest(
            **_power_point(best).model_dump(), received_at=best.received_at.astimezone(CHINA_TZ)
        )

    # -- the latest values of an enterprise ----------------------------------------------

    def latest(
        self, enterprise_id: str, *, hours: int = LATEST_HOURS, now: datetime | None = None
    ) -> EnterpriseLatestOut:
        """The newest reading per outlet × factor and per meter among what was received in the
        last ``hours`` hours."""
        ent = self._enterprise(enterprise_id)
        at = now or datetime.now(UTC)
        since = at - timedelta(hours=hours)
        wanted = _Wanted(
            mns=frozenset(o.mn for o in ent.outlets) | _meter_mns(ent.meters),
            meters=frozenset(m.id for m in ent.meters),
        )
        messages = self._messages(wanted, _us(since.timestamp()), _us(at.timestamp()) + 60_000_000)
        measurements, power = self._decode(messages)
        by_outlet: dict[str, list[Measurement]] = {}
        for m in measurements:
            if m.enterprise_id == ent.id:
                by_outlet.setdefault(m.outlet_id, []).append(m)
        by_meter: dict[str, list[PowerSample]] = {}
        for p in power:
            if p.enterprise_id == ent.id:
                by_meter.setdefault(p.meter_id, []).append(p)
        return EnterpriseLatestOut(
            enterprise_id=ent.id,
            since=since.astimezone(CHINA_TZ),
            outlets=[
                OutletLatestOut(
                    outlet_id=o.id,
                    outlet_name=o.name,
                    mn=o.mn,
                    kind=o.kind,
                    factors=self._latest_points(by_outlet.get(o.id, [])),
                )
                for o in ent.outlets
            ],
            meters=[
                MeterLatestOut(
                    meter_id=m.id,
                    meter_name=m.name,
                    role=m.role,
                    rated_kw=m.rated_kw,
                    sample=self._latest_sample(by_meter.get(m.id, [])),
                )
                for m in ent.meters
            ],
        )


# -- building the answer -----------------------------------------------------------------


def _meter_mns(meters: Iterable[MeterConfig]) -> frozenset[str]:
    """The HJ 212 loggers that report these meters (ST=44 values, SBx-RS states)."""
    return frozenset(m.mn for m in meters if m.mn is not None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _valid_value(hv: HourValue) -> float | None:
    return hv.value if hv.valid and hv.value is not None else None


def _raw(readings: Iterable[Measurement]) -> dict[str, list[RawPoint]]:
    """Per factor in time order; of a repeated (interval, time) the first arrival, as the
    rules take it."""
    seen: set[tuple[str, str, datetime]] = set()
    per_factor: dict[str, list[Measurement]] = {}
    for m in readings:
        key = (m.factor, m.interval, m.data_time)
        if key in seen:
            continue
        seen.add(key)
        per_factor.setdefault(m.factor, []).append(m)
    # Plain dicts validated in one call: pydantic-core builds the thousands of points far
    # faster than a Python-level constructor per point.
    return _RAW_POINTS.validate_python(
        {
            code: [
                {
                    "t": m.data_time.astimezone(CHINA_TZ),
                    "interval": m.interval,
                    "value": m.value,
                    "flag": m.flag,
                    "zs": m.zs,
                }
                for m in sorted(per_factor[code], key=lambda m: (m.data_time, _RANK[m.interval]))
            ]
            for code in sorted(per_factor)
        }
    )


def _day_mean(items: list[tuple[float, float | None]], weighted: bool) -> float:
    """Mean of the values, or flow-weighted when allowed and every item has a flow > 0."""
    if weighted and all(flow is not None and flow > 0 for _, flow in items):
        total = sum(flow for _, flow in items if flow is not None)
        return sum(v * flow for v, flow in items if flow is not None) / total
    return sum(v for v, _ in items) / len(items)


def _daily(
    params: OutletParams,
    hours: dict[str, list[tuple[int, HourPoint]]],
    days: tuple[int, int],
    now_s: float,
) -> dict[str, list[DayPoint]]:
    """Per factor, every natural day of ``days``: the mean of its valid hours (of its converted
    hours for factors judged converted), as the daily rule takes them."""
    flows: dict[int, float | None] = {
        hour: point.value for hour, point in hours.get(params.flow_code, [])
    }
    required = params.valid_hours_per_day
    weighted = params.kind == "water"
    out: dict[str, list[DayPoint]] = {}
    for code, items in hours.items():
        points = []
        for day in range(days[0], days[1], DAY):
            in_day = [(h, p) for h, p in items if day <= h < day + DAY]
            values = [(p.value, flows.get(h)) for h, p in in_day if p.value is not None]
            converted = [(p.converted, flows.get(h)) for h, p in in_day if p.converted is not None]
            points.append(
                DayPoint(
                    t=to_datetime(day),
                    value=_round(_day_mean(values, weighted)) if len(values) >= required else None,
                    converted=(
                        _round(_day_mean(converted, weighted))
                        if len(converted) >= required
                        else None
                    ),
                    valid_hours=len(values),
                    converted_hours=len(converted),
                    required_hours=required,
                    flow_weighted=weighted
                    and bool(values)
                    and all(f is not None and f > 0 for _, f in values),
                    complete=day + DAY <= now_s,
                )
            )
        out[code] = points
    return out


def _limits(params: OutletParams) -> dict[str, LimitsOut]:
    out = {}
    for code, fp in params.factors.items():
        t = effective_thresholds(params, fp)
        out[code] = LimitsOut(
            unit=fp.unit,
            hour_alarm=t.hour_alarm,
            hour_warning=t.hour_warning,
            day_alarm=t.day_alarm,
            day_warning=t.day_warning,
            value_high=t.value_high,
            value_low=t.value_low,
            reference_o2=fp.reference_o2,
            source=fp.source,
        )
    return out


def _factors(params: OutletParams, seen: set[str]) -> list[FactorInfo]:
    table = pollutant_table()
    out = [
        FactorInfo(code=code, name=factor_name(code), unit=fp.unit, configured=True)
        for code, fp in params.factors.items()
    ]
    for code in sorted(seen - set(params.factors)):
        known = table.get(code)
        out.append(
            FactorInfo(
                code=code,
                name=factor_name(code),
                unit=known.unit if known else "",
                configured=False,
            )
        )
    return out


def _marked(
    ent: EnterpriseConfig, outlet: OutletConfig, book: MarkingBook, span: TimeRange
) -> list[MarkedPeriodOut]:
    """The declared markings of the outlet overlapping the range; where a yearly cap runs
    out inside one, the moment it does."""
    out = []
    for m in ent.markings:
        if m.outlet != outlet.id:
            continue
        start, end = int(m.start.timestamp()), int(m.end.timestamp())
        if start >= span.hi or end <= span.lo:
            continue
        over = [
            piece.start
            for piece in book.over_cap
            if _same_marking(piece, m.type, m.factor) and start <= piece.start < end
        ]
        out.append(
            MarkedPeriodOut(
                start=m.start.astimezone(CHINA_TZ),
                end=m.end.astimezone(CHINA_TZ),
                type=m.type,
                factor=m.factor,
                reason=m.reason,
                over_cap_from=to_datetime(min(over)) if over else None,
            )
        )
    out.sort(key=lambda p: (p.start, p.end))
    return out


def _same_marking(piece: Marking, type_: str, factor: str | None) -> bool:
    return piece.type == type_ and piece.factor == factor


def _power_point(p: PowerSample) -> PowerPoint:
    return PowerPoint.model_construct(  # typed values from the decoder
        t=p.ts.astimezone(CHINA_TZ),
        p_kw=p.active_power_kw,
        switch_on=p.switch_on,
        energy_kwh=p.energy_kwh,
    )
