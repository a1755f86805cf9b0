"""``nonsite serve`` with no broker URL runs its own embedded broker and works end to end."""

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nonsite.embedded_broker import free_port
from tests.ingest.hj212.frames import SEG_2011, packet
from tests.mqtt_tools import Collector, Publisher
from tests.service_process import ServiceProcess, write_config

pytestmark = pytest.mark.integration

MN = "010000A8900016F000169DC0"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_serve_with_embedded_broker_archives_decodes_replies_and_counts(tmp_path):
    port = free_port()
    config = write_config(
        tmp_path / "n.toml",
        broker_url="",
        data_dir=tmp_path / "data",
        mns=[MN],
        meters=["M1"],
        extra=f"embedded_port = {port}",
    )
    service = ServiceProcess.started(config)
    try:
        replies = Collector()
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="device")
        listener.on_message = lambda c, u, m: replies.deliveries.append(m)
        listener.connect("127.0.0.1", port)
        listener.subscribe(f"hj212/{MN}/reply", qos=1)
        listener.loop_start()
        time.sleep(0.3)
        pub = Publisher("127.0.0.1", port)
        power = json.dumps({"ts": "2026-11-21T08:00:00+08:00", "p_kw": 12.5}).encode()
        pub.publish_all(
            [
                (f"hj212/{MN}", packet(SEG_2011)),
                (f"hj212/{MN}", packet(SEG_2011, crc="0000")),
                ("power/M1", power),
                ("power/M1", b"[]"),
            ]
        )

        # The service may also send the logger a 校时 (CN=1011) of its own: the data's answer
        # is whichever reply carries the 9014.
        def answered() -> bool:
            return any(b"CN=9014" in d.payload for d in list(replies.deliveries))

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = samples(service.metrics())
            accepted = m.get(("nonsite_ingest_frames_total", (("outcome", "accepted"),)), 0)
            if accepted >= 2 and answered():
                break
            time.sleep(0.2)
        assert m[("nonsite_ingest_messages_total", (("outcome", "archived"),))] == 4
        assert m[("nonsite_ingest_frames_total", (("outcome", "accepted"),))] == 2
        assert m[("nonsite_ingest_dead_letters_total", (("reason", "crc_mismatch"),))] == 1
        assert m[("nonsite_ingest_dead_letters_total", (("reason", "empty"),))] == 1
        assert m[("nonsite_ingest_readings_total", (("kind", "measurement"),))] == 2
        assert m[("nonsite_ingest_readings_total", (("kind", "power"),))] == 1
        assert m[("nonsite_mqtt_connected", ())] == 1
        assert answered()
        assert all(d.payload.startswith(b"##") for d in replies.deliveries)
        assert service.readiness() == {"status": "ready"}
        pub.close()
        listener.loop_stop()
    finally:
        assert service.terminate() == 0
