"""Ingest stage: raw messages in (MQTT, the loggers' TCP), archived, decoded into readings.

Owns the raw archive (the log every later stage reads), the HJ 212 and power-telemetry
decoders, attribution of frames to enterprises (the registry), dead letters with their
reasons, the loggers' commands (recall, clock checks), the TCP gateway, the pipeline that
tails the archive, and the stage protocol the later stages implement (:mod:`ingest.stage`).
It imports nothing of rules, alerts or nonsite (checked by import-linter).

The names below are the surface the other packages use; they are imported on first use, so
that ``import ingest.hj212`` (the simulator, a decoder CLI) does not load the database layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.lazy import lazy_exports

if TYPE_CHECKING:
    from ingest.archive import ArchivedMessage, IncomingMessage, RawArchive
    from ingest.archiver import Archiver
    from ingest.china_time import CHINA_TZ, china_local, stored_utc, stored_utc_or_none
    from ingest.pipeline import IngestPipeline
    from ingest.processor import IngestPolicy, MessageProcessor, ProcessedBatch
    from ingest.readings import Measurement, PowerSample, ReadingBatch
    from ingest.registry import Registry
    from ingest.stage import Handed, PassiveStage, Stage

_HOMES = {
    "ArchivedMessage": "ingest.archive",
    "IncomingMessage": "ingest.archive",
    "RawArchive": "ingest.archive",
    "Archiver": "ingest.archiver",
    "CHINA_TZ": "ingest.china_time",
    "china_local": "ingest.china_time",
    "stored_utc": "ingest.china_time",
    "stored_utc_or_none": "ingest.china_time",
    "IngestPipeline": "ingest.pipeline",
    "IngestPolicy": "ingest.processor",
    "MessageProcessor": "ingest.processor",
    "ProcessedBatch": "ingest.processor",
    "Measurement": "ingest.readings",
    "PowerSample": "ingest.readings",
    "ReadingBatch": "ingest.readings",
    "Registry": "ingest.registry",
    "Handed": "ingest.stage",
    "PassiveStage": "ingest.stage",
    "Stage": "ingest.stage",
}

__all__ = [
    "CHINA_TZ",
    "ArchivedMessage",
    "Archiver",
    "Handed",
    "IncomingMessage",
    "IngestPipeline",
    "IngestPolicy",
    "Measurement",
    "MessageProcessor",
    "PassiveStage",
    "PowerSample",
    "ProcessedBatch",
    "RawArchive",
    "ReadingBatch",
    "Registry",
    "Stage",
    "china_local",
    "stored_utc",
    "stored_utc_or_none",
]


__getattr__ = lazy_exports(__name__, _HOMES)
