"""Meters fed by HJ 212 loggers: ST=44 power values and CN 2021 running states become the same
``PowerSample`` the JSON meters give (docs/power-telemetry.md).

Every frame is built with the project's encoder and goes through the real processor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from ingest.archive import IncomingMessage, RawArchive, to_us
from ingest.china_time import CHINA_TZ
from ingest.frame_readings import RUNNING_STATE_ON
from ingest.hj212.decoder import decode_frame
from ingest.hj212.encoder import data_packets, encode_packet, encode_segment
from ingest.hj212.model import CpValue, Version
from ingest.metrics import PipelineMetrics
from ingest.mqtt.topics import TopicRouter
from ingest.pipeline import IngestPipeline
from ingest.processor import IngestPolicy, MessageProcessor, ProcessedBatch
from ingest.readings import PowerSample, ReadingBatch
from ingest.registry import Meter, Outlet, Registry
from ingest.stage import PassiveStage
from ingest.store import list_dead_letters
from tests.ingest.fixtures import archived

MN_CEMS = "33010000A8900016F0000701"  # an outlet's logger that also reports SB1's running state
MN_POWER = "33010000A8900016F0000702"  # a power-monitoring logger: meters only, no outlet
MN_OTHER = "33010000A8900016F0000703"  # an outlet's logger that reports no meter
AT = datetime(2026, 11, 21, 8, 30, tzinfo=CHINA_TZ)
EDITIONS: list[Version] = ["2017", "2025"]

METERS = [
    Meter("E7", "E7-FAN", "control", mn=MN_CEMS, code="SB1"),
    Meter("E7", "E7-AUX", "production", mn=MN_CEMS, code="d20401"),
    Meter("E7", "E7-LINE", "production", rated_kw=200.0, mn=MN_POWER, code="d20405"),
    Meter("E7", "E7-DUST", "control", mn=MN_POWER, code="d30406"),
    Meter("E7", "E7-JSON", "production"),
]
OUTLETS = [
    Outlet("E7", "DA001", MN_CEMS, None, "gas"),
    Outlet("E8", "DA001", MN_OTHER, None, "gas"),
]


def processor(**registry_options: bool | int) -> MessageProcessor:
    registry = Registry(OUTLETS, METERS, **registry_options)  # type: ignore[arg-type]
    router = TopicRouter([("hj212", "hj212/+"), ("power", "power/+")])
    return MessageProcessor(registry, router, IngestPolicy())


def frame(
    mn: str,
    values: Mapping[str, Mapping[str, CpValue]],
    *,
    st: str = "44",
    cn: str = "2011",
    version: Version = "2025",
) -> bytes:
    [packet] = data_packets(
        st=st, cn=cn, pw="123456", mn=mn, data_time=AT, pollutants=values, version=version
    )
    return packet


def sender(packet: bytes) -> str:
    """Each logger publishes on its own topic."""
    found = re.search(rb"MN=([^;&]+)", packet)
    assert found is not None
    return found.group(1).decode()


def process(*packets: bytes, **registry_options: bool | int) -> ProcessedBatch:
    messages = [archived(i, f"hj212/{sender(p)}", p) for i, p in enumerate(packets, start=1)]
    return processor(**registry_options).process(messages)


def samples(done: ProcessedBatch) -> list[tuple[str, float | None, bool | None]]:
    return [(p.meter_id, p.active_power_kw, p.switch_on) for p in done.readings.power]


@pytest.mark.parametrize("version", EDITIONS)
def test_st44_values_become_power_samples_at_the_data_time(version):
    values = {
        "d20105": {"Rtd": 220.2, "Flag": "N"},  # the standard's example: likely a voltage
        "d20405": {"Rtd": 152.4, "Flag": "N"},
        "d30406": {"Rtd": 0.04, "Flag": "N"},
    }
    done = process(frame(MN_POWER, values, version=version))
    assert samples(done) == [("E7-LINE", 152.4, None), ("E7-DUST", 0.04, None)]
    line = done.readings.power[0]
    assert line == PowerSample("E7", "E7-LINE", AT, 152.4, None, None, None, line.received_at, 1)
    assert line.ts.utcoffset() == AT.utcoffset()
    assert done.unused_power_values == {"unconfigured_code": 1}
    assert done.dead_letters == []
    assert done.outcomes == {"accepted": 1}
    # A logger of meters only feeds no outlet: no measurement, no outlet heartbeat.
    assert done.readings.measurements == []
    assert done.readings.loggers == []


@pytest.mark.parametrize("version", EDITIONS)
def test_a_frame_from_a_power_only_mn_is_accepted_and_answered(version):
    packet = frame(MN_POWER, {"d20405": {"Rtd": 12.0, "Flag": "N"}}, version=version)
    done = process(packet)
    assert done.frames_accepted == 1
    [(topic, reply)] = done.replies
    assert topic == f"hj212/{MN_POWER}/reply"
    assert decode_frame(reply).cn == "9014"
    # The same frame from an MN nothing names is still a dead letter.
    stranger = packet.decode().replace(MN_POWER, "33010000A8900016F0000799")
    unknown = process(encode_packet(stranger[6:-6]))
    assert [d.reason for d in unknown.dead_letters] == ["unknown_mn"]


def test_a_power_only_logger_sending_no_configured_code_is_a_dead_letter():
    packet = frame(MN_POWER, {"d20105": {"Rtd": 220.2}, "d20205": {"Rtd": 220.9}})
    done = process(packet)
    [dead] = done.dead_letters
    assert dead.reason == "unknown_code"
    assert dead.mn == MN_POWER
    assert dead.payload == packet.rstrip(b"\r\n")  # the packet's own bytes, for a replay
    assert "d20105, d20205" in dead.detail
    assert "d20405, d30406" in dead.detail  # what the configuration expects from it
    assert done.readings.power == []
    assert done.replies == []
    assert done.outcomes == {"dead_letter": 1}


def test_unconfigured_st44_codes_from_an_outlet_logger_are_counted_not_dead():
    done = process(frame(MN_OTHER, {"d20105": {"Rtd": 220.2}, "d20205": {"Rtd": 220.9}}))
    assert done.dead_letters == []
    assert done.unused_power_values == {"unconfigured_code": 2}
    assert done.readings.power == []
    # The frame is still the outlet's logger alive, and its values stay what they were.
    assert [s.outlet_id for s in done.readings.loggers] == ["DA001"]
    assert sorted(m.factor for m in done.readings.measurements) == ["d20105", "d20205"]


def test_a_meter_code_on_an_outlet_logger_is_a_sample_not_a_measurement():
    values = {"d20401": {"Rtd": 33.0, "Flag": "N"}, "a21026": {"Rtd": 12.5, "Flag": "N"}}
    done = process(frame(MN_CEMS, values, st="31"))
    assert samples(done) == [("E7-AUX", 33.0, None)]
    assert [m.factor for m in done.readings.measurements] == ["a21026"]
    assert [s.outlet_id for s in done.readings.loggers] == ["DA001"]
    assert done.unused_power_values == {}  # a21026 is the outlet's, not an unused power value


@pytest.mark.parametrize("version", EDITIONS)
@pytest.mark.parametrize(
    ("rs", "on"), [(0, False), (1, True), (2, False), (3, False), (4, True), (5, True)]
)
def test_running_state_gives_a_state_only_sample_and_stays_a_device_state(version, rs, on):
    values = {"SB1": {"RS": rs}, "SB2": {"RS": 1}}
    done = process(frame(MN_CEMS, values, st="31", cn="2021", version=version))
    assert samples(done) == [("E7-FAN", None, on)]
    [sample] = done.readings.power
    assert sample.ts == AT
    states = {s.device: s.running_state for s in done.readings.device_states}
    assert states == {"SB1": rs, "SB2": 1}  # SB2 has no meter: a device state only
    assert done.unused_power_values == {}


def test_the_running_state_mapping_covers_the_standard_states():
    assert dict(RUNNING_STATE_ON) == {0: False, 1: True, 2: False, 3: False, 4: True, 5: True}


def test_an_unknown_running_state_is_no_sample():
    done = process(frame(MN_CEMS, {"SB1": {"RS": 7}}, st="31", cn="2021"))
    assert done.readings.power == []
    assert done.unused_power_values == {"no_value": 1}
    assert [s.running_state for s in done.readings.device_states] == [7]


@pytest.mark.parametrize(
    ("flag", "used"),
    [(None, True), ("N", True), ("T", True), ("D", False), ("M", False), ("F", False)],
)
def test_a_value_flagged_as_measuring_nothing_is_no_sample(flag, used):
    value: dict[str, CpValue] = {"Rtd": 80.0} if flag is None else {"Rtd": 80.0, "Flag": flag}
    done = process(frame(MN_POWER, {"d20405": value}))
    assert samples(done) == ([("E7-LINE", 80.0, None)] if used else [])
    assert done.unused_power_values == ({} if used else {"invalid_flag": 1})
    assert done.dead_letters == []  # a configured code was sent: the logger is right


def test_windowed_data_and_other_commands_from_a_power_only_logger_are_accepted_unused():
    minute = frame(MN_POWER, {"d20405": {"Avg": 80.0, "Flag": "N"}}, cn="2051")
    heartbeat = encode_packet(
        encode_segment(st="91", cn="9015", pw="123456", mn=MN_POWER, flag=8, cp="")
    )
    done = process(minute, heartbeat)
    assert done.dead_letters == []
    assert done.frames_accepted == 2
    assert done.readings.power == []
    assert done.unused_power_values == {}


def test_a_power_only_logger_gets_the_ingest_defaults_for_its_tolerances():
    segment = encode_segment(
        st="44", cn="2011", pw="1", mn=MN_POWER, flag=8, cp="DataTime=20261121083000;d20405-Rtd=5"
    )
    packet = encode_packet(segment, crc_variant="modbus")
    [dead] = process(packet).dead_letters
    assert dead.reason == "crc_modbus"
    assert f"the meters' logger {MN_POWER}" in dead.detail
    assert samples(process(packet, accept_modbus_crc=True)) == [("E7-LINE", 5.0, None)]


def test_json_and_hj212_samples_of_one_meter_share_the_reading_type():
    json_payload = b'{"meter": "E7-JSON", "ts": "2026-11-21T08:30:00+08:00", "p_kw": 3}'
    done = processor().process(
        [
            archived(1, "power/E7-JSON", json_payload),
            archived(2, f"hj212/{MN_POWER}", frame(MN_POWER, {"d20405": {"Rtd": 3.0}})),
        ]
    )
    json_sample, hj212_sample = done.readings.power
    assert (json_sample.meter_id, json_sample.ts, json_sample.active_power_kw) == (
        "E7-JSON",
        AT,
        3.0,
    )
    assert (hj212_sample.meter_id, hj212_sample.ts, hj212_sample.active_power_kw) == (
        "E7-LINE",
        AT,
        3.0,
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_pipeline_counts_unused_power_values_and_keeps_the_dead_letter(tmp_path, engine):
    archive = RawArchive(tmp_path / "archive.sqlite3")
    used = frame(MN_POWER, {"d20405": {"Rtd": 50.0}, "d20105": {"Rtd": 220.2}})
    unusable = frame(MN_POWER, {"d20105": {"Rtd": 221.0}})
    now = to_us(datetime.now(UTC))
    archive.append([IncomingMessage(now, f"hj212/{MN_POWER}", p) for p in (used, unusable)])
    registry = CollectorRegistry()
    batches: list[ReadingBatch] = []

    class Keep(PassiveStage):
        def process(self, batch: ProcessedBatch) -> None:
            batches.append(batch.readings)

    pipeline = IngestPipeline(
        archive, engine, processor(), [Keep()], metrics=PipelineMetrics(registry)
    )
    pipeline.drain()

    assert [p.meter_id for b in batches for p in b.power] == ["E7-LINE"]
    # d20105 of the used frame; the unusable frame is counted as a dead letter instead.
    assert (
        registry.get_sample_value(
            "nonsite_ingest_unused_power_values_total", {"reason": "unconfigured_code"}
        )
        == 1
    )
    assert registry.get_sample_value("nonsite_ingest_readings_total", {"kind": "power"}) == 1
    assert (
        registry.get_sample_value("nonsite_ingest_dead_letters_total", {"reason": "unknown_code"})
        == 1
    )
    [dead] = list_dead_letters(engine)
    assert (dead.reason, dead.payload) == ("unknown_code", unusable.rstrip(b"\r\n"))
    # The raw archive keeps both frames whatever became of them.
    assert [m.payload for m in archive.read_after(0, 10)] == [used, unusable]
