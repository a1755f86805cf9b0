"""The MQTT source against a real Mosquitto: persistent session and ack-after-store."""

import subprocess
import time

import pytest

from tests.brokers import Mosquitto
from tests.mqtt_tools import Collector, Publisher, settings, start_source

pytestmark = pytest.mark.integration


def msgs(n: int, start: int = 0):
    return [(f"hj212/MN{i % 7}", f"frame {i}".encode()) for i in range(start, start + n)]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_unacknowledged_messages_are_redelivered_to_the_same_client_id(mosquitto, protocol):
    s = settings(mosquitto.host, mosquitto.port, protocol=protocol)
    holding = Collector()
    holding.auto_ack = False  # as if the service died before its archive commit
    source = start_source(s, holding)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(msgs(50))
    assert len(holding.wait_for(50)) == 50
    source.stop()
    acking = Collector()
    again = start_source(s, acking)
    assert sorted(acking.wait_for(50)) == sorted(p for _, p in msgs(50))
    again.stop()
    # Acknowledged now: a third session gets nothing more.
    third = Collector()
    last = start_source(s, third)
    time.sleep(1.0)
    assert third.payloads == []
    last.stop()
    pub.close()


@pytest.mark.parametrize("batched", [True, False], ids=["one-write", "paho-ack-each"])
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_batch_acknowledged_in_one_call_is_not_redelivered_and_the_rest_is(
    mosquitto, protocol, batched
):
    """The archiver acknowledges a committed batch at once: one write of many PUBACKs, or
    paho's ack() per message where its packet queue is missing (another paho version)."""
    s = settings(
        mosquitto.host, mosquitto.port, protocol=protocol, client_id=f"batch-{protocol}-{batched}"
    )
    holding = Collector()
    holding.auto_ack = False
    source = start_source(s, holding)
    if not batched:
        source._queue_packet = None
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(msgs(600))
    holding.wait_for(600)
    with holding.lock:
        received = list(holding.deliveries)
    assert len(received) == 600
    assert source.ack(received[:450]) == 450
    time.sleep(0.5)  # the PUBACKs reach the broker before we leave
    source.stop()
    again = Collector()
    resumed = start_source(s, again)
    redelivered = again.wait_for(150)
    time.sleep(0.5)
    assert sorted(again.payloads) == sorted(d.payload for d in received[450:])
    assert len(redelivered) == 150
    resumed.stop()
    pub.close()


def test_acknowledged_messages_are_not_redelivered_and_the_session_queues_while_away(mosquitto):
    s = settings(mosquitto.host, mosquitto.port)
    first = Collector()
    source = start_source(s, first)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(msgs(100))
    assert len(first.wait_for(100)) == 100
    source.stop()
    pub.publish_all(msgs(100, start=100))  # published while the service is away
    second = Collector()
    again = start_source(s, second)
    assert second.source is not None and second.source.session_present
    got = second.wait_for(100)
    time.sleep(0.5)
    assert sorted(got) == sorted(p for _, p in msgs(100, start=100))
    again.stop()
    pub.close()


def test_queued_messages_survive_a_broker_restart_with_persistence(mosquitto):
    s = settings(mosquitto.host, mosquitto.port)
    source = start_source(s, Collector())
    source.stop()
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(msgs(300))
    pub.close()
    mosquitto.restart()  # SIGTERM: Mosquitto writes its persistence file
    later = Collector()
    again = start_source(s, later)
    assert sorted(later.wait_for(300)) == sorted(p for _, p in msgs(300))
    again.stop()


def test_source_reconnects_after_the_broker_comes_back(mosquitto):
    s = settings(mosquitto.host, mosquitto.port, reconnect_min_s=0.2, reconnect_max_s=1.0)
    collector = Collector()
    source = start_source(s, collector)
    mosquitto.stop(kill=True)
    deadline = time.monotonic() + 5
    while source.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not source.connected
    mosquitto.start()
    assert source.wait_connected(15)
    time.sleep(0.3)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(msgs(10))
    assert len(collector.wait_for(10)) == 10
    source.stop()
    pub.close()


def test_shared_subscription_group_splits_the_stream(mosquitto):
    group = (("$share/nonsite/hj212/+", 1),)
    a, b = Collector(), Collector()
    sa = start_source(settings(mosquitto.host, mosquitto.port, "svc-a", subscriptions=group), a)
    sb = start_source(settings(mosquitto.host, mosquitto.port, "svc-b", subscriptions=group), b)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(msgs(200))
    deadline = time.monotonic() + 20
    while len(a.payloads) + len(b.payloads) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(a.payloads + b.payloads) == sorted(p for _, p in msgs(200))
    assert a.payloads and b.payloads  # both members got a share
    sa.stop()
    sb.stop()
    pub.close()


def test_username_password_and_tls(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=certs)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (certs / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")  # fmt: skip
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "nonsite", "s3cret"], check=True)
    broker = Mosquitto(tmp_path / "tls-broker")
    tls_port = broker.port
    broker.conf.write_text(
        broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        + f"password_file {passwd}\n"
        + f"cafile {certs / 'ca.crt'}\n"
        + f"certfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
    )
    broker.start()

    def over_tls(password: str):
        return settings(
            "127.0.0.1",
            tls_port,
            tls=True,
            ca_file=certs / "ca.crt",
            username="nonsite",
            password=password,
        )

    try:
        wrong = start_source_expect_failure(over_tls("nope"))
        assert wrong
        collector = Collector()
        source = start_source(over_tls("s3cret"), collector)
        # Publish over TLS too, with the same credentials.
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub")
        pub.username_pw_set("nonsite", "s3cret")
        pub.tls_set(ca_certs=str(certs / "ca.crt"))
        pub.connect("127.0.0.1", tls_port)
        pub.loop_start()
        pub.publish("hj212/A", b"over tls", qos=1).wait_for_publish(10)
        assert collector.wait_for(1) == [b"over tls"]
        source.stop()
        pub.disconnect()
        pub.loop_stop()
    finally:
        broker.stop(kill=True)


def start_source_expect_failure(s) -> bool:
    from ingest.mqtt.source import MqttSource

    source = MqttSource(s, lambda d: None)
    source.start()
    connected = source.wait_connected(3)
    source.stop()
    return not connected and "Not authorized" in (source.last_refusal or "")
