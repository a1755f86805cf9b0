"""Packs: several received messages of one partition as one stream message.

Why: every stream message costs nats-py (publishing, receiving) and the NATS servers (a
replicated entry, an acknowledgement) the same, whatever its size: at one stream message per
frame the cluster spent 140 µs of CPU per frame where one machine spends 54; in packs, 97
(bench/cluster/throughput.py). A pack of a partition's messages from one ingest batch pays
that once for all of them. Ingest nodes publish packs (``ingest.jetstream.publisher``);
workers and web nodes read their members (``ingest.jetstream.stream.stored``).

The format (all integers big-endian), one record per message, in receive order::

    u8   flags            bit 0: the payload is truncated (the message was above the limit)
    u64  received_us
    16 B digest           ingest.archive.message_digest(topic, full payload)
    u16  topic length, the topic (UTF-8)
    u32  payload length, the payload (its first PREFIX_BYTES when truncated)
    if truncated: u32 full size, 32 B SHA-256 of the full payload

A pack's message id is the BLAKE2b of its members' digests in order, so the same batch
published again is the same pack, and JetStream's duplicate window drops it.

Positions: the pipeline's checkpoint is one integer. A member's position is the pack's stream
sequence × ``SLOTS`` + its index, so positions keep the stream's order, a checkpoint says how
far into a pack it got, and a single (unpacked) stream message is the pack of one.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ingest.archive import PREFIX_BYTES, ArchivedMessage, Storable, message_digest

SLOTS = 1024  # members a pack may hold: the index part of a position
MAX_MEMBERS = SLOTS
FORMAT = "1"  # the value of the PACK header; a reader refuses another

_HEAD = struct.Struct(">BQ16sH")  # flags, received_us, digest, topic length
_LEN = struct.Struct(">I")
_FULL = struct.Struct(">I32s")
# A member's bytes besides its topic and payload (a truncated one's size and hash included).
RECORD_OVERHEAD = _HEAD.size + _LEN.size + _FULL.size
_TRUNCATED = 1


class PackError(ValueError):
    """A stream message that is not a well-formed pack (named by its sequence)."""


@dataclass(frozen=True, slots=True)
class Packed:
    """A pack ready to publish: its payload and message id."""

    payload: bytes
    msg_id: str
    members: int


def position(stream_seq: int, index: int) -> int:
    if not 0 <= index < SLOTS:
        raise ValueError(f"a pack member's index is 0 to {SLOTS - 1}, not {index}")
    return stream_seq * SLOTS + index


def split_position(pos: int) -> tuple[int, int]:
    """(stream sequence, index) of a position."""
    return divmod(pos, SLOTS)


def pack(
    messages: Sequence[Storable],
    max_payload_bytes: int,
    digests: Sequence[bytes] | None = None,
) -> Packed:
    r"""One pack of ``messages`` (at most ``MAX_MEMBERS``, of one partition, in order); a
    payload above ``max_payload_bytes`` is kept as its first bytes, its size and SHA-256.
    ``digests``: the messages' ``message_digest``\ s, when the caller has them already."""
    if digests is not None and len(digests) != len(messages):
        raise ValueError("one digest a message")
    if not messages:
        raise ValueError("a pack holds at least one message")
    if len(messages) > MAX_MEMBERS:
        raise ValueError(f"a pack holds at most {MAX_MEMBERS} messages, not {len(messages)}")
    parts: list[bytes] = []
    pack_id = hashlib.blake2b(digest_size=16)
    for i, m in enumerate(messages):
        payload = m.payload
        digest = message_digest(m.topic, payload) if digests is None else digests[i]
        pack_id.update(digest)
        topic = m.topic.encode("utf-8")
        truncated = len(payload) > max_payload_bytes
        kept = payload[:PREFIX_BYTES] if truncated else payload
        parts += [
            _HEAD.pack(_TRUNCATED if truncated else 0, m.received_us, digest, len(topic)),
            topic,
            _LEN.pack(len(kept)),
            kept,
        ]
        if truncated:
            parts.append(_FULL.pack(len(payload), hashlib.sha256(payload).digest()))
    return Packed(b"".join(parts), pack_id.hexdigest(), len(messages))


@dataclass(frozen=True, slots=True)
class Member:
    """A message read back from a pack, with the digest it was published under."""

    message: ArchivedMessage
    digest: bytes


def unpack(stream_seq: int, payload: bytes) -> list[Member]:
    """The members of the pack stored at ``stream_seq``, their positions set."""
    return list(_members(stream_seq, payload))


def _members(stream_seq: int, data: bytes) -> Iterator[Member]:
    view = memoryview(data)
    at, index, end = 0, 0, len(data)
    try:
        while at < end:
            if index == SLOTS:
                raise PackError(f"pack {stream_seq}: more than {SLOTS} members")
            flags, received_us, digest, topic_len = _HEAD.unpack_from(view, at)
            at += _HEAD.size
            topic = bytes(view[at : at + topic_len]).decode("utf-8")
            at += topic_len
            (size,) = _LEN.unpack_from(view, at)
            at += _LEN.size
            if at + size > end:
                raise PackError(f"pack {stream_seq}: member {index} runs past the end")
            payload = bytes(view[at : at + size])
            at += size
            full_size = full_sha = None
            if flags & _TRUNCATED:
                full_size, full_sha = _FULL.unpack_from(view, at)
                at += _FULL.size
            message = ArchivedMessage(
                position(stream_seq, index), received_us, topic, payload, full_size, full_sha
            )
            yield Member(message, digest)
            index += 1
    except (struct.error, UnicodeDecodeError) as exc:
        raise PackError(f"pack {stream_seq}: member {index} is malformed ({exc})") from exc


__all__ = [
    "FORMAT",
    "MAX_MEMBERS",
    "RECORD_OVERHEAD",
    "SLOTS",
    "Member",
    "PackError",
    "Packed",
    "pack",
    "position",
    "split_position",
    "unpack",
]
