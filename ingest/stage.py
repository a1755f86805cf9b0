"""The stage protocol: what the pipeline runs after decoding, declared once.

The raw archive is the log; :class:`ingest.pipeline.IngestPipeline` tails it, decodes a batch
of messages and hands it to its stages in order (the loggers' answers to commands, the rules,
the alerts, the reactions to findings). Every stage writes what it made of the batch in the
batch's checkpoint transaction, so after a crash a batch is either wholly done or done again,
never half done:

``process(batch)``
    Before the transaction: the CPU work on the decoded batch (judging readings). A stage that
    only reacts to what the stage before it hands on does nothing here.
``commit(conn, position, handed)``
    Inside the checkpoint's transaction: store this batch's results and return what the next
    stage takes (the rule stage hands on the findings new to the store, the alert stage the
    findings it applied). ``handed`` is what the stage before returned (nothing for the first).
``tick(conn, now, handed)``
    The clock (every ``TICK_EVERY_S`` of the runner): wall-clock work such as the absence
    rules and the cases' deadlines, inside a transaction of its own, chained like ``commit``.
``committed()``
    After either transaction committed: wake whoever waits on the rows (the outbox
    dispatcher). Woken inside the transaction, it would look before the commit.
``between_batches(db, position)``
    After each batch and while waiting for the next: housekeeping on a timer of the stage's
    own (a snapshot of its state at ``position``, the checkpoint it reflects; gauges).
``restored_at``
    The archive position the stage's state reflects when it was built (restored from its
    snapshot), or None for a stage without state. The pipeline replays the archive from there
    up to the checkpoint through that stage and those after it, so that nothing judged after
    the snapshot is lost; stages before it are not given the replay (they already stored it).

What a stage hands on is typed by the stages (``rules.findings.Finding`` between the rule and
alert stages); the pipeline, below both in the layers, passes it along unread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from ingest.processor import ProcessedBatch

Handed = Sequence[Any]
NOTHING: Handed = ()


class Stage(Protocol):
    restored_at: int | None

    def process(self, batch: ProcessedBatch) -> None: ...

    def commit(self, conn: Connection, position: int, handed: Handed) -> Handed: ...

    def tick(self, conn: Connection, now: float, handed: Handed) -> Handed: ...

    def committed(self) -> None: ...

    def between_batches(self, db: Engine, position: int) -> None: ...


class PassiveStage:
    """Defaults for a stage that needs only some of the protocol: no state, no CPU work, hands
    on what it was handed."""

    restored_at: int | None = None

    def process(self, batch: ProcessedBatch) -> None:
        return None

    def commit(self, conn: Connection, position: int, handed: Handed) -> Handed:
        return handed

    def tick(self, conn: Connection, now: float, handed: Handed) -> Handed:
        return handed

    def committed(self) -> None:
        return None

    def between_batches(self, db: Engine, position: int) -> None:
        return None


__all__ = ["NOTHING", "Handed", "PassiveStage", "Stage"]
