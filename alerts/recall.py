"""A reaction to findings: the hours the rules found missing are recalled from the logger.

A B7 finding (an hour missing or incomplete) asks the outlet's logger for that hour again
(CN 2061, or 2051 for a logger that sends minute data but no hour packets), with the case the
finding opened as its evidence, in the transaction that applied the finding: the request is
queued exactly when the case is. ``ingest.commands`` sends it and records the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection

from alerts.cases import CaseBook
from ingest.commands.auto import AutoCommands, MissingHour
from ingest.stage import Handed, PassiveStage
from rules.findings import Finding


class RecallMissingHours(PassiveStage):
    def __init__(
        self, commands: AutoCommands, cases: CaseBook, mn_of: Mapping[tuple[str, str], str]
    ) -> None:
        """``mn_of``: (enterprise, outlet) → the MN of its logger (a B7 finding names the
        outlet)."""
        self.commands = commands
        self.cases = cases
        self.mn_of = mn_of

    def commit(self, conn: Connection, position: int, handed: Handed) -> Handed:
        found: Sequence[Finding] = handed
        b7 = (self._missing_hour(conn, f) for f in found if f.rule == "B7" and f.state == "fire")
        hours = [h for h in b7 if h is not None]
        if hours:
            self.commands.recall_missing(conn, hours, datetime.now(UTC))
        return handed

    def tick(self, conn: Connection, now: float, handed: Handed) -> Handed:
        return self.commit(conn, -1, handed)

    def _missing_hour(self, conn: Connection, f: Finding) -> MissingHour | None:
        """A B7 finding as the hour to recall, with the case it opened (its evidence)."""
        mn = self.mn_of.get((f.enterprise_id, f.source_id))
        if mn is None:
            return None
        return MissingHour(
            mn=mn,
            start=datetime.fromtimestamp(f.window_start, UTC),
            minute_data=f.evidence.get("data") in ("minute", "realtime"),
            case_id=self.cases.latest_case_id(conn, f.enterprise_id, f.source_id, f.rule),
            factor=f.factor,
        )


__all__ = ["RecallMissingHours"]
