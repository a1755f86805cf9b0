"""Dead letters and checkpoints against SQLite and PostgreSQL, through the real migrations."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from ingest.store import (
    DeadLetter,
    count_dead_letters_by_reason,
    list_dead_letters,
    load_checkpoint,
    prune_dead_letters,
    record_batch,
)
from nonsite.db import alembic_config, make_engine, migrate


def letter(seq: int, reason: str, when: datetime) -> DeadLetter:
    return DeadLetter(seq, when, "hj212/X", reason, f"detail {seq}", b"\xff\x00 raw", "MN1")


def test_migrations_create_the_tables_and_are_idempotent(engine):
    migrate(engine)
    assert {"dead_letters", "ingest_checkpoints", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )


def test_downgrade_and_upgrade(engine):
    from alembic import command

    command.downgrade(alembic_config(engine), "base")
    assert "dead_letters" not in inspect(engine).get_table_names()
    migrate(engine)
    assert "dead_letters" in inspect(engine).get_table_names()


def test_batch_records_letters_and_moves_checkpoint(engine):
    t = datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert load_checkpoint(engine, "ingest") == 0
    with engine.begin() as conn:
        record_batch(conn, "ingest", 10, [letter(3, "crc_mismatch", t), letter(7, "unknown_mn", t)])
    with engine.begin() as conn:
        record_batch(conn, "ingest", 20, [letter(15, "crc_mismatch", t + timedelta(hours=1))])
    assert load_checkpoint(engine, "ingest") == 20
    letters = list_dead_letters(engine)
    assert [d.archive_seq for d in letters] == [15, 7, 3]  # newest first
    assert letters[0].payload == b"\xff\x00 raw"  # bytes kept exactly
    assert letters[0].received_at == t + timedelta(hours=1)
    assert [d.archive_seq for d in list_dead_letters(engine, reason="crc_mismatch")] == [15, 3]
    assert [d.archive_seq for d in list_dead_letters(engine, since=t + timedelta(minutes=30))] == [
        15
    ]
    assert count_dead_letters_by_reason(engine) == {"crc_mismatch": 2, "unknown_mn": 1}


def test_failed_transaction_records_nothing(engine):
    t = datetime(2026, 11, 21, tzinfo=UTC)

    def crash_before_commit() -> None:
        with engine.begin() as conn:
            record_batch(conn, "ingest", 5, [letter(1, "bad_cp", t)])
            raise RuntimeError("crash between the insert and the commit")

    with pytest.raises(RuntimeError):
        crash_before_commit()
    assert load_checkpoint(engine, "ingest") == 0
    assert list_dead_letters(engine) == []


def test_checkpoints_are_per_consumer(engine):
    with engine.begin() as conn:
        record_batch(conn, "a", 5, [])
        record_batch(conn, "b", 9, [])
    assert (load_checkpoint(engine, "a"), load_checkpoint(engine, "b")) == (5, 9)


def test_make_engine_creates_the_sqlite_directory(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'n.db'}")
    migrate(eng)
    assert (tmp_path / "deep" / "dir" / "n.db").exists()
    assert load_checkpoint(eng, "x") == 0


def test_dead_letters_older_than_the_retention_are_pruned(engine):
    t = datetime(2026, 11, 21, 8, tzinfo=UTC)
    with engine.begin() as conn:
        record_batch(
            conn,
            "ingest",
            3,
            [letter(1, "crc_mismatch", t - timedelta(days=91)), letter(2, "unknown_mn", t)],
        )
    assert prune_dead_letters(engine, t - timedelta(days=90)) == 1
    assert [d.archive_seq for d in list_dead_letters(engine)] == [2]
    assert prune_dead_letters(engine, t - timedelta(days=90)) == 0
