"""``nonsite replay``: archived traffic through the rules in event time, with the batch engine.

Inputs, one per line, in any mix:

- records of ``nonsite archive export --format json`` (topic, receipt time, payload);
- HJ 212 packets (a capture, or ``nonsite archive export`` in its raw format);
- power-meter JSON (one reading object or an array per line, each naming its ``meter``);
- an archive file itself (``archive.sqlite3``), read whole.

Lines without a receipt time get their own event time plus a minute (DataTime, ``ts``), so
absence rules see them arriving on time. Findings print as JSON lines in window order.

The rules judge with the configuration's markings and with those declared online in its
database (when it has one), as the service does.
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any, TextIO

import polars as pl
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import SQLAlchemyError

from ingest.archive import ArchivedMessage, RawArchive
from ingest.hj212.timefmt import parse_hj212_time
from ingest.mqtt.topics import unshared
from ingest.processor import MessageProcessor
from ingest.readings import Measurement, PowerSample
from nonsite import collector
from nonsite.config.model import Config
from nonsite.db import database_exists, make_engine
from nonsite.rule_wiring import rule_setup
from nonsite.wiring import build_policy, build_registry, build_router
from rules.batch import BatchEngine, readings_frames
from rules.findings import Finding
from rules.fleet_reference import o2_references, references_toml
from rules.history_store import detail_rows, detail_volume
from rules.minute_detail import DetailRow, StoredRecords, stored_records
from rules.store import declared_markings, list_declared_markings
from rules.timebase import DAY

log = logging.getLogger(__name__)

_DATATIME = re.compile(rb"DataTime=(\d{14})")
ARRIVAL_DELAY_US = 60_000_000  # lines without a receipt time "arrive" a minute after their time
TICK_S = 60


# The sender of input lines that name no topic: the operator's own files, trusted to speak for
# every logger and meter. Not a valid configuration id, so no configured sender is it.
REPLAY_SENDER = "(replay)"


def _topic(config: Config, kind: str) -> str:
    for sub in config.mqtt.subscriptions:
        if sub.kind == kind:
            return unshared(sub.filter).replace("+", REPLAY_SENDER)
    return f"{kind}/{REPLAY_SENDER}"


def _event_us(payload: bytes) -> int | None:
    m = _DATATIME.search(payload)
    if m is not None:
        try:
            return int(parse_hj212_time(m.group(1).decode()).timestamp() * 1e6)
        except ValueError:
            return None
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    first = doc[0] if isinstance(doc, list) and doc else doc
    if isinstance(first, dict) and isinstance(first.get("ts"), str):
        try:
            return int(datetime.fromisoformat(first["ts"]).timestamp() * 1e6)
        except ValueError:
            return None
    return None


def _from_line(line: bytes, config: Config) -> tuple[int | None, str, bytes]:
    """(receipt µs or None, topic, payload) of one input line."""
    stripped = line.strip()
    if stripped.startswith(b"{") and b'"topic"' in stripped and (b'"payload' in stripped):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict) and "topic" in record:
            payload = (
                base64.b64decode(record["payload_base64"])
                if "payload_base64" in record
                else str(record.get("payload", "")).encode()
            )
            received = record.get("received_at")
            at = int(datetime.fromisoformat(received).timestamp() * 1e6) if received else None
            return at, str(record["topic"]), payload
    kind = "hj212" if b"##" in stripped else "power"
    return None, _topic(config, kind), stripped


def load_messages(
    paths: Iterable[str], config: Config, stdin: TextIO | None = None
) -> list[ArchivedMessage]:
    """Every input as archived messages, in input order (the arrival order of the replay)."""
    out: list[ArchivedMessage] = []

    def add(received_us: int | None, topic: str, payload: bytes) -> None:
        if received_us is None:
            event = _event_us(payload)
            received_us = (
                (event + ARRIVAL_DELAY_US)
                if event is not None
                else int(datetime.now(UTC).timestamp() * 1e6)
            )
        out.append(ArchivedMessage(len(out) + 1, received_us, topic, payload))

    for path in paths:
        if path == "-" and stdin is not None:
            for text in stdin:
                if text.strip():
                    add(*_from_line(text.encode(), config))
            continue
        p = Path(path)
        if p.suffix in (".sqlite3", ".sqlite", ".db"):
            archive = RawArchive(p, readonly=True)
            for m in archive.export():  # replace keeps an oversized message's marks
                out.append(replace(m, seq=len(out) + 1))
            archive.close()
            continue
        with p.open("rb") as f:
            for line in f:
                if line.strip():
                    add(*_from_line(line, config))
    return out


@dataclass(frozen=True, slots=True)
class ReplayResult:
    findings: list[Finding]
    messages: int
    readings: int
    dead_letters: dict[str, int]
    late: int
    duplicates: int
    workers: int = 1  # that judged it (``replay_store``'s)
    in_processes: bool = False  # the workers were processes, not threads


def decode(
    config: Config, messages: list[ArchivedMessage]
) -> tuple[list[Measurement | PowerSample], dict[str, int]]:
    """The readings of the messages in arrival order, and the dead letters per reason."""
    # No 9014 replies: a replay answers nobody.
    policy = replace(build_policy(config), reply_topic="")
    registry = build_registry(config, trusted_sender=REPLAY_SENDER)
    processor = MessageProcessor(registry, build_router(config), policy)
    readings: list[Measurement | PowerSample] = []
    dead: dict[str, int] = {}
    for i in range(0, len(messages), 5000):
        done = processor.process(messages[i : i + 5000])
        merged: list[Measurement | PowerSample] = [
            *done.readings.measurements,
            *done.readings.power,
        ]
        merged.sort(key=lambda r: r.archive_seq)  # stable: keeps a message's own order
        readings += merged
        for letter in done.dead_letters:
            dead[letter.reason] = dead.get(letter.reason, 0) + 1
    return readings, dead


def declared_online(config: Config) -> list[dict[str, Any]]:
    """The markings declared online in the configuration's database: none when it has no
    database yet; when it cannot be read, none, said once on stderr."""
    url = config.database_url()
    if not database_exists(url):
        return []
    try:
        with _connected(url) as conn:
            if not inspect(conn).has_table(declared_markings.name):
                return []
            return list_declared_markings(conn)
    except SQLAlchemyError as exc:
        log.warning("markings declared online not read, judged without them: %s", exc)
        return []


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    """A connection to the database at ``url`` for one read, its engine disposed after."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def batch_engine(config: Config) -> BatchEngine:
    return rule_setup(config, declared_online(config)).batch_engine()


def o2_reference(config: Config, messages: list[ArchivedMessage]) -> str:
    """B8-1's fleet references from the messages, as configuration (TOML)."""
    readings, _ = decode(config, messages)
    frame, _ = readings_frames(readings)
    return references_toml(o2_references(batch_engine(config), frame))


def replay(
    config: Config,
    messages: list[ArchivedMessage],
    *,
    include_late: bool = False,
    absence: bool = True,
) -> ReplayResult:
    readings, dead = decode(config, messages)
    engine = batch_engine(config)
    frame, power_frame = readings_frames(readings)
    ticks = None
    if absence and messages:
        first_s = messages[0].received_us // 1_000_000 + TICK_S
        last_s = max(m.received_us for m in messages) // 1_000_000
        ticks = (first_s, TICK_S, max(0, (last_s - first_s) // TICK_S + 1))
    with collector.paused():
        found = engine.run(frame, include_late=include_late, ticks=ticks, power_frame=power_frame)
    found = in_window_order(found)
    stats = engine.stats
    return ReplayResult(
        found,
        len(messages),
        len(readings),
        dead,
        stats.late if stats else 0,
        stats.duplicates if stats else 0,
    )


# The parts a read of the kept detail is made in, each in a thread of its own.
READ_PARTS = 2


def store_records(
    config: Config,
    engine: BatchEngine | Callable[[], BatchEngine],
    since: datetime,
    until: datetime,
    enterprises: list[str] | None = None,
) -> tuple[BatchEngine, StoredRecords]:
    """The minute detail the rules kept of every outlet's hours starting in [since, until)
    (``rules.minute_detail``), from the configuration's database, as ``engine``'s accepted
    records: what ``--from-store`` judges, months without decoding a frame. Only
    ``enterprises``' outlets when given (a worker's share). ``engine`` may be a function
    that makes it: it is then made while the database answers.

    Read in ``READ_PARTS`` parts of the range, each on its own connection in a thread: most
    of a read is the database's work and the transfer (about 0.37 of 0.45 s for a month of
    200 enterprises), which then overlap each other and the engine's making."""
    lo, hi = int(since.timestamp()), int(until.timestamp())
    days = range(lo, hi, DAY)
    step = max(1, -(-len(days) // READ_PARTS))
    parts = [(days[k], min(hi, days[k] + step * DAY)) for k in range(0, len(days), step)]
    parts = parts or [(lo, hi)]
    url = config.database_url()
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        reads = [pool.submit(_detail_rows, url, a, b, enterprises) for a, b in parts]
        made = engine if isinstance(engine, BatchEngine) else engine()
        rows = [row for read in reads for row in read.result()]
    return made, stored_records(rows, made.okeys)  # one decode for the whole range


def _detail_rows(url: str, lo: int, hi: int, enterprises: list[str] | None) -> list[DetailRow]:
    with _connected(url) as conn:
        return detail_rows(conn, lo, hi, enterprises)


# What ``replay_store`` shares a replay among by default: one worker. On this 2-core host two
# threads judged a month of 200 enterprises 0-6 % faster depending on the run (the bench:
# 4.93 against 5.25 s; medians of 4 alternating runs in one script: 5.4 against 5.3 s), and
# two processes slower (their start-up): polars' column steps use both cores already.
REPLAY_WORKERS = 1


def replay_store(
    config: Config,
    since: datetime,
    until: datetime,
    *,
    workers: int = REPLAY_WORKERS,
    processes: bool = False,
) -> ReplayResult:
    """The outlets' rules over the kept minute detail. Not the meters' (their samples are
    not kept) nor the absence rules (arrival times are not kept: each record "arrives" a
    minute after its time).

    With ``workers`` > 1 the enterprises are shared out among up to that many workers by the
    detail they hold in the range, each reading and judging its own share: nothing the rules
    judge crosses an enterprise (B8-8 compares the outlets of one), so the findings are one
    worker's (tested). The workers are threads of this process: polars computes without the
    interpreter's lock, so one share's columns are computed while another's Python runs,
    with nothing to start. With ``processes`` they are spawned processes instead, for hosts
    whose many cores leave the Python parts the limit: this process judges the largest share
    while the others start (an interpreter and its imports: 1-3 s); spawned, not forked:
    polars' thread pool does not survive a fork (its documentation's advice)."""
    shares = enterprise_shares(_detail_volume(config, since, until), workers) if workers > 1 else []
    with collector.paused():  # one pause for all the workers of this process
        if len(shares) <= 1:
            return _replay_share(config, since, until, None)  # in window order
        if processes:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=len(shares) - 1, mp_context=context) as pool:
                others = [pool.submit(_paused_share, config, since, until, s) for s in shares[1:]]
                parts = [_replay_share(config, since, until, shares[0])]
                parts += [other.result() for other in others]
        else:
            with ThreadPoolExecutor(max_workers=len(shares)) as threads:
                parts = list(threads.map(partial(_replay_share, config, since, until), shares))
    found = in_window_order(f for part in parts for f in part.findings)
    readings, late = sum(p.readings for p in parts), sum(p.late for p in parts)
    return ReplayResult(
        found, 0, readings, {}, late, 0, workers=len(shares), in_processes=processes
    )


def enterprise_shares(volume: dict[str, int], workers: int) -> list[list[str]]:
    """The enterprises in at most ``workers`` shares of about equal ``volume`` (the largest
    enterprise first into the lightest share), the largest share first, each in id order."""
    shares: list[tuple[int, list[str]]] = [(0, []) for _ in range(max(1, workers))]
    for enterprise, size in sorted(volume.items(), key=lambda kv: (-kv[1], kv[0])):
        lightest = min(range(len(shares)), key=lambda i: shares[i][0])
        load, ids = shares[lightest]
        shares[lightest] = (load + size, [*ids, enterprise])
    shares.sort(key=lambda share: -share[0])
    return [sorted(ids) for _, ids in shares if ids]


def _detail_volume(config: Config, since: datetime, until: datetime) -> dict[str, int]:
    with _connected(config.database_url()) as conn:
        return detail_volume(conn, int(since.timestamp()), int(until.timestamp()))


def _paused_share(
    config: Config, since: datetime, until: datetime, enterprises: list[str] | None
) -> ReplayResult:
    """``_replay_share`` in a process of its own, its collector paused."""
    with collector.paused():
        return _replay_share(config, since, until, enterprises)


def _replay_share(
    config: Config, since: datetime, until: datetime, enterprises: list[str] | None
) -> ReplayResult:
    engine, stored = store_records(config, partial(batch_engine, config), since, until, enterprises)
    found = engine.run_accepted(stored.records, stored.others, unconfigured=stored.unconfigured)
    found = in_window_order(found)
    stats = engine.stats
    assert stats is not None
    return ReplayResult(found, 0, stats.readings, {}, stats.late, 0)


def window_order(f: Finding) -> tuple[int, str, str, str, str, str]:
    """The order a replay's findings are given in: by window, then rule, source, factor
    and state."""
    return (f.window_start, f.rule, f.enterprise_id, f.source_id, f.factor or "", f.state)


def in_window_order(findings: Iterable[Finding]) -> list[Finding]:
    """``findings`` sorted by ``window_order`` (stable), the order found by polars over
    columns of their fields: Python's sort on the tuples compared strings wherever windows
    tie (0.37-0.39 s for a month's 163,000 findings). Strings compare alike in both (UTF-8's
    byte order is the code points')."""
    found = list(findings)
    fields = ("window_start", "rule", "enterprise_id", "source_id", "factor", "state")
    columns = {name: list(map(attrgetter(name), found)) for name in fields}
    schema = {name: pl.Int64 if name == "window_start" else pl.String for name in columns}
    order = (
        pl.DataFrame(columns, schema=schema)
        .with_columns(pl.col("factor").fill_null(""))  # no factor sorts as ""
        .select(pl.int_range(pl.len()).sort_by(list(columns), maintain_order=True))
    )
    return list(map(found.__getitem__, order.to_series().to_list()))


def _identity(f: Finding) -> tuple[str, str | None]:
    return f.id, f.tier  # a warning that becomes an alarm is a difference


def backtest(before: list[Finding], after: list[Finding]) -> Iterator[tuple[str, Finding]]:
    """("added" | "removed", finding): what the changed parameters would have found
    differently. A finding is the same when its rule, source, factor, window, state and tier
    are."""
    old = {_identity(f): f for f in before}
    new = {_identity(f): f for f in after}
    for key, f in new.items():
        if key not in old:
            yield "added", f
    for key, f in old.items():
        if key not in new:
            yield "removed", f


def finding_line(f: Finding, extra: dict[str, Any] | None = None) -> str:
    doc = f.to_json()
    if extra:
        doc.update(extra)
    return json.dumps(doc, ensure_ascii=False)
