"""Data quality per enterprise (数据质量) over the last whole hours: the transmission rate, the
effective transmission rate, the valid-hour rate and the dead letters. One home for these
figures (the 运行 page shows them, ``GET /api/v1/quality`` serves them).

The hours are the rules' own (the batch engine's layer 1 over the raw archive, as the series
API draws them: the same acceptance of late and duplicate data, the same flags, marked periods
and valid-minute threshold), counted per outlet × configured factor × hour by rule B10's own
count (``rules.judge.transmission_counts``): an hour with records has received ``n − n_F``,
valid ``n_valid`` and expected ``3600 / interval − n_F`` records, stopped records (flag F, 停运,
or in a 停产 marking) counting on neither side; an hour without any (or with the device's own
value alone) is expected ``3600 / interval`` records, unless a declared 停产 marking covers it.
Unlike B10, which judges a natural day of a factor that sent something, a window counts every
hour in it, a factor silent all day included. Then

- 传输率 (transmission rate) = received ÷ expected,
- 有效传输率 (effective transmission rate, B10's figure) = valid ÷ expected,
- 有效小时率 (valid-hour rate) = valid hours ÷ hours due (an hour is due unless stopped).

Dead letters are attributed to the enterprise whose logger (MN) or meter sent them
(``SourceIndex``, which the dead-letter list uses too); the rest are counted apart.

Speed: decoding a week of the fleet's archive takes a while (seconds per day of a 200-enterprise
fleet), so each hour's counts are cached once computed; an hour younger than the late-data
slack is computed again when its counts are older than ``RECOMPUTE_S`` (a logger resending its
stored records, 补发, changes it). One computation runs at a time; the others wait for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from ingest.archive_topics import TopicReader, Wanted, event_filter
from ingest.china_time import CHINA_TZ
from ingest.commands.store import clock_drifts
from ingest.store import dead_letters
from nonsite.config.model import Config
from nonsite.rule_wiring import RuleSetup, rule_setup
from nonsite.web.series import SLACK
from nonsite.wiring import build_router, build_topic_archive
from rules.batch import hour_agg, readings_frames
from rules.hours import EMPTY, HourAgg
from rules.judge import OutletJudge, transmission_counts
from rules.markings import STOPPED_MARK
from rules.params import OutletParams, marking_book
from rules.store import hour_values, list_declared_markings
from rules.timebase import HOUR

WINDOWS = {"24h": 24, "7d": 7 * 24}
DEFAULT_INTERVAL_S = 600  # HJ 212 minute data every 10 minutes: neither configured nor seen
RECOMPUTE_S = 300.0
KEEP_HOURS = 8 * 24  # cached hours older than the longest window (and a day) are dropped

OutletKey = tuple[str, str]


# -- whose a message is ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRef:
    enterprise_id: str
    enterprise_name: str
    source_id: str
    source_name: str


class SourceIndex:
    """Whose logger or meter sent a message: by the MN it carried, else by its topic's sender
    (a meter publishing on its own topic, a logger whose frame could not even be read)."""

    def __init__(self, config: Config) -> None:
        self.router = build_router(config)
        self.by_key: dict[str, SourceRef] = {}
        for e in config.enterprises:
            for o in e.outlets:
                self.by_key.setdefault(o.mn, SourceRef(e.id, e.name, o.id, o.name))
            for m in e.meters:
                ref = SourceRef(e.id, e.name, m.id, m.name)
                self.by_key.setdefault(m.id, ref)
                if m.mn is not None:  # an HJ 212 logger that reports meters only
                    self.by_key.setdefault(m.mn, ref)

    def find(self, mn: str | None, topic: str) -> SourceRef | None:
        if mn and mn in self.by_key:
            return self.by_key[mn]
        route = self.router.route(topic)
        return self.by_key.get(route.sender) if route is not None else None


# -- the counts -------------------------------------------------------------------------------


@dataclass(slots=True)
class Counts:
    expected: int = 0  # records due
    received: int = 0
    valid: int = 0
    due_hours: int = 0  # factor-hours due (not stopped)
    valid_hours: int = 0

    def add(self, other: Counts) -> None:
        self.expected += other.expected
        self.received += other.received
        self.valid += other.valid
        self.due_hours += other.due_hours
        self.valid_hours += other.valid_hours


@dataclass(frozen=True, slots=True)
class Figures:
    enterprise_id: str
    enterprise_name: str
    outlets: int
    counts: Counts
    dead_letters: int
    # The drift of its loggers' clocks last read in the window (the largest, signed); a
    # drifting clock misplaces every record in time (ingest.commands).
    clock_drift_s: float | None = None

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(part / whole, 6) if whole else None

    @property
    def transmission_rate(self) -> float | None:
        return self._rate(self.counts.received, self.counts.expected)

    @property
    def effective_rate(self) -> float | None:
        return self._rate(self.counts.valid, self.counts.expected)

    @property
    def valid_hour_rate(self) -> float | None:
        return self._rate(self.counts.valid_hours, self.counts.due_hours)


@dataclass(frozen=True, slots=True)
class Quality:
    since: datetime
    until: datetime
    computed_at: datetime
    enterprises: list[Figures]  # worst first
    unattributed_dead_letters: int


def worst_first(f: Figures) -> tuple[int, float, float, int, str]:
    """No outlet data last; then by effective rate, transmission rate, more dead letters."""
    effective = f.effective_rate
    return (
        effective is None,
        effective if effective is not None else 2.0,
        f.transmission_rate if f.transmission_rate is not None else 2.0,
        -f.dead_letters,
        f.enterprise_id,
    )


# -- the hours, from the archive ----------------------------------------------------------------


class QualityBook:
    """Counts per outlet-hour from the raw archive (read by topic and decoded as ingest does),
    judged with the rules' parameters and markings, declared ones included; cached by hour,
    the cache dropped when markings are declared. ``archive``: the raw messages read elsewhere
    than from the file (a cluster's web node reads the stream: ``nonsite.cluster.web_node``)."""

    def __init__(
        self,
        config: Config,
        archive_path: Path,
        *,
        slack: timedelta = SLACK,
        archive: TopicReader | None = None,
    ) -> None:
        self.config = config
        self.slack_s = int(slack.total_seconds())
        self.archive: TopicReader = (
            archive if archive is not None else build_topic_archive(config, archive_path)
        )
        self.sources = SourceIndex(config)
        self._configured = rule_setup(config)
        self._use_rules(self._configured)
        self._lock = threading.Lock()
        # hour start → (monotonic time computed, counts per outlet)
        self._cache: dict[int, tuple[float, dict[OutletKey, Counts]]] = {}

    def _use_rules(self, rules: RuleSetup) -> None:
        self.judged = {key: p for key, p in rules.params.items() if p.factors}
        self.rules = replace(rules, params=self.judged, power={})
        self.book = marking_book(rules.markings, self.judged)

    def _take_declared(self, db: Engine) -> None:
        """Markings declared online since the last look: the cached hours are judged again."""
        with db.connect() as conn:
            rules = self._configured.with_declared(list_declared_markings(conn))
        with self._lock:
            if rules.declared != self.rules.declared:
                self._use_rules(rules)
                self._cache.clear()

    def quality(self, db: Engine, window: str, now: datetime | None = None) -> Quality:
        self._take_declared(db)
        at = now or datetime.now(UTC)
        until = int(at.timestamp()) // HOUR * HOUR  # the last whole hour's end
        since = until - WINDOWS[window] * HOUR
        hours = self.hours(since, until, int(at.timestamp()), db)
        per_outlet: dict[OutletKey, Counts] = {}
        for h in range(since, until, HOUR):
            for key, counts in hours[h].items():
                per_outlet.setdefault(key, Counts()).add(counts)
        start = datetime.fromtimestamp(since, tz=UTC)
        end = datetime.fromtimestamp(until, tz=UTC)
        dead, unattributed = self.dead_letters(db, start, end)
        with db.connect() as conn:
            drifts = clock_drifts(conn, start, end)
        out = []
        for e in self.config.enterprises:
            total = Counts()
            outlets = 0
            for o in e.outlets:
                found = per_outlet.get((e.id, o.id))
                if found is not None:
                    outlets += 1
                    total.add(found)
            found_drifts = [drifts[o.mn] for o in e.outlets if o.mn in drifts]
            drift = max(found_drifts, key=abs) if found_drifts else None
            out.append(Figures(e.id, e.name, outlets, total, dead.get(e.id, 0), drift))
        out.sort(key=worst_first)
        return Quality(
            start.astimezone(CHINA_TZ),
            end.astimezone(CHINA_TZ),
            at.astimezone(CHINA_TZ),
            out,
            unattributed,
        )

    def dead_letters(
        self, db: Engine, since: datetime, until: datetime
    ) -> tuple[dict[str, int], int]:
        """Dead letters received in [since, until) per enterprise, and those nobody's."""
        query = (
            select(dead_letters.c.mn, dead_letters.c.topic, func.count())
            .where(dead_letters.c.received_at >= since, dead_letters.c.received_at < until)
            .group_by(dead_letters.c.mn, dead_letters.c.topic)
        )
        per: dict[str, int] = {}
        nobody = 0
        with db.connect() as conn:
            for mn, topic, n in conn.execute(query):
                ref = self.sources.find(mn, topic)
                if ref is None:
                    nobody += int(n)
                else:
                    per[ref.enterprise_id] = per.get(ref.enterprise_id, 0) + int(n)
        return per, nobody

    def hours(
        self, lo: int, hi: int, now_s: int, db: Engine | None = None
    ) -> dict[int, dict[OutletKey, Counts]]:
        """Counts per outlet for each hour in [lo, hi), computing what the cache lacks."""
        with self._lock:
            clock = time.monotonic()
            settled_before = now_s - self.slack_s
            stale = [
                h
                for h in range(lo, hi, HOUR)
                if h not in self._cache
                or (h + HOUR > settled_before and clock - self._cache[h][0] > RECOMPUTE_S)
            ]
            if stale:
                first, last = min(stale), max(stale) + HOUR
                computed = self._compute(first, last, now_s, db)
                for h in range(first, last, HOUR):
                    self._cache[h] = (clock, computed.get(h, {}))
            for h in [h for h in self._cache if h < now_s - KEEP_HOURS * HOUR]:
                del self._cache[h]
            return {h: self._cache[h][1] for h in range(lo, hi, HOUR)}

    def _compute(
        self, lo: int, hi: int, now_s: int, db: Engine | None
    ) -> dict[int, dict[OutletKey, Counts]]:
        """The hours the rules kept (``rules.history_store``); those that may still be open
        (within the grace of now, or all without a database) explained from raw data."""
        seen: dict[OutletKey, Seen] = self._kept(db, lo, hi) if db is not None else {}
        # Nothing kept at all (no database; values not kept yet): all from raw data.
        open_from = max(lo, (now_s - self.rules.grace_s) // HOUR * HOUR - HOUR) if seen else lo
        if open_from < hi:
            for key, hours in self._explained(open_from, hi).items():
                mine = seen.setdefault(key, {})
                for h, factors in hours.items():
                    mine.setdefault(h, factors)  # a kept hour is the rules' own: it wins
        return self._counts(lo, hi, seen)

    def _kept(self, db: Engine, lo: int, hi: int) -> dict[OutletKey, Seen]:
        t = hour_values
        query = select(
            t.c.enterprise_id, t.c.outlet_id, t.c.factor, t.c.start, t.c.n, t.c.n_valid,
            t.c.n_f, t.c.interval_s, t.c.valid,
        ).where(t.c.start >= lo, t.c.start < hi)  # fmt: skip
        seen: dict[OutletKey, Seen] = {}
        with db.connect() as conn:
            for ent, outlet, code, h, n, n_valid, n_f, interval, valid in conn.execute(query):
                key = (ent, outlet)
                params = self.judged.get(key)
                if params is None or code not in params.factors:
                    continue
                agg = EMPTY._replace(n=n, n_valid=n_valid, n_f=n_f, interval_s=interval)
                seen.setdefault(key, {}).setdefault(h, {})[code] = (agg, bool(valid))
        return seen

    def _explained(self, lo: int, hi: int) -> dict[OutletKey, Seen]:
        mns = frozenset(o.mn for e in self.config.enterprises for o in e.outlets)
        messages = self.archive.messages(
            Wanted(mns=mns),
            (lo - self.slack_s) * 1_000_000,
            (hi + self.slack_s) * 1_000_000,
            event_filter((lo, hi), (lo, hi)),
        )
        decoded, _ = self.archive.decode(messages)
        readings = [m for m in decoded if (m.enterprise_id, m.outlet_id) in self.judged]
        seen: dict[OutletKey, Seen] = {}
        if readings:
            engine = self.rules.batch_engine()
            frame, _ = readings_frames(readings)
            kept, _ = engine.accepted(frame)
            judges = {key: OutletJudge(p, self.book) for key, p in self.judged.items()}
            for row in engine.hour_aggregates(kept).iter_rows(named=True):
                key = (row["enterprise_id"], row["outlet_id"])
                hour = row["hour"]
                if not lo <= hour < hi or row["factor"] not in self.judged[key].factors:
                    continue
                agg = hour_agg(row)
                seen.setdefault(key, {}).setdefault(hour, {})[row["factor"]] = (
                    agg,
                    judges[key].hour_value(agg).valid,
                )
        return seen

    def _counts(
        self, lo: int, hi: int, seen: dict[OutletKey, Seen]
    ) -> dict[int, dict[OutletKey, Counts]]:
        out: dict[int, dict[OutletKey, Counts]] = {}
        for key, params in self.judged.items():
            hours = seen.get(key, {})
            interval = _interval(params, hours)
            for h in range(lo, hi, HOUR):
                counts = out.setdefault(h, {}).setdefault(key, Counts())
                for code in params.factors:
                    got = hours.get(h, {}).get(code)
                    came: HourAgg | None = got[0] if got is not None else None
                    valid = got is not None and got[1]
                    received, n_valid, expected = transmission_counts(
                        came, interval, self._stopped_marked(key, code, h)
                    )
                    due = expected > 0  # an hour is due unless stopped
                    counts.received += received
                    counts.valid += n_valid
                    counts.expected += expected
                    counts.due_hours += due
                    counts.valid_hours += valid and due
        return out

    def _stopped_marked(self, key: OutletKey, code: str, hour: int) -> bool:
        """The hour lies wholly in a declared 停产 marking (B10 leaves such hours out)."""
        m = self.book.marking_at(key[0], key[1], code, hour, STOPPED_MARK)
        return m is not None and m.end >= hour + HOUR


Seen = dict[int, dict[str, tuple[HourAgg, bool]]]  # hour → factor → aggregate, hour valid


def _interval(params: OutletParams, hours: Seen) -> int:
    """The record interval an hour without data is expected at: the configured one, else the
    one the outlet's latest data showed, else the standard's 10 minutes."""
    if params.interval_override_s:
        return params.interval_override_s
    for h in sorted(hours, reverse=True):
        for agg, _valid in hours[h].values():
            if agg.interval_s:
                return agg.interval_s
    return DEFAULT_INTERVAL_S
