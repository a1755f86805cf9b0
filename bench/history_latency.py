"""History at fleet scale (issue 22): answer times from the values the rules keep.

The database (PostgreSQL by default, as in production; ``--sqlite`` for a file) is filled by
the rules themselves: readings run through the stream engine (``rules.stream``), whose kept
hours, days and minute detail are stored as the rule stage stores them
(``rules.history_store.record_history``):

- outlet E0000: a year of 1-minute data of five factors (2.6 million readings);
- outlets E0001-E0200: a month of 10-minute data of five factors each (4.3 million readings);
- outlets E0201-E1999: the month's kept days (B10's counts) written directly, and A3 findings
  on 2 % of their hours, so that the month report covers 2,000 outlets.

Timed, each the median of ``--rounds`` warm rounds (the answer serialised to JSON inside the
timing, as the API does), against a baseline measured in the same run:

  31 days of hour values     SeriesReader.outlet_series_json(raw=False): goal <= 100 ms
  a year of hour values      the same over 365 days: goal <= 300 ms
  48 h of minute detail      a web node's outlet_series_json(raw=True) from the kept detail:
                             goal <= 200 ms
  fleet month report         month_report for 2,000 outlets: goal <= 5 s
  replay from the store      a month of 200 enterprises' detail through the batch engine:
                             goal >= 1,000,000 readings/s; as ``nonsite replay
                             --from-store`` runs it (one worker), then with two: threads,
                             and spawned processes (``--processes``)

Baselines: the same rows fetched bare through the driver (series), the month's kept days
summed by one SQL GROUP BY (report). The replay is timed in its two parts: reading and
decoding the store into accepted records, and the batch engine judging them (whose rate
depends on the data's density: much of it is per outlet-hour, and 10-minute data are 30
readings an outlet-hour). The filled tables are vacuumed and analysed before any timing.

Writes bench/results/history.json and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from ingest.china_time import CHINA_TZ
from ingest.readings import Measurement
from nonsite import collector
from nonsite.config.load import parse_config
from nonsite.db import make_engine, migrate
from nonsite.replay import batch_engine, replay_store, store_records
from nonsite.rule_wiring import rule_setup
from nonsite.web.month_report import month_report
from nonsite.web.series import SeriesReader
from rules.findings import Finding
from rules.history import DayRecord, Kept
from rules.history_store import Partitions, record_history
from rules.store import record_findings
from rules.stream import StreamEngine
from rules.timebase import DAY, HOUR

YEAR_START = datetime(2025, 12, 1, tzinfo=CHINA_TZ)
MONTH_START = datetime(2026, 11, 1, tzinfo=CHINA_TZ)
FACTORS = {"a21026": 40.0, "a21002": 60.0, "a34013": 10.0, "a19001": 9.0, "a00000": 80.0}
OUTLETS = 2000
STREAMED = 200  # E0001-E0200: a month through the engine
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def config_doc(data_dir: Path, db_url: str) -> dict[str, Any]:
    return {
        "service": {"data_dir": str(data_dir)},
        "database": {"url": db_url},
        "enterprises": [
            {
                "id": f"E{k:04d}",
                "name": f"企业{k:04d}",
                "outlets": [
                    {
                        "id": "DA001",
                        "kind": "gas",
                        "mn": f"MN{k:04d}",
                        "pw": "123456",
                        "preset": "thermal_power_coal_boiler",
                    }
                ],
            }
            for k in range(OUTLETS)
        ],
    }


def readings(k: int, start: datetime, hours: int, step_min: int) -> Iterator[Measurement]:
    """An outlet's minute data: five factors, a wobble, SO2 over its limit now and then."""
    mn = f"MN{k:04d}"
    for minute in range(0, hours * 60, step_min):
        at = start + timedelta(minutes=minute)
        over = (minute // 60 + k) % 53 == 0
        for code, base in FACTORS.items():
            value = base + (minute % 7) * 0.3
            if code == "a21026" and over:
                value = 180.0
            yield Measurement(
                f"E{k:04d}", "DA001", mn, code, "minute", at, value, None, None, None, None,
                "N", None, at + timedelta(minutes=1), 0,
            )  # fmt: skip


def kept_by_engine(config: Any, ks: range, start: datetime, hours: int, step: int) -> Kept:
    params = {key: p for key, p in rule_setup(config).params.items() if int(key[0][1:]) in ks}
    engine = StreamEngine(params, grace_s=600)
    hours_kept, days_kept, detail, meters = [], [], [], []
    for k in ks:
        batch: list[Measurement] = []
        for m in readings(k, start, hours, step):
            batch.append(m)
            if len(batch) >= 50_000:
                engine.process_measurements(batch)
                batch = []
        engine.process_measurements(batch)
        kept = engine.take_history()
        hours_kept += kept.hours
        days_kept += kept.days
        detail += kept.detail
        meters += kept.meters
    engine.flush()
    kept = engine.take_history()
    return Kept(
        hours_kept + kept.hours, days_kept + kept.days, detail + kept.detail, meters + kept.meters
    )


def synthetic_days(config: Any, ks: range) -> tuple[list[DayRecord], list[Finding]]:
    """The month's kept days of outlets not streamed (B10's counts as the engine keeps them),
    and A3 findings on 2 % of their hours."""
    params = rule_setup(config).params
    days, found = [], []
    start = int(MONTH_START.timestamp())
    for k in ks:
        p = params[(f"E{k:04d}", "DA001")]
        for d in range(30):
            day = start + d * DAY
            silent = (k + d) % 97 == 0
            for code in p.factors:
                received = 0 if silent else 144 - (k + d) % 5
                days.append(
                    DayRecord(
                        p.enterprise_id,
                        "DA001",
                        code,
                        day,
                        40.0,
                        None,
                        24,
                        0,
                        20,
                        False,
                        received,
                        received,
                        144,
                        24,
                        600,
                    )
                )
            for h in range(24):
                if (k * 24 + d * 24 + h) % 50 == 0:
                    t = day + h * HOUR
                    found.append(
                        Finding(
                            "A3",
                            "fire",
                            p.enterprise_id,
                            "DA001",
                            "a21026",
                            t,
                            t + HOUR,
                            "alarm",
                            180.0,
                            35.0,
                            "mg/m³",
                            4.1,
                            p.params_id,
                            p.version,
                        )
                    )
    return days, found


def store(db: sa.Engine, kept: Kept, findings: list[Finding] = ()) -> None:  # type: ignore[assignment]
    partitions = Partitions()
    chunk = 20_000
    for i in range(0, max(len(kept.hours), len(kept.days), len(kept.detail)), chunk):
        part = Kept(
            kept.hours[i : i + chunk],
            kept.days[i : i + chunk],
            kept.detail[i : i + chunk],
            kept.meters[i : i + chunk],
        )
        with db.begin() as conn:
            record_history(conn, part, partitions)
        partitions.committed()
    for i in range(0, len(findings), chunk):
        with db.begin() as conn:
            record_findings(conn, findings[i : i + chunk])


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def pg_schema_url(base: str) -> tuple[str, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


def nothing() -> None:
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sqlite", action="store_true", help="an SQLite file, not PostgreSQL")
    ap.add_argument("--pg-url", default=os.environ.get("NONSITE_BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "history.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nonsite-history-") as tmp:
        data_dir = Path(tmp)
        drop: Callable[[], None] = nothing
        if args.sqlite:
            url = f"sqlite:///{data_dir / 'nonsite.db'}"
        else:
            url, drop = pg_schema_url(args.pg_url)
        try:
            results = run(data_dir, url, args.rounds)
        finally:
            drop()
    results["database"] = "SQLite" if args.sqlite else "PostgreSQL"
    if not args.sqlite:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    else:
        args.out.with_name("history_sqlite.json").write_text(
            json.dumps(results, indent=2, ensure_ascii=False) + "\n"
        )
    print(json.dumps(results, indent=2, ensure_ascii=False))


def run(data_dir: Path, url: str, rounds: int) -> dict[str, Any]:
    config = parse_config(config_doc(data_dir, url), "bench.toml", env={})
    db = make_engine(url)
    migrate(db)
    t0 = time.perf_counter()
    year = kept_by_engine(config, range(1), YEAR_START, 365 * 24, 1)
    month = kept_by_engine(config, range(1, STREAMED + 1), MONTH_START, 30 * 24, 10)
    engine_s = time.perf_counter() - t0
    days, found = synthetic_days(config, range(STREAMED + 1, OUTLETS))
    t0 = time.perf_counter()
    store(db, year)
    store(db, month)
    store(db, Kept([], days, [], []), found)
    store_s = time.perf_counter() - t0
    del year, month, days, found  # timed as a replay runs: in a process without the fill's
    gc.collect()
    with db.connect() as conn:
        rows = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("hour_values", "day_values", "minute_detail", "findings")
        }
    if db.dialect.name == "postgresql":
        # Vacuumed and analysed before timing, outside a transaction (an ANALYZE in one that
        # rolls back keeps nothing): else autovacuum works through the fill while the
        # answers are timed, and the store is measured as a running service's is.
        tables = "hour_values, day_values, minute_detail, findings"
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {tables}"))

    reader = SeriesReader(config, data_dir / "archive.sqlite3", db=db)
    web_node = SeriesReader(config, data_dir / "archive.sqlite3", db=db, raw_from_detail=True)
    end = YEAR_START + timedelta(days=365)

    def series(reader: SeriesReader, days: float, raw: bool) -> Callable[[], object]:
        since = end - timedelta(days=days)
        return lambda: reader.outlet_series_json(  # what the API answers
            "E0000", "DA001", since, end, raw=raw, now=end + timedelta(hours=3)
        )

    def bare(days: int) -> Callable[[], object]:
        lo, hi = int((end - timedelta(days=days)).timestamp()), int(end.timestamp())

        def fetch() -> object:
            with db.connect() as conn:
                return conn.exec_driver_sql(
                    "SELECT * FROM hour_values WHERE enterprise_id = 'E0000' AND outlet_id = "
                    f"'DA001' AND start >= {lo} AND start < {hi}"
                ).all()

        return fetch

    timings = {
        "31 days of hour values": median_ms(series(reader, 31, False), rounds),
        "a year of hour values": median_ms(series(reader, 365, False), rounds),
        "48 h of minute detail": median_ms(series(web_node, 2, True), rounds),
    }
    baselines = {
        "31 days of hour values": median_ms(bare(31), rounds),
        "a year of hour values": median_ms(bare(365), rounds),
    }
    rules = rule_setup(config)
    report_ms = median_ms(lambda: month_report(db, config, rules, MONTH_START.date()), 3)
    lo, hi = int(MONTH_START.timestamp()), int((MONTH_START + timedelta(days=30)).timestamp())

    def month_group_by() -> object:
        # Its own connection, closed: one left open in its transaction held a lock that made
        # the bench's DROP SCHEMA at the end wait forever.
        with db.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT enterprise_id, sum(received), sum(expected) FROM day_values "
                f"WHERE start >= {lo} AND start < {hi} GROUP BY enterprise_id"
            ).all()

    group_by = median_ms(month_group_by, 3)
    # Replay: a month of the 200 streamed enterprises' detail.
    since, until = MONTH_START, MONTH_START + timedelta(days=30)
    read_times, judge_times, n_readings = [], [], 0
    for _ in range(3):
        with collector.paused():  # as nonsite.replay.replay_store runs them
            t0 = time.perf_counter()
            engine, stored = store_records(config, partial(batch_engine, config), since, until)
            read_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            engine.run_accepted(stored.records, stored.others, unconfigured=stored.unconfigured)
            judge_times.append(time.perf_counter() - t0)
            n_readings = engine.stats.readings if engine.stats else 0
    read_s, judge_s = statistics.median(read_times), statistics.median(judge_times)
    replay_s = read_s + judge_s

    # The replay as `nonsite replay --from-store` runs it (one worker), and with two workers:
    # threads, each reading and judging a share of the enterprises, and spawned processes
    # (`--processes`: the second's start-up counted).
    def whole(**how: Any) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            shared = replay_store(config, since, until, **how)
            times.append(time.perf_counter() - t0)
        assert shared.readings == n_readings
        return statistics.median(times)

    default_s = whole()
    threads_s = whole(workers=2)
    processes_s = whole(workers=2, processes=True)
    db.dispose()
    return {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "filled": {
            "rows": rows,
            "stream engine s": round(engine_s, 1),
            "store s": round(store_s, 1),
        },
        "median_ms": {**timings, "fleet month report (2,000 outlets)": report_ms},
        "baseline_ms": {
            **{f"{k}, bare fetch": v for k, v in baselines.items()},
            "month's kept days, one SQL GROUP BY": group_by,
        },
        "replay from the store": {
            "readings": n_readings,
            "read and decoded s": round(read_s, 2),
            "read and decoded, readings_per_s": round(n_readings / read_s),
            "judged by the batch engine s": round(judge_s, 2),
            "judged, readings_per_s": round(n_readings / judge_s),
            "read and judged, one after the other s": round(replay_s, 2),
            "whole replay as the command runs it s": round(default_s, 2),
            "whole replay as the command runs it, readings_per_s": round(n_readings / default_s),
            "whole replay, 2 threads s": round(threads_s, 2),
            "whole replay, 2 threads, readings_per_s": round(n_readings / threads_s),
            "whole replay, 2 processes s": round(processes_s, 2),
            "whole replay, 2 processes, readings_per_s": round(n_readings / processes_s),
        },
        "goals": {
            "31 days <= 100 ms": timings["31 days of hour values"] <= 100,
            "a year <= 300 ms": timings["a year of hour values"] <= 300,
            "48 h minute detail <= 200 ms": timings["48 h of minute detail"] <= 200,
            "month report <= 5 s": report_ms <= 5000,
            "the store read for a replay >= 1,000,000 readings/s": n_readings / read_s >= 1_000_000,
            "the whole replay as nonsite replay --from-store runs it >= 1,000,000 readings/s": (
                n_readings / default_s >= 1_000_000
            ),
        },
    }


if __name__ == "__main__":
    main()
