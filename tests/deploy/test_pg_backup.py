"""Backups of the service database with pgBackRest, run for real with the shipped configuration
(deploy/pgbackrest/pgbackrest.conf, only its paths and port replaced).

A PostgreSQL 15 primary of our own archives its WAL into a repository; a full backup is taken;
a day of cases is written through the alert store (findings, people's actions); then an
operator deletes the day's cases by mistake, and the service writes on. A restore to the
moment just before the deletion, into a new data directory beside the running primary, has
every case of the day and every row that refers to one exactly as written, and nothing of what
came later; the day's rows copied back from it (docs/backup.md's procedure, psql's \\copy) make
the primary whole again. A restore to the end of the archive (the database host lost) has
everything, the deletion included.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alerts.cases import CaseBook
from alerts.notify import Notifier, Routes
from alerts.policy import AlertPolicy, EnterpriseInfo
from alerts.schema import (
    action_requests,
    attachments,
    case_events,
    cases,
    clues,
    decisions,
    metadata,
    outbox,
    rechecks,
    rectifications,
    work_orders,
)
from alerts.workflow import Actor
from ingest.china_time import CHINA_TZ
from nonsite.db import make_engine, migrate
from nonsite.embedded_broker import free_port
from nonsite.local_postgres import HOST, PrivatePostgres, postgres_bin_dir
from rules.findings import Finding, Tier

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SHIPPED_CONFIG = Path(__file__).parents[2] / "deploy" / "pgbackrest" / "pgbackrest.conf"
DOC = Path(__file__).parents[2] / "docs" / "backup.md"
STANZA = "nonsite"
NOT_INSTALLED = (
    "pgBackRest is not installed: `./dev test` installs it (Debian: apt-get install pgbackrest)"
)
# A case and every table that refers to one, in the order they are loaded back: docs/backup.md
# lists the same tables, and the test fails if the schema gains another.
CASE_TABLES: tuple[sa.Table, ...] = (
    cases,
    work_orders,
    case_events,
    outbox,
    action_requests,
    clues,
    attachments,
    rectifications,
    rechecks,
    decisions,
)

DAY = date(2026, 11, 23)  # the day whose cases are deleted (China time)
NEXT_DAY = DAY + timedelta(days=1)
SOURCES = ("DA001", "DA002")
MONITOR = Actor("王监测", "monitor")
SUPERVISOR = Actor("李监管", "supervisor")


def china_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)


# -- the servers and pgBackRest ----------------------------------------------------------------


def as_postgres() -> list[str]:
    """The prefix that runs a program as the user postgres, as PrivatePostgres runs
    PostgreSQL's: pgBackRest must be the user that owns the data directory."""
    if os.geteuid() != 0:
        return []
    return [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]


@contextmanager
def postgres_workdir(tmp_path: Path) -> Iterator[Path]:
    """A directory of the user postgres's own, linked from ``tmp_path``: as root, PostgreSQL
    and pgBackRest run as postgres, which cannot pass /tmp/pytest-of-root; and short, so that
    the servers' socket paths fit (pgBackRest reaches PostgreSQL by its socket only)."""
    work = Path(tempfile.mkdtemp(prefix="nonsite-pgbr-"))
    try:
        (work / "log").mkdir()  # pgBackRest writes its log files there, but does not create it
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            for path in (work, work / "log"):
                os.chown(path, user.pw_uid, user.pw_gid)
        (tmp_path / "pgbackrest").symlink_to(work, target_is_directory=True)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def archived_by(pgbackrest: str, config: Path) -> dict[str, str]:
    """The primary's settings: each WAL segment pushed to the repository, the
    archive_command of deploy/patroni/patroni.yml with the test's configuration."""
    return {
        "fsync": "off",  # durability is not what is tested here: a faster test
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"'{pgbackrest} --config={config} --stanza={STANZA} archive-push %p'",
    }


def write_config(path: Path, work: Path, primary: PrivatePostgres) -> None:
    """The shipped configuration with the repository, spool, log and lock under ``work`` and
    the primary's data directory, port and socket; every other setting as shipped."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # type: ignore[assignment, method-assign]  # keep the keys' case
    config.read(SHIPPED_CONFIG, encoding="utf-8")
    replaced: dict[str, dict[str, object]] = {
        "global": {
            "repo1-path": work / "repo",
            "spool-path": work / "spool",
            "log-path": work / "log",
            "lock-path": work / "lock",  # not /tmp/pgbackrest: another run's stanza is ours too
        },
        STANZA: {
            "pg1-path": primary.data,
            "pg1-port": primary.port,
            "pg1-socket-path": primary.real_home.resolve(),
        },
    }
    for section, values in replaced.items():
        for key, value in values.items():
            config[section][key] = str(value)
    with path.open("w", encoding="utf-8") as out:
        for section in config.sections():
            out.write(f"[{section}]\n")
            out.writelines(f"{key}={value}\n" for key, value in config[section].items())


class PgBackRest:
    """pgBackRest's command line for the test's stanza and configuration."""

    def __init__(self, exe: str, config: Path) -> None:
        self.command = [*as_postgres(), exe, f"--config={config}", f"--stanza={STANZA}"]

    def __call__(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (
            f"pgbackrest {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
        return done.stdout


# -- a day of cases -----------------------------------------------------------------------------


def policy_for(enterprises: Sequence[str]) -> AlertPolicy:
    return AlertPolicy(
        enterprises={
            e: EnterpriseInfo(
                e,
                f"{e} 示范企业",
                brigade=f"B{n % 3 + 1}",
                source_names={"DA001": "1号锅炉", "DA002": "2号锅炉"},
            )
            for n, e in enumerate(enterprises)
        }
    )


def findings_of_hour(enterprises: Sequence[str], hour_start: datetime) -> list[Finding]:
    """An hour's findings: each source exceeds its limit (A3, an alarm) every sixth hour and
    reports constant values (B2, a warning) every sixth hour too, each clearing an hour later."""
    window = int(hour_start.timestamp())
    found = []
    for n, enterprise in enumerate(enterprises):
        for m, source in enumerate(SOURCES):
            phase = (2 * n + m + hour_start.hour) % 6  # A3 fires at 0, clears at 1; B2 at 3, 4
            if phase not in {0, 1, 3, 4}:
                continue
            alarm = phase in {0, 1}
            tier: Tier = "alarm" if alarm else "warning"
            fires = phase in {0, 3}
            value = 100.0 + 10 * n + m + hour_start.hour / 10
            limit = 100.0 if alarm else None
            found.append(
                Finding(
                    rule="A3" if alarm else "B2",
                    state="fire" if fires else "clear",
                    enterprise_id=enterprise,
                    source_id=source,
                    factor="a21026",
                    window_start=window,
                    window_end=window + 3600,
                    tier=tier,
                    value=value if fires else None,
                    limit=limit,
                    unit="mg/m³",
                    multiple=round((value - 100.0) / 100.0, 4) if fires and limit else None,
                    params_id=f"{enterprise}/{source}",
                    params_version="v1",
                    evidence={"hour": hour_start.isoformat()},
                )
            )
    return found


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write_day(engine: sa.Engine, day: date, enterprises: Sequence[str]) -> int:
    """A day of the alert store's work, hour by hour, through its own code: findings open,
    update and resolve cases; the monitoring centre verifies the alarms and dispatches half
    of them, enterprises explain their warnings. Returns the number of cases opened."""
    clock = Clock(china_midnight(day))
    policy = policy_for(enterprises)
    routes = Routes(every_change=("mqtt",), supervisors=("supervisors-hook",))
    book = CaseBook(policy, Notifier(routes, policy), clock=clock)
    opened = 0
    for hour in range(23):  # the last hour is judged after midnight: the next day's
        hour_start = china_midnight(day) + timedelta(hours=hour)
        clock.now = hour_start + timedelta(hours=1, minutes=5)  # judged just after the hour
        with engine.begin() as conn:
            applied = book.apply(conn, findings_of_hour(enterprises, hour_start))
        opened += len(applied.opened)
        clock.now += timedelta(minutes=20)  # people act on the new cases
        for case_id in applied.opened:
            with engine.begin() as conn:
                case = book.get(conn, case_id)
                if case.state == "sensed":  # an alarm
                    book.act(conn, case_id, "verify", MONITOR, outcome="confirmed", note="属实")
                    if case_id % 2 == 0:
                        book.act(conn, case_id, "dispatch", SUPERVISOR, request_key=f"d{case_id}")
                elif case.state == "reminded":  # a warning
                    staff = Actor(
                        f"{case.enterprise_id} 环保员",
                        "enterprise",
                        enterprise_id=case.enterprise_id,
                    )
                    book.act(conn, case_id, "explain", staff, note="分析仪校准", refs={"n": hour})
    return opened


def day_condition(day: date) -> str:
    """The SQL condition of the cases opened on ``day`` (China time), as docs/backup.md
    writes it."""
    start, end = china_midnight(day), china_midnight(day + timedelta(days=1))
    return f"opened_at >= '{start.isoformat()}' AND opened_at < '{end.isoformat()}'"


def rows_of_day(engine: sa.Engine, day: date) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the day's cases and of the tables that refer to them, in key order."""
    day_cases = sa.select(cases.c.id).where(sa.text(day_condition(day))).scalar_subquery()
    found: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in CASE_TABLES:
            query = sa.select(table).order_by(*table.primary_key.columns)
            if table is cases:
                query = query.where(cases.c.id.in_(day_cases))
            else:
                query = query.where(table.c.case_id.in_(day_cases))
            found[table.name] = [tuple(row) for row in conn.execute(query)]
    return found


def delete_day_by_mistake(engine: sa.Engine, day: date) -> None:
    """The operator's mistake: the day's cases, and what refers to them, deleted."""
    with engine.begin() as conn:
        for table in reversed(CASE_TABLES[1:]):
            conn.execute(
                sa.text(
                    f"DELETE FROM {table.name} WHERE case_id IN "
                    f"(SELECT id FROM cases WHERE {day_condition(day)})"
                )
            )
        conn.execute(sa.text(f"DELETE FROM cases WHERE {day_condition(day)}"))


def tables_referring_to_cases(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {
            name
            for name in sa.inspect(conn).get_table_names()
            for fk in sa.inspect(conn).get_foreign_keys(name)
            if fk["referred_table"] == "cases"
        }


def copy_day_back(psql: Path, source: PrivatePostgres, target: PrivatePostgres, day: date) -> None:
    """docs/backup.md's procedure: the day's rows out of the restored server, table by table
    (psql's \\copy), then into the primary in one transaction (all or nothing)."""
    of_day = f"case_id IN (SELECT id FROM cases WHERE {day_condition(day)})"
    files = {table.name: source.real_home / f"{table.name}.copy" for table in CASE_TABLES}
    for table in CASE_TABLES:
        rows = (
            f"cases WHERE {day_condition(day)}"
            if table is cases
            else f"{table.name} WHERE {of_day}"
        )
        run_psql(psql, source, f"\\copy (SELECT * FROM {rows}) TO '{files[table.name]}'")
    run_psql(
        psql,
        target,
        *(f"\\copy {name} FROM '{file}'" for name, file in files.items()),
        single_transaction=True,
    )


def run_psql(
    psql: Path, server: PrivatePostgres, *commands: str, single_transaction: bool = False
) -> None:
    done = subprocess.run(
        [
            str(psql),
            *("--no-psqlrc", "-v", "ON_ERROR_STOP=1"),
            *(["--single-transaction"] if single_transaction else []),
            *("-h", HOST, "-p", str(server.port), "-U", "postgres", "-d", server.database),
            *(arg for command in commands for arg in ("-c", command)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"psql failed ({done.returncode}): {done.stderr}"


def size_of(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def wait_past(epoch_s: float) -> None:
    while time.time() < epoch_s:
        time.sleep(0.05)


def server_now(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT clock_timestamp()::text")).scalar_one())


def backups(pgbackrest: PgBackRest) -> list[dict[str, Any]]:
    [stanza] = json.loads(pgbackrest("info", "--output=json"))
    assert stanza["status"]["code"] == 0, stanza["status"]
    return list(stanza["backup"])


# -- the test -----------------------------------------------------------------------------------


def test_a_day_of_cases_deleted_by_mistake_comes_back_from_the_backup(tmp_path: Path) -> None:
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None, "PostgreSQL's programs (initdb, pg_ctl, psql)"
    exe = shutil.which("pgbackrest")
    if exe is None:
        pytest.fail(NOT_INSTALLED)
    started: list[PrivatePostgres] = []
    engine: sa.Engine | None = None
    with postgres_workdir(tmp_path) as work:
        try:
            config = work / "pgbackrest.conf"
            primary = PrivatePostgres(
                bin_dir, work / "primary", free_port(), settings=archived_by(exe, config)
            )
            write_config(config, work, primary)
            pgbackrest = PgBackRest(exe, config)
            started.append(primary)
            primary.start()
            engine = make_engine(primary.url)
            migrate(engine)
            assert tables_referring_to_cases(engine) == {t.name for t in CASE_TABLES[1:]}

            pgbackrest("stanza-create")
            pgbackrest("check")  # archive_command works: a WAL segment reached the repository
            began = time.monotonic()
            pgbackrest("--type=full", "backup")
            backup_s = time.monotonic() - began
            [full] = backups(pgbackrest)
            assert full["type"] == "full"
            # Compressed (zstd): the repository holds much less than the database's files.
            assert full["info"]["repository"]["delta"] < full["info"]["size"] / 2

            # pgBackRest picks the backup for a time target by whole seconds: a target within
            # the second the backup ended would find none.
            wait_past(full["timestamp"]["stop"] + 1)
            opened = write_day(engine, DAY, [f"E{n:02}" for n in range(1, 13)])
            written = rows_of_day(engine, DAY)
            assert opened == len(written["cases"]) >= 40
            assert len(written["case_events"]) >= 3 * opened
            assert written["work_orders"] and written["outbox"] and written["action_requests"]
            before_mistake = server_now(engine)

            delete_day_by_mistake(engine, DAY)
            assert rows_of_day(engine, DAY) == {t.name: [] for t in CASE_TABLES}
            # The service writes on, for other enterprises (their problems are not the day's).
            write_day(engine, NEXT_DAY, ["F01", "F02", "F03"])
            next_day = rows_of_day(engine, NEXT_DAY)
            assert next_day["cases"]
            pgbackrest("check")  # the WAL up to here, the deletion's included, is archived

            # Just before the mistake, beside the running primary.
            at_t = PrivatePostgres(bin_dir, work / "at-t", free_port(), settings={})
            at_t.prepare_home()
            began = time.monotonic()
            pgbackrest(
                f"--pg1-path={at_t.data}",
                "--type=time",
                f"--target={before_mistake}",
                "--target-action=promote",
                "--archive-mode=off",  # not a second primary archiving into the stanza
                # A spool of its own: the restore empties its stanza's spool while the
                # running primary's asynchronous archiving writes there (seen failing:
                # "unable to remove path .../spool/archive/nonsite: Directory not empty").
                f"--spool-path={work / 'spool-pitr'}",
                "restore",
            )
            restore_s = time.monotonic() - began
            started.append(at_t)
            at_t.start_restored()
            recovered_s = time.monotonic() - began
            at_t_engine = make_engine(at_t.url)
            try:
                assert rows_of_day(at_t_engine, DAY) == written
                assert rows_of_day(at_t_engine, NEXT_DAY) == {t.name: [] for t in CASE_TABLES}
            finally:
                at_t_engine.dispose()

            # The host lost: the end of the archive, the deletion included.
            latest = PrivatePostgres(bin_dir, work / "latest", free_port(), settings={})
            latest.prepare_home()
            began = time.monotonic()
            pgbackrest(f"--pg1-path={latest.data}", "restore")
            started.append(latest)
            latest.start_restored()
            latest_s = time.monotonic() - began
            latest_engine = make_engine(latest.url)
            try:
                assert rows_of_day(latest_engine, DAY) == {t.name: [] for t in CASE_TABLES}
                assert rows_of_day(latest_engine, NEXT_DAY) == next_day
            finally:
                latest_engine.dispose()
            latest.stop()

            # Copied back, the primary has the day again, and the next day's work too.
            copy_day_back(bin_dir / "psql", at_t, primary, DAY)
            assert rows_of_day(engine, DAY) == written
            assert rows_of_day(engine, NEXT_DAY) == next_day

            events = len(written["case_events"])
            print(
                f"\nfull backup: {backup_s:.1f} s, database {full['info']['size'] / 2**20:.1f} MiB,"
                f" in the repository {full['info']['repository']['delta'] / 2**20:.1f} MiB"
                f"\nthe day: {opened} cases, {events} case events"
                f"\nrestore to just before the mistake: pgbackrest restore {restore_s:.1f} s,"
                f" until the server took writes {recovered_s:.1f} s"
                f"\nrestore to the end of the archive, until the server took writes:"
                f" {latest_s:.1f} s"
                f"\nthe repository at the end (the backup and the WAL archived since):"
                f" {size_of(work / 'repo') / 2**20:.1f} MiB"
            )
        finally:
            if engine is not None:
                engine.dispose()
            for server in reversed(started):
                server.stop(immediate=True)


def test_the_documented_copy_back_takes_every_table_that_refers_to_a_case() -> None:
    """docs/backup.md's copy back names the tables the test copies, and those are all the
    tables that refer to a case: a new one in the schema must be added there too."""
    text = DOC.read_text(encoding="utf-8")
    loaded = re.findall(r"\\copy (\w+) FROM", text)
    assert loaded == [table.name for table in CASE_TABLES]
    [exported] = re.findall(r"for t in ([\w ]+); do", text)
    assert exported.split() == loaded[1:]
    referring = {
        table.name
        for table in metadata.tables.values()
        if any(fk.column.table is cases for fk in table.foreign_keys)
    }
    assert referring == set(loaded[1:])
