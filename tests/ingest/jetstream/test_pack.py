"""Packs: several messages of a partition as one stream message, read back as they were."""

from __future__ import annotations

import hashlib

import pytest

from ingest.archive import PREFIX_BYTES, IncomingMessage, message_digest
from ingest.jetstream.pack import (
    MAX_MEMBERS,
    SLOTS,
    PackError,
    pack,
    position,
    split_position,
    unpack,
)

LIMIT = 64 * 1024


def received() -> list[IncomingMessage]:
    big = b"##" + b"x" * (LIMIT + 10)
    return [
        IncomingMessage(1_700_000_000_000_001, "hj212/MN0001", b"##0101QN=1;CN=2011&&abcd\r\n"),
        IncomingMessage(1_700_000_000_000_002, "power/M-\u7535\u88681", b'{"kw": 1.5}'),
        IncomingMessage(1_700_000_000_000_003, "hj212/MN0002", b""),
        IncomingMessage(1_700_000_000_000_004, "hj212/MN0001", big),
    ]


def test_a_pack_reads_back_as_the_messages_it_was_made_of_at_their_positions():
    messages = received()
    packed = pack(messages, LIMIT)
    members = unpack(77, packed.payload)

    assert packed.members == len(members) == 4
    for i, (m, member) in enumerate(zip(messages, members, strict=True)):
        got = member.message
        assert got.seq == 77 * SLOTS + i
        assert (got.received_us, got.topic, got.size) == (m.received_us, m.topic, len(m.payload))
        assert member.digest == message_digest(m.topic, m.payload)  # of the whole payload
    assert [mem.message.payload for mem in members[:3]] == [m.payload for m in messages[:3]]
    last = members[3].message
    assert last.truncated and last.payload == messages[3].payload[:PREFIX_BYTES]
    assert last.full_sha256 == hashlib.sha256(messages[3].payload).digest()
    assert not any(mem.message.truncated for mem in members[:3])


def test_the_same_batch_is_the_same_pack_and_another_order_is_another():
    messages = received()
    first, again = pack(messages, LIMIT), pack(list(messages), LIMIT)
    assert (first.payload, first.msg_id) == (again.payload, again.msg_id)
    digests = b"".join(message_digest(m.topic, m.payload) for m in messages)
    assert first.msg_id == hashlib.blake2b(digests, digest_size=16).hexdigest()
    assert pack(messages[::-1], LIMIT).msg_id != first.msg_id


def test_digests_the_caller_has_make_the_same_pack():
    messages = received()
    digests = [message_digest(m.topic, m.payload) for m in messages]
    assert pack(messages, LIMIT, digests) == pack(messages, LIMIT)
    with pytest.raises(ValueError, match="one digest a message"):
        pack(messages, LIMIT, digests[:-1])


def test_a_pack_holds_one_to_max_members():
    one = IncomingMessage(1, "hj212/MN0001", b"##frame")
    assert len(unpack(1, pack([one] * MAX_MEMBERS, LIMIT).payload)) == MAX_MEMBERS
    with pytest.raises(ValueError, match="at least one"):
        pack([], LIMIT)
    with pytest.raises(ValueError, match=f"at most {MAX_MEMBERS}"):
        pack([one] * (MAX_MEMBERS + 1), LIMIT)


def test_a_damaged_pack_is_refused_naming_its_sequence_and_member():
    payload = pack(received(), LIMIT).payload
    for damaged in (payload[:-1], payload[:5], payload[:40] + b"\xff" * 4 + payload[44:]):
        with pytest.raises(PackError, match=r"^pack 9: member \d"):
            unpack(9, damaged)


def test_positions_keep_the_streams_order_and_split_back():
    assert position(5, SLOTS - 1) < position(6, 0)
    assert split_position(position(123_456_789, 17)) == (123_456_789, 17)
    with pytest.raises(ValueError, match="index"):
        position(1, SLOTS)
