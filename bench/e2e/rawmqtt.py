"""A QoS 1 publisher that costs the kernel, not the interpreter: pre-encoded MQTT 3.1.1 packets.

Written by hand because no client library does this: paho spends tens of microseconds of
Python per ``publish`` (its packet object, its queue, its lock, a socket write each), so
three paho publishers took half of this two-core machine at 7,500 msg/s, CPU the service
under test then did not have. Here every PUBLISH is encoded before the run starts, a pacing
tick hands the due ones to the kernel in one ``sendall``, and a reader thread counts the
PUBACKs in whatever chunks the socket returns. What the broker and the subscriber see is the
same: QoS 1 PUBLISH packets, each acknowledged.

Only what a publisher needs: CONNECT (clean session, keep-alive off, so there are no pings),
PUBLISH QoS 1, PUBACK, DISCONNECT (MQTT 3.1.1, OASIS standard sections 3.1-3.4, 3.14).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterable

PUBACK = 0x40
MAX_MID = 65535


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str) -> bytes:
    body = _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _utf8(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def publish_packet(mid: int, topic: str, payload: bytes) -> bytes:
    """PUBLISH, QoS 1, not retained."""
    head = _utf8(topic) + struct.pack("!H", mid)
    return bytes([0x32]) + _remaining_length(len(head) + len(payload)) + head + payload


def mid_of(index: int) -> int:
    """The packet identifier of the ``index``-th message (1..65535, then again)."""
    return index % MAX_MID + 1


class RawPublisher:
    """One connection; :meth:`send` hands pre-encoded packets to the kernel, a thread reads
    the PUBACKs. ``sampled``: the packet identifiers whose PUBACK times are kept."""

    def __init__(self, host: str, port: int, client_id: str, sampled: Iterable[int] = ()) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        connack = self._recv_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"broker refused the connection: CONNACK {connack.hex()}")
        self.sock.settimeout(None)
        self.acked = 0
        self._sampled = frozenset(sampled)
        self.ack_times: dict[int, list[float]] = {}  # sampled mid → each PUBACK's time
        self._reader = threading.Thread(target=self._read, name="pubacks", daemon=True)
        self._reader.start()

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def send(self, packets: bytes) -> None:
        self.sock.sendall(packets)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            at = time.perf_counter()
            buf += chunk
            i = 0
            while len(buf) - i >= 2:
                # One-byte remaining lengths only: a publisher receives PUBACKs (2) and
                # nothing longer.
                kind, size = buf[i], buf[i + 1]
                if len(buf) - i < 2 + size:
                    break
                if kind & 0xF0 == PUBACK:
                    self.acked += 1
                    mid = (buf[i + 2] << 8) | buf[i + 3]
                    if mid in self._sampled:
                        self.ack_times.setdefault(mid, []).append(at)
                i += 2 + size
            buf = buf[i:]

    def wait_acked(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        try:
            self.sock.sendall(bytes([0xE0, 0]))  # DISCONNECT
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5)
        self.sock.close()


__all__ = ["RawPublisher", "connect_packet", "mid_of", "publish_packet"]
