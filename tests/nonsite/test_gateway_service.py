"""Real loggers connect as they are: HJ 212 over TCP into a running ``nonsite serve``.

A logger process talks to the gateway that serve runs ([tcp] listen), through a real
Mosquitto, into the raw archive, the rules and the dead letters: packets split and glued
across reads are stored and judged, a packet for another enterprise on a bound connection is
a ``foreign_mn`` dead letter, and while the broker is down nothing is answered and the
logger's resend is stored once.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.archive import RawArchive
from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import decode_payload
from ingest.hj212.model import Hj212Frame
from ingest.store import dead_letters
from nonsite.db import make_engine
from nonsite.embedded_broker import free_port
from rules.store import findings
from tests.brokers import wait_port
from tests.service_config import gas_enterprise, service_lines, write_lines
from tests.service_process import ServiceProcess, count, gas_hours, gas_packet, wait_for

pytestmark = pytest.mark.integration

MN_A = "33010000000000000000T0001"
MN_B = "33010000000000000000T0002"
PW_A, PW_B = "Tcp-A-4471", "Tcp-B-9032"
HOUR0 = datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)


def write_config(path: Path, broker_url: str, data_dir: Path, tcp_port: int | None) -> Path:
    """``tcp_port``: serve runs the gateway on it; None: a separate ``nonsite gateway`` will."""
    lines = [
        *service_lines(broker_url=broker_url, data_dir=data_dir, client_id="nonsite-tcp-test"),
        "[tcp]",
        *([f'listen = "127.0.0.1:{tcp_port}"'] if tcp_port is not None else []),
        "ack_timeout_s = 1.0",
        "[rules]",
        "grace_s = 60",
        "snapshot_every_s = 0.5",
        "[alerts]",
        "flap_window_min = 0",
        "[commands]",
        "time_check_every_h = 0",  # the clock checks are tested in test_logger_commands.py
    ]
    for ent, mn, pw in (("TCPA", MN_A, PW_A), ("TCPB", MN_B, PW_B)):
        lines += gas_enterprise(ent, f"企业{ent}", mn, pw)
    return write_lines(path, lines)


def minute_packet(mn: str, pw: str, at: datetime, so2: float) -> bytes:
    return gas_packet(mn, pw, at, so2, ack=True)


def hours(mn: str, pw: str, n: int, so2: float) -> list[bytes]:
    return gas_hours(mn, pw, HOUR0, n, so2, ack=True)


class TcpLogger:
    """A data logger: one TCP connection, reading the platform's replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes, chunk: int | None = None) -> None:
        step = chunk or len(data)
        for i in range(0, len(data), step):
            self.sock.sendall(data[i : i + step])

    def replies(self, n: int, timeout: float) -> list[Hj212Frame]:
        deadline = time.monotonic() + timeout
        while self.buffer.count(b"\r\n") < n and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            self.buffer += data
        lines = self.buffer.split(b"\r\n")
        done, self.buffer = lines[:n], b"\r\n".join(lines[n:]) if len(lines) > n else b""
        return [f for line in done if line for f in decode_payload(line + b"\r\n")]  # type: ignore[misc]

    def close(self) -> None:
        self.sock.close()


def archived(data_dir: Path, payload: bytes) -> int:
    archive = RawArchive(data_dir / "archive.sqlite3", readonly=True)
    try:
        total, seq = 0, 0
        while batch := archive.read_after(seq, 1000):
            total += sum(1 for m in batch if m.payload == payload)
            seq = batch[-1].seq
        return total
    finally:
        archive.close()


def start_service(mosquitto, tmp_path: Path, tcp_port: int | None) -> ServiceProcess:
    return ServiceProcess.started(
        write_config(tmp_path / "n.toml", mosquitto.url, tmp_path / "d", tcp_port)
    )


@pytest.fixture
def served(mosquitto, tmp_path):
    tcp_port = free_port()
    service = start_service(mosquitto, tmp_path, tcp_port)
    db = make_engine(f"sqlite:///{tmp_path / 'd' / 'nonsite.db'}")
    try:
        yield service, db, tcp_port, tmp_path / "d"
    finally:
        db.dispose()
        service.terminate()


def test_a_tcp_logger_is_stored_judged_and_answered(served):
    service, db, port, _ = served
    logger = TcpLogger(port)
    try:
        packets = hours(MN_A, PW_A, 2, 400.0)  # two hours over the limit
        stream = b"".join(p if i % 2 else p.rstrip(b"\r\n") for i, p in enumerate(packets))
        logger.send(stream, chunk=37)  # split and glued across reads, tails or none
        replies = logger.replies(len(packets), timeout=20)
        assert [r.cn for r in replies] == ["9014"] * len(packets), service.log_text()
        sent_qns = {f.qn for p in packets for f in decode_payload(p)}  # type: ignore[union-attr]
        assert {r.qn for r in replies} == sent_qns
        a3 = sa.select(sa.func.count()).select_from(findings)
        a3 = a3.where(findings.c.enterprise_id == "TCPA", findings.c.rule == "A3")
        assert wait_for(lambda: count(db, a3) >= 2), service.log_text()
        # The same connection claims the other enterprise's MN with its right PW: refused.
        forged = minute_packet(MN_B, PW_B, HOUR0, 400.0)
        logger.send(forged)
        assert logger.replies(1, timeout=2) == []  # not answered
        foreign = sa.select(dead_letters).where(dead_letters.c.reason == "foreign_mn")
        n_foreign = sa.select(sa.func.count()).select_from(foreign.subquery())
        assert wait_for(lambda: count(db, n_foreign) == 1), service.log_text()
        with db.connect() as conn:
            [letter] = conn.execute(foreign).all()
        assert letter.topic == f"hj212/{MN_A}" and letter.mn == MN_B
        b_findings = sa.select(sa.func.count()).select_from(findings)
        assert count(db, b_findings.where(findings.c.enterprise_id == "TCPB")) == 0
        assert "nonsite_gateway_connections_bound 1.0" in service.metrics()
    finally:
        logger.close()


def test_inside_serve_a_broker_outage_does_not_stop_tcp_loggers(served, mosquitto):
    # Inside serve the gateway hands packets straight to the archive: the 9014 follows the
    # archive's commit, and the broker is not on the way.
    service, _db, port, data_dir = served
    logger = TcpLogger(port)
    try:
        mosquitto.stop()
        packet = minute_packet(MN_A, PW_A, HOUR0, 40.0)
        logger.send(packet)
        [reply] = logger.replies(1, timeout=10)
        assert reply.cn == "9014", service.log_text()
        assert archived(data_dir, packet) == 1
        mosquitto.start()
        logger.send(packet)  # a resend of what is stored: stored once
        assert len(logger.replies(1, timeout=10)) == 1
        assert archived(data_dir, packet) == 1
    finally:
        logger.close()


@pytest.fixture
def gateway_apart(mosquitto, tmp_path):
    """serve without a gateway, and ``nonsite gateway`` as its own process on the broker."""
    service = start_service(mosquitto, tmp_path, None)
    tcp_port = free_port()
    log = (tmp_path / "gateway.log").open("wb")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "nonsite", "gateway", "--config", str(service.config),
         "--listen", f"127.0.0.1:{tcp_port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_port("127.0.0.1", tcp_port)
        yield service, gateway, tcp_port, tmp_path / "d", tmp_path / "gateway.log"
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0
        log.close()
        service.terminate()


def test_a_gateway_apart_answers_nothing_while_the_broker_is_down_and_the_resend_is_stored_once(
    gateway_apart, mosquitto
):
    service, _gateway, port, data_dir, gateway_log = gateway_apart
    logger = TcpLogger(port)
    try:
        first = minute_packet(MN_A, PW_A, HOUR0, 40.0)
        logger.send(first)
        assert len(logger.replies(1, timeout=10)) == 1, gateway_log.read_text()
        mosquitto.stop()
        pending = minute_packet(MN_A, PW_A, HOUR0 + timedelta(minutes=10), 40.0)
        logger.send(pending)
        assert logger.replies(1, timeout=3) == []  # the broker does not have it: no 9014
        mosquitto.start()
        # The logger resends what was not answered, as the standard has it (OverTime/ReCount).
        replies: list[Hj212Frame] = []
        deadline = time.monotonic() + 30
        while not replies and time.monotonic() < deadline:
            logger.send(pending)
            replies = logger.replies(1, timeout=2)
        assert replies and replies[0].cn == "9014", gateway_log.read_text()
        assert wait_for(lambda: archived(data_dir, pending) >= 1, 20), service.log_text()
        time.sleep(2.0)  # a second copy (paho's queued publish, a further resend) would be in
        assert archived(data_dir, pending) == 1
        assert archived(data_dir, first) == 1
    finally:
        logger.close()
    text = gateway_log.read_text()
    assert "ERROR" not in text and "Traceback" not in text, text
