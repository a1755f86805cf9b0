"""deploy/mosquitto/ in a real Mosquitto: the production configuration and ACL, with only the
paths and ports moved into a temporary directory, against nonsite's own MQTT client built
from deploy/compose/nonsite.toml.

Checked: the file starts a broker; anonymous clients are refused; nonsite, subscribed as a
shared-subscription group, receives a logger's packets on the logger's own topic; a logger
cannot publish on another logger's topic; nonsite's replies reach only their logger; nonsite
may publish alerts and a reader may follow them; the broker queues for nonsite's persistent
session while it is away; the broker's packet limit passes every payload within nonsite's
ingest.max_payload_bytes and disconnects a client that sends a far larger one; and the TLS
listener, uncommented, serves with passwords and with client certificates (双向认证).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.source import MqttSource
from nonsite.config.load import load_config
from nonsite.config.model import IngestSection
from nonsite.embedded_broker import free_port
from nonsite.wiring import build_mqtt_settings
from tests.brokers import mosquitto_binary, wait_port
from tests.mqtt_tools import Collector, start_source

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).parents[2] / "deploy"
LOGGER = "33010000A8900016F0000101"  # 华能滨江发电 1号机组 in the example configuration
OTHER = "33010000A8900016F0000102"
PASSWORDS = {"nonsite": "nonsite-pw", LOGGER: "logger-pw", "alerts-reader": "reader-pw"}
TLS_OPTIONS = (
    "listener 8883",
    "certfile",
    "keyfile",
    "cafile",
    "tls_version",
    "require_certificate",
    "use_identity_as_username",
)


class Broker:
    def __init__(self, workdir: Path, *, tls: str | None = None) -> None:
        self.dir = workdir
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        (workdir / "data").mkdir(parents=True)
        conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
        conf = conf.replace("/etc/mosquitto/", f"{workdir}/").replace(
            "/var/lib/mosquitto/", f"{workdir}/data/"
        )
        conf = conf.replace("listener 1883 127.0.0.1", f"listener {self.port} 127.0.0.1")
        if tls:
            for option in TLS_OPTIONS:
                conf, n = re.subn(rf"^#({option}\b.*)$", r"\1", conf, flags=re.M)
                assert n == 1, option
            conf = conf.replace("listener 8883", f"listener {self.tls_port}")
            if tls == "certificate":
                conf = conf.replace("require_certificate false", "require_certificate true")
                conf = conf.replace(
                    "use_identity_as_username false", "use_identity_as_username true"
                )
        # As root, Mosquitto drops to user "mosquitto", which cannot read the test's files.
        conf += "\nuser root\n" if os.geteuid() == 0 else ""
        conf = conf.replace("log_dest stdout", f"log_dest file {workdir}/mosquitto.log")
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf)
        shutil.copy(DEPLOY / "mosquitto" / "acl", workdir / "acl")
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        for i, (user, password) in enumerate(PASSWORDS.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run(
                [passwd, *create, "-b", str(workdir / "passwd"), user, password], check=True
            )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)])
        wait_port("127.0.0.1", self.port)
        if self.tls_port:
            wait_port("127.0.0.1", self.tls_port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


def nonsite_settings(url: str, **mqtt_overrides: object):
    """nonsite's MQTT settings from the compose configuration, pointed at the test broker."""
    config = load_config(DEPLOY / "compose" / "nonsite.toml", {"NONSITE_MQTT_URL": url})
    mqtt_section = config.mqtt.model_copy(update={"reconnect_max_s": 2.0, **mqtt_overrides})
    return build_mqtt_settings(config.model_copy(update={"mqtt": mqtt_section}))


class Client:
    """A plain MQTT 5 client: connects, publishes QoS 1 and reports the PUBACK's reason."""

    def __init__(self, port: int, user: str | None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.acks: dict[int, int] = {}
        self.connected = threading.Event()
        self.refused: str | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{user}-{time.time_ns()}"[:64],
            protocol=mqtt.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.on_publish = self._published
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _connect(self, _c: object, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object):
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def _published(self, _c: object, _u: object, mid: int, reason: mqtt.ReasonCode, _p: object):
        self.acks[mid] = reason.value

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 10
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        time.sleep(0.3)

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


NOT_AUTHORIZED = 135  # MQTT 5 reason code in PUBACK


def test_anonymous_and_wrong_passwords_are_refused(broker):
    for user, password in ((None, None), ("nonsite", "wrong"), ("stranger", "x")):
        client = Client(broker.port, user, password)
        assert client.connected.wait(10)
        assert client.refused is not None, user
        client.close()


def test_loggers_publish_only_on_their_own_topic_and_nonsite_gets_them_as_a_group(broker):
    url = f"mqtt://nonsite:{PASSWORDS['nonsite']}@127.0.0.1:{broker.port}"
    settings = nonsite_settings(url, shared_group="nonsite")
    assert ("$share/nonsite/hj212/+", 1) in settings.subscriptions
    collector = Collector()
    source = start_source(settings, collector)
    logger = Client(broker.port, LOGGER, PASSWORDS[LOGGER])
    assert logger.connected.wait(10) and logger.refused is None
    try:
        assert logger.publish(f"hj212/{LOGGER}", b"own") == 0
        assert logger.publish(f"hj212/{OTHER}", b"forged") == NOT_AUTHORIZED
        assert logger.publish("power/E005-M01", b"{}") == NOT_AUTHORIZED
        time.sleep(0.5)
        assert collector.wait_for(1) == [b"own"]
        assert [d.topic for d in collector.deliveries] == [f"hj212/{LOGGER}"]

        # nonsite's 9014 reply reaches the logger on its own reply topic only.
        logger.subscribe(f"hj212/{LOGGER}/reply")
        logger.subscribe(f"hj212/{OTHER}/reply")  # not allowed: nothing arrives from it
        source.publish(f"hj212/{LOGGER}/reply", b"9014 own")
        source.publish(f"hj212/{OTHER}/reply", b"9014 other")
        assert logger.wait(2) == [(f"hj212/{LOGGER}/reply", b"9014 own")]
        time.sleep(0.5)
        assert len(logger.messages) == 1
    finally:
        logger.close()
        source.stop()


def test_nonsite_publishes_alerts_that_readers_may_follow(broker):
    reader = Client(broker.port, "alerts-reader", PASSWORDS["alerts-reader"])
    nonsite = Client(broker.port, "nonsite", PASSWORDS["nonsite"])
    try:
        assert reader.connected.wait(10) and reader.refused is None
        reader.subscribe("alerts/#")
        assert nonsite.publish("alerts/status/E001", "报警".encode(), retain=True) == 0
        assert reader.wait(1) == [("alerts/status/E001", "报警".encode())]
        assert reader.publish("alerts/status/E001", b"forged") == NOT_AUTHORIZED
    finally:
        reader.close()
        nonsite.close()


def test_the_broker_queues_for_nonsites_session_while_it_is_away(broker):
    url = f"mqtt://nonsite:{PASSWORDS['nonsite']}@127.0.0.1:{broker.port}"
    settings = nonsite_settings(url)
    first = start_source(settings, Collector())
    first.stop()  # away; the session stays (session_expiry_s)
    logger = Client(broker.port, LOGGER, PASSWORDS[LOGGER])
    assert logger.connected.wait(10)
    sent = [f"frame {i}".encode() for i in range(200)]
    for payload in sent:
        assert logger.publish(f"hj212/{LOGGER}", payload) == 0
    # QoS 0 too (queue_qos0_messages): many loggers publish so.
    logger.client.publish(f"hj212/{LOGGER}", b"qos0", qos=0).wait_for_publish(5)
    time.sleep(0.3)
    logger.close()
    broker.stop()  # a clean restart keeps the queue (persistence)
    broker.start()
    collector = Collector()
    again = start_source(settings, collector)
    try:
        got = collector.wait_for(len(sent) + 1)
        assert sorted(got) == sorted([*sent, b"qos0"])
        assert again.session_present is True
    finally:
        again.stop()


def make_certificates(d: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("nonsite", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
        )  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl(
            "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"),
        )  # fmt: skip


@pytest.mark.parametrize("mode", ["password", "certificate"])
def test_the_tls_listener_serves_nonsite(tmp_path, mode):
    workdir = tmp_path / "mosquitto"
    broker = Broker(workdir, tls=mode)
    certs = workdir / "certs"
    certs.mkdir()
    make_certificates(certs)
    broker.start()
    try:
        client_cert = {"cert_file": certs / "nonsite.crt", "key_file": certs / "nonsite.key"}
        url = f"mqtts://nonsite:{PASSWORDS['nonsite']}@127.0.0.1:{broker.tls_port}"
        settings = nonsite_settings(
            url, ca_file=certs / "ca.crt", **(client_cert if mode == "certificate" else {})
        )
        collector = Collector()
        source = start_source(settings, collector)
        logger = Client(broker.port, LOGGER, PASSWORDS[LOGGER])
        assert logger.publish(f"hj212/{LOGGER}", b"over tls") == 0
        assert collector.wait_for(1) == [b"over tls"]
        logger.close()
        source.stop()
        if mode == "certificate":  # without a client certificate the handshake fails
            bare = MqttSource(nonsite_settings(url, ca_file=certs / "ca.crt"), Collector())
            bare.start()
            try:
                assert not bare.wait_connected(3)
            finally:
                bare.stop()
    finally:
        broker.stop()


PACKET_MARGIN = 4096  # docs/ingest.md: max_packet_size = ingest.max_payload_bytes + 4096


def max_packet_size() -> int:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    [value] = re.findall(r"^max_packet_size (\d+)$", conf, flags=re.M)
    return int(value)


def test_the_brokers_packet_limit_agrees_with_nonsites_payload_limit():
    limit = max_packet_size()
    configs = [
        load_config(DEPLOY / "compose" / "nonsite.toml", {}),
        load_config(DEPLOY / "nonsite.example.toml", {}),
    ]
    for config in configs:
        assert config.ingest.max_payload_bytes + PACKET_MARGIN == limit
    assert IngestSection().max_payload_bytes + PACKET_MARGIN == limit


def test_the_broker_passes_a_payload_at_nonsites_limit_and_disconnects_a_far_larger_one(broker):
    url = f"mqtt://nonsite:{PASSWORDS['nonsite']}@127.0.0.1:{broker.port}"
    settings = nonsite_settings(url)
    payload_limit = load_config(DEPLOY / "compose" / "nonsite.toml", {}).ingest.max_payload_bytes
    collector = Collector()
    source = start_source(settings, collector)
    logger = Client(broker.port, LOGGER, PASSWORDS[LOGGER])
    assert logger.connected.wait(10) and logger.refused is None
    at_limit = b"a" * payload_limit
    just_above = b"b" * (payload_limit + 100)  # reaches nonsite: an oversize dead letter there
    try:
        assert logger.publish(f"hj212/{LOGGER}", at_limit) == 0
        assert logger.publish(f"hj212/{LOGGER}", just_above) == 0
        assert collector.wait_for(2) == [at_limit, just_above]
    finally:
        logger.close()
    # An MQTT 3.1.1 client is not told the limit: the broker disconnects it for the packet.
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="old-logger", protocol=mqtt.MQTTv311)
    old.username_pw_set(LOGGER, PASSWORDS[LOGGER])
    gone = threading.Event()
    old.on_disconnect = lambda *_args: gone.set()
    old.connect("127.0.0.1", broker.port)
    old.loop_start()
    try:
        old.publish(f"hj212/{LOGGER}", b"c" * (max_packet_size() + 1), qos=1)
        assert gone.wait(10), "the broker kept a client that sent an oversized packet"
        time.sleep(0.5)
        assert len(collector.payloads) == 2  # it never reached nonsite
    finally:
        old.loop_stop()
        source.stop()


def test_the_password_file_note_works_with_this_mosquitto(tmp_path):
    """The commands the configuration's comment gives: create, add, delete."""
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path = tmp_path / "passwd"
    subprocess.run([passwd, "-c", "-b", str(path), "nonsite", "first-secret"], check=True)
    subprocess.run([passwd, "-b", str(path), LOGGER, "second-secret"], check=True)
    subprocess.run([passwd, "-D", str(path), "nonsite"], check=True)
    [(user, stored)] = [line.split(":", 1) for line in path.read_text().splitlines()]
    assert user == LOGGER
    assert stored.startswith("$") and "secret" not in stored  # a salted hash
    assert re.search(r"mosquitto_passwd -D ", (DEPLOY / "mosquitto" / "mosquitto.conf").read_text())
