"""``/metrics`` of a real ``nonsite serve``: every family the operators' dashboards and alerts
use is there, with its labels, and no label carries an MN, an enterprise, an outlet or a
channel name (cardinality).

An hour of minute data above the preset limit goes through Mosquitto into the service; it
becomes a finding, a case and a notification to a local webhook. A late reading, a duplicate
reading, a byte-identical resend and an undecodable message exercise the other outcomes.

Beside it, the new observation points on their own: the finding latency of the rule sink and
the case gauges read from the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from alerts.metrics import CaseMetrics
from alerts.schema import cases, work_orders
from ingest.china_time import CHINA_TZ
from ingest.hj212.encoder import data_packets
from ingest.readings import ReadingBatch
from nonsite.db import make_engine, migrate
from rules.metrics import RuleMetrics
from rules.stage import RuleStage
from rules.stream import StreamEngine
from tests.alerts.channels.receiver import Receiver
from tests.mqtt_tools import Publisher
from tests.rules.factors import O2, SO2
from tests.rules.scenario import gas_outlet, hour_of, tick
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess, wait_for

MN = "33010000M37R1C5A00000042"
ENTERPRISE = "ENT-METRICS-7Q"
OUTLET = "OUTLET-Z9"
CHANNEL = "hook-metrics-x4"

# The families of the issue, their type and their labels (beside ``le`` of histograms).
EXPECTED: dict[str, tuple[str, set[str]]] = {
    # what the cyclic collector no longer visits, in each process (nonsite/collector.py)
    "nonsite_heap_frozen_objects": ("gauge", set()),
    "nonsite_pipeline_heap_frozen_objects": ("gauge", set()),
    # messages by outcome
    "nonsite_ingest_messages": ("counter", {"outcome"}),
    "nonsite_ingest_decoded_messages": ("counter", {"outcome"}),
    # decode errors by reason
    "nonsite_ingest_dead_letters": ("counter", {"reason"}),
    # readings; late and duplicate readings
    "nonsite_ingest_readings": ("counter", {"kind"}),
    "nonsite_rule_readings": ("counter", {"outcome"}),
    # findings by rule
    "nonsite_findings": ("counter", {"rule", "state"}),
    # cases by state and tier; overdue work orders
    "nonsite_cases": ("gauge", {"state", "tier"}),
    "nonsite_work_orders_overdue": ("gauge", set()),
    # notifications by channel kind and outcome; outbox depth
    "nonsite_notifications": ("counter", {"kind", "outcome"}),
    "nonsite_outbox_pending": ("gauge", set()),
    # queue depths
    "nonsite_ingest_pending_messages": ("gauge", set()),
    "nonsite_ingest_pipeline_lag_messages": ("gauge", set()),
    # latency from receipt and from DataTime to finding
    "nonsite_finding_latency_seconds": ("histogram", {"clock"}),
    # broker connection state
    "nonsite_mqtt_connected": ("gauge", set()),
    # database latency
    "nonsite_db_commit_seconds": ("histogram", {"transaction"}),
    "nonsite_archive_commit_seconds": ("histogram", set()),
}


def frame(at: datetime, so2: float) -> tuple[str, bytes]:
    pollutants = {"a21026": {"Avg": so2, "Flag": "N"}, "a19001": {"Avg": 6.0, "Flag": "N"}}
    [p] = data_packets(
        st="31", cn="2051", pw="123456", mn=MN, data_time=at, pollutants=pollutants, ack=False
    )
    return f"hj212/{MN}", p


def write_config(path: Path, broker_url: str, data_dir: Path, hook: str) -> Path:
    lines = [
        *service_lines(broker_url=broker_url, data_dir=data_dir, client_id="nonsite-metrics-test"),
        "[rules]",
        "grace_s = 60",
        "[alerts]",
        f'supervisors = ["{CHANNEL}"]',
        "[[alerts.channels]]",
        f'name = "{CHANNEL}"',
        'kind = "webhook"',
        f'url = "{hook}"',
        "timeout_s = 2",
        *gas_enterprise(ENTERPRISE, "指标测试企业", MN, "123456", outlet=OUTLET),
    ]
    return write_lines(path, lines)


def scrape(service: ServiceProcess) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(service.metrics())}


def value(family: Metric, suffix: str = "", **labels: str) -> float:
    """The sum of the family's samples named ``<family><suffix>`` matching ``labels``."""
    return sum(
        s.value
        for s in family.samples
        if s.name == family.name + suffix and labels.items() <= s.labels.items()
    )


@pytest.mark.integration
def test_metrics_of_a_finding_a_case_and_a_notification_are_scraped_with_low_cardinality(
    mosquitto, tmp_path
):
    # Recent hours: readings stamped after their receipt (beyond max_future_s) are not judged.
    hour0 = datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    with Receiver() as receiver:
        config = write_config(tmp_path / "n.toml", mosquitto.url, tmp_path / "d", receiver.url)
        service = ServiceProcess.started(config)
        pub = Publisher(mosquitto.host, mosquitto.port)
        so2 = [148.0, 151.0, 149.5, 150.5, 152.0, 149.0]  # mean 150: above the 100 mg/m³ limit
        closing = frame(hour0 + timedelta(minutes=70), 40.0)  # closes hour0 (grace 60 s)
        pub.publish_all(
            [frame(hour0 + timedelta(minutes=10 * i), v) for i, v in enumerate(so2)] + [closing]
        )
        pub.publish_all(
            [
                frame(hour0 - timedelta(minutes=50), 40.0),  # its hour closed already: late
                frame(hour0 + timedelta(minutes=70), 41.0),  # same time, other bytes: duplicate
                closing,  # byte-identical resend: stored once by the archive
                (f"hj212/{MN}", b"##0000not a frame\r\n"),  # a dead letter
            ]
        )

        def settled() -> bool:
            m = scrape(service)
            return "nonsite_findings" in m and (  # the pipeline process's have come
                value(m["nonsite_findings"], "_total", rule="A3", state="fire") >= 1
                and value(m["nonsite_cases"]) >= 1
                and value(m["nonsite_notifications"], "_total", outcome="delivered") >= 1
                and value(m["nonsite_rule_readings"], "_total", outcome="late") >= 1
                and value(m["nonsite_ingest_dead_letters"], "_total") >= 1
                # every notification sent: the gauge is sampled, so wait for it to show it
                and value(m["nonsite_outbox_pending"]) == 0
            )

        try:
            assert wait_for(settled), service.log_text()
            families = scrape(service)
        finally:
            pub.close()
            status = service.terminate()
        assert status == 0, service.log_text()

    for name, (kind, labels) in EXPECTED.items():
        assert name in families, f"{name} missing from /metrics"
        family = families[name]
        assert family.type == kind, name
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        assert samples, f"{name} has no samples"
        for s in samples:
            assert set(s.labels) - {"le"} == labels, (name, s.labels)

    # The values the traffic above must have produced.
    m = families
    # Start-up's objects are out of the collector's full passes, which paused each process
    # for 60-110 ms under load (the latency's p99): modules, the web app, the rule engine.
    assert value(m["nonsite_heap_frozen_objects"]) > 50_000
    assert value(m["nonsite_pipeline_heap_frozen_objects"]) > 50_000
    assert value(m["nonsite_ingest_messages"], "_total", outcome="archived") >= 9
    assert value(m["nonsite_ingest_messages"], "_total", outcome="duplicate") >= 1
    assert value(m["nonsite_ingest_decoded_messages"], "_total", outcome="dead_letter") >= 1
    assert value(m["nonsite_ingest_readings"], "_total", kind="measurement") >= 16
    assert value(m["nonsite_rule_readings"], "_total", outcome="duplicate") >= 1
    assert value(m["nonsite_cases"], tier="alarm") >= 1
    cases = {(s.labels["state"], s.labels["tier"]) for s in m["nonsite_cases"].samples}
    assert {("sensed", "alarm"), ("closed", "warning")} <= cases  # every state × tier, 0 or not
    assert value(m["nonsite_notifications"], "_total", kind="webhook", outcome="delivered") >= 1
    assert value(m["nonsite_outbox_pending"]) == 0
    assert value(m["nonsite_work_orders_overdue"]) == 0
    assert value(m["nonsite_mqtt_connected"]) == 1
    latency = m["nonsite_finding_latency_seconds"]
    assert value(latency, "_count", clock="receipt") >= 1
    assert value(latency, "_count", clock="event") >= 1
    # The hour closed a minute or so before it was found: about an hour after its end.
    event_mean = value(latency, "_sum", clock="event") / value(latency, "_count", clock="event")
    assert 0 < event_mean < 4 * 3600
    assert value(latency, "_sum", clock="receipt") / value(latency, "_count", clock="receipt") < 30
    assert value(m["nonsite_db_commit_seconds"], "_count", transaction="checkpoint") >= 1

    # Low cardinality: no label names an MN, an enterprise, an outlet or a channel.
    forbidden = (MN, ENTERPRISE, OUTLET, CHANNEL, "127.0.0.1")
    for family in families.values():
        for s in family.samples:
            for label, text in s.labels.items():
                assert not any(f in text for f in forbidden), (s.name, label, text)


# -- the observation points on their own ----------------------------------------------------


@pytest.fixture
def db(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nonsite.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_finding_latency_is_observed_once_per_new_finding_from_receipt_and_window_end(db):
    registry = CollectorRegistry()
    metrics = RuleMetrics(registry)
    readings = hour_of(SO2, tick(0), 150.0) + hour_of(O2, tick(0), 6.0) + hour_of(O2, tick(1), 6.0)
    last_receipt = max(r.received_at for r in readings)  # tick(1) + 51 min: closes hour 0
    now = last_receipt.timestamp() + 2.5

    def engine() -> StreamEngine:
        return StreamEngine({("E1", "DA001"): gas_outlet()}, grace_s=600)

    sink = RuleStage(engine(), metrics, wall_clock=lambda: now)
    sink.judge(ReadingBatch(1, 18, measurements=readings))
    with db.begin() as conn:
        sink.commit(conn, 18, ())
    assert sample(registry, "nonsite_findings_total", rule="A3", state="fire") == 1
    count = "nonsite_finding_latency_seconds_count"
    total = "nonsite_finding_latency_seconds_sum"
    assert sample(registry, count, clock="receipt") == 1
    assert sample(registry, total, clock="receipt") == pytest.approx(2.5)
    assert sample(registry, count, clock="event") == 1
    window_end = tick(1).timestamp()
    assert sample(registry, total, clock="event") == pytest.approx(now - window_end)
    assert (
        sample(registry, "nonsite_finding_latency_seconds_bucket", clock="receipt", le="5.0") == 1
    )

    # Judged again (a restart without a snapshot): the store has it, no second observation.
    again = RuleStage(engine(), metrics, wall_clock=lambda: now + 60)
    again.judge(ReadingBatch(1, 18, measurements=readings))
    with db.begin() as conn:
        again.commit(conn, 18, ())
    assert sample(registry, "nonsite_findings_total", rule="A3", state="fire") == 2  # judged twice
    assert sample(registry, count, clock="receipt") == 1
    assert sample(registry, count, clock="event") == 1


def case_row(n: int, state: str, tier: str, at: datetime) -> dict[str, object]:
    closed = state in ("closed", "resolved")
    return {
        "open_key": None if closed else f"E{n}|DA001|A3",
        "enterprise_id": f"E{n}",
        "source_id": "DA001",
        "rule": "A3",
        "tier": tier,
        "state": state,
        "condition": "active",
        "positive_list": False,
        "opened_at": at,
        "first_seen": at,
        "last_seen": at,
        "count": 1,
        "unit": "mg/m³",
        "evidence": "{}",
        "recurrence": 0,
        "flaps": 0,
        "updated_at": at,
        "version": 1,
    }


def test_case_gauges_count_by_state_and_tier_and_the_overdue_work_orders(db):
    registry = CollectorRegistry()
    metrics = CaseMetrics(registry)
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    with db.begin() as conn:
        metrics.refresh(conn, now)  # an empty store: every state × tier reads 0
    assert sample(registry, "nonsite_cases", state="sensed", tier="alarm") == 0
    assert sample(registry, "nonsite_work_orders_overdue") == 0
    rows = [
        ("sensed", "alarm"),
        ("sensed", "alarm"),
        ("reminded", "warning"),
        ("dispatched", "alarm"),
        ("on_site", "alarm"),
        ("reported", "alarm"),
        ("closed", "warning"),
    ]
    with db.begin() as conn:
        ids = [
            conn.execute(sa.insert(cases).values(**case_row(n, s, t, now))).inserted_primary_key[0]
            for n, (s, t) in enumerate(rows)
        ]
        for case_id, state, due in (
            (ids[3], "open", now - timedelta(hours=1)),  # overdue
            (ids[4], "on_site", now - timedelta(minutes=1)),  # overdue
            (ids[5], "reported", now - timedelta(days=1)),  # reported: not overdue
            (ids[3], "open", now + timedelta(hours=1)),  # not yet due
        ):
            conn.execute(
                sa.insert(work_orders).values(
                    case_id=case_id,
                    brigade="B1",
                    kind="on_site",
                    state=state,
                    created_at=now - timedelta(days=2),
                    created_by="supervisor",
                    due_at=due,
                )
            )
        metrics.refresh(conn, now)
    assert sample(registry, "nonsite_cases", state="sensed", tier="alarm") == 2
    assert sample(registry, "nonsite_cases", state="reminded", tier="warning") == 1
    assert sample(registry, "nonsite_cases", state="closed", tier="warning") == 1
    assert sample(registry, "nonsite_cases", state="closed", tier="alarm") == 0
    assert sample(registry, "nonsite_work_orders_overdue") == 2
    with db.begin() as conn:  # the sensed cases are closed: their count goes back to 0
        conn.execute(sa.update(cases).where(cases.c.state == "sensed").values(state="closed"))
        metrics.refresh(conn, now)
    assert sample(registry, "nonsite_cases", state="sensed", tier="alarm") == 0
    assert sample(registry, "nonsite_cases", state="closed", tier="alarm") == 2
    series = [s for f in registry.collect() if f.name == "nonsite_cases" for s in f.samples]
    assert len(series) == 9 * 2  # every workflow state × both tiers, and nothing else
