"""Retention of what the database keeps beside the raw archive: the dead letters and the
minute detail as long as the raw data (``[archive] retention_days``), the hour and day values
for years (``[archive] values_retention_days``). One home, run by the single machine's
housekeeping, a cluster's worker that owns partition 0, and ``nonsite archive prune``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from ingest.store import prune_dead_letters
from nonsite.config.model import Config
from rules.history_store import drop_before, drop_months_before
from rules.store import minute_detail

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pruned:
    dead_letters: int
    partitions: list[str]  # PostgreSQL's partitions dropped (SQLite deletes rows)


def prune_database(engine: Engine, config: Config, now: datetime) -> Pruned:
    """Apply the retention settings to the database's dead letters and kept values."""
    raw_cutoff = now - timedelta(days=config.archive.retention_days)
    values_cutoff = now - timedelta(days=config.archive.values_retention_days)
    letters = prune_dead_letters(engine, raw_cutoff)
    with engine.begin() as conn:
        dropped = drop_before(conn, minute_detail, int(raw_cutoff.timestamp()))
        dropped += drop_months_before(conn, int(values_cutoff.timestamp()))
    if dropped:
        log.info("retention: dropped %s", ", ".join(dropped))
    return Pruned(letters, dropped)


__all__ = ["Pruned", "prune_database"]
