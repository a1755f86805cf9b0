"""Rebalance: a worker added in mid-run takes partitions, and nothing is lost or judged twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.schema import cases
from nonsite.cluster.leases import partition_leases
from nonsite.db import make_engine
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import (
    LocalCluster,
    behind,
    enterprise_lines,
    findings_json,
    hour_frames,
    replay_json,
    settled,
)
from tests.service_process import wait_for

pytestmark = pytest.mark.integration

ENTERPRISES = 40
HOURS = 8
H0 = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
GRACE = timedelta(hours=1)
ABSENCE = {"B7", "B8", "C8"}


def test_a_worker_added_mid_run_takes_partitions_and_changes_no_finding(
    tmp_path: Path, pg_url: str
) -> None:
    cluster = LocalCluster(
        tmp_path, pg_url, enterprise_lines(ENTERPRISES), partitions=12, lease_ttl_s=3.0
    ).start()
    db = make_engine(pg_url)
    try:
        cluster.role("ingest", "ingest-a")
        workers = [cluster.role("worker", "worker-a"), cluster.role("worker", "worker-b")]
        # Exceedances that start before the new worker comes and end after it.
        so2 = dict.fromkeys(range(0, ENTERPRISES, 3), 400.0)
        frames = hour_frames(ENTERPRISES, H0, HOURS, so2)
        half = len(frames) // 2
        publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port, "rebalance-pub")
        try:
            publisher.publish_all(frames[:half])
            assert wait_for(lambda: settled(db, cluster.nats), 60), behind(db, cluster.nats)
            workers.append(cluster.role("worker", "worker-c"))

            def shares() -> Counter[str]:
                with db.connect() as conn:
                    owners = conn.execute(sa.select(partition_leases.c.owner)).scalars()
                    return Counter(o for o in owners if o is not None)

            # 12 partitions over three workers: four each, the newcomer's taken from the others.
            assert wait_for(
                lambda: shares() == Counter(dict.fromkeys(("worker-a", "worker-b", "worker-c"), 4)),
                30,
            ), shares()
            publisher.publish_all(frames[half:])
        finally:
            publisher.close()
        assert wait_for(lambda: settled(db, cluster.nats), 90), (
            behind(db, cluster.nats),
            cluster.logs(),
        )

        frames_file = tmp_path / "frames.txt"
        frames_file.write_bytes(b"\n".join(p.rstrip(b"\r\n") for _, p in frames) + b"\n")
        closed_by = H0 + timedelta(hours=HOURS, minutes=10)

        def judged(rows: list[dict[str, object]], closed: bool) -> set[tuple[object, ...]]:
            return {
                (f["id"], f["state"], f["tier"])
                for f in rows
                if f["rule"] not in ABSENCE
                and (
                    not closed or datetime.fromisoformat(str(f["window_end"])) + GRACE <= closed_by
                )
            }

        expected = judged(replay_json(workers[0].config, frames_file), closed=True)
        assert any(str(f[0]).startswith("A3:") for f in expected)
        assert wait_for(lambda: judged(findings_json(workers[0].config), False) == expected, 30), (
            sorted(expected ^ judged(findings_json(workers[0].config), False))[:6]
        )
        with db.connect() as conn:
            rows = conn.execute(
                sa.select(cases.c.enterprise_id, cases.c.count).where(cases.c.rule == "A3")
            ).all()
        # One case per enterprise over the limit, each hour's fire applied once.
        assert sorted(e for e, _ in rows) == [f"E{i:03d}" for i in sorted(so2)]
        fires = sum(1 for f in expected if str(f[0]).startswith("A3:") and f[1] == "fire")
        assert sum(n for _, n in rows) == fires
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        db.dispose()
        cluster.stop()
