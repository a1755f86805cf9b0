"""Errors the CLI reports as one clear line (kept free of heavy imports)."""


class ListenError(RuntimeError):
    """The HTTP address cannot be used."""


class StartupError(RuntimeError):
    """The service must not start as it is configured (the message says why and what to do)."""
