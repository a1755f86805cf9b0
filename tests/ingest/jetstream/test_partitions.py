"""Partitioning by enterprise: all of one enterprise's senders in one partition."""

from __future__ import annotations

from ingest.jetstream.partitions import (
    Partitioner,
    enterprise_groups,
    partition_of_key,
    sender_keys,
)
from ingest.registry import Gateway, Meter, Outlet, Registry


def registry() -> Registry:
    return Registry(
        [
            Outlet("e1", "o1", "MN-E1-1", None, "gas"),
            Outlet("e1", "o2", "MN-E1-2", None, "water"),
            Outlet("e2", "o1", "MN-E2-1", None, "gas"),
            Outlet("e3", "o1", "MN-E3-1", None, "gas"),
            Outlet("e4", "o1", "MN-E4-1", None, "gas"),
        ],
        [
            Meter("e1", "m-e1-prod", "production"),
            Meter("e2", "m-e2-ctrl", "control", mn="PWR-LOGGER-2", code="SB1"),
            Meter("e5", "m-e5", "production", mn="PWR-SHARED", code="SB1"),
            Meter("e6", "m-e6", "production", mn="PWR-SHARED", code="SB2"),
        ],
        # A park's gateway carrying two enterprises' loggers and one's meter.
        gateways=[Gateway("park-gw", frozenset({"MN-E3-1", "MN-E4-1"}), frozenset())],
    )


def test_every_sender_of_an_enterprise_has_its_partition() -> None:
    p = Partitioner.of(registry(), 16)
    assert p.partition("MN-E1-1") == p.partition("MN-E1-2") == p.partition("m-e1-prod")
    assert p.partition("MN-E2-1") == p.partition("m-e2-ctrl") == p.partition("PWR-LOGGER-2")


def test_a_gateway_joins_the_enterprises_it_carries() -> None:
    reg = registry()
    groups = enterprise_groups(reg)
    assert groups["e3"] == groups["e4"] == "e3"
    assert groups["e5"] == groups["e6"] == "e5"  # one meters' logger reports both
    assert groups["e1"] == "e1" and groups["e2"] == "e2"
    keys = sender_keys(reg)
    assert keys["park-gw"] == keys["MN-E3-1"] == keys["MN-E4-1"] == "e3"
    p = Partitioner(keys, 7)
    assert p.partition("park-gw") == p.partition("MN-E4-1")


def test_unknown_senders_are_keyed_by_themselves_and_spread() -> None:
    p = Partitioner.of(registry(), 16)
    assert p.key("stranger") == "stranger"
    spread = {p.partition(f"unknown-{i}") for i in range(200)}
    assert len(spread) == 16


def test_the_hash_is_stable_across_processes_and_releases() -> None:
    # Fixed values: ingest nodes and workers on different machines and versions must agree
    # (Python's own hash() would differ per process).
    assert [partition_of_key(k, 16) for k in ("e1", "e2", "91440300MA5XXXXX")] == [4, 8, 4]
    assert [partition_of_key(k, 1024) for k in ("e1", "e2")] == [772, 888]


def test_enterprises_in_a_partition_cover_every_enterprise_once() -> None:
    reg = registry()
    groups = enterprise_groups(reg)
    p = Partitioner.of(reg, 4)
    seen: list[str] = []
    for partition in range(4):
        seen += sorted(p.enterprises_in(partition, groups))
    assert sorted(seen) == sorted(groups)
