"""Benchmarks of the cluster path (Mosquitto → ingest nodes → JetStream → workers → PostgreSQL).

- ``python -m bench.cluster.throughput``: the cluster's drain rate against single-node
  ``nonsite serve`` in the same run, CPU per message by component, and a scaling model.
- ``python -m bench.cluster.soak``: the chaos test's kills, repeated for minutes, with its
  invariants checked after each round.
"""
