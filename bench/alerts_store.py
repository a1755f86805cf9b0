"""Findings applied to the alert store per second, on SQLite and on PostgreSQL.

The stream is what the rule stage sends the alert stage, generated from a seed: ``--enterprises``
enterprises with ``--outlets`` outlets each, and per outlet four hourly conditions (A3 on SO2
and on NOx, at warning or alarm tier; B6 jumps and B2 constant values, warnings). Each
condition is a two-state chain: off → on with a small probability an hour, on → off with a
larger one, and a condition that just cleared comes back the next hour more often (flapping).
While on it fires every hour; when it stops it clears once. So most findings update a case
that is already open, some open a case (a warning: audit, reminder, outbox rows; an alarm:
outbox rows), some clear (resolving the case), a few come back (the case reopens), and a few
warnings are raised to alarm. Notifications are routed (MQTT for every change, a supervisors'
hook, one channel per enterprise), so queuing outbox rows is part of applying a finding.

The first simulated hour (the conditions standing when the service starts) is applied before
the clock starts; then the hours that follow, until at least ``--findings`` findings, are
applied the way the pipeline does: ``with engine.begin() as conn: book.apply(conn, batch)``,
one transaction per ``--batch`` findings, the case book's clock a few minutes after the hour
the findings judged. Each round uses a fresh database (a SQLite file with the service's WAL
pragmas; a fresh PostgreSQL schema), migrated to head.

The baseline, in the same database and round: the same findings, in the same batches, stored
with ``rules.store.record_findings`` (one multi-row INSERT per batch, which the pipeline runs
anyway with each batch). The machines are shared and noisy, so the ratio cases/baseline is
what to compare between runs. Medians of ``--rounds`` rounds.

``--profile`` also runs one SQLite pass under cProfile with every SQL statement timed, and
prints where the time goes per finding.

Writes bench/results/alerts.json and prints a table.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import getpass
import json
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, event, func, select, text

from alerts.cases import Applied, CaseBook
from alerts.notify import Notifier, Routes
from alerts.policy import AlertPolicy, EnterpriseInfo
from alerts.schema import case_events, cases, outbox
from nonsite.db import make_engine, migrate
from rules.findings import Finding
from rules.store import record_findings

T0 = int(datetime(2026, 11, 23, 0, 0, tzinfo=UTC).timestamp())  # a Monday, 08:00 in China
HOUR = 3600
GOAL_SQLITE = 2000
DEFAULT_PG_URL = "postgresql+psycopg://{user}@127.0.0.1:5432/test"

# (rule, factor, unit, alarm limit, warning limit); B rules fire at warning tier only.
CONDITIONS: tuple[tuple[str, str, str, float | None, float | None], ...] = (
    ("A3", "a21026", "mg/m³", 100.0, 80.0),
    ("A3", "a21002", "mg/m³", 100.0, 80.0),
    ("B6", "a34013", "mg/m³", None, 5.0),
    ("B2", "a00000", "m³/s", None, None),
)
P_ON = 0.005  # an off condition starts, per hour
P_OFF = 0.1  # an on condition stops, per hour
P_BACK = 0.2  # a condition that just cleared comes back the next hour
P_ALARM = 0.3  # an A3 condition starts at alarm tier
P_RAISE = 0.02  # an A3 warning becomes an alarm, per hour


# -- the stream ------------------------------------------------------------------------------


@dataclass
class Key:
    enterprise: str
    outlet: str
    rule: str
    factor: str
    unit: str
    alarm: float | None
    warning: float | None
    on: bool = False
    tier: str = "warning"
    level: float = 0.0
    cleared: bool = False  # cleared in the previous hour


@dataclass
class Stream:
    warmup: list[tuple[datetime, list[Finding]]]
    batches: list[tuple[datetime, list[Finding]]]  # (the case book's clock, findings)
    hours: int
    findings: int
    by_state: dict[str, int] = field(default_factory=dict)


def _fire(k: Key, start: int, rng: random.Random) -> Finding:
    if k.rule == "A3":
        limit = k.alarm if k.tier == "alarm" else k.warning
        assert limit is not None
        value = round(limit * (1 + k.level) * rng.uniform(0.98, 1.05), 2)
        evidence: dict[str, Any] = {
            "o2": round(rng.uniform(6.5, 9.5), 2),
            "reference_o2": 6,
            "converted": value,
            "valid_minutes": 6,
        }
    elif k.rule == "B6":
        limit = k.warning
        assert limit is not None
        value = round(limit * (1.2 + k.level) * rng.uniform(0.95, 1.05), 2)
        evidence = {"previous": round(rng.uniform(8, 12), 2), "sigma": 1.1, "mean": 10.0}
    else:
        limit, value = None, round(100 + k.level * 10, 1)
        evidence = {"unit": k.unit, "hours": 3}
    multiple = round((value - limit) / limit, 4) if limit else None
    return Finding(
        rule=k.rule,
        state="fire",
        enterprise_id=k.enterprise,
        source_id=k.outlet,
        factor=k.factor,
        window_start=start,
        window_end=start + HOUR,
        tier=k.tier,  # type: ignore[arg-type]
        value=value,
        limit=limit,
        unit=k.unit,
        multiple=multiple,
        params_id=f"{k.enterprise}/{k.outlet}",
        params_version="v1",
        evidence=evidence,
    )


def _clear(k: Key, start: int) -> Finding:
    limit = k.alarm if k.tier == "alarm" else k.warning
    return Finding(
        rule=k.rule,
        state="clear",
        enterprise_id=k.enterprise,
        source_id=k.outlet,
        factor=k.factor,
        window_start=start,
        window_end=start + HOUR,
        tier=k.tier,  # type: ignore[arg-type]
        value=None,
        limit=limit,
        unit=k.unit,
        params_id=f"{k.enterprise}/{k.outlet}",
        params_version="v1",
        evidence={},
    )


def _start(k: Key, rng: random.Random) -> None:
    k.on = True
    k.tier = "alarm" if k.rule == "A3" and rng.random() < P_ALARM else "warning"
    k.level = rng.uniform(0.05, 0.6)


def _batches(
    found: list[Finding], hour_end: int, batch: int
) -> list[tuple[datetime, list[Finding]]]:
    """The hour's findings in the pipeline's batches, applied over the ten minutes after the
    hour (hour values arrive then; the rule engine judges the hour once they are in)."""
    out = []
    n = max(1, -(-len(found) // batch))
    for i in range(n):
        at = datetime.fromtimestamp(hour_end + 60 + (540 * (i + 1)) // n, tz=UTC)
        out.append((at, found[i * batch : (i + 1) * batch]))
    return [b for b in out if b[1]]


def stream(enterprises: int, outlets: int, findings: int, batch: int, seed: int) -> Stream:
    rng = random.Random(seed)
    keys = [
        Key(f"E{e:05d}", f"DA{o + 1:03d}", rule, factor, unit, alarm, warning)
        for e in range(enterprises)
        for o in range(outlets)
        for rule, factor, unit, alarm, warning in CONDITIONS
    ]
    # Hour 0: the conditions standing when the service starts, at the chain's steady state.
    standing = P_ON / (P_ON + P_OFF)
    warm: list[Finding] = []
    for k in keys:
        if rng.random() < standing:
            _start(k, rng)
            warm.append(_fire(k, T0, rng))
    rng.shuffle(warm)
    out = Stream(_batches(warm, T0 + HOUR, batch), [], 0, 0)
    states: dict[str, int] = defaultdict(int)
    hour = 1
    while out.findings < findings:
        start = T0 + hour * HOUR
        found: list[Finding] = []
        for k in keys:
            if k.on:
                if rng.random() < P_OFF:
                    found.append(_clear(k, start))
                    k.on, k.cleared = False, True
                    continue
                if k.rule == "A3" and k.tier == "warning" and rng.random() < P_RAISE:
                    k.tier = "alarm"
                found.append(_fire(k, start, rng))
            else:
                if rng.random() < (P_BACK if k.cleared else P_ON):
                    _start(k, rng)
                    found.append(_fire(k, start, rng))
                k.cleared = False
        rng.shuffle(found)  # outlets finish their hour in no particular order
        for f in found:
            states[f.state] += 1
        out.batches += _batches(found, start + HOUR, batch)
        out.findings += len(found)
        hour += 1
    out.hours = hour - 1
    out.by_state = dict(states)
    return out


# -- the store -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.fromtimestamp(T0, tz=UTC)

    def __call__(self) -> datetime:
        return self.now


def policy_and_routes(enterprises: int) -> tuple[AlertPolicy, Routes]:
    infos = {
        f"E{e:05d}": EnterpriseInfo(
            f"E{e:05d}",
            f"示范企业{e:05d}",
            positive_list=e % 5 == 0,
            brigade=f"B{e % 20:02d}",
            source_names={"DA001": "1号锅炉", "DA002": "2号锅炉", "DA003": "3号锅炉"},
        )
        for e in range(enterprises)
    }
    policy = AlertPolicy(enterprises=infos)
    routes = Routes(
        every_change=("mqtt",),
        supervisors=("hook",),
        enterprises={e: (f"{e.lower()}-wecom",) for e in infos},
        brigades={f"B{b:02d}": (f"b{b:02d}-hook",) for b in range(20)},
    )
    return policy, routes


def pg_admin_url() -> str:
    return os.environ.get("NONSITE_BENCH_PG_URL") or DEFAULT_PG_URL.format(user=getpass.getuser())


@contextmanager
def database(kind: str, workdir: Path, n: int) -> Iterator[Engine]:
    """A fresh, migrated store: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{workdir / f'alerts-{n}.db'}")
        try:
            migrate(engine)
            yield engine
        finally:
            engine.dispose()
        return
    admin = make_engine(pg_admin_url())
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = pg_admin_url()
    sep = "&" if "?" in base else "?"
    engine = make_engine(f"{base}{sep}options=-csearch_path%3D{schema}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def apply_all(
    engine: Engine, book: CaseBook, clock: Clock, batches: list[tuple[datetime, list[Finding]]]
) -> Applied:
    total = Applied()
    for at, batch in batches:
        clock.now = at
        with engine.begin() as conn:
            done = book.apply(conn, batch)
        total.opened += done.opened
        total.updated += done.updated
        total.resolved += done.resolved
        total.reopened += done.reopened
        total.escalated += done.escalated
        total.suppressed += done.suppressed
        total.ignored += done.ignored
    return total


def insert_all(engine: Engine, batches: list[tuple[datetime, list[Finding]]]) -> int:
    stored = 0
    for _, batch in batches:
        with engine.begin() as conn:
            stored += len(record_findings(conn, batch))
    return stored


def timed(measure: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = measure()
    return time.perf_counter() - start, out


def one_round(kind: str, workdir: Path, n: int, s: Stream, enterprises: int) -> dict[str, Any]:
    policy, routes = policy_and_routes(enterprises)
    clock = Clock()
    book = CaseBook(policy, Notifier(routes, policy), clock=clock)
    with database(kind, workdir, n) as engine:
        base_s, stored = timed(lambda: insert_all(engine, s.batches))
        assert stored == s.findings, (stored, s.findings)
        apply_all(engine, book, clock, s.warmup)
        with engine.connect() as conn:
            before = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        cases_s, done = timed(lambda: apply_all(engine, book, clock, s.batches))
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            n_cases = conn.execute(select(func.count()).select_from(cases)).scalar_one()
            n_events = conn.execute(select(func.count()).select_from(case_events)).scalar_one()
            version = (
                sqlite3.sqlite_version
                if kind == "sqlite"
                else conn.execute(text("SHOW server_version")).scalar_one().split()[0]
            )
    return {
        "findings_per_s": s.findings / cases_s,
        "baseline_rows_per_s": s.findings / base_s,
        "ratio": base_s / cases_s,
        "seconds": cases_s,
        "baseline_seconds": base_s,
        "opened": len(done.opened),
        "updated": done.updated,
        "resolved": len(done.resolved),
        "reopened": len(done.reopened),
        "escalated": len(done.escalated),
        "ignored": done.ignored,
        "outbox_rows": rows - before,
        "cases_in_store": n_cases,
        "audit_rows_in_store": n_events,
        "version": version,
    }


# -- profile ---------------------------------------------------------------------------------


def _label(statement: str) -> str:
    words = " ".join(statement.split())
    if words.startswith("SELECT"):
        return "SELECT … FROM " + words.split(" FROM ", 1)[-1][:130]
    if words.startswith("UPDATE"):
        return words.split(" SET ", 1)[0] + " SET " + words.split(" SET ", 1)[-1][:60]
    return words[:60]


def profile(kind: str, workdir: Path, s: Stream, enterprises: int, top: int = 30) -> None:
    """Two passes over a fresh store: every SQL statement timed (cursor events only, so the
    wall time is close to the unprofiled one), then, on SQLite, cProfile over ``apply``."""
    n = s.findings
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for pass_ in ("statements", "cprofile") if kind == "sqlite" else ("statements",):
        policy, routes = policy_and_routes(enterprises)
        clock = Clock()
        book = CaseBook(policy, Notifier(routes, policy), clock=clock)
        with database(kind, workdir, 1000 + len(pass_)) as engine:
            apply_all(engine, book, clock, s.warmup)
            if pass_ == "statements":

                @event.listens_for(engine, "before_cursor_execute")
                def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                    conn.info["t"] = time.perf_counter()

                @event.listens_for(engine, "after_cursor_execute")
                def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                    acc = stats[_label(statement)]
                    acc[0] += 1
                    acc[1] += time.perf_counter() - conn.info.pop("t")

                gc.collect()
                start = time.perf_counter()
                apply_all(engine, book, clock, s.batches)
                wall = time.perf_counter() - start
                sql_s = sum(v[1] for v in stats.values())
                sql_n = sum(v[0] for v in stats.values())
                print(f"\nprofile {kind}: {n:,} findings in {wall:.1f} s ({n / wall:,.0f}/s)")
                print(
                    f"  {1e6 * wall / n:,.0f} µs per finding; {sql_n / n:.2f} SQL statements per "
                    f"finding, {1e6 * sql_s / n:,.0f} µs of it in the driver and database "
                    f"({100 * sql_s / wall:.0f} %), the rest in Python (SQLAlchemy, JSON, cases)"
                )
                print(f"  {'statement':<110}{'/finding':>9}{'µs each':>9}{'share':>7}")
                for label, (count, secs) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
                    print(
                        f"  {label[:108]:<110}{count / n:>9.3f}{1e6 * secs / count:>9.0f}"
                        f"{100 * secs / wall:>6.1f}%"
                    )
            else:
                prof = cProfile.Profile()
                prof.enable()
                apply_all(engine, book, clock, s.batches)
                prof.disable()
                print(f"\ncProfile {kind} (inflates Python-heavy code), by cumulative time:")
                pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
                pstats.Stats(prof).sort_stats("tottime").print_stats(top)


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--findings", type=int, default=20_000, help="at least this many")
    parser.add_argument("--batch", type=int, default=200, help="findings per transaction")
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--outlets", type=int, default=3, help="per enterprise")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=212)
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument("--profile", action="store_true", help="also profile one SQLite pass")
    parser.add_argument("--no-write", action="store_true", help="do not write the results")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    s = stream(args.enterprises, args.outlets, args.findings, args.batch, args.seed)
    warm = sum(len(b) for _, b in s.warmup)
    print(
        f"stream: {s.findings:,} findings over {s.hours} simulated hours "
        f"({s.by_state.get('fire', 0):,} fire, {s.by_state.get('clear', 0):,} clear) "
        f"in {len(s.batches)} batches of ≤ {args.batch}; {warm:,} standing conditions applied first"
    )
    per_db: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind in kinds:  # alternate the databases: noise hits both alike
                run = one_round(kind, workdir, r, s, args.enterprises)
                runs[kind].append(run)
                print(
                    f"round {r + 1} {kind:<10}: cases {run['findings_per_s']:>8,.0f} findings/s, "
                    f"baseline {run['baseline_rows_per_s']:>8,.0f} rows/s, "
                    f"ratio {run['ratio']:.3f}"
                )
        for kind, rs in runs.items():
            last = rs[-1]
            per_db[kind] = {
                "version": last["version"],
                "findings_per_s": round(statistics.median(x["findings_per_s"] for x in rs)),
                "baseline_rows_per_s": round(
                    statistics.median(x["baseline_rows_per_s"] for x in rs)
                ),
                "ratio": round(statistics.median(x["ratio"] for x in rs), 4),
                "cases_opened": last["opened"],
                "cases_updated": last["updated"],
                "cases_resolved": last["resolved"],
                "cases_reopened": last["reopened"],
                "cases_escalated": last["escalated"],
                "clears_without_case": last["ignored"],
                "outbox_rows": last["outbox_rows"],
                "cases_in_store": last["cases_in_store"],
                "audit_rows_in_store": last["audit_rows_in_store"],
                "rounds": [
                    {
                        "findings_per_s": round(x["findings_per_s"]),
                        "baseline_rows_per_s": round(x["baseline_rows_per_s"]),
                        "ratio": round(x["ratio"], 4),
                    }
                    for x in rs
                ],
            }
            if kind == "sqlite":
                per_db[kind]["goal_findings_per_s"] = GOAL_SQLITE
                per_db[kind]["goal_met"] = per_db[kind]["findings_per_s"] >= GOAL_SQLITE
        if args.profile:
            for kind in kinds:
                profile(kind, workdir, s, args.enterprises)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sqlite": per_db.get("sqlite", {}).get("version", sqlite3.sqlite_version),
        "postgresql": per_db.get("postgresql", {}).get("version"),
        "findings": s.findings,
        "batch": args.batch,
        "rounds": args.rounds,
        "mix": (
            f"{args.enterprises} enterprises × {args.outlets} outlets × 4 hourly conditions "
            "(A3 SO2/NOx warning or alarm, B6, B2); "
            f"on {P_ON}/h, off {P_OFF}/h, back after clearing {P_BACK}; "
            f"{s.hours} simulated hours after the standing ones ({warm} opened untimed); "
            "routes: mqtt every change, supervisors hook, one channel per enterprise"
        ),
        "fire": s.by_state.get("fire", 0),
        "clear": s.by_state.get("clear", 0),
        "baseline": "rules.store.record_findings of the same batches (one INSERT per batch)",
        "databases": {
            k: {kk: vv for kk, vv in v.items() if kk != "version"} for k, v in per_db.items()
        },
    }
    out = Path(__file__).parent / "results" / "alerts.json"
    if not args.no_write:
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"{'database':<24}{'findings/s':>12}{'baseline rows/s':>17}{'ratio':>8}{'goal':>8}")
    for kind, v in per_db.items():
        goal = f"{GOAL_SQLITE:,}" if kind == "sqlite" else ""
        mark = ""
        if kind == "sqlite":
            mark = "  met" if v["findings_per_s"] >= GOAL_SQLITE else "  NOT met"
        print(
            f"{kind + ' ' + str(v['version']):<24}{v['findings_per_s']:>12,}"
            f"{v['baseline_rows_per_s']:>17,}{v['ratio']:>8.3f}{goal:>8}{mark}"
        )
    for kind, v in per_db.items():
        print(
            f"{kind}: opened {v['cases_opened']:,}, updated {v['cases_updated']:,}, "
            f"resolved {v['cases_resolved']:,}, reopened {v['cases_reopened']:,}, "
            f"escalated {v['cases_escalated']:,}, outbox rows {v['outbox_rows']:,}"
        )
    if not args.no_write:
        print(f"written to {out}")


if __name__ == "__main__":
    main()
