"""Data series from the raw archive: an outlet's values against its limits, a meter's samples,
an enterprise's latest values (what the dashboard charts and the case page draw). This module
maps them to the API: the configuration's lookups, the time ranges, the response models.

The raw archive is the only store of readings, so a series is decoded from it on demand: the
messages of the outlet's topics received within the range widened by a slack for late data
(the archive is indexed by receive time, not event time), read and decoded as the pipeline
decodes them (``ingest.archive_topics``), and explained by the rules themselves
(``rules.explain``: the batch engine's layer 1, the judge's hour value and the rules'
formulas), with the engine the rules run with (``nonsite.rule_wiring.rule_setup``: the
configured markings and those declared online), so a chart shows the hours exactly as the
rules saw them: the same valid-minute threshold, flags, marked periods, late and duplicate
handling.

What the hour values see: the outlet's readings decoded from the messages received within
[start of the first day − slack, end of the last day + slack] (whole China natural days, for
the day values), in archive order, so acceptance (future-stamped, late, duplicate readings) is
decided as the rules decided it. Two approximations, both at the edges: readings received
outside that window are unknown here, and real-time (CN 2011) frames outside the requested
range are not decoded (they feed no hour value; they only advance the outlet's watermark).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import TypeAdapter
from sqlalchemy import Engine

from alerts.templates import factor_name
from ingest.archive_topics import TopicReader, Wanted, event_filter
from ingest.china_time import CHINA_TZ, china_local
from ingest.hj212.codes import pollutant_table
from ingest.readings import Measurement, PowerSample
from nonsite import collector
from nonsite.config.model import Config, EnterpriseConfig, MeterConfig, OutletConfig
from nonsite.rule_wiring import rule_setup
from nonsite.web.hour_points import hour_points, points_dicts, points_json, records_frame
from nonsite.web.series_models import (
    EnterpriseLatestOut,
    FactorInfo,
    HourPoint,
    LatestPoint,
    LimitsOut,
    MarkedPeriodOut,
    MeterHourPoint,
    MeterLatestOut,
    MeterSeriesOut,
    OutletLatestOut,
    OutletSeriesOut,
    PowerLatest,
    PowerPoint,
    RawPoint,
)
from nonsite.wiring import build_topic_archive
from rules.explain import explain_days, explain_hours
from rules.history import DayRecord, HourRecord, MeterHourRecord, OpenDays
from rules.history_store import (
    HOUR_SCHEMA,
    hour_record,
    read_days,
    read_detail,
    read_hour_frame,
    read_meter_hours,
)
from rules.markings import Marking, MarkingBook
from rules.minute_detail import Point, points
from rules.params import OutletParams, effective_thresholds
from rules.store import list_declared_markings
from rules.timebase import DAY, HOUR, day_start, to_datetime
from rules.windowing import future

DEFAULT_RANGE = timedelta(hours=48)
HOURS_CSV_HEADERS = (
    "时间（北京时间）", "因子", "小时均值", "折算值", "单位", "有效性", "数据标记", "有效分钟数",
    "记录数", "标记时段",
)  # fmt: skip
# An hour's flag in the field's terms (the dashboard's own words, static/js/i18n.js).
FLAG_NAMES = {
    "N": "正常", "F": "停运", "M": "维护", "S": "手工输入", "D": "故障", "C": "校准",
    "T": "超测定上限", "B": "通讯异常",
}  # fmt: skip
MAX_RANGE = timedelta(days=31)  # with the raw readings
MAX_KEPT_RANGE = timedelta(days=366)  # hour and day values only: the kept ones are indexed
SLACK = timedelta(days=2)  # late data: read what was received this long after the range
LATEST_HOURS = 6
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # ranges outside these years are refused
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

_RANK = {"day": 0, "hour": 1, "minute": 2, "rtd": 3}  # at one time, the finest reading is latest
_RAW_POINTS = TypeAdapter(dict[str, list[RawPoint]])
_HOUR_POINTS = TypeAdapter(dict[str, list[HourPoint]])


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
    since: datetime | None,
    until: datetime | None,
    now: datetime | None = None,
    *,
    longest: timedelta = MAX_RANGE,
) -> TimeRange:
    """[since, until) of event time; defaults: until now, since 48 h before until. Naive
    datetimes are China time. At most ``longest`` long, within the years 2000-2099."""
    end = china_local(until) if until is not None else (now or datetime.now(UTC))
    if not EARLIEST <= end <= LATEST:
        raise RangeError("bad_range", "until must lie between 2000 and 2100")
    start = china_local(since) if since is not None else end - DEFAULT_RANGE
    if not EARLIEST <= start <= LATEST:
        raise RangeError("bad_range", "since must lie between 2000 and 2100")
    if start >= end:
        raise RangeError("bad_range", "since must be before until")
    if end - start > longest:
        raise RangeError("range_too_long", f"a range spans at most {longest.days} days")
    return TimeRange(
        start.astimezone(CHINA_TZ),
        end.astimezone(CHINA_TZ),
        math.ceil(start.timestamp()),
        math.ceil(end.timestamp()),
    )


def _us(seconds: int | float) -> int:
    return int(seconds * 1_000_000)


class SeriesReader:
    """Answers series queries from one archive file, for one configuration, with the markings
    declared online in ``db`` (none without one). Thread-safe: every query opens its own
    read-only connection and its own processor. ``archive``: the raw messages read elsewhere
    than from the file (a cluster's web node reads the stream: ``nonsite.cluster.web_node``)."""

    def __init__(
        self,
        config: Config,
        archive_path: Path,
        *,
        db: Engine | None = None,
        slack: timedelta = SLACK,
        build_index: bool = True,
        archive: TopicReader | None = None,
        raw_from_detail: bool = False,
    ) -> None:
        self.config = config
        self.path = archive_path
        self.db = db
        self.slack_s = int(slack.total_seconds())
        self.archive: TopicReader = (
            archive
            if archive is not None
            else build_topic_archive(config, archive_path, build_index=build_index)
        )
        self.rules = rule_setup(config)  # of the configuration; declared markings per query
        # A cluster's web node: the minute readings of the kept hours come from their kept
        # detail (one index range) rather than a scan of the stream; the hours not kept yet
        # still from the stream. Late records, which the rules did not take, are not in it.
        self.raw_from_detail = raw_from_detail and db is not None

    def ensure_topic_index(self, *, wait: bool = False) -> bool:
        """See ``TopicArchive.ensure_topic_index``."""
        return self.archive.ensure_topic_index(wait=wait)

    def _declared(self) -> list[dict[str, Any]]:
        """The markings declared online now (the rules take them up within a clock tick)."""
        if self.db is None:
            return []
        with self.db.connect() as conn:
            return list_declared_markings(conn)

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
        """The outlet's hours and days over the range: those the rules kept as they closed
        them (``rules.history_store``), and the explanation from raw readings of the hours not
        kept (still open, or before values were kept) within ``MAX_RANGE`` of the range's
        ends; with ``raw``, its minute readings (the range then at most ``MAX_RANGE``)."""
        fields = self._outlet_fields(enterprise_id, outlet_id, since, until, raw=raw, now=now)
        fields["hourly"] = _HOUR_POINTS.validate_python(points_dicts(fields["hourly"]))
        return OutletSeriesOut(**fields)

    def outlet_series_json(
        self,
        enterprise_id: str,
        outlet_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        raw: bool = True,
        now: datetime | None = None,
    ) -> bytes:
        """:meth:`outlet_series` as the API's JSON, the hour points written by polars from
        their columns (``nonsite.web.hour_points``), not made into models first: a year is
        43,800 of them, and our own values need no checking (a test holds the two answers
        equal). The rest is the model's own JSON, "hourly" last.

        It is built with the collector's passes paused: the answer's other parts (a month's
        raw readings, the days) make many short-lived objects, none in a cycle."""
        with collector.paused():
            fields = self._outlet_fields(enterprise_id, outlet_id, since, until, raw=raw, now=now)
            hourly = points_json(fields.pop("hourly"))
        rest = OutletSeriesOut.model_construct(**fields, hourly={}).model_dump_json(
            warnings=False, exclude={"hourly"}
        )
        return b"".join((rest[:-1].encode(), b',"hourly":', hourly, b"}"))

    def outlet_hours_csv(
        self,
        enterprise_id: str,
        outlet_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        now: datetime | None = None,
    ) -> str:
        """The outlet's hour values over the range (up to a year) as CSV for a spreadsheet:
        one row per factor-hour, Chinese headers, China time, the reason an hour is invalid
        in the field's terms."""
        fields = self._outlet_fields(enterprise_id, outlet_id, since, until, raw=False, now=now)
        hourly = points_dicts(fields["hourly"])
        info = {f.code: f for f in fields["factors"]}
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(HOURS_CSV_HEADERS)
        for code, factor_hours in hourly.items():
            factor = info.get(code)
            name, unit = (factor.name, factor.unit) if factor else (code, "")
            for p in factor_hours:
                writer.writerow(
                    [
                        p["t"].strftime("%Y-%m-%d %H:%M"),
                        name,
                        "" if p["value"] is None else p["value"],
                        "" if p["converted"] is None else p["converted"],
                        unit,
                        "有效" if p["valid"] else "无效",
                        FLAG_NAMES.get(p["flag"] or "", "缺数"),
                        p["valid_minutes"],
                        p["n"],
                        "是" if p["marked"] else "否",
                    ]
                )
        return "\ufeff" + out.getvalue()

    def _outlet_fields(
        self,
        enterprise_id: str,
        outlet_id: str,
        since: datetime | None,
        until: datetime | None,
        *,
        raw: bool,
        now: datetime | None,
    ) -> dict[str, Any]:
        ent, outlet = self._outlet(enterprise_id, outlet_id)
        key = (ent.id, outlet.id)
        declared = self._declared()
        rules = self.rules.with_declared(declared).outlet(key)
        params = rules.params[key]
        span = resolve_range(since, until, now, longest=MAX_RANGE if raw else MAX_KEPT_RANGE)
        now_s = (now or datetime.now(UTC)).timestamp()
        # Day values need whole days; the acceptance of late data needs what arrived after.
        days = (day_start(span.lo), day_start(span.hi - 1) + DAY)
        kept, kept_days = self._kept(ent.id, outlet.id, days)
        engine = rules.batch_engine()
        closed_days = {d.start for d in kept_days}
        # Records only of the kept hours whose day is not kept yet (its value from its hours).
        open_hours = [s for s in kept["start"].unique() if day_start(s) not in closed_days]
        hours: dict[str, list[HourRecord]] = {}
        for row in kept.filter(pl.col("start").is_in(open_hours)).iter_rows():
            hours.setdefault(row[0], []).append(hour_record(ent.id, outlet.id, row))
        in_range: list[Measurement] = []
        detail: dict[str, list[Point]] = {}
        if raw and self.raw_from_detail and kept.height:
            detail = self._detail(ent.id, outlet.id, span)
        first, last = kept.select(first=pl.min("start"), last=pl.max("start")).row(0)
        stretches = self._not_kept(first, last, days, span, raw and not detail)
        explained: list[HourRecord] = []
        for lo, hi in stretches:
            readings = self._readings(ent.id, outlet, (lo, hi), span)
            in_range += [m for m in readings if span.since <= m.data_time < span.until]
            stretch = kept.filter(pl.col("start").is_between(lo, hi, closed="left"))
            known = set(stretch.select("factor", "start").iter_rows())
            for code, items in explain_hours(engine, params, readings).items():
                new = [h for h in items if lo <= h.start < hi and (code, h.start) not in known]
                hours.setdefault(code, []).extend(new)
                explained += new
        for records in hours.values():
            records.sort(key=lambda h: h.start)
        in_span = pl.col("start").is_between(span.lo - HOUR, span.hi, closed="none")
        shown = pl.concat([kept, records_frame(explained)]).filter(in_span)
        hourly = hour_points(shown.sort("factor", "start", maintain_order=True))
        seen = {m.factor for m in in_range} | set(hourly["factor"].unique())
        return {
            "enterprise_id": ent.id,
            "outlet_id": outlet.id,
            "outlet_name": outlet.name,
            "mn": outlet.mn,
            "kind": outlet.kind,
            "since": span.since,
            "until": span.until,
            "minute_interval_min": params.minute_interval_min,
            "valid_minutes_per_hour": params.valid_minutes_per_hour,
            "valid_hours_per_day": params.valid_hours_per_day,
            "factors": _factors(params, seen),
            "raw": _raw(in_range, detail) if raw else {},
            "hourly": hourly,
            "daily": {
                code: [_day_point(d, now_s) for d in values]
                for code, values in _days(params, hours, kept_days, range(*days, DAY)).items()
            },
            "limits": _limits(params),
            "marked": _marked(ent, outlet, declared, engine.book, span),
            "latest": self._latest_points(in_range),
        }

    def _kept(
        self, enterprise_id: str, outlet_id: str, days: tuple[int, int]
    ) -> tuple[pl.DataFrame, list[DayRecord]]:
        """The hours (a frame of ``HOUR_ROW``) and days the rules kept in ``days`` (none
        without a database)."""
        if self.db is None:
            return pl.DataFrame(schema=HOUR_SCHEMA), []
        with self.db.connect() as conn:
            return (
                read_hour_frame(conn, enterprise_id, outlet_id, *days),
                read_days(conn, enterprise_id, outlet_id, *days),
            )

    def _detail(
        self, enterprise_id: str, outlet_id: str, span: TimeRange
    ) -> dict[str, list[Point]]:
        """The kept minute detail of the hours overlapping the range, its records in it."""
        assert self.db is not None
        with self.db.connect() as conn:
            rows = read_detail(conn, enterprise_id, outlet_id, span.lo - HOUR, span.hi)
        return {
            code: kept
            for code, items in points(rows).items()
            if (kept := [p for p in items if span.lo <= p.t < span.hi])
        }

    @staticmethod
    def _not_kept(
        first: int | None, last: int | None, days: tuple[int, int], span: TimeRange, raw: bool
    ) -> list[tuple[int, int]]:
        """The stretches whose hours come from raw readings: the whole range when the raw
        readings are read anyway or nothing is kept; else what lies before the first kept
        hour and after the last (open hours; hours before values were kept), each at most
        ``MAX_RANGE`` long at the range's ends (older raw data is the minute detail's)."""
        if raw or first is None or last is None:
            lo = max(days[0], days[1] - int(MAX_RANGE.total_seconds()) - DAY)
            return [(lo, days[1])]
        end = last + HOUR
        most = int(MAX_RANGE.total_seconds())
        out = []
        if first > days[0]:
            out.append((max(days[0], first - most), first))
        if end < days[1]:
            out.append((max(end, days[1] - most), days[1]))
        return out

    def _readings(
        self, enterprise_id: str, outlet: OutletConfig, window: tuple[int, int], span: TimeRange
    ) -> list[Measurement]:
        """The outlet's readings of hours in ``window``, as the pipeline decoded them."""
        lo, hi = window
        windows = (lo, hi + self.rules.grace_s + HOUR)
        messages = self.archive.messages(
            Wanted(mns=frozenset({outlet.mn})),
            _us(lo - self.slack_s),
            _us(hi + self.slack_s),
            event_filter((max(span.lo, lo), min(span.hi, hi)), windows),
        )
        decoded, _ = self.archive.decode(messages)
        return [m for m in decoded if m.enterprise_id == enterprise_id and m.outlet_id == outlet.id]

    def _future(self, t: datetime, received: datetime) -> bool:
        return future(int(t.timestamp()), int(received.timestamp()), self.rules.max_future_s)

    def _latest_points(self, readings: Iterable[Measurement]) -> dict[str, LatestPoint]:
        best: dict[str, Measurement] = {}
        for m in readings:
            if self._future(m.data_time, m.received_at):
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
        messages = self.archive.messages(
            Wanted(mns=_meter_mns([meter]), meters=frozenset({meter.id})),
            _us(span.lo - self.slack_s),
            _us(span.hi + self.slack_s),
        )
        _, decoded = self.archive.decode(messages)
        samples: dict[datetime, PowerSample] = {}
        for p in decoded:  # in arrival order: the first sample of each time counts
            mine = p.enterprise_id == ent.id and p.meter_id == meter.id
            if mine and span.since <= p.ts < span.until:
                samples.setdefault(p.ts, p)
        ordered = sorted(samples.values(), key=lambda p: p.ts)
        mp = self.rules.power[ent.id].meters[meter.id]
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
            hourly=[_meter_hour(h) for h in self._meter_hours(ent.id, meter.id, span)],
        )

    def _meter_hours(
        self, enterprise_id: str, meter_id: str, span: TimeRange
    ) -> list[MeterHourRecord]:
        if self.db is None:
            return []
        with self.db.connect() as conn:
            return read_meter_hours(conn, enterprise_id, meter_id, span.lo, span.hi)

    def _latest_sample(self, samples: Iterable[PowerSample]) -> PowerLatest | None:
        best: PowerSample | None = None
        for p in samples:
            if self._future(p.ts, p.received_at):
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
        wanted = Wanted(
            mns=frozenset(o.mn for o in ent.outlets) | _meter_mns(ent.meters),
            meters=frozenset(m.id for m in ent.meters),
        )
        messages = self.archive.messages(
            wanted, _us(since.timestamp()), _us(at.timestamp()) + 60_000_000
        )
        measurements, power = self.archive.decode(messages)
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


def _raw(
    readings: Iterable[Measurement], detail: dict[str, list[Point]] | None = None
) -> dict[str, list[RawPoint]]:
    """Per factor in time order; of a repeated (interval, time) the first arrival, as the
    rules take it (the kept ``detail`` first: it is what the rules took)."""
    seen: set[tuple[str, str, int]] = set()
    per_factor: dict[str, list[tuple[int, str, float | None, str | None, float | None]]] = {}
    for code, items in (detail or {}).items():
        for p in items:
            seen.add((code, p.interval, p.t))
            per_factor.setdefault(code, []).append((p.t, p.interval, p.value, p.flag, p.zs))
    for m in readings:
        t = int(m.data_time.timestamp())
        key = (m.factor, m.interval, t)
        if key in seen:
            continue
        seen.add(key)
        per_factor.setdefault(m.factor, []).append((t, m.interval, m.value, m.flag, m.zs))
    # Plain dicts validated in one call: pydantic-core builds the thousands of points far
    # faster than a Python-level constructor per point.
    return _RAW_POINTS.validate_python(
        {
            code: [
                {"t": to_datetime(t), "interval": interval, "value": v, "flag": f, "zs": zs}
                for t, interval, v, f, zs in sorted(
                    per_factor[code], key=lambda r: (r[0], _RANK[r[1]])
                )
            ]
            for code in sorted(per_factor)
        }
    )


def _day_point(d: DayRecord, now_s: float) -> dict[str, Any]:
    """A day as the API's DayPoint, built as a dict like the hours (validating 1,825 models
    was half a year's answer time; the answers' equality is tested)."""
    return {
        "t": to_datetime(d.start),
        "value": _round(d.value),
        "converted": _round(d.converted),
        "valid_hours": d.valid_hours,
        "converted_hours": d.converted_hours,
        "required_hours": d.required_hours,
        "flow_weighted": d.flow_weighted,
        "complete": d.start + DAY <= now_s,
    }


def _days(
    params: OutletParams,
    hours: dict[str, list[HourRecord]],
    kept: list[DayRecord],
    days: range,
) -> dict[str, list[DayRecord]]:
    """Per factor, each day of ``days``: as the rules kept it once it closed, else (still
    open, or before values were kept) from its hours."""
    closed = {(d.factor, d.start): d for d in kept}
    kept_days = {d.start for d in kept}
    rest = [day for day in days if day not in kept_days]
    shown = explain_days(
        params,
        {
            code: [h for h in items if day_start(h.start) not in kept_days]
            for code, items in hours.items()
        },
        rest,
    )
    nothing = OpenDays()  # a kept day without hours of a factor: no value for it
    out: dict[str, list[DayRecord]] = {}
    for code in sorted(set(hours) | {d.factor for d in kept}):
        values = {d.start: d for d in shown.get(code, [])}
        for day in kept_days.intersection(days):
            values[day] = closed.get((code, day)) or nothing.close(params, day, [code])[0]
        out[code] = [values[day] for day in days if day in values]
    return out


def _meter_hour(h: MeterHourRecord) -> MeterHourPoint:
    return MeterHourPoint(
        t=to_datetime(h.start),
        samples=h.samples,
        energy_kwh=h.energy_kwh,
        on_minutes=round(h.on_s / 60, 2),
        off_minutes=round(h.off_s / 60, 2),
        mean_kw=h.mean_kw,
        max_kw=h.max_kw,
    )


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
    ent: EnterpriseConfig,
    outlet: OutletConfig,
    declared: Iterable[dict[str, Any]],
    book: MarkingBook,
    span: TimeRange,
) -> list[MarkedPeriodOut]:
    """The markings of the outlet overlapping the range, configured and declared online;
    where a yearly cap runs out inside one, the moment it does."""
    periods = [
        (m.start, m.end, m.type, m.factor, m.reason) for m in ent.markings if m.outlet == outlet.id
    ]
    periods += [
        (d["start"], d["end"], d["type"], d["factor"], d["reason"])
        for d in declared
        if (d["enterprise_id"], d["outlet_id"]) == (ent.id, outlet.id)
    ]
    out = []
    for since, until, type_, factor, reason in periods:
        start, end = int(since.timestamp()), int(until.timestamp())
        if start >= span.hi or end <= span.lo:
            continue
        over = [
            piece.start
            for piece in book.over_cap
            if _same_marking(piece, type_, factor) and start <= piece.start < end
        ]
        out.append(
            MarkedPeriodOut(
                start=since.astimezone(CHINA_TZ),
                end=until.astimezone(CHINA_TZ),
                type=type_,
                factor=factor,
                reason=reason,
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
