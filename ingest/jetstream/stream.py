"""The stream: its name, subjects, configuration, and how a stored message is read back.

One stream holds every received message, in packs (``ingest.jetstream.pack``): each ingest
node publishes a batch's messages of a partition as one stream message on
``<prefix>.<partition>.<node>``, with a ``Nats-Msg-Id`` derived from its members' digests, so
JetStream's duplicate window drops the same batch published again (a retry after a lost
acknowledgement) and a lone resend of a message it already stored alone. A broker's
re-delivery to a node that resumes its session is checked against that node's last pack of
the partition (``ingest.jetstream.publisher``). A payload above ``max_payload_bytes`` is
stored as its first bytes with its full size and SHA-256, as the archive stores it (a NATS
server refuses a message over its ``max_payload``, and a refused message would block its
batch's acknowledgement for ever). Messages published one by one with headers (the layout
before packs; ``headers_of``) still read back (``stored``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from ingest.archive import PREFIX_BYTES, ArchivedMessage, Storable, message_digest
from ingest.jetstream.pack import FORMAT as PACK_FORMAT
from ingest.jetstream.pack import Member, PackError, position, unpack

MSG_ID = "Nats-Msg-Id"
TOPIC = "Nonsite-Topic"
RECEIVED_US = "Nonsite-Received-Us"
FULL_SIZE = "Nonsite-Full-Size"
FULL_SHA256 = "Nonsite-Full-Sha256"
PACK = "Nonsite-Pack"  # on a pack (ingest.jetstream.pack): its format


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
        """A partition's messages, whichever ingest node published them (a filter)."""
        return f"{self.subject_prefix}.{partition}.>"

    def node_subject(self, partition: int, node: str) -> str:
        """Where ingest node ``node`` publishes the partition's packs: a subject of its own,
        so that the node's last pack of a partition is one lookup (``last_pack_digests``)."""
        return f"{self.subject_prefix}.{partition}.{subject_token(node)}"

    def partition_of(self, subject: str) -> int:
        return int(subject[len(self.subject_prefix) + 1 :].split(".", 1)[0])

    @property
    def subjects(self) -> str:
        return f"{self.subject_prefix}.>"

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


def subject_token(name: str) -> str:
    """``name`` as one subject token (no dots, wildcards or spaces)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def stored(seq: int, payload: bytes, headers: dict[str, str] | None) -> list[Member]:
    """The messages a stream message holds: a pack's members, or the message itself (one
    published unpacked, as before packs), each at its position."""
    h = headers or {}
    if PACK in h:
        if h[PACK] != PACK_FORMAT:
            raise PackError(f"pack {seq}: format {h[PACK]!r}, this version reads {PACK_FORMAT!r}")
        return unpack(seq, payload)
    message = archived(position(seq, 0), payload, h)
    return [Member(message, bytes.fromhex(h.get(MSG_ID, "")) if MSG_ID in h else b"")]


async def last_position(js: JetStreamContext, settings: StreamSettings, partition: int) -> int:
    """The position of the partition's last message in the stream (0: none)."""
    try:
        last = await js.get_last_msg(settings.name, settings.subject(partition))
    except NotFoundError:
        return 0
    members = stored(last.seq or 0, last.data or b"", last.headers)
    return members[-1].message.seq if members else 0


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


__all__ = [
    "StreamSettings",
    "archived",
    "ensure_stream",
    "headers_of",
    "last_position",
    "stored",
    "subject_token",
]
