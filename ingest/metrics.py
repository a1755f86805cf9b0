"""Prometheus metrics of the ingest stage. Labels are low-cardinality: never an MN or a meter.

Two families of metrics because they live in two processes: the receiving side (MQTT and
the raw archive) and the decoding side (the pipeline). ``nonsite serve`` exposes both on one
``/metrics``; keeping the metric names disjoint keeps that exposition valid.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ArchiveMetrics:
    """MQTT connection, receiving and the raw archive (the service's main process)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "nonsite_ingest_messages",
            "MQTT messages received, by outcome: archived (new) or duplicate (a re-delivery "
            "or byte-identical resend, stored once)",
            ["outcome"],
            registry=registry,
        )
        self.archive_commit_seconds = Histogram(
            "nonsite_archive_commit_seconds",
            "Time to store one group commit in the raw archive",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self.archive_batch_messages = Histogram(
            "nonsite_archive_batch_messages",
            "Messages per group commit",
            buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384),
            registry=registry,
        )
        self.pending_ack = Gauge(
            "nonsite_ingest_pending_messages",
            "Messages received but not yet archived and acknowledged",
            registry=registry,
        )
        self.broker_connected = Gauge(
            "nonsite_mqtt_connected", "1 while connected to the broker", registry=registry
        )
        self.broker_connects = Counter(
            "nonsite_mqtt_connects",
            "Successful broker connections, by whether the broker still had our session",
            ["session_present"],
            registry=registry,
        )
        self.broker_disconnects = Counter(
            "nonsite_mqtt_disconnects", "Broker disconnections", registry=registry
        )


class PipelineMetrics:
    """Decoding archived messages into readings and dead letters (the pipeline process)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decoded = Counter(
            "nonsite_ingest_decoded_messages",
            "Archived messages decoded, by outcome: accepted, partial (some packets are dead "
            "letters), dead_letter",
            ["outcome"],
            registry=registry,
        )
        self.frames = Counter(
            "nonsite_ingest_frames",
            "HJ 212 packets and power readings by outcome (accepted or dead_letter)",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "nonsite_ingest_dead_letters",
            "Dead letters by reason code (docs/ingest.md)",
            ["reason"],
            registry=registry,
        )
        self.readings = Counter(
            "nonsite_ingest_readings",
            "Readings handed to the rule stage, by kind",
            ["kind"],
            registry=registry,
        )
        self.unused_power_values = Counter(
            "nonsite_ingest_unused_power_values",
            "Values HJ 212 loggers sent for meters (ST=44 packets, loggers of meters only) that "
            "became no power sample, by reason: unconfigured_code, invalid_flag, no_value",
            ["reason"],
            registry=registry,
        )
        self.replies = Counter(
            "nonsite_ingest_replies", "HJ 212 9014 data replies sent", registry=registry
        )
        self.pipeline_lag = Gauge(
            "nonsite_ingest_pipeline_lag_messages",
            "Archived messages not yet decoded (archive head minus the pipeline checkpoint)",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "nonsite_ingest_pipeline_batch_seconds",
            "Time to decode and record one batch of archived messages",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.db_commit_seconds = Histogram(
            "nonsite_db_commit_seconds",
            "Time of the pipeline's database transactions, from begin to commit, by "
            "transaction: checkpoint (a batch's dead letters, findings, cases and outbox "
            "rows) or tick (the clock's findings and case deadlines)",
            ["transaction"],
            buckets=(
                0.0005,
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1.0,
                2.5,
                10.0,
            ),
            registry=registry,
        )
