"""Cases and notifications from a real ``nonsite serve`` that is killed at random points.

Frames flow through Mosquitto into the service; findings become cases and notifications go
to a real local HTTP receiver. The service (its main and its pipeline process) is SIGKILLed
three times at random moments and restarted. Afterwards: one case per problem, none missing,
each case counting every stored finding exactly once, and every queued notification
delivered, each idempotency key arriving at the receiver (a resend after a kill between
sending and recording it carries the same key, so the receiver keeps it once).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import cases, outbox
from ingest.china_time import CHINA_TZ
from nonsite.db import make_engine
from rules.store import findings
from tests.alerts.channels.receiver import Receiver
from tests.mqtt_tools import Publisher
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess, gas_packet, wait_for

pytestmark = pytest.mark.integration

ENTERPRISES = 12
HOURS = 8
HOUR0 = datetime(2026, 11, 20, 0, 0, tzinfo=CHINA_TZ)
EPISODES = ENTERPRISES * HOURS // 2  # hours with an exceedance, each its own case
CHANNELS = 2  # supervisors-hook and enterprise-hook


def mn(i: int) -> str:
    return f"3301000000000000000{i:05d}"


def exceeds(i: int, hour: int) -> bool:
    return (i + hour) % 2 == 0  # every other hour: a new problem each time, cases all along


def so2(i: int, hour: int) -> float:
    """Even enterprises exceed the 100 mg/m³ limit (alarm), odd ones reach the warning tier
    (above 80 %), in the hours they exceed."""
    if not exceeds(i, hour):
        return 40.0
    return 150.0 if i % 2 == 0 else 90.0


def frame(i: int, at: datetime, value: float) -> tuple[str, bytes]:
    return f"hj212/{mn(i)}", gas_packet(mn(i), "123456", at, value)


def write_config(path: Path, broker_url: str, data_dir: Path, hook: str, db_url: str) -> Path:
    lines = [
        *service_lines(
            broker_url=broker_url, data_dir=data_dir, client_id="nonsite-alerts-test", db_url=db_url
        ),
        "[rules]",
        "grace_s = 60",
        "snapshot_every_s = 0.5",
        "[alerts]",
        'supervisors = ["supervisors-hook"]',
        "retry_base_s = 0.2",
        "flap_window_min = 0",
        # Each exceedance its own case: a clear resolves even an alarm here, so that the run
        # opens many cases across the kills.
        'resolve_on_clear = ["warning", "alarm"]',
        "retry_max_s = 1.0",
        "[[alerts.channels]]",
        'name = "supervisors-hook"',
        'kind = "webhook"',
        f'url = "{hook}"',
        'secret = "s3cret"',
        "timeout_s = 2",
        "[[alerts.channels]]",
        'name = "enterprise-hook"',
        'kind = "webhook"',
        f'url = "{hook}"',
        "timeout_s = 2",
    ]
    for i in range(ENTERPRISES):
        lines += gas_enterprise(
            f"E{i:02d}", f"企业{i:02d}", mn(i), "123456", settings=['notify = ["enterprise-hook"]']
        )
    return write_lines(path, lines)


def kill_all(service: ServiceProcess) -> None:
    """SIGKILL the pipeline process and the main process at the same moment."""
    assert service.proc is not None
    pid = service.proc.pid
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    service.kill()


@pytest.mark.parametrize(
    ("seed", "db_url"), [(2026, "sqlite"), (7, "postgresql")], indirect=["db_url"]
)
def test_killed_at_random_points_no_case_is_doubled_or_lost_and_each_notification_arrives(
    seed, db_url, mosquitto, tmp_path
):
    rng = random.Random(seed)
    with Receiver() as receiver:
        receiver.respond(200, delay_s=0.1)  # a receiver that takes a moment: kills land mid-send
        config = write_config(
            tmp_path / "n.toml", mosquitto.url, tmp_path / "d", receiver.url, db_url
        )
        service = ServiceProcess.started(config)
        pub = Publisher(mosquitto.host, mosquitto.port)
        batches = [
            [
                frame(i, HOUR0 + timedelta(hours=h, minutes=10 * k), so2(i, h))
                for i in range(ENTERPRISES)
            ]
            for h in range(HOURS)
            for k in range(6)
        ]
        batches.append(
            [frame(i, HOUR0 + timedelta(hours=HOURS, minutes=10), 40.0) for i in range(ENTERPRISES)]
        )  # closes the last hour
        kill_after = set(rng.sample(range(6, len(batches) - 1), 3))
        for n, batch in enumerate(batches):
            pub.publish_all(batch)
            time.sleep(0.05)  # frames arrive over time, as from loggers
            if n in kill_after:
                time.sleep(rng.uniform(0.0, 0.6))
                kill_all(service)
                service.start()
        db = make_engine(db_url)

        def settled() -> bool:
            with db.connect() as conn:
                a3 = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(findings)
                    .where(findings.c.rule == "A3", findings.c.state == "fire")
                ).scalar_one()
                pending = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.state == "pending")
                ).scalar_one()
            return a3 >= EPISODES and pending == 0

        assert wait_for(settled, timeout=90), service.log_text()
        time.sleep(1.0)
        with db.connect() as conn:
            case_rows = conn.execute(sa.select(cases).where(cases.c.rule == "A3")).all()
            fires = Counter(
                r.enterprise_id
                for r in conn.execute(
                    sa.select(findings.c.enterprise_id).where(
                        findings.c.rule == "A3", findings.c.state == "fire"
                    )
                )
            )
            queued = conn.execute(sa.select(outbox.c.key, outbox.c.state)).all()
        db.dispose()
        pub.close()
        assert service.terminate() == 0

        # A case per exceedance episode: none doubled, none missing, each finding applied once.
        per_enterprise = Counter(r.enterprise_id for r in case_rows)
        expected = {
            f"E{i:02d}": sum(exceeds(i, h) for h in range(HOURS)) for i in range(ENTERPRISES)
        }
        assert dict(per_enterprise) == expected
        assert all(r.count == 1 for r in case_rows)
        assert sum(fires.values()) == len(case_rows)

        # Every queued notification delivered, each key received, no key unknown.
        assert {state for _, state in queued} == {"delivered"}
        keys = [q.header("Idempotency-Key") for q in receiver.requests]
        assert set(keys) == {key for key, _ in queued}
        assert len(queued) == len(case_rows)  # opened: supervisors for alarms, else reminders
        resent = len(keys) - len(set(keys))
        print(f"seed {seed}: {len(keys)} deliveries of {len(set(keys))} keys; {resent} resent")
        # Only a send cut off by a kill is repeated: one per channel at most, since each
        # channel has its own sender (alerts/outbox.py).
        assert resent <= len(kill_after) * CHANNELS
