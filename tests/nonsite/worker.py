"""The service's pipeline worker in the test's own process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import Pipe

from nonsite.config.model import Config
from nonsite.pipeline_worker import Worker


@contextmanager
def pipeline_worker(config: Config) -> Iterator[Worker]:
    """A worker of ``config`` on pipes of its own; its archive, database and pipes closed
    afterwards."""
    inbox, parent_out = Pipe(duplex=False)
    parent_in, outbox = Pipe(duplex=False)
    worker = Worker(config, inbox, outbox)
    try:
        yield worker
    finally:
        worker.archive.close()
        worker.engine.dispose()
        for end in (inbox, outbox, parent_in, parent_out):
            end.close()
