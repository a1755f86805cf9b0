"""The simulator publishes a configured fleet's traffic that the service's own decoders
accept, at the expected cadence, the same for the same seed."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.china_time import CHINA_TZ
from ingest.hj212.decoder import decode_frame
from ingest.hj212.errors import DecodeErrorCode, Hj212DecodeError
from ingest.power.decoder import decode_power
from nonsite.config import load_config
from nonsite.config.mqtt_url import parse_broker_url
from nonsite.simulator.incidents import Incident
from nonsite.simulator.publisher import Publisher, run
from nonsite.simulator.traffic import FleetTraffic

EXAMPLE = Path(__file__).parents[3] / "deploy" / "nonsite.example.toml"
START = int(datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TZ).timestamp())


def test_two_simulated_hours_of_the_example_fleet_decode_and_keep_their_cadence():
    config = load_config(EXAMPLE)
    traffic = FleetTraffic(config, seed=7)
    counts: Counter[str] = Counter()
    samples: dict[str, list[int]] = {}
    for minute in range(120):
        for topic, payload in traffic.frames(START + 60 * minute):
            if topic.startswith("hj212/"):
                frame = decode_frame(payload)
                assert frame.mn == topic.split("/", 1)[1]
                counts[f"{frame.cn}"] += 1
            else:
                meter = topic.split("/", 1)[1]
                readings = decode_power(payload, meter)
                samples.setdefault(meter, []).extend(int(r.ts.timestamp()) for r in readings)
                counts["power"] += 1
    outlets = sum(len(e.outlets) for e in config.enterprises)
    meters = sum(len(e.meters) for e in config.enterprises)
    assert counts["2051"] == outlets * 12  # every 10 minutes
    assert counts["2061"] == outlets * 2  # every hour
    assert counts["power"] == meters * 120  # every minute
    minutes = [START + 60 * k for k in range(120)]
    assert len(samples) == meters and all(ts == minutes for ts in samples.values())
    again = FleetTraffic(config, seed=7)
    assert list(again.frames(START)) == list(FleetTraffic(config, seed=7).frames(START))


def test_live_real_time_data_day_values_at_midnight_and_both_editions():
    config = load_config(EXAMPLE)
    midnight = int(datetime(2026, 11, 24, 0, 0, tzinfo=CHINA_TZ).timestamp())
    traffic = FleetTraffic(config, seed=7, since=midnight - 86400)
    frames = []
    for minute in range(-24 * 60, 1):
        traffic.realtime = minute == 0  # live only at the last minute
        frames += [
            decode_frame(p) for t, p in traffic.frames(midnight + 60 * minute) if t[0] == "h"
        ]
    outlets = sum(len(e.outlets) for e in config.enterprises)
    assert sum(f.cn == "2011" for f in frames) == outlets  # only while live
    days = [f for f in frames if f.cn == "2031"]
    assert len(days) == outlets  # the whole day, once, at midnight
    assert {f.version for f in frames} == {"2017", "2025"}
    # Nothing covers time before the loggers started: the first day has its 144 records.
    assert sum(f.cn == "2051" for f in frames) == outlets * 144


@pytest.mark.integration
def test_it_publishes_to_a_broker(mosquitto):
    config = load_config(EXAMPLE)
    got: list[str] = []
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):
        got.append(msg.topic)

    sub.on_message = on_message
    sub.on_subscribe = lambda *a: done.set()
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe([("hj212/#", 1), ("power/#", 1)])
    sub.loop_start()
    try:
        assert done.wait(5)
        publisher = Publisher(parse_broker_url(mosquitto.url))
        try:
            progress = run(
                FleetTraffic(config), publisher, start=START, speed=None, until=START + 600
            )
        finally:
            publisher.close()
        deadline = threading.Event()
        for _ in range(50):
            if len(got) >= progress.messages:
                break
            deadline.wait(0.1)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert progress.messages > 0 and len(got) == progress.messages
    assert progress.sim_time == START + 600


@pytest.mark.parametrize("live", [False, True])
def test_a_corrupted_frame_fails_its_check_code_live_or_not(live):
    config = load_config(EXAMPLE)
    e = config.enterprises[0]
    incident = Incident(
        name="报文损坏",
        kind="corrupt",
        enterprise_id=e.id,
        source_id=e.outlets[0].id,
        start=START,
        end=START + 600,
    )
    traffic = FleetTraffic(config, seed=7, incidents=[incident])
    traffic.realtime = live
    mn = e.outlets[0].mn
    sent = [p for t, p in traffic.frames(START) if t == f"hj212/{mn}"]
    garbled = [p for p in sent if not _check_code_ok(p)]
    assert len(garbled) == 1  # garbled once in transit ...
    assert len(sent) - 1 == (3 if live else 2)  # ... beside the minute's intact frames


def _check_code_ok(payload: bytes) -> bool:
    try:
        decode_frame(payload)
    except Hj212DecodeError as exc:
        return exc.code != DecodeErrorCode.CRC_MISMATCH
    return True


def test_meters_send_history_ten_samples_to_a_message_then_live_each_at_once():
    config = load_config(EXAMPLE)
    traffic = FleetTraffic(config, seed=7, meter_batch_min=10)
    meters = sum(len(e.meters) for e in config.enterprises)
    history: dict[str, list[list[int]]] = {}
    for minute in range(20):
        for topic, payload in traffic.frames(START - 1200 + 60 * minute):
            if topic.startswith("power/"):
                readings = decode_power(payload, topic.split("/", 1)[1])
                history.setdefault(topic, []).append([int(r.ts.timestamp()) for r in readings])
    # As a gateway uploads what it stored: each ten minutes in one message, every minute once.
    first, second = ([START - 1200 + 60 * k for k in range(m, m + 10)] for m in (0, 10))
    assert len(history) == meters and all(v == [first, second] for v in history.values())
    for minute in range(3):  # three minutes of history: nothing sent yet
        assert not [t for t, _ in traffic.frames(START + 60 * minute) if t.startswith("power/")]
    traffic.realtime = True
    live = [
        decode_power(p, t.split("/", 1)[1]) for t, p in traffic.frames(START + 180) if t[0] == "p"
    ]
    # Live: the three stored samples first (one message per meter), then this minute's.
    assert len(live) == 2 * meters
    assert sorted(len(r) for r in live) == [1] * meters + [3] * meters
    then = [
        decode_power(p, t.split("/", 1)[1]) for t, p in traffic.frames(START + 240) if t[0] == "p"
    ]
    assert len(then) == meters and all(len(r) == 1 for r in then)
