"""Cluster mode's log: received messages in a NATS JetStream stream, partitioned by enterprise.

In one machine the raw archive (SQLite) is the log the pipeline tails. In a cluster, stateless
ingest nodes publish each received message to a replicated JetStream stream instead, on the
subject of its enterprise's partition, and acknowledge it to the MQTT broker only after
JetStream's own acknowledgement; workers that own a partition tail it from their checkpoint.
"""
