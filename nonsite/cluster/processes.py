"""Stopping child processes in a group: the local NATS cluster's servers, the demo's roles."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable


def stop_all(procs: Iterable[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every process still running at once, then wait; SIGKILL those left after
    ``grace`` seconds (stopping them one by one would add up their drains)."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = ["stop_all"]
