"""What the benchmark watches the service through, from outside its processes: the
database (checkpoint, cases), the webhook the outbox delivers to, and /proc for memory."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import select

from ingest.store import checkpoints


@dataclass(frozen=True)
class CaseSeen:
    at: float  # perf_counter when the bench saw the committed row
    id: int
    enterprise_id: str
    rule: str
    tier: str


class CaseWatch:
    """Sees each new case within about a millisecond of its commit.

    SQLite: ``PRAGMA data_version`` changes when another connection commits, and costs a few
    microseconds, so it is asked every half millisecond and the cases read only when it moved.
    PostgreSQL: the new rows are asked for every millisecond.
    """

    def __init__(self, database_url: str) -> None:
        self.url = sqlalchemy.make_url(database_url)
        self.seen: list[CaseSeen] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="case-watch", daemon=True)
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            self._run_sqlite(Path(str(self.url.database)))
        else:
            self._run_other()

    def _run_sqlite(self, path: Path) -> None:
        while not path.exists() and not self._stop.is_set():
            time.sleep(0.05)
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        last_id = self._max_id_sqlite(db)
        version = None
        self._ready.set()
        while not self._stop.is_set():
            now_version = db.execute("PRAGMA data_version").fetchone()[0]
            if now_version != version:
                version = now_version
                rows = db.execute(
                    "SELECT id, enterprise_id, rule, tier FROM cases WHERE id > ? ORDER BY id",
                    (last_id,),
                ).fetchall()
                last_id = self._record(rows, last_id)
            time.sleep(0.0005)
        db.close()

    @staticmethod
    def _max_id_sqlite(db: sqlite3.Connection) -> int:
        try:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM cases").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0

    def _run_other(self) -> None:
        engine = sqlalchemy.create_engine(self.url)
        query = sqlalchemy.text(
            "SELECT id, enterprise_id, rule, tier FROM cases WHERE id > :last ORDER BY id"
        )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            last_id = int(
                conn.execute(sqlalchemy.text("SELECT coalesce(max(id), 0) FROM cases")).scalar()
                or 0
            )
            self._ready.set()
            while not self._stop.is_set():
                last_id = self._record(conn.execute(query, {"last": last_id}).all(), last_id)
                time.sleep(0.001)
        engine.dispose()

    def _record(self, rows: Any, last_id: int) -> int:
        at = time.perf_counter()
        for row in rows:
            self.seen.append(CaseSeen(at, int(row[0]), row[1], row[2], row[3]))
            last_id = max(last_id, int(row[0]))
        return last_id


class WebhookSink:
    """The monitoring centre's webhook: a real local HTTP server that notes each delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a centre's receiver would: the service's client reuses its
            # connection, where HTTP/1.0 made it connect (and this server start a thread)
            # for every notification.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.received.append((time.perf_counter(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Checkpoints:
    """The checkpoint, asked over one connection (polled every few milliseconds)."""

    def __init__(self, database_url: str) -> None:
        self.engine = sqlalchemy.create_engine(database_url)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.query = select(checkpoints.c.seq).where(checkpoints.c.consumer == "ingest")

    def __call__(self) -> int:
        try:
            return int(self.conn.execute(self.query).scalar() or 0)
        except sqlalchemy.exc.OperationalError:  # the service has not migrated yet
            self.conn.rollback()
            return 0

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def process_tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += process_tree(int(child))
    return out


def memory_kib(pid: int, field: str) -> int:
    """A /proc status field (VmRSS, VmHWM) in KiB; 0 for a process that has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """The service's resident memory, summed over its processes, sampled every 0.2 s; and
    each process's own high-water mark (VmHWM) at the end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_sum_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(memory_kib(p, "VmRSS") for p in process_tree(self.pid))
            self.peak_sum_kib = max(self.peak_sum_kib, total)
            time.sleep(0.2)

    def stop(self) -> dict[str, int]:
        """Per process (by pid): VmHWM in KiB, read before the service ends."""
        self._stop.set()
        self._thread.join(2)
        return {str(p): memory_kib(p, "VmHWM") for p in process_tree(self.pid)}
