"""Prometheus metrics of the commands to loggers (the service's main process, which sends)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from ingest.commands.store import KINDS


class CommandMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "nonsite_logger_commands_sent",
            "Commands sent to data loggers, by kind: recall, time_get, time_set, command",
            ["kind"],
            registry=registry,
        )
        for kind in KINDS:  # every label from the start (increase() misses a first 1)
            self.sent.labels(kind)
        self.unanswered = Counter(
            "nonsite_logger_commands_unanswered",
            "Commands a logger did not finish answering within [commands] answer_timeout_s",
            registry=registry,
        )
