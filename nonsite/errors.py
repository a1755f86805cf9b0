"""Errors the CLI reports as one clear line (kept free of heavy imports)."""


class ListenError(RuntimeError):
    """The HTTP address cannot be used."""
