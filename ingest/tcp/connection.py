"""One data logger's TCP connection: framing, its binding to a sender, flow control.

An ``asyncio.Protocol`` rather than streams: an idle connection then costs its transport and
this object (the memory per idle connection is measured in bench/gateway.py), and a read is
handled without a task per connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ingest.hj212.stream import StreamFramer

if TYPE_CHECKING:
    from ingest.tcp.gateway import TcpGateway


class LoggerConnection(asyncio.Protocol):
    __slots__ = (
        "_gateway",
        "address",
        "closing_reason",
        "framer",
        "last_read",
        "packet_started",
        "paused",
        "peer",
        "sender",
        "transport",
        "unacknowledged",
    )

    def __init__(self, gateway: TcpGateway) -> None:
        self._gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.address = ""  # the peer's IP address
        self.peer = ""  # address:port, for the log
        self.framer = StreamFramer(gateway.settings.max_junk_bytes)
        # Who this connection speaks for once a packet has authenticated it: an MN, or the id
        # of the [[gateways]] entry listing that MN. None until then.
        self.sender: str | None = None
        self.last_read = time.monotonic()
        self.packet_started: float | None = None  # when the incomplete packet began arriving
        self.unacknowledged = 0  # frames published, their PUBACK not yet here
        self.paused = False
        self.closing_reason = "peer"

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.address = str(peer[0])
        self.peer = f"{peer[0]}:{peer[1]}"
        self._gateway.opened(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.last_read = now
        pieces = self.framer.feed(data)
        self.packet_started = (
            (now if self.packet_started is None else self.packet_started)
            if (self.framer.pending)
            else None
        )
        if pieces:
            self._gateway.handle_pieces(self, pieces)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        rest = self.framer.flush()
        if rest:  # a packet cut off by the disconnect: kept for the record
            self._gateway.handle_pieces(self, [rest])
        self._gateway.closed(self)

    # -- used by the gateway ------------------------------------------------------------------

    def write(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def close(self, reason: str) -> None:
        self.closing_reason = reason
        if self.transport is not None:
            self.transport.close()

    def published(self) -> None:
        self.unacknowledged += 1
        if self.unacknowledged >= self._gateway.settings.max_unacknowledged and not self.paused:
            # A logger that sends faster than the broker acknowledges slows only itself.
            self.paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def acknowledged(self) -> None:
        self.unacknowledged -= 1
        if self.paused and self.unacknowledged < self._gateway.settings.max_unacknowledged // 2:
            self.paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
