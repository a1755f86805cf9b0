"""The database host fails: a primary and a synchronous standby (two PostgreSQL servers of our
own, ``nonsite.local_postgres``), the primary SIGKILLed under writes, the standby promoted.
Through one URL naming both hosts with ``target_session_attrs=read-write`` (libpq picks the
one that takes writes), the engine nonsite uses (``nonsite.db.make_engine``) goes on writing
at the promoted standby, and every transaction acknowledged before the kill is there, once.

Then the service itself through the same failover (``nonsite serve`` under frames and a
person's actions): it judges on from its checkpoint, and no case or action is lost or doubled.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from alerts.schema import case_events, cases
from ingest.china_time import CHINA_TZ
from ingest.store import load_checkpoint
from nonsite.auth.users import UserStore
from nonsite.db import make_engine, migrate
from nonsite.embedded_broker import free_port
from nonsite.local_postgres import HOST, PrivatePostgres, postgres_bin_dir
from tests.brokers import Mosquitto
from tests.mqtt_tools import Publisher
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess, gas_packet, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# Durable. Once the standby streams, the primary's commits wait for its flush
# (``synchronous_standby_names``, set then: before, the primary's own database creation would
# wait for it), so what is acknowledged survives the primary's loss. The standby names no
# standby of its own: promoted, alone, its commits must not wait for one (Patroni's
# synchronous mode does the same).
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "hot_standby": "on",
}


def require_sync_standby(primary: PrivatePostgres, name: str) -> None:
    engine = sa.create_engine(primary.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
    finally:
        engine.dispose()


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def sync_standby(primary: PrivatePostgres) -> bool:
    engine = sa.create_engine(primary.url)
    try:
        with engine.connect() as conn:
            states = conn.execute(
                sa.text("SELECT application_name, sync_state FROM pg_stat_replication")
            ).all()
        return ("standby", "sync") in [tuple(row) for row in states]
    finally:
        engine.dispose()


@dataclass
class Pair:
    primary: PrivatePostgres
    standby: PrivatePostgres
    url: str  # names both hosts; libpq picks the one that takes writes


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """A primary and its synchronous streaming standby, on free ports."""
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None, "PostgreSQL's programs (initdb, pg_ctl, pg_basebackup)"
    primary = PrivatePostgres(bin_dir, tmp_path / "primary", free_port(), settings=DURABLE)
    standby = PrivatePostgres(bin_dir, tmp_path / "standby", free_port(), settings=DURABLE)
    try:
        primary.start()
        standby.start_replica_of(primary, "standby")
        require_sync_standby(primary, "standby")
        wait_until(lambda: sync_standby(primary), 30, "the standby streaming synchronously")
        url = (
            f"postgresql+psycopg://postgres@/{primary.database}"
            f"?host={HOST}:{primary.port}&host={HOST}:{standby.port}"
            "&target_session_attrs=read-write&connect_timeout=3"
        )
        yield Pair(primary, standby, url)
    finally:
        standby.stop(immediate=True)
        primary.stop(immediate=True)


def test_acknowledged_commits_survive_the_primarys_loss_and_writes_go_on_at_the_standby(
    pair: Pair,
) -> None:
    primary, standby = pair.primary, pair.standby
    engine = None
    try:
        engine = make_engine(pair.url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE acked (i integer PRIMARY KEY, at float)"))

        acked: list[int] = []
        commits: list[float] = []
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                while not stop.is_set():  # the same row until a commit is acknowledged
                    try:
                        with engine.begin() as conn:
                            conn.execute(
                                sa.text(
                                    "INSERT INTO acked VALUES (:i, :at) ON CONFLICT DO NOTHING"
                                ),
                                {"i": i, "at": time.time()},
                            )
                        acked.append(i)
                        commits.append(time.monotonic())
                        break
                    except sa.exc.OperationalError:
                        time.sleep(0.05)  # no primary yet: try again

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        wait_until(lambda: len(acked) >= 200, 30, "200 commits on the primary")
        before = len(acked)
        killed = time.monotonic()
        primary.kill()
        time.sleep(1.0)  # the failure noticed; then the standby is promoted (Patroni's job)
        standby.promote()
        wait_until(lambda: len(acked) >= before + 200, 60, "200 commits after the failover")
        stop.set()
        writer.join(30)

        with engine.connect() as conn:
            stored = [row[0] for row in conn.execute(sa.text("SELECT i FROM acked ORDER BY i"))]
            in_recovery = conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one()
        assert in_recovery is False  # the promoted standby answers, not the dead primary
        assert stored == sorted(set(acked)) == list(range(1, len(stored) + 1))
        gap = max(b - a for a, b in itertools.pairwise(commits) if b >= killed)
        print(f"without commits: {gap:.2f} s (kill at +0, promotion after 1 s)")
        assert gap < 30
    finally:
        if engine is not None:
            engine.dispose()


# -- the service itself through a failover -------------------------------------------------------

ENTERPRISES = 6
HOURS = 10
KILL_AT_HOUR = 4
HOUR0 = datetime(2026, 11, 20, 0, 0, tzinfo=CHINA_TZ)
PERSON = "monitor1"
PASSWORD = "failover-test-9"


def mn(i: int) -> str:
    return f"3301000000000000002{i:05d}"


def exceeds(i: int, hour: int) -> bool:
    return (hour + i) % 3 == 0


def hour_batches(hour: int) -> list[list[tuple[str, bytes]]]:
    """Six 10-minute batches of an hour, every enterprise in each."""
    return [
        [
            (
                f"hj212/{mn(i)}",
                gas_packet(
                    mn(i),
                    "123456",
                    HOUR0 + timedelta(hours=hour, minutes=10 * k),
                    150.0 if exceeds(i, hour) else 40.0,
                ),
            )
            for i in range(ENTERPRISES)
        ]
        for k in range(6)
    ]


class Person:
    """A monitoring officer at the dashboard: round after round, a comment on every case,
    each request sent again with its key until it is answered 200 (as the dashboard's form
    does after an error)."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60)
        r = self.client.post("/api/v1/session", json={"username": PERSON, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.acked: dict[str, int] = {}  # note → case
        self.ack_times: list[float] = []
        self.refusals: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, method: str, path: str, **kw: object) -> httpx.Response:
        while True:  # the person retries what did not go through
            try:
                r = self.client.request(method, path, **kw)  # type: ignore[arg-type]
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            if r.status_code != 503:
                return r
            time.sleep(0.5)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            listed = self._send("GET", "/api/v1/cases", params={"limit": 200})
            if listed.status_code != 200:
                self.refusals.append(listed.text)
                continue
            for case in listed.json()["items"]:
                note = f"第{n}轮复核 案件{case['id']}"
                r = self._send(
                    "POST",
                    f"/api/v1/cases/{case['id']}/actions/comment",
                    json={"note": note},
                    headers={"Idempotency-Key": f"person-{case['id']}-{n}"},
                )
                if r.status_code == 200:
                    self.acked[note] = case["id"]
                    self.ack_times.append(time.monotonic())
                else:
                    self.refusals.append(r.text)
            self.stop.wait(0.2)


def test_the_service_judges_on_and_loses_no_action_through_a_failover(
    tmp_path: Path, mosquitto: Mosquitto, pair: Pair
) -> None:
    """``nonsite serve`` on a primary and a synchronous standby (one URL naming both), frames
    arriving and a person commenting on cases all through; the primary SIGKILLed, the standby
    promoted a second later. Afterwards: every case once, each exceedance hour counted once on
    it (none lost, none applied twice by the replay from the checkpoint), the pipeline process
    the same one, and every comment that was answered 200 recorded exactly once."""
    primary, standby, url = pair.primary, pair.standby, pair.url
    service: ServiceProcess | None = None
    person: Person | None = None
    db = None
    try:
        db = make_engine(url)
        migrate(db)
        UserStore(db).add(PERSON, PASSWORD, "monitor", display_name="王监测")
        lines = [
            *service_lines(
                broker_url=mosquitto.url,
                data_dir=tmp_path / "d",
                client_id="nonsite-failover",
                db_url=url,
            ),
            "[rules]",
            "grace_s = 60",
            "snapshot_every_s = 2",
            "[alerts]",
            "flap_window_min = 0",
        ]
        for i in range(ENTERPRISES):
            lines += gas_enterprise(f"E{i:02d}", f"企业{i:02d}", mn(i), "123456")
        service = ServiceProcess.started(write_lines(tmp_path / "nonsite.toml", lines))
        pipeline_pid = service.pipeline_child().pid

        checkpoints: list[tuple[float, int]] = []  # (when, checkpoint) as the test sees it
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    checkpoints.append((time.monotonic(), load_checkpoint(db, "ingest")))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        publisher = Publisher(mosquitto.host, mosquitto.port, "failover-loggers")
        published = 0
        killed = 0.0
        try:

            def publish_hours(hours: range) -> int:
                n = 0
                for hour in hours:
                    for batch in hour_batches(hour):
                        n += publisher.publish_all(batch)
                        time.sleep(0.1)
                return n

            published += publish_hours(range(KILL_AT_HOUR))
            assert wait_for(lambda: count_cases(db) >= 3, 60), service.log_text()
            person = Person(service.http)
            person.thread.start()
            acting = person
            assert wait_for(lambda: len(acting.acked) >= 3, 60), acting.refusals
            killed = time.monotonic()
            primary.kill()
            time.sleep(1.0)  # the failure noticed; then the standby promoted
            standby.promote()
            published += publish_hours(range(KILL_AT_HOUR, HOURS))
            closing = [
                (
                    f"hj212/{mn(i)}",
                    gas_packet(mn(i), "123456", HOUR0 + timedelta(hours=HOURS, minutes=10), 40.0),
                )
                for i in range(ENTERPRISES)
            ]
            published += publisher.publish_all(closing)
        finally:
            publisher.close()

        fires = {f"E{i:02d}": sum(exceeds(i, h) for h in range(HOURS)) for i in range(ENTERPRISES)}
        assert wait_for(lambda: a3_counts(db) == fires, 120), (a3_counts(db), service.log_text())
        assert person is not None
        rounds_done = len(person.acked)
        assert wait_for(lambda: len(person.acked) >= rounds_done + ENTERPRISES, 60)
        person.stop.set()
        person.thread.join(90)
        watching.set()
        watcher.join(10)

        # One case per enterprise's A3 problem, each exceedance hour counted on it once.
        with db.connect() as conn:
            a3_cases = (
                conn.execute(sa.select(cases.c.enterprise_id).where(cases.c.rule == "A3"))
                .scalars()
                .all()
            )
            notes = conn.execute(
                sa.select(case_events.c.note, case_events.c.case_id).where(
                    case_events.c.action == "comment"
                )
            ).all()
        assert sorted(a3_cases) == sorted(fires)
        # Every comment answered 200 is recorded once, and nothing else is.
        recorded = Counter(note for note, _ in notes)
        assert set(recorded.values()) == {1}, [n for n, k in recorded.items() if k > 1][:5]
        assert dict(notes) == person.acked
        assert person.refusals == []
        # The same pipeline process all along: it waited for the database, not restarted.
        assert service.pipeline_child().pid == pipeline_pid

        moved = [t for (_, before), (t, c) in itertools.pairwise(checkpoints) if c > before]
        resumed = min(t for t in moved if t > killed) - killed
        acted = min(t for t in person.ack_times if t > killed) - killed
        print(
            f"\nfailover under the service: {published} frames, {sum(fires.values())} "
            f"exceedance hours on {len(a3_cases)} cases, {len(person.acked)} comments; "
            f"the pipeline committed again {resumed:.2f} s and a person's action "
            f"{acted:.2f} s after the kill (promotion after 1 s)"
        )
        assert resumed < 30 and acted < 30
    finally:
        if person is not None:
            person.stop.set()
            person.thread.join(30)
            person.client.close()  # else its socket is left to the garbage collector
        if service is not None:
            service.terminate()
        if db is not None:
            db.dispose()


def count_cases(db: sa.Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one())


def a3_counts(db: sa.Engine) -> dict[str, int]:
    """Each enterprise's A3 case: the exceedance hours applied to it."""
    try:
        with db.connect() as conn:
            rows = conn.execute(
                sa.select(cases.c.enterprise_id, cases.c.count).where(cases.c.rule == "A3")
            ).all()
    except sa.exc.SQLAlchemyError:
        return {}
    return dict(rows)
