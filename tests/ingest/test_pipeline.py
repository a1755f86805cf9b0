from datetime import UTC, datetime, timedelta

import pytest

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.pipeline import IngestPipeline, ReplayIncompleteError
from ingest.processor import ProcessedBatch
from ingest.readings import ReadingBatch
from ingest.stage import PassiveStage
from ingest.store import list_dead_letters, load_checkpoint
from tests.ingest.fixtures import MN_GAS, processor
from tests.ingest.hj212.frames import packet


def frame(i: int, *, crc: str | None = None) -> bytes:
    seg = (
        f"QN=20261121080000{i:03d};ST=31;CN=2011;PW=123456;MN={MN_GAS};Flag=4;"
        f"CP=&&DataTime=20261121080{i % 10}00;a21026-Rtd={i}.5&&"
    )
    return packet(seg, crc=crc)


class Collect(PassiveStage):
    """A stage that keeps the readings it was given, and counts its commits."""

    def __init__(self):
        self.batches: list[ReadingBatch] = []
        self.commits: list[int] = []
        self.handed: list[object] = []
        self.woken = 0

    def process(self, batch: ProcessedBatch) -> None:
        self.batches.append(batch.readings)

    def commit(self, conn, position, handed):
        self.commits.append(position)
        self.handed.append(handed)
        return [position]

    def committed(self) -> None:
        self.woken += 1

    @property
    def values(self):
        return [m.value for b in self.batches for m in b.measurements]


def fill(archive: RawArchive, items: list[bytes]) -> None:
    now = to_us(datetime.now(UTC))
    archive.append([IncomingMessage(now, "hj212/x", p) for p in items])


def test_catches_up_from_the_checkpoint_after_a_restart(tmp_path, engine):
    archive = RawArchive(tmp_path / "a.sqlite3")
    fill(archive, [frame(i) for i in range(5)] + [frame(99, crc="0000")])
    sink = Collect()
    first = IngestPipeline(archive, engine, processor(), [sink], batch_size=4)
    assert first.run_once() == 4
    assert load_checkpoint(engine, "ingest") == 4
    # A new process resumes after message 4, not from zero.
    sink2 = Collect()
    second = IngestPipeline(archive, engine, processor(), [sink2], batch_size=4)
    assert second.position == 4
    assert second.drain() == 2
    assert sink2.values == [4.5]
    assert [d.reason for d in list_dead_letters(engine)] == ["crc_mismatch"]
    assert second.drain() == 0


def test_a_failing_sink_moves_nothing(tmp_path, engine):
    archive = RawArchive(tmp_path / "a.sqlite3")
    fill(archive, [frame(1), frame(2, crc="0000")])

    class Broken(PassiveStage):
        def commit(self, conn, position, handed):
            raise RuntimeError("rule stage down")

    pipe = IngestPipeline(archive, engine, processor(), [Broken()])
    with pytest.raises(RuntimeError):
        pipe.run_once()
    assert load_checkpoint(engine, "ingest") == 0
    assert list_dead_letters(engine) == []
    sink = Collect()
    assert IngestPipeline(archive, engine, processor(), [sink]).drain() == 2
    assert sink.values == [1.5]


def test_stages_run_in_order_in_the_checkpoint_transaction_then_replies_go_out(tmp_path, engine):
    archive = RawArchive(tmp_path / "a.sqlite3")
    first, second = Collect(), Collect()
    sent: list[tuple[str, bytes]] = []
    pipe = IngestPipeline(
        archive, engine, processor(), [first, second], publish=lambda t, p: sent.append((t, p))
    )
    ack_frame = frame(7).replace(b"Flag=4", b"Flag=5")
    fill(archive, [packet(ack_frame[6:-6].decode())])
    assert pipe.run_once() == 1
    assert first.values == second.values == [7.5]
    # The first stage is handed nothing, the second what the first returned.
    assert (first.handed, second.handed) == ([()], [[1]])
    assert first.woken == second.woken == 1  # after the commit
    assert [t for t, _ in sent] == ["hj212/x/reply"]  # the sender's (gateway x's) own


def test_catch_up_replays_to_a_stage_restored_from_an_older_snapshot(tmp_path, engine):
    archive = RawArchive(tmp_path / "a.sqlite3")
    fill(archive, [frame(i) for i in range(1, 6)])
    IngestPipeline(archive, engine, processor(), [Collect()]).drain()
    before, restored = Collect(), Collect()
    restored.restored_at = 2  # its snapshot is of message 2; the checkpoint is at 5
    pipe = IngestPipeline(archive, engine, processor(), [before, restored])
    assert pipe.catch_up() == 3
    assert restored.values == [3.5, 4.5, 5.5]
    assert before.values == []  # it stored its part with the batches: not given the replay
    assert load_checkpoint(engine, "ingest") == 5  # not moved
    assert pipe.drain() == 0


def test_a_replay_that_cannot_reach_the_checkpoint_fails_rather_than_judge_without_it(
    tmp_path, engine
):
    archive = RawArchive(tmp_path / "a.sqlite3")
    fill(archive, [frame(i) for i in range(1, 6)])
    IngestPipeline(archive, engine, processor(), [Collect()]).drain()
    archive.prune(datetime.now(UTC) + timedelta(days=1), up_to_seq=5)  # 1-5 gone
    restored = Collect()
    restored.restored_at = 2
    pipe = IngestPipeline(archive, engine, processor(), [restored])
    with pytest.raises(
        ReplayIncompleteError, match="stopped at position 2, short of the checkpoint 5"
    ):
        pipe.catch_up()
    assert restored.values == []


def test_a_redelivered_message_gives_its_readings_once(tmp_path, engine):
    archive = RawArchive(tmp_path / "a.sqlite3")
    # The broker re-delivers frame 1 (its PUBACK was lost in a crash), once in the same group
    # commit and once in a later one.
    fill(archive, [frame(1), frame(2), frame(1)])
    fill(archive, [frame(1)])
    sink = Collect()
    IngestPipeline(archive, engine, processor(), [sink]).drain()
    assert sink.values == [1.5, 2.5]
