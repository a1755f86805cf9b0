"""Ingest's tables in the service database: dead letters and consumer checkpoints.

The dead-letter insert and the checkpoint update of one processed batch share a transaction,
so after a crash a batch is either fully recorded or re-processed from the archive.

A dead letter's stored payload is bounded: up to ``DEAD_LETTER_PAYLOAD_BYTES`` it is the exact
bytes; a longer one keeps its first ``DEAD_LETTER_PAYLOAD_BYTES`` and the detail ends with the
whole payload's size and SHA-256 (the message itself is in the raw archive under
``archive_seq`` while retention keeps it, itself cut to the same prefix when it was above
ingest.max_payload_bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from ingest.china_time import stored_utc
from ingest.sqltypes import UTCDateTime

metadata = MetaData()

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("archive_seq", BigInteger, nullable=False, index=True),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("topic", String(256), nullable=False),
    Column("reason", String(64), nullable=False, index=True),
    Column("detail", Text, nullable=False),
    Column("mn", String(64), nullable=True),
    Column("payload", LargeBinary, nullable=False),
)

checkpoints = Table(
    "ingest_checkpoints",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)


DEAD_LETTER_PAYLOAD_BYTES = 4096  # = ingest.archive.PREFIX_BYTES
DETAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    archive_seq: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload: bytes
    mn: str | None = None
    # When ``payload`` is already only the start of the message (the archive kept no more of
    # an oversized one): the whole message's size and SHA-256.
    full_size: int | None = None
    full_sha256: bytes | None = None


def bounded(letter: DeadLetter) -> tuple[bytes, str]:
    """The payload and detail to store: the payload cut to DEAD_LETTER_PAYLOAD_BYTES, and then
    the detail says how large the whole was and its SHA-256."""
    payload = letter.payload
    if letter.full_size is None and len(payload) <= DEAD_LETTER_PAYLOAD_BYTES:
        return payload, letter.detail[:DETAIL_CHARS]
    size = len(payload) if letter.full_size is None else letter.full_size
    sha = letter.full_sha256 if letter.full_sha256 is not None else hashlib.sha256(payload).digest()
    kept = payload[:DEAD_LETTER_PAYLOAD_BYTES]
    note = f" (payload {size} bytes, SHA-256 {sha.hex()}; its first {len(kept)} bytes are kept)"
    return kept, letter.detail[: DETAIL_CHARS - len(note)] + note


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    archive_seq: int
    received_at: datetime
    recorded_at: datetime
    topic: str
    reason: str
    detail: str
    mn: str | None
    payload: bytes


def record_batch(
    conn: Connection, consumer: str, last_seq: int, letters: Sequence[DeadLetter]
) -> None:
    """Store a processed batch's dead letters and move the consumer's checkpoint, in ``conn``'s
    transaction."""
    now = datetime.now(UTC)
    if letters:
        rows = []
        for d in letters:
            payload, detail = bounded(d)
            rows.append(
                {
                    "archive_seq": d.archive_seq,
                    "received_at": d.received_at,
                    "recorded_at": now,
                    "topic": d.topic,
                    "reason": d.reason,
                    "detail": detail,
                    "mn": d.mn,
                    "payload": payload,
                }
            )
        conn.execute(insert(dead_letters), rows)
    moved = conn.execute(
        update(checkpoints)
        .where(checkpoints.c.consumer == consumer)
        .values(seq=last_seq, updated_at=now)
    )
    if moved.rowcount == 0:
        conn.execute(insert(checkpoints).values(consumer=consumer, seq=last_seq, updated_at=now))


def load_checkpoint(engine: Engine, consumer: str) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(checkpoints.c.seq).where(checkpoints.c.consumer == consumer)
        ).scalar()
    return int(value or 0)


def list_dead_letters(
    engine: Engine,
    *,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[StoredDeadLetter]:
    query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if reason:
        query = query.where(dead_letters.c.reason == reason)
    if since:
        query = query.where(dead_letters.c.received_at >= since)
    if until:
        query = query.where(dead_letters.c.received_at < until)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        StoredDeadLetter(
            id=r.id,
            archive_seq=r.archive_seq,
            received_at=stored_utc(r.received_at),
            recorded_at=stored_utc(r.recorded_at),
            topic=r.topic,
            reason=r.reason,
            detail=r.detail,
            mn=r.mn,
            payload=r.payload,
        )
        for r in rows
    ]


def count_dead_letters_by_reason(engine: Engine) -> dict[str, int]:
    query = select(dead_letters.c.reason, func.count()).group_by(dead_letters.c.reason)
    with engine.connect() as conn:
        return {reason: int(n) for reason, n in conn.execute(query)}


def prune_dead_letters(engine: Engine, before: datetime) -> int:
    """Delete the dead letters received before ``before`` (the archive's retention: the
    message itself is gone from the archive by then); the number removed. With each one bounded
    in size, this bounds the table: retention × the rate of refused packets."""
    with engine.begin() as conn:
        result = conn.execute(delete(dead_letters).where(dead_letters.c.received_at < before))
    return int(result.rowcount or 0)
