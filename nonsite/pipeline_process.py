"""The parent's handle on the pipeline process: start, wake, supervise, drain."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from nonsite.config.model import Config
from nonsite.pipeline_worker import run_worker

log = logging.getLogger(__name__)

Replies = list[tuple[str, bytes]]


class PipelineProcess:
    def __init__(self, config: Config, on_replies: Callable[[Replies], None]) -> None:
        self._config_json = config.model_dump_json()
        # After draining, the child stops its outbox senders: each may be inside a send that
        # lasts up to its channel's timeout (alerts/outbox.py stop_grace_s), so wait that long.
        self._exit_grace_s = 10.0 + max((c.timeout_s for c in config.alerts.channels), default=0)
        self._on_replies = on_replies
        self._ctx = multiprocessing.get_context("spawn")  # a clean interpreter, no forked threads
        self._send_lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._to_child: Connection | None = None
        self._stopping = False
        self._drained = threading.Event()
        # Set by the reader thread once it has reaped its process. Only that thread waits on
        # the child: two threads waiting on one child race (the one whose waitpid finds the
        # child already reaped, before the other has recorded its exit, sees it alive).
        self._exited = threading.Event()
        self.position = 0
        self.head = 0
        self.error: str | None = None  # the pipeline fails (a bug, or it died), for /readyz
        self.database: str | None = None  # the database is unavailable to it, for /readyz
        self.metrics_text = ""
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        to_child_r, to_child_w = self._ctx.Pipe(duplex=False)
        from_child_r, from_child_w = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=run_worker,
            args=(self._config_json, to_child_r, from_child_w),
            name="nonsite-pipeline",
            daemon=True,
        )
        proc.start()
        to_child_r.close()  # the child's ends live in the child now
        from_child_w.close()
        exited = threading.Event()
        with self._send_lock:
            self._proc, self._to_child, self._exited = proc, to_child_w, exited
        threading.Thread(
            target=self._read,
            args=(from_child_r, proc, exited),
            name="pipeline-reader",
            daemon=True,
        ).start()

    def notify(self) -> None:
        """New messages were archived."""
        self._send(("wake",))

    def _send(self, message: tuple[object, ...]) -> None:
        with self._send_lock:
            if self._to_child is None:
                return
            # A broken pipe means the child died: the reader thread sees it and restarts it.
            with contextlib.suppress(BrokenPipeError, OSError):
                self._to_child.send(message)

    def _read(self, conn: Connection, proc: BaseProcess, exited: threading.Event) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "status":
                _, self.position, self.head, self.error, self.database = message
            elif kind == "metrics":
                self.metrics_text = message[1]
            elif kind == "replies":
                self._on_replies(message[1])
            elif kind == "drained":
                self.position = message[1]
                self._drained.set()
        conn.close()
        proc.join(self._exit_grace_s if self._stopping else 5)
        exited.set()
        if not self._stopping:
            self.restarts += 1
            self.error = f"pipeline process exited with {proc.exitcode}; restarting"
            log.error("%s", self.error)
            time.sleep(min(30.0, 0.5 * 2 ** min(self.restarts, 6)))
            if not self._stopping:
                self.start()

    def stopping(self) -> None:
        """The service has begun to stop: a pipeline that dies from now on is not started
        again (a stop signal to the whole process group ends it at once; started again while
        the service drained the archiver, it was only there to be stopped)."""
        self._stopping = True

    def stop(self, timeout: float = 120.0) -> bool:
        """Let the pipeline decode everything archived, then end it. True if it drained."""
        self.stopping()
        self._send(("drain",))
        deadline = time.monotonic() + timeout
        # A child that died (a signal to the whole process group) will not report: stop
        # waiting for it then, rather than for the whole timeout.
        while not (drained := self._drained.wait(0.2)) and time.monotonic() < deadline:
            if not self.alive:
                drained = self._drained.wait(2.0)  # its last words may still be in the pipe
                break
        proc, exited = self._proc, self._exited
        # The reader thread reaps it once its pipe closes (see _exited): wait for that.
        stuck = proc is not None and not exited.wait(self._exit_grace_s + 1) and proc.is_alive()
        if proc is not None and stuck:
            log.error("pipeline process did not exit; terminating it")
            proc.terminate()
            proc.join(5)
        with self._send_lock:
            if self._to_child is not None:
                self._to_child.close()
                self._to_child = None
        return drained
