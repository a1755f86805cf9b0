"""Rule stage: readings → findings (exceedance, data-anomaly, absence and power-usage rules).

Owns the judgement of the readings ingest decodes (``ingest.readings``): the rule parameters
and industry presets (:mod:`rules.params`, :mod:`rules.power_params`, :mod:`rules.presets`),
markings (:mod:`rules.markings`), the event-time windows (:mod:`rules.windowing`), the two
engines that judge them alike, incremental (:mod:`rules.stream`) and polars batch
(:mod:`rules.batch`), the judges they share (:mod:`rules.judge`, :mod:`rules.power_judge`,
:mod:`rules.linkage`, :mod:`rules.absence`, :mod:`rules.copies`) with one fire/clear semantics
(:mod:`rules.firing`), the findings (:mod:`rules.findings`) and their store, and the stage the
pipeline runs (:mod:`rules.stage`), whose engine state is snapshotted (:mod:`rules.snapshot_codec`).
It imports ingest only, never alerts or nonsite (checked by import-linter); the catalogue is
docs/rules.md.

The names below are the surface the other packages use; they are imported on first use, so
that ``import rules`` loads neither polars nor the database layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.lazy import lazy_exports

if TYPE_CHECKING:
    from rules.batch import BatchEngine, readings_frames
    from rules.findings import RULES, Finding
    from rules.markings import Marking, MarkingBook
    from rules.params import FactorParams, OutletParams, Thresholds
    from rules.power_params import EnterprisePowerParams, MeterParams, Order
    from rules.stage import RuleStage
    from rules.store import list_findings, record_findings
    from rules.stream import StreamEngine

_HOMES = {
    "BatchEngine": "rules.batch",
    "readings_frames": "rules.batch",
    "RULES": "rules.findings",
    "Finding": "rules.findings",
    "Marking": "rules.markings",
    "MarkingBook": "rules.markings",
    "FactorParams": "rules.params",
    "OutletParams": "rules.params",
    "Thresholds": "rules.params",
    "EnterprisePowerParams": "rules.power_params",
    "MeterParams": "rules.power_params",
    "Order": "rules.power_params",
    "RuleStage": "rules.stage",
    "list_findings": "rules.store",
    "record_findings": "rules.store",
    "StreamEngine": "rules.stream",
}

__all__ = [
    "RULES",
    "BatchEngine",
    "EnterprisePowerParams",
    "FactorParams",
    "Finding",
    "Marking",
    "MarkingBook",
    "MeterParams",
    "Order",
    "OutletParams",
    "RuleStage",
    "StreamEngine",
    "Thresholds",
    "list_findings",
    "readings_frames",
    "record_findings",
]


__getattr__ = lazy_exports(__name__, _HOMES)
