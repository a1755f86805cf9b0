"""Running nonsite across several processes: a local NATS JetStream cluster."""
