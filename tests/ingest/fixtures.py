"""A small registry and helpers shared by ingest tests."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.archive import ArchivedMessage, to_us
from ingest.mqtt.topics import TopicRouter
from ingest.processor import IngestPolicy, MessageProcessor
from ingest.registry import Gateway, Meter, Outlet, Registry

MN_GAS = "010000A8900016F000169DC0"
MN_MODBUS = "010000A8900016F000169DC1"
MN_WATER = "LD130133000015"

REGISTRY = Registry(
    outlets=[
        Outlet("E1", "DA001", MN_GAS, "123456", "gas"),
        Outlet("E1", "DA002", MN_MODBUS, None, "gas", accept_modbus_crc=True),
        Outlet("E2", "DW001", MN_WATER, None, "water", max_segment_bytes=2048),
    ],
    meters=[Meter("E3", "E3-M1", "production", rated_kw=50.0), Meter("E3", "E3-M2", "control")],
    # Topics for tests about other things than attribution: "hj212/x" carries the fixtures'
    # loggers, "power/gw" their meters (tests/ingest/test_attribution.py tests the checks).
    gateways=[
        Gateway("x", mns=frozenset({MN_GAS, MN_MODBUS, MN_WATER})),
        Gateway("gw", meters=frozenset({"E3-M1", "E3-M2"})),
    ],
)
ROUTER = TopicRouter([("hj212", "hj212/+"), ("power", "power/+")])


def processor(**policy: object) -> MessageProcessor:
    return MessageProcessor(REGISTRY, ROUTER, IngestPolicy(**policy))  # type: ignore[arg-type]


def archived(seq: int, topic: str, payload: bytes) -> ArchivedMessage:
    return ArchivedMessage(
        seq, to_us(datetime(2026, 11, 21, 0, 0, seq % 60, tzinfo=UTC)), topic, payload
    )
