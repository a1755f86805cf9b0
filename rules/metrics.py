"""The rule stage's Prometheus metrics: findings, readings by outcome, finding latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Finding latency: the receipt clock spans 1 ms (found in the batch that was received) to a
# minute; the event clock 10 ms to 2 h (an hour's window closes after its grace, an hour by
# default). Buckets belong to a whole family in Prometheus, so both clocks get the union.
RECEIPT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
EVENT_BUCKETS = (0.01, 0.1, 1, 10, 60, 300, 900, 1800, 2700, 3600, 4500, 5400, 7200)
LATENCY_BUCKETS = tuple(sorted(set(RECEIPT_BUCKETS) | set(EVENT_BUCKETS)))


class RuleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.findings = Counter(
            "nonsite_findings",
            "Findings by rule and state (fire / clear)",
            ["rule", "state"],
            registry=registry,
        )
        self.readings = Counter(
            "nonsite_rule_readings",
            "Readings the rule engine saw, by outcome: judged, late, duplicate, future, "
            "unconfigured",
            ["outcome"],
            registry=registry,
        )
        # One family, two clocks, so that the two are compared on one panel.
        self.finding_latency = Histogram(
            "nonsite_finding_latency_seconds",
            "From a new finding's cause to its storing: clock=receipt from the receipt of the "
            "reading that closed its window, clock=event from its window's end (DataTime)",
            ["clock"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


__all__ = ["LATENCY_BUCKETS", "RuleMetrics"]
