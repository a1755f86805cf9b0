"""The stream: its name, subjects, configuration, and what a message carries besides payload.

One stream holds every received message, on the subject ``<prefix>.<partition>``. Its
messages carry the MQTT topic and the receive time in headers (shown as they are by
``nats stream view``), and a ``Nats-Msg-Id`` derived from (topic, payload) as the archive's
digest is: JetStream's duplicate window drops a broker's re-delivery, or an ingest node's
resend after a lost acknowledgement, as the archive's unique digest does. A payload above
``max_payload_bytes`` is stored as its first bytes with its full size and SHA-256, as the
archive stores it (a NATS server refuses a message over its ``max_payload``, 1 MiB by default,
and a refused message would block its batch's acknowledgement for ever).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from ingest.archive import PREFIX_BYTES, ArchivedMessage, Storable, message_digest

MSG_ID = "Nats-Msg-Id"
TOPIC = "Nonsite-Topic"
RECEIVED_US = "Nonsite-Received-Us"
FULL_SIZE = "Nonsite-Full-Size"
FULL_SHA256 = "Nonsite-Full-Sha256"


@dataclass(frozen=True)
class StreamSettings:
    name: str = "NONSITE_RAW"
    subject_prefix: str = "nonsite.raw"
    partitions: int = 16
    replicas: int = 3
    max_age_s: float = 90 * 86400.0  # the raw archive's retention
    duplicate_window_s: float = 600.0  # a re-delivery within it is stored once
    max_payload_bytes: int = 256 * 1024

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.{partition}"

    @property
    def subjects(self) -> str:
        return f"{self.subject_prefix}.*"

    def config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.name,
            subjects=[self.subjects],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
            discard=api.DiscardPolicy.OLD,
            allow_direct=True,  # reads of a partition's range (charts) from any replica
        )


async def ensure_stream(js: JetStreamContext, settings: StreamSettings) -> api.StreamInfo:
    """Create the stream, or bring an existing one's limits to the configuration (the
    subjects, hence the partition count, must match: changing them is a migration)."""
    wanted = settings.config()
    try:
        info = await js.stream_info(settings.name)
    except NotFoundError:
        return await js.add_stream(wanted)
    have = info.config
    if have.subjects != wanted.subjects:
        raise ValueError(
            f"stream {settings.name} holds subjects {have.subjects}, the configuration wants "
            f"{wanted.subjects}: changing the partitioning is a migration (docs/operations.md)"
        )
    if (have.max_age, have.duplicate_window, have.num_replicas) != (
        wanted.max_age,
        wanted.duplicate_window,
        wanted.num_replicas,
    ):
        info = await js.update_stream(wanted)
    return info


def headers_of(message: Storable, max_payload_bytes: int) -> tuple[bytes, dict[str, str]]:
    """(payload to store, headers) of a received message."""
    payload = message.payload
    headers = {
        MSG_ID: message_digest(message.topic, payload).hex(),
        TOPIC: message.topic,
        RECEIVED_US: str(message.received_us),
    }
    if len(payload) > max_payload_bytes:
        headers[FULL_SIZE] = str(len(payload))
        headers[FULL_SHA256] = hashlib.sha256(payload).hexdigest()
        payload = payload[:PREFIX_BYTES]
    return payload, headers


def archived(seq: int, payload: bytes, headers: dict[str, str] | None) -> ArchivedMessage:
    """A stream message as the pipeline reads the archive's (its sequence the stream's)."""
    h = headers or {}
    full = h.get(FULL_SIZE)
    sha = h.get(FULL_SHA256)
    return ArchivedMessage(
        seq,
        int(h.get(RECEIVED_US, "0")),
        h.get(TOPIC, ""),
        payload,
        int(full) if full is not None else None,
        bytes.fromhex(sha) if sha is not None else None,
    )


__all__ = ["StreamSettings", "archived", "ensure_stream", "headers_of"]
