"""A PostgreSQL outage under a running ``nonsite serve``: quiet, visible, and without loss.

The real service process, a real Mosquitto and the real PostgreSQL, reached through a TCP
proxy that the test cuts (every connection dropped, new ones refused) and restores. Frames
keep flowing during the outage. Required:

- the pipeline backs off (a handful of attempts, not dozens a second), is not restarted, and
  logs one line when the database goes and one when it is back, with no traceback per retry;
- ``/readyz`` says the database is unavailable and why; ``/metrics`` has
  ``nonsite_database_up`` 0 and counts the failed attempts;
- the frames received meanwhile are archived, and once the database is back they are decoded
  and judged: every finding and case of the run is there, as if nothing had happened.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import cases
from ingest.archive import RawArchive
from ingest.china_time import CHINA_TZ
from ingest.store import load_checkpoint
from nonsite.db import make_engine
from rules.store import findings
from tests.mqtt_tools import Publisher
from tests.nonsite.tcp_proxy import TcpProxy
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess, gas_packet, wait_for

pytestmark = pytest.mark.integration

# The outage's length; NONSITE_TEST_OUTAGE_S=30 measures the 30 s outage.
OUTAGE_S = float(os.environ.get("NONSITE_TEST_OUTAGE_S", "15"))
ENTERPRISES = 4
HOURS = 8
BEFORE_HOURS = 3  # published before the outage; hours 3..6 during it; hour 7 after
HOUR0 = datetime(2026, 11, 20, 0, 0, tzinfo=CHINA_TZ)
EPISODES = ENTERPRISES * HOURS // 2  # an exceedance every other hour, each an A3 case

# Loggers that still log a traceback per failed attempt: their records are counted and
# reported, not failed on. None is left (alerts.outbox reports to the pipeline's health since
# issue 16's follow-up); keep it empty.
NOT_YET_QUIET: set[str] = set()

RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>[\w.]+)(?:\[\w+\])?: ",
    re.MULTILINE,
)


def mn(i: int) -> str:
    return f"3301000000000000001{i:05d}"


def frame(i: int, hour: int, minute: int) -> tuple[str, bytes]:
    at = HOUR0 + timedelta(hours=hour, minutes=minute)
    exceeds = (i + hour) % 2 == 0
    value = (150.0 if i % 2 == 0 else 90.0) if exceeds else 40.0
    return f"hj212/{mn(i)}", gas_packet(mn(i), "123456", at, value)


def hour_frames(hour: int) -> list[list[tuple[str, bytes]]]:
    """Six 10-minute batches of an hour, every enterprise in each."""
    return [[frame(i, hour, 10 * k) for i in range(ENTERPRISES)] for k in range(6)]


def write_config(path: Path, broker_url: str, data_dir: Path, db_url: str) -> Path:
    lines = [
        *service_lines(
            broker_url=broker_url, data_dir=data_dir, client_id="nonsite-outage-test", db_url=db_url
        ),
        "[rules]",
        "grace_s = 60",
        "snapshot_every_s = 2",
        "[alerts]",
        "flap_window_min = 0",
        'resolve_on_clear = ["warning", "alarm"]',
    ]
    for i in range(ENTERPRISES):
        lines += gas_enterprise(f"E{i:02d}", f"企业{i:02d}", mn(i), "123456")
    return write_lines(path, lines)


def records(text: str) -> list[tuple[str, str, str]]:
    """(level, logger, whole record with any traceback) for each log record in ``text``."""
    starts = list(RECORD.finditer(text))
    out = []
    for n, m in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        out.append((m["level"], m["logger"], text[m.start() : end]))
    return out


def resend(mosquitto, stop: threading.Event) -> None:
    pub = Publisher(mosquitto.host, mosquitto.port, client_id="resending-logger")
    try:
        while not stop.wait(0.05):
            pub.publish_all([frame(0, 0, 0)])
    finally:
        pub.close()


def test_a_database_outage_is_quiet_visible_and_loses_nothing(mosquitto, pg_url, tmp_path):
    target = sa.engine.make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        via_proxy = target.set(host=proxy.host, port=proxy.port)
        service_url = via_proxy.render_as_string(hide_password=False)
        data_dir = tmp_path / "d"
        config = write_config(tmp_path / "n.toml", mosquitto.url, data_dir, service_url)
        log_path = tmp_path / "service.log"
        service = ServiceProcess(config, log_path)
        service.start()
        db = make_engine(pg_url)  # the test's own way in: not through the proxy
        pub = Publisher(mosquitto.host, mosquitto.port)
        published = 0

        def a3_fires() -> int:
            with db.connect() as conn:
                return conn.execute(
                    sa.select(sa.func.count(sa.distinct(findings.c.id))).where(
                        findings.c.rule == "A3", findings.c.state == "fire"
                    )
                ).scalar_one()

        try:
            for hour in range(BEFORE_HOURS):
                for batch in hour_frames(hour):
                    published += pub.publish_all(batch)
            # Hours 0 and 1 are judged (hour 2's data closed them): the stage works.
            assert wait_for(lambda: a3_fires() >= ENTERPRISES, 60), service.log_text()
            pid = service.pipeline_child().pid

            # -- the outage ----------------------------------------------------------------
            outage_log_from = log_path.stat().st_size
            proxy.cut()
            cut_at = time.monotonic()
            during = [b for hour in range(BEFORE_HOURS, HOURS - 1) for b in hour_frames(hour)]
            readiness_seen: dict[str, object] = {}
            up_seen: float | None = None
            # A logger resending the same frame 20 times a second: each resend is archived
            # (as a duplicate) and wakes the pipeline, as busy traffic does.
            resending = threading.Event()
            resender = threading.Thread(target=resend, args=(mosquitto, resending), daemon=True)
            resender.start()
            for n, batch in enumerate(during):  # frames keep arriving all through it
                published += pub.publish_all(batch)
                time.sleep(max(0.0, cut_at + OUTAGE_S * (n + 1) / len(during) - time.monotonic()))
                if not readiness_seen and time.monotonic() - cut_at > 5:
                    readiness_seen = service.readiness()
                    up_seen = service.metric("nonsite_database_up")
            resending.set()
            resender.join(10)
            readiness_during = service.readiness()
            failures = service.metric("nonsite_database_failures_total")
            archived_during = RawArchive(data_dir / "archive.sqlite3", readonly=True).count()
            outage_log = log_path.read_text(errors="replace")[outage_log_from:]
            proxy.restore()
            restored_at = time.monotonic()
            outage_s = restored_at - cut_at

            # -- recovery ------------------------------------------------------------------
            for batch in hour_frames(HOURS - 1):
                published += pub.publish_all(batch)
            published += pub.publish_all(
                [frame(i, HOURS, 10) for i in range(ENTERPRISES)]
            )  # closes the last hour
            ready_again = wait_for(service.ready, 60)
            ready_after_s = time.monotonic() - restored_at
            archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
            caught_up = wait_for(
                lambda: (
                    archive.count() == published
                    and load_checkpoint(db, "ingest") == archive.head_seq()
                    and a3_fires() >= EPISODES
                ),
                90,
            )
            recovered_after_s = time.monotonic() - restored_at
            pid_at_end = service.pipeline_child().pid
            full_log = log_path.read_text(errors="replace")
        finally:
            pub.close()
            code = service.terminate()
        with db.connect() as conn:
            a3_cases = conn.execute(
                sa.select(sa.func.count()).select_from(cases).where(cases.c.rule == "A3")
            ).scalar_one()
        fires = a3_fires()
        db.dispose()

    outage_records = records(outage_log)
    tracebacks = [(lg, r) for _lvl, lg, r in outage_records if "Traceback" in r]
    figures = (
        f"outage {outage_s:.1f} s: {len(outage_records)} log records, "
        f"{len(tracebacks)} tracebacks ({sum(lg in NOT_YET_QUIET for lg, _ in tracebacks)} "
        f"from {sorted(NOT_YET_QUIET)}), {failures} failed attempts, "
        f"{full_log.count('pipeline process exited')} pipeline restarts; "
        f"ready {ready_after_s:.1f} s and caught up {recovered_after_s:.1f} s after the "
        f"database returned; {published} published, {archived_during} archived by the "
        f"outage's end; A3 fires {fires}/{EPISODES}, A3 cases {a3_cases}/{EPISODES}; "
        f"/readyz during it: {readiness_seen}"
    )
    print(figures)
    # Visible: /readyz names the database and why, in one line; the gauge says it is down.
    problems = readiness_seen.get("problems")
    assert isinstance(problems, dict), (readiness_seen, figures)
    assert "database" in problems, (readiness_seen, figures)
    assert "unavailable" in problems["database"], readiness_seen
    assert "\n" not in problems["database"], readiness_seen
    assert up_seen == 0, (up_seen, figures)
    assert "database" in readiness_during.get("problems", {}), readiness_during
    # Quiet: a few attempts with backoff, no traceback per attempt, one line per state change.
    assert failures is not None and 1 <= failures <= 2 + OUTAGE_S / 2, figures
    loud = [r for lg, r in tracebacks if lg not in NOT_YET_QUIET]
    assert not loud, f"{figures}\n{loud[0][:2000]}"
    assert len(re.findall(r"database unavailable", outage_log)) == 1, outage_log[-3000:]
    after = full_log[outage_log_from:]
    assert len(re.findall(r"database available again", after)) == 1, after[-3000:]
    # Not restarted: the same pipeline process all along.
    assert "pipeline process exited" not in full_log, full_log[-3000:]
    assert pid_at_end == pid
    # No loss: everything received was archived (the ack path does not need the database),
    # then decoded and judged; every exceedance has its finding and its case.
    assert ready_again, (figures, service.log_text())
    assert caught_up, (figures, service.log_text())
    assert fires == EPISODES, figures
    assert a3_cases == EPISODES, figures
    assert code == 0, service.log_text()
