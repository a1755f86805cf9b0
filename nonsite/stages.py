"""Configuration → the pipeline's stages: the one place that composes them.

In order: the loggers' answers to commands (ingest), the rules (restored from their
snapshot), the alerts (cases, the dispatcher's wake-up), and the recall of the hours the rules
found missing. Each stage is defined in its own package; this module only chooses and joins
them (``nonsite/pipeline_worker.py`` runs the result in a process of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine, func, select

from alerts.metrics import CaseMetrics
from alerts.recall import RecallMissingHours
from alerts.stage import AlertStage
from ingest.commands.stage import AnswersStage
from ingest.stage import Stage
from nonsite.alert_wiring import build_case_book
from nonsite.config.model import Config
from nonsite.db_health import is_unavailable
from nonsite.rule_wiring import rule_setup
from nonsite.wiring import build_auto_commands
from rules.metrics import RuleMetrics
from rules.stage import CONSUMER as RULES_CONSUMER
from rules.stage import RuleStage, restore
from rules.store import declared_markings
from rules.stream import StreamEngine

log = logging.getLogger("nonsite.pipeline")


class StageMetrics:
    """The stages' metrics in the pipeline process's registry (created once: a stage rebuilt
    after a database outage keeps counting in the same families)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rules = RuleMetrics(registry)
        self.cases = CaseMetrics(registry)


class RuleEngines:
    """The rule engine of the configuration and of the markings declared online, rebuilt when
    more are declared (they excuse the data judged from then on)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.declared = 0  # declared markings the engine was built with

    def build(self, conn: Connection) -> StreamEngine:
        setup = rule_setup(self.config, conn)
        self.declared = len(setup.declared)
        return setup.stream_engine()

    def if_changed(self, conn: Connection) -> StreamEngine | None:
        """A rebuilt engine when markings were declared since the last build, else None."""
        count = conn.execute(select(func.count()).select_from(declared_markings)).scalar_one()
        if count == self.declared:
            return None
        engine = self.build(conn)
        log.info("rule engine: %d declared markings", self.declared)
        return engine


def build_stages(
    config: Config,
    db: Engine,
    metrics: StageMetrics,
    wake_dispatcher: Callable[[], None],
    *,
    partition: int | None = None,
) -> list[Stage]:
    """The stages over the database ``db``; the rule engine restored from its snapshot.
    ``partition``: a cluster worker's partition, whose enterprises ``config`` holds (the rule
    snapshot is the partition's, the case deadlines its enterprises')."""
    engines = RuleEngines(config)

    def fresh() -> StreamEngine:
        with db.connect() as conn:
            return engines.build(conn)

    consumer = RULES_CONSUMER if partition is None else f"{RULES_CONSUMER}.p{partition}"
    engine, position = restore(fresh, db, consumer)
    commands = build_auto_commands(config)
    cases = build_case_book(config)
    if partition is not None:
        cases.enterprises = frozenset(e.id for e in config.enterprises)
    mn_of = {(e.id, o.id): o.mn for e in config.enterprises for o in e.outlets}
    refresh: Callable[[Connection], StreamEngine | None] = engines.if_changed
    return [
        AnswersStage(commands),
        RuleStage(
            engine,
            metrics.rules,
            snapshot_every_s=config.rules.snapshot_every_s,
            restored_at=position,
            refresh=refresh,
            consumer=consumer,
        ),
        AlertStage(
            cases, wake=wake_dispatcher, metrics=metrics.cases, is_unavailable=is_unavailable
        ),
        RecallMissingHours(commands, cases, mn_of),
    ]


__all__ = ["RuleEngines", "StageMetrics", "build_stages"]
