"""Which partition a message belongs to: all of one enterprise's data in one place.

The linkage rules judge an enterprise's power meters against its CEMS, so everything an
enterprise sends (its outlets' loggers, its meters, a meters-only logger, a gateway carrying
them) must reach the one worker that owns its partition. A message is keyed by its sender
(the topic level at the filter's "+", as the broker's ACL allowed it): the sender's enterprise
when the registry knows it. A gateway may carry several enterprises, so the enterprises a
gateway joins are put in one group (union-find over the registry) and the group is the key;
unknown senders are keyed by themselves (their frames become dead letters in their partition).

The partition is a stable hash of the key (BLAKE2b, not Python's ``hash``, which differs per
process) modulo a partition count fixed for the stream's life: changing the count moves keys
between partitions, which the operations guide treats as a migration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from ingest.registry import Registry


def partition_of_key(key: str, partitions: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def enterprise_groups(registry: Registry) -> dict[str, str]:
    """Enterprise id → its group's key: the smallest enterprise id among those a gateway
    joins with it (itself when no gateway joins it to another)."""
    parent: dict[str, str] = {}

    def find(e: str) -> str:
        root = e
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[e] != root:  # path compression
            parent[e], e = root, parent[e]
        return root

    def join(ids: Iterable[str]) -> None:
        roots = sorted({find(e) for e in ids})
        for other in roots[1:]:
            parent[other] = roots[0]

    for outlet in registry.outlets:
        find(outlet.enterprise_id)
    for meter in registry.meters:
        find(meter.enterprise_id)
    for gateway in registry.gateways:
        join(_enterprises_of(registry, gateway.mns, gateway.meters))
    # A meters-only logger reports meters of possibly several enterprises.
    by_logger: dict[str, set[str]] = {}
    for meter in registry.meters:
        if meter.mn is not None:
            by_logger.setdefault(meter.mn, set()).add(meter.enterprise_id)
    for enterprises in by_logger.values():
        join(enterprises)
    return {e: find(e) for e in parent}


def _enterprises_of(registry: Registry, mns: Iterable[str], meters: Iterable[str]) -> set[str]:
    found = set()
    for mn in mns:
        outlet = registry.outlet(mn)
        if outlet is not None:
            found.add(outlet.enterprise_id)
        found.update(m.enterprise_id for m in (registry.meters_of(mn) or {}).values())
    for meter_id in meters:
        known = registry.meter(meter_id)
        if known is not None:
            found.add(known.enterprise_id)
    return found


def sender_keys(registry: Registry) -> dict[str, str]:
    """Sender (an MN, a meter id or a gateway id) → the key of its enterprise group."""
    groups = enterprise_groups(registry)
    keys: dict[str, str] = {}
    for meter in registry.meters:
        keys[meter.meter_id] = groups[meter.enterprise_id]
        if meter.mn is not None:
            keys[meter.mn] = groups[meter.enterprise_id]
    for outlet in registry.outlets:  # an outlet's MN wins over a meter reported by its logger
        keys[outlet.mn] = groups[outlet.enterprise_id]
    for gateway in registry.gateways:
        enterprises = _enterprises_of(registry, gateway.mns, gateway.meters)
        if enterprises:
            keys[gateway.gateway_id] = groups[min(enterprises)]
    return keys


class Partitioner:
    """Sender → partition, for the ingest nodes (where to publish) and the workers (which
    enterprises a partition holds); both build it from the same configuration."""

    def __init__(self, keys: Mapping[str, str], partitions: int) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.partitions = partitions
        self._keys = dict(keys)
        self._cache: dict[str, int] = {}

    @classmethod
    def of(cls, registry: Registry, partitions: int) -> Partitioner:
        return cls(sender_keys(registry), partitions)

    def key(self, sender: str) -> str:
        return self._keys.get(sender, sender)

    def partition(self, sender: str) -> int:
        found = self._cache.get(sender)
        if found is None:
            if len(self._cache) >= 200_000:  # unknown senders must not grow it without bound
                self._cache.clear()
            found = self._cache[sender] = partition_of_key(self.key(sender), self.partitions)
        return found

    def enterprises_in(self, partition: int, groups: Mapping[str, str]) -> set[str]:
        """The enterprises whose group falls in ``partition`` (``groups``: enterprise_groups)."""
        return {
            e for e, key in groups.items() if partition_of_key(key, self.partitions) == partition
        }


__all__ = ["Partitioner", "enterprise_groups", "partition_of_key", "sender_keys"]
