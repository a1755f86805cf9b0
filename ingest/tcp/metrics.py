"""Prometheus metrics of the TCP gateway. Labels are low-cardinality: never an MN or address."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

CLOSE_REASONS = ("peer", "idle", "packet_timeout", "limit_total", "limit_address", "shutdown")
PIECE_OUTCOMES = ("published", "unacknowledged", "refused", "junk", "duplicate")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "nonsite_gateway_connections", "Open logger connections", registry=registry
        )
        self.connections_bound = Gauge(
            "nonsite_gateway_connections_bound",
            "Open connections bound to a logger (a first packet with a known MN and its PW)",
            registry=registry,
        )
        self.accepted = Counter(
            "nonsite_gateway_connections_accepted", "Connections accepted", registry=registry
        )
        self.closed = Counter(
            "nonsite_gateway_connections_closed",
            "Connections closed, by reason: peer, idle, packet_timeout, limit_total, "
            "limit_address, shutdown",
            ["reason"],
            registry=registry,
        )
        self.pieces = Counter(
            "nonsite_gateway_pieces",
            "What the gateway cut from the streams, by outcome: published (acknowledged by the "
            "broker), unacknowledged (no PUBACK in time: no 9014, the logger resends), refused "
            "(the broker said no, e.g. its ACL: no 9014), junk (bytes that are no packet, "
            "published for the record), duplicate (a resend of a packet stored before: "
            "answered again, not published again)",
            ["outcome"],
            registry=registry,
        )
        self.replies = Counter(
            "nonsite_gateway_replies",
            "Packets the gateway wrote to loggers, by CN (9014 data replies, 9013 notification "
            "replies, commands from the platform)",
            ["cn"],
            registry=registry,
        )
        self.commands_undeliverable = Counter(
            "nonsite_gateway_commands_undeliverable",
            "Platform packets for a logger that was connected here but is not now",
            registry=registry,
        )
        # Every label from the start: a counter that first appears at 1 is missed by increase().
        for reason in CLOSE_REASONS:
            self.closed.labels(reason)
        for outcome in PIECE_OUTCOMES:
            self.pieces.labels(outcome)
        self.broker_connected = Gauge(
            "nonsite_gateway_mqtt_connected",
            "1 while the gateway is connected to the broker",
            registry=registry,
        )
