import hashlib
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest.archive import PREFIX_BYTES, IncomingMessage, RawArchive, to_us


def msg(i: int, when: datetime | None = None, topic: str = "hj212/A") -> IncomingMessage:
    when = when or datetime(2026, 11, 21, tzinfo=UTC)
    return IncomingMessage(to_us(when), topic, f"payload {i}".encode())


def test_append_and_read_in_order(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3")
    assert archive.append([msg(i) for i in range(5)]) == 5
    got = archive.read_after(0)
    assert [m.payload for m in got] == [f"payload {i}".encode() for i in range(5)]
    assert [m.seq for m in got] == sorted(m.seq for m in got)
    assert archive.read_after(got[2].seq) == got[3:]
    assert archive.head_seq() == got[-1].seq


def test_redelivered_message_is_stored_once(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3")
    assert archive.append([msg(1), msg(2)]) == 2
    # The broker re-delivers 2 (its PUBACK was lost) together with new message 3.
    assert archive.append([msg(2), msg(3), msg(3)]) == 1
    assert archive.count() == 3


def test_a_large_batch_is_stored_whole_in_order_with_its_repeats_counted_once(tmp_path):
    """Batches are inserted many rows per statement: across statement boundaries too."""
    archive = RawArchive(tmp_path / "a.sqlite3")
    assert archive.append([msg(i) for i in range(300)]) == 300
    # 1,234 messages: 100 already stored, 50 repeated within the batch, across chunk edges.
    batch = [msg(i) for i in range(200, 1300)] + [msg(i) for i in range(450, 550)]
    batch += [msg(i) for i in range(1300, 1334)]
    assert archive.append(batch) == 1034
    stored = archive.read_after(0, limit=5000)
    assert [m.payload for m in stored] == [f"payload {i}".encode() for i in range(1334)]
    assert archive.count() == 1334


def test_same_payload_on_another_topic_is_a_different_message(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3")
    assert archive.append([msg(1, topic="hj212/A"), msg(1, topic="hj212/B")]) == 2


def test_durable_across_reopen_and_sequence_never_reused(tmp_path):
    path = tmp_path / "a.sqlite3"
    archive = RawArchive(path)
    archive.append([msg(i) for i in range(3)])
    head = archive.head_seq()
    archive.prune(datetime(2100, 1, 1, tzinfo=UTC))  # removes everything
    archive.close()
    reopened = RawArchive(path)
    assert reopened.count() == 0
    reopened.append([msg(99)])
    assert reopened.head_seq() > head  # AUTOINCREMENT: checkpoints stay valid


def test_export_filters_by_receive_time_and_topic(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3")
    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    archive.append(
        [msg(i, t0 + timedelta(hours=i), "hj212/A" if i % 2 else "power/M") for i in range(6)]
    )
    assert [
        m.payload for m in archive.export(t0 + timedelta(hours=2), t0 + timedelta(hours=4))
    ] == [
        b"payload 2",
        b"payload 3",
    ]
    assert len(list(archive.export(topic_prefix="power/"))) == 3
    assert len(list(archive.export())) == 6


def test_export_pages_through_large_archives(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3")
    archive.append([msg(i) for i in range(12_001)])
    assert sum(1 for _ in archive.export()) == 12_001


def test_prune_respects_retention_and_unprocessed_messages(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3")
    old = datetime(2026, 1, 1, tzinfo=UTC)
    new = datetime(2026, 11, 1, tzinfo=UTC)
    archive.append([msg(i, old) for i in range(4)] + [msg(10, new)])
    seqs = [m.seq for m in archive.read_after(0)]
    # The pipeline has only processed the first two: the other old ones must stay.
    assert archive.prune(datetime(2026, 6, 1, tzinfo=UTC), up_to_seq=seqs[1]) == 2
    assert archive.prune(datetime(2026, 6, 1, tzinfo=UTC)) == 2
    assert [m.payload for m in archive.read_after(0)] == [b"payload 10"]


def test_readonly_archive_sees_committed_writes_while_the_writer_runs(tmp_path):
    path = tmp_path / "a.sqlite3"
    writer = RawArchive(path)
    reader = RawArchive(path, readonly=True)
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            writer.append([msg(i)])
            i += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        deadline = time.monotonic() + 10
        seen = 0
        while seen < 50 and time.monotonic() < deadline:
            seen = len(reader.read_after(0, 100_000))
        assert seen >= 50
    finally:
        stop.set()
        t.join()
    with pytest.raises(sqlite3.OperationalError):
        reader.append([msg(-1)])


def test_readonly_archive_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError):
        RawArchive(tmp_path / "missing.sqlite3", readonly=True)


# -- oversized messages (issue 16): a bounded record, not the whole payload ------------------


def big(n: int, fill: bytes = b"x") -> IncomingMessage:
    return IncomingMessage(to_us(datetime(2026, 11, 21, tzinfo=UTC)), "hj212/A", fill * n)


def test_an_oversized_message_is_stored_as_its_start_size_and_sha256(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3", max_payload_bytes=10_000)
    at_limit, above = big(10_000, b"a"), big(50_000_000, b"b")
    assert archive.append([at_limit, above]) == 2
    whole, cut = archive.read_after(0)
    assert whole.payload == at_limit.payload and not whole.truncated and whole.size == 10_000
    assert cut.truncated and cut.size == 50_000_000 == cut.full_size
    assert cut.payload == b"b" * PREFIX_BYTES
    assert cut.full_sha256 == hashlib.sha256(above.payload).digest()
    assert list(archive.export()) == [whole, cut]
    # Only the prefix is on disk.
    assert (tmp_path / "a.sqlite3").stat().st_size + sum(
        p.stat().st_size for p in tmp_path.glob("a.sqlite3-*")
    ) < 1_000_000


def test_a_redelivered_oversized_message_is_still_recognised(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3", max_payload_bytes=10_000)
    assert archive.append([big(20_000)]) == 1
    # Same start, another end: another message. The same message again: a duplicate.
    assert archive.append([big(20_000), big(20_001)]) == 1
    assert [m.size for m in archive.read_after(0)] == [20_000, 20_001]


def test_a_batch_mixing_oversized_and_ordinary_messages_keeps_the_order_of_arrival(tmp_path):
    archive = RawArchive(tmp_path / "a.sqlite3", max_payload_bytes=10_000)
    batch = [msg(i) for i in range(700)]
    batch[3:3] = [big(10_001, b"1")]
    batch[600:600] = [big(30_000, b"2"), big(40_000, b"3")]
    batch.append(big(50_000, b"4"))
    assert archive.append(batch) == len(batch)
    stored = archive.read_after(0, limit=5000)
    assert [m.size for m in stored] == [len(m.payload) for m in batch]
    assert [m.payload[:1] for m in stored] == [m.payload[:1] for m in batch]
    assert [m.seq for m in stored] == sorted(m.seq for m in stored)


def test_an_archive_from_before_truncation_is_read_and_upgraded(tmp_path):
    path = tmp_path / "a.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_us INTEGER "
        "NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, digest BLOB NOT NULL UNIQUE);"
        "INSERT INTO messages (received_us, topic, payload, digest) VALUES (1, 't', x'01', x'02');"
    )
    old.close()
    [before] = RawArchive(path, readonly=True).read_after(0)  # read-only: as it is
    assert (before.payload, before.truncated) == (b"\x01", False)
    archive = RawArchive(path, max_payload_bytes=10_000)  # the service's open adds the columns
    archive.append([big(20_000)])
    first, cut = archive.read_after(0)
    assert first == before and cut.truncated and cut.size == 20_000


def test_replay_keeps_an_oversized_message_oversized(tmp_path):
    from nonsite.config.model import Config
    from nonsite.replay import load_messages

    path = tmp_path / "archive.sqlite3"
    archive = RawArchive(path, max_payload_bytes=10_000)
    archive.append([msg(1), big(20_000)])
    archive.close()
    _, cut = load_messages([str(path)], Config())
    assert cut.truncated and cut.size == 20_000 and len(cut.payload) == PREFIX_BYTES


def test_a_full_database_is_raised_as_such_not_as_a_failed_rollback(tmp_path):
    """SQLite rolls the transaction back itself when the disk (here: max_page_count) is full;
    the archive's own ROLLBACK then failed with "no transaction is active" and hid the error
    that says what is wrong."""
    archive = RawArchive(tmp_path / "a.sqlite3")
    archive.append([IncomingMessage(1, "t", b"x")])
    conn = archive._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # no room for another page
    batch = [IncomingMessage(i, "t", bytes([i]) * 5000) for i in range(2, 50)]
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        archive.append(batch)
    assert not conn.in_transaction
    assert archive.count() == 1
    conn.execute("PRAGMA max_page_count=1073741823")  # room again: the same batch goes in
    assert archive.append(batch) == len(batch)
