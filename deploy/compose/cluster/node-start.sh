#!/bin/sh
# Starts a nonsite node of deploy/docker-compose.cluster.yml: `nonsite ARGS --config` with the
# node's configuration, which is the node's own file (/etc/nonsite/node.toml: its [mqtt]
# table, the client id that must differ from node to node) followed by the file every node
# shares (/etc/nonsite/cluster.toml: everything else, so that all nodes agree on the
# enterprises and the partitions by construction). The two make one valid TOML document
# because the shared file has no [mqtt] table. The result is /tmp/nonsite.toml, which
# NONSITE_CONFIG names for `docker compose exec <node> nonsite ...`.
set -eu
cat /etc/nonsite/node.toml /etc/nonsite/cluster.toml > /tmp/nonsite.toml
exec nonsite "$@" --config /tmp/nonsite.toml
