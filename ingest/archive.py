"""The raw archive: every accepted MQTT message, durably, before it is acknowledged.

A local SQLite file in WAL mode, written by one thread in group commits (one transaction per
batch of whatever arrived while the previous commit ran). This is hand-written on the stdlib
``sqlite3`` rather than on the service's SQLAlchemy store on purpose: the archive is the ack
path of every message, it must stay local and available when the main database is not, and
a few multi-row INSERTs per batch (see ``append``) are the cheapest durable write Python offers.

Each distinct (topic, payload) is stored once: a broker re-delivery after a crash (the message
was archived but its PUBACK never left) is recognised by its digest and not stored again. A
device resending byte-identical data is the same message and is counted as a duplicate too.
The sequence number is the archive's order and the position consumers checkpoint.

A message larger than ``max_payload_bytes`` (ingest.max_payload_bytes) is not stored whole:
its row keeps the first ``PREFIX_BYTES`` of the payload, with ``full_size`` (its size) and
``full_sha256`` (its SHA-256) set, so that the sequence still accounts for it and a
re-delivery is still recognised (the digest is of the whole message). Rows with ``full_size``
NULL hold the payload whole. Readers must not decode a truncated row as if it were the
message: ``ArchivedMessage.truncated`` tells them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so checkpoints stay valid
    received_us INTEGER NOT NULL,           -- receive time, µs since the Unix epoch (UTC)
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    digest BLOB NOT NULL UNIQUE,            -- blake2b-128 of topic NUL payload (all of it)
    full_size INTEGER,                      -- NULL: payload is whole; else the message's size
    full_sha256 BLOB                        -- SHA-256 of the whole payload when truncated
);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_us);
"""
# Archives made before full_size/full_sha256 existed get them on the first writable open.
_ADDED_COLUMNS = (("full_size", "INTEGER"), ("full_sha256", "BLOB"))
_COLUMNS = "seq, received_us, topic, payload, full_size, full_sha256"
_COLUMNS_BEFORE_TRUNCATION = "seq, received_us, topic, payload, NULL, NULL"

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024  # ingest.max_payload_bytes' default
# What a row keeps of a message above the limit: enough to see what it was (the header of
# the first HJ 212 packet, the start of a JSON document), small enough to store thousands.
PREFIX_BYTES = 4096


_ROWS_PER_INSERT = 500  # 2,000 parameters, far below SQLite's limit of 32,766


@functools.lru_cache(maxsize=64)
def _insert_rows(n: int) -> str:
    return (
        "INSERT OR IGNORE INTO messages (received_us, topic, payload, digest) VALUES "
        + ",".join(["(?, ?, ?, ?)"] * n)
    )


_INSERT_TRUNCATED = (
    "INSERT OR IGNORE INTO messages (received_us, topic, payload, digest, full_size, "
    "full_sha256) VALUES (?, ?, ?, ?, ?, ?)"
)


class Storable(Protocol):
    """Anything with a receive time, a topic and a payload (an MQTT delivery, a test message)."""

    @property
    def received_us(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...


class IncomingMessage(NamedTuple):
    received_us: int
    topic: str
    payload: bytes


@dataclass(slots=True)
class ArchivedMessage:
    seq: int
    received_us: int
    topic: str
    payload: bytes  # the first PREFIX_BYTES only when ``truncated``
    full_size: int | None = None  # set when the archive kept only the payload's start
    full_sha256: bytes | None = None

    @property
    def received_at(self) -> datetime:
        return datetime.fromtimestamp(self.received_us / 1e6, tz=UTC)

    @property
    def truncated(self) -> bool:
        """The archive kept only the start of this message (it was above the size limit)."""
        return self.full_size is not None

    @property
    def size(self) -> int:
        """The size of the message as received."""
        return len(self.payload) if self.full_size is None else self.full_size


def message_digest(topic: str, payload: bytes) -> bytes:
    return hashlib.blake2b(topic.encode("utf-8") + b"\0" + payload, digest_size=16).digest()


def to_us(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("archive times must be aware datetimes")
    return int(when.timestamp() * 1_000_000)


BUSY_TIMEOUT_MS = 10_000  # a reader waits out the writer's group commit rather than fail


def open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that can only read the archive (the pipeline, the charts, the reports):
    it never creates the file, never takes the writer's lock for long."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


@contextlib.contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the archive at ``path`` for the ``with`` block."""
    conn = open_readonly(path)
    try:
        yield conn
    finally:
        conn.close()


class RawArchive:
    """One archive file. ``append`` is for the single writer; reads may come from any thread."""

    def __init__(
        self,
        path: Path,
        *,
        durability: Literal["full", "normal"] = "full",
        readonly: bool = False,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        """``max_payload_bytes``: larger messages are stored as their first PREFIX_BYTES, size
        and SHA-256 (ingest.max_payload_bytes; the pipeline makes them oversize dead letters)."""
        self.path = path
        self._durability = durability
        self._max_payload = max(max_payload_bytes, PREFIX_BYTES)
        self._local = threading.local()
        if readonly:
            if not path.exists():
                raise FileNotFoundError(f"no archive at {path}")
            self._readonly = True
        else:
            self._readonly = False
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            conn.executescript(_SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
        self._columns: str | None = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._readonly:
                conn = open_readonly(self.path)
            else:
                conn = sqlite3.connect(self.path, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self._durability.upper()}")
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = conn
        return conn

    def _select(self) -> str:
        """The columns to read: an archive opened read-only may predate full_size."""
        if self._columns is None:
            have = {row[1] for row in self._conn().execute("PRAGMA table_info(messages)")}
            self._columns = _COLUMNS if "full_size" in have else _COLUMNS_BEFORE_TRUNCATION
        return self._columns

    def append(self, messages: Sequence[Storable]) -> int:
        """Store a batch durably in one transaction; returns how many were new (not duplicates)."""
        if not messages:
            return 0
        values: list[object] = []
        # Runs of whole messages go in multi-row statements, an oversized one on its own, so
        # that the sequence keeps the order of arrival.
        runs: list[list[object] | tuple[object, ...]] = [values]
        limit = self._max_payload
        for m in messages:
            payload = m.payload
            if len(payload) > limit:
                digest = message_digest(m.topic, payload)
                sha = hashlib.sha256(payload).digest()
                row = (m.received_us, m.topic, payload[:PREFIX_BYTES], digest, len(payload), sha)
                values = []
                runs += (row, values)
                continue
            values += (m.received_us, m.topic, payload, message_digest(m.topic, payload))
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            inserted = 0
            for run in runs:
                if isinstance(run, tuple):
                    inserted += conn.execute(_INSERT_TRUNCATED, run).rowcount
                    continue
                # Many rows per statement: the sqlite3 module lets go of the GIL around each
                # step, and with executemany's step per row the network thread took it back
                # every time, so a commit waited on paho once per message (twice as long as
                # alone). One step inserts a whole chunk while the receiving thread runs on.
                for start in range(0, len(run), 4 * _ROWS_PER_INSERT):
                    chunk = run[start : start + 4 * _ROWS_PER_INSERT]
                    inserted += conn.execute(_insert_rows(len(chunk) // 4), chunk).rowcount
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (it does on a full disk): a ROLLBACK then
            # fails with "no transaction is active" and would hide the error that matters.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return inserted

    def read_after(self, seq: int, limit: int = 1000) -> list[ArchivedMessage]:
        """Messages with a sequence number above ``seq``, in order."""
        cur = self._conn().execute(
            f"SELECT {self._select()} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [ArchivedMessage(*row) for row in cur]

    def head_seq(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()
        return int(row[0])

    def last_assigned_seq(self) -> int:
        """The highest sequence number this archive ever gave out (retention may have deleted
        the message itself; AUTOINCREMENT never reuses it)."""
        row = (
            self._conn()
            .execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
            .fetchone()
        )
        return int(row[0]) if row else 0

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def export(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        topic_prefix: str | None = None,
    ) -> Iterator[ArchivedMessage]:
        """Archived messages received in [since, until), in archive order."""
        clauses: list[str] = []
        params: list[int | str] = []
        if since is not None:
            clauses.append("received_us >= ?")
            params.append(to_us(since))
        if until is not None:
            clauses.append("received_us < ?")
            params.append(to_us(until))
        if topic_prefix:
            clauses.append("substr(topic, 1, ?) = ?")
            params += [len(topic_prefix), topic_prefix]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        last = 0
        while True:  # in pages, so that a huge export does not hold one read transaction
            cur = self._conn().execute(
                f"SELECT {self._select()} FROM messages {where}"
                f"{' AND' if where else ' WHERE'} seq > ? ORDER BY seq LIMIT 5000",
                (*params, last),
            )
            page = [ArchivedMessage(*row) for row in cur]
            if not page:
                return
            yield from page
            last = page[-1].seq

    def prune(
        self, older_than: datetime, *, up_to_seq: int | None = None, chunk: int = 10_000
    ) -> int:
        """Delete messages received before ``older_than`` (the retention setting), but none
        after ``up_to_seq`` (what consumers have not processed yet)."""
        cutoff = to_us(older_than)
        limit_seq = up_to_seq if up_to_seq is not None else 2**62
        conn = self._conn()
        removed = 0
        while True:
            cur = conn.execute(
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages "
                "WHERE received_us < ? AND seq <= ? ORDER BY seq LIMIT ?)",
                (cutoff, limit_seq, chunk),
            )
            removed += cur.rowcount
            if cur.rowcount < chunk:
                return removed

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
