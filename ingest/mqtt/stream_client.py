"""A paho client for a live stream: many messages per system call, no garbage cycle per message.

paho is what the project uses for MQTT, and it handles the session for us (reconnects, QoS
bookkeeping, MQTT 5). Two things it does per message were what bounded the rate one service
takes live (profiled at 7,500 msg/s; no Python client reads MQTT faster while keeping that
session handling), so this subclass changes only those:

- **Reads.** paho reads a packet at a time: a ``select`` to learn the socket is readable, then
  ``recv(1)`` for the packet type, ``recv(1)`` for each byte of its length and ``recv(n)`` for
  the rest, four or five system calls a message, each handing the GIL away and back: 40 % of
  the receiving thread's time. Here ``_sock_recv`` (paho's one place that reads the socket)
  serves paho's small reads from a buffer refilled by ``recv(64 KiB)``, and says "would block"
  only when the buffer is empty and the socket has nothing; ``loop_read`` keeps reading
  packets while the buffer holds bytes, since ``select`` cannot see them. The buffer belongs
  to one socket: after a reconnect the old connection's bytes are dropped (the broker sends
  again what was not acknowledged).
- **Topic filters.** For every message paho asks its filter trie for per-topic callbacks, and
  the trie's search is a recursive closure: six objects in a reference cycle per message,
  45,000 a second at 7,500 msg/s, which only the cyclic collector frees. The service uses one
  ``on_message`` and no per-topic callbacks, so the trie is replaced by one that has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.matcher import MQTTMatcher

READ_CHUNK = 65536


class _NoTopicCallbacks(MQTTMatcher):
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # paho's matcher is untyped

    def __setitem__(self, key: str, value: Any) -> None:
        raise NotImplementedError("StreamClient takes one on_message, no per-topic callbacks")

    def iter_match(self, topic: str) -> Iterator[Any]:
        return iter(())


class StreamClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message_filtered = _NoTopicCallbacks()
        self._buffered_sock: object | None = None
        self._buffer = b""
        self._buffer_at = 0
        self.socket_reads = 0  # chunks read from the socket (MqttSource.socket_reads)

    def _buffered(self) -> int:
        if self._buffered_sock is not self._sock:
            return 0
        return len(self._buffer) - self._buffer_at

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._buffered():
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError when there is nothing
            self.socket_reads += 1
            if not data:
                return data  # the connection closed
            self._buffered_sock, self._buffer, self._buffer_at = self._sock, data, 0
        at = self._buffer_at
        self._buffer_at = min(at + bufsize, len(self._buffer))  # a short read: paho asks again
        return self._buffer[at : self._buffer_at]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffered():
            rc = super().loop_read(max_packets)
        return rc


__all__ = ["READ_CHUNK", "StreamClient"]
