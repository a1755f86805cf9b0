"""Prometheus metrics of the commands to loggers (the service's main process, which sends)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class CommandMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "nonsite_logger_commands_sent",
            "Commands sent to data loggers, by kind: recall, time_get, time_set, command",
            ["kind"],
            registry=registry,
        )
        self.unanswered = Counter(
            "nonsite_logger_commands_unanswered",
            "Commands a logger did not finish answering within [commands] answer_timeout_s",
            registry=registry,
        )
