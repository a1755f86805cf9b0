"""What a partition holds: its enterprises, as a configuration a worker's stages are built from.

Ingest nodes and workers derive the partitioning from the same configuration
(``ingest.jetstream.partitions``), so a worker that owns partition ``p`` builds its rule
engine, registry and case clock from exactly the enterprises whose data arrives on ``p``:
its absence rules see only its own loggers as silent or present.
"""

from __future__ import annotations

from ingest.jetstream.partitions import Partitioner, enterprise_groups
from ingest.jetstream.publisher import NatsLogin
from ingest.jetstream.stream import StreamSettings
from nonsite.config.model import Config
from nonsite.wiring import build_registry


def stream_settings(config: Config) -> StreamSettings:
    c = config.cluster
    return StreamSettings(
        name=c.stream,
        subject_prefix=c.subject_prefix,
        partitions=c.partitions,
        replicas=c.replicas,
        max_age_s=config.archive.retention_days * 86400.0,
        duplicate_window_s=c.duplicate_window_s,
        max_payload_bytes=config.ingest.max_payload_bytes,
    )


def nats_login(config: Config) -> NatsLogin:
    """The node's NATS user and password, as the keywords of ``connect`` and its users."""
    return {"user": config.cluster.nats_user, "password": config.cluster.nats_password}


def partitioner(config: Config) -> Partitioner:
    return Partitioner.of(build_registry(config), config.cluster.partitions)


def config_for_partition(config: Config, partition: int) -> Config:
    """``config`` with only the enterprises (and the gateways carrying them) of ``partition``."""
    registry = build_registry(config)
    groups = enterprise_groups(registry)
    mine = Partitioner.of(registry, config.cluster.partitions).enterprises_in(partition, groups)
    enterprises = [e for e in config.enterprises if e.id in mine]
    mns = {o.mn for e in enterprises for o in e.outlets} | {
        m.mn for e in enterprises for m in e.meters if m.mn
    }
    meters = {m.id for e in enterprises for m in e.meters}
    gateways = [g for g in config.gateways if set(g.mns) & mns or set(g.meters) & meters]
    return config.model_copy(update={"enterprises": enterprises, "gateways": gateways})


__all__ = ["config_for_partition", "partitioner", "stream_settings"]
