"""nonsite wiring: configuration, CLI, service runner, HTTP endpoints, embedded broker."""

__version__ = "0.1.0"
