"""The loggers' answers to the platform's commands, as a stage of the pipeline.

A batch's answers (CN 9011/9012/1011/1013) are matched to their commands, and the clock checks
due for the loggers heard from are queued, in the batch's checkpoint transaction: an answer
is recorded exactly when the batch that carried it is.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ingest.commands.auto import AutoCommands
from ingest.processor import ProcessedBatch
from ingest.stage import Handed, PassiveStage


class AnswersStage(PassiveStage):
    def __init__(self, commands: AutoCommands) -> None:
        self.commands = commands
        self._batch: ProcessedBatch | None = None

    def process(self, batch: ProcessedBatch) -> None:
        self._batch = batch

    def commit(self, conn: Connection, position: int, handed: Handed) -> Handed:
        batch, self._batch = self._batch, None
        if batch is not None:
            self.commands.record(conn, batch)
        return handed


__all__ = ["AnswersStage"]
