"""Settings of the TCP gateway (built from the ``[gateway]`` section by the wiring)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str
    port: int  # 0: a free port (tests)
    # Where a frame is published: the HJ 212 subscription's filter with its "+" replaced by
    # the connection's sender, e.g. "hj212/{sender}".
    data_topic: str = "hj212/{sender}"
    # Where the platform's packets for a logger arrive (commands; 9014 replies of the MQTT
    # path, which the gateway drops: it answers its own connections itself). "" disables.
    command_filter: str = "hj212/+/reply"
    check_pw: bool = True
    tls: ssl.SSLContext | None = field(default=None, repr=False)
    idle_timeout_s: float = 1800.0  # no byte for this long: the connection is closed
    packet_timeout_s: float = 60.0  # a packet's bytes must all arrive within this
    max_connections: int = 10_000
    max_connections_per_address: int = 64  # loggers behind one carrier NAT share an address
    max_unacknowledged: int = 256  # frames awaiting the broker before reading pauses
    ack_timeout_s: float = 10.0  # no PUBACK within this: no 9014 (the logger resends)
    max_junk_bytes: int = 4096
    # At start the port opens once the broker has answered, or after this long: a logger
    # connecting earlier would have its first packets unanswered until it resends them.
    broker_wait_s: float = 10.0
