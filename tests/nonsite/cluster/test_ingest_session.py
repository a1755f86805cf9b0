"""An ingest node that dies for good: what the broker does with its share, and what an
operator does about it (docs/operations.md, Scale out).

Mosquitto keeps handing a dead member of a shared subscription its share of the messages,
queued in its persistent session, for as long as the session lives (``[mqtt]
session_expiry_s``, a week by default). Nothing is lost, but that share waits. The operator
starts an ingest node with the dead node's client id, on any host: it takes the session over,
publishes what waited to the stream, and carries on as that node.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.archive import message_digest
from tests.mqtt_tools import Publisher
from tests.nonsite.cluster.harness import (
    LocalCluster,
    Role,
    enterprise_lines,
    hour_frames,
    stream_digests,
)
from tests.service_process import wait_for

pytestmark = pytest.mark.integration

H0 = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)


def test_a_dead_ingest_node_s_share_waits_in_its_session_until_a_node_takes_its_client_id(
    tmp_path: Path, pg_url: str
) -> None:
    cluster = LocalCluster(tmp_path, pg_url, enterprise_lines(10), partitions=4).start()
    try:
        dead = cluster.role("ingest", "ingest-a")
        cluster.role("ingest", "ingest-b")
        before = hour_frames(10, H0, 1, {})
        after = hour_frames(10, H0.replace(day=5), 2, {})
        publisher = Publisher(cluster.mosquitto.host, cluster.mosquitto.port, "session-pub")
        try:
            publisher.publish_all(before)
            assert wait_for(lambda: len(stream_digests(cluster.nats)) == len(before), 30)
            dead.kill()
            publisher.publish_all(after)
        finally:
            publisher.close()
        everything = sorted(message_digest(t, p).hex() for t, p in before + after)

        # The survivor takes only its own share: the dead node's waits in the broker.
        time.sleep(3)  # time for the survivor to store all it was given
        stored = stream_digests(cluster.nats)
        waiting = len(everything) - len(stored)
        assert 0.3 * len(after) < waiting < 0.7 * len(after)

        # The operator starts a node with the dead one's client id (here its configuration,
        # on another port): the waiting share reaches the stream, once.
        stand_in = Role("ingest", cluster.config("ingest-a", role="ingest"))
        cluster.roles.append(stand_in)
        stand_in.start()
        assert wait_for(lambda: len(stream_digests(cluster.nats)) == len(everything), 30)
        assert sorted(stream_digests(cluster.nats)) == everything
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
