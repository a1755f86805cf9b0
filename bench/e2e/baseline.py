"""The latency baseline: what this machine allows a bare subscriber that stores and acknowledges.

A paho client in a process of its own, with what the service's receiving side must do and
nothing more: a persistent QoS 1 session with manual acknowledgement, every message written
to SQLite (WAL, ``synchronous=FULL``: the raw archive's durability) by a writer thread in
group commits, and acknowledged only after its commit, the batch's PUBACKs in one write (as
any subscriber that commits in batches would: paho's ``ack`` per message costs a wake-up
and a send each, which made the first baseline fall behind the service it was to bound).
It reads the socket as paho does, a packet at a time. The moment each probe's commit
returns is its latency end; the service's is the committed case, which needs that and the
decoding, the rules and the case besides. Read against the baseline at the same rate, the
service's latency says what the service adds to what the machine costs.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

SUBSCRIPTIONS = ("hj212/+", "power/+")
SLOW_COMMIT_S = 0.025
ROWS_PER_INSERT = 500


def baseline_worker(
    host: str, port: int, db_path: Path, probe_mns: frozenset[str], ctl: Connection
) -> None:
    """Runs until ``ctl`` says ("stop",); answers ("stored",) with (messages stored, the
    commit time of each probe by its MN, its CPU seconds, the commits slower than 25 ms)."""
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY, received_us INTEGER, topic TEXT, "
        "payload BLOB)"
    )
    pending: list[Any] = []
    lock = threading.Condition()
    stored = 0
    probe_stored: dict[str, float] = {}
    slow_commits: list[float] = []  # ms, the commits above SLOW_COMMIT_S

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with lock:
            pending.append(message)
            lock.notify()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        c.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-baseline",
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(host, port, clean_start=False)
    client.loop_start()
    done = threading.Event()

    def write() -> None:
        nonlocal stored
        while not done.is_set():
            with lock:
                if not pending:
                    lock.wait(0.05)
                batch = pending[:]
                pending.clear()
            if not batch:
                continue
            now_us = int(time.time() * 1_000_000)
            began = time.perf_counter()
            db.execute("BEGIN")
            # Many rows per statement: the sqlite3 module lets go of the GIL at every step,
            # and ``executemany`` steps once per row, so each row waited for paho's thread to
            # give the GIL back (the service's archive found the same; README, Performance).
            for at in range(0, len(batch), ROWS_PER_INSERT):
                chunk = batch[at : at + ROWS_PER_INSERT]
                db.execute(
                    "INSERT INTO messages (received_us, topic, payload) VALUES "
                    + ",".join(["(?, ?, ?)"] * len(chunk)),
                    [v for m in chunk for v in (now_us, m.topic, m.payload)],
                )
            db.execute("COMMIT")
            at = time.perf_counter()
            if at - began > SLOW_COMMIT_S:
                slow_commits.append(round((at - began) * 1000, 1))
            # PUBACK: 0x40, remaining length 2, the packet id (MQTT 3.1.1 and 5 alike).
            pubacks = struct.pack(f"!{len(batch)}I", *(0x40020000 | m.mid for m in batch))
            client._packet_queue(mqtt.PUBACK, pubacks, 0, 0)
            for m in batch:
                mn = _mn(m.payload)
                if mn in probe_mns:
                    probe_stored.setdefault(mn, at)
            stored += len(batch)

    writer = threading.Thread(target=write, name="writer", daemon=True)
    writer.start()
    cpu0 = time.process_time()
    try:
        while True:
            request = ctl.recv()
            if request[0] == "stored":
                ctl.send((stored, dict(probe_stored), time.process_time() - cpu0, slow_commits))
            elif request[0] == "stop":
                break
    finally:
        done.set()
        writer.join(5)
        client.loop_stop()
        client.disconnect()
        db.close()
        ctl.close()


def _mn(payload: bytes) -> str | None:
    """The MN of an HJ 212 frame (a probe is known by it: each probe outlet sends one)."""
    at = payload.find(b"MN=")
    if at < 0:
        return None
    end = payload.find(b";", at)
    return payload[at + 3 : end].decode("ascii", "replace") if end > 0 else None


__all__ = ["baseline_worker"]
