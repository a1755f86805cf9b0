"""The stream's failures as the readers of raw data (charts, data quality) see them.

Apart from ``topics`` so that the HTTP layer can answer them (503) without importing nats-py.
"""

from __future__ import annotations


class StreamUnavailableError(ConnectionError):
    """The stream cannot be read now: NATS unreachable, or no answer in time. The reader's
    caller answers "try again later", not an internal error."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the raw data stream cannot be read now: {reason}")
        self.reason = reason
