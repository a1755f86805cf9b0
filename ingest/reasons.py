"""Why a message (or one packet of it) became a dead letter. Stable, public codes.

A dead letter's reason is one of these, or an HJ 212 decode code
(``ingest.hj212.errors.DecodeErrorCode``), or a power decode code
(``ingest.power.errors.PowerErrorCode``). docs/ingest.md lists them all.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    OVERSIZE_PAYLOAD = "oversize_payload"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_MN = "unknown_mn"
    UNKNOWN_METER = "unknown_meter"
    UNKNOWN_CODE = "unknown_code"
    WRONG_PW = "wrong_pw"
    FOREIGN_MN = "foreign_mn"
    FOREIGN_METER = "foreign_meter"
    MISSING_DATA_TIME = "missing_data_time"


DESCRIPTIONS: dict[RejectReason, str] = {
    RejectReason.OVERSIZE_PAYLOAD: "the payload is larger than ingest.max_payload_bytes; it is "
    "not decoded, and only its first 4096 bytes, its size and its SHA-256 are kept (here and "
    "in the raw archive)",
    RejectReason.UNKNOWN_TOPIC: "the topic matches none of the configured subscriptions",
    RejectReason.UNKNOWN_MN: "a valid HJ 212 packet from a data logger (MN) that no outlet or "
    "meter in the configuration names",
    RejectReason.UNKNOWN_METER: "a valid power reading from a meter that the configuration does "
    "not name",
    RejectReason.UNKNOWN_CODE: "a valid HJ 212 data packet (CN 2011/2021) from a logger that "
    "reports meters only (no outlet has its MN) in which no code is a configured meter's",
    RejectReason.WRONG_PW: "the packet's PW differs from the outlet's configured pw (checked "
    "while ingest.check_pw is on, the default)",
    RejectReason.FOREIGN_MN: "an HJ 212 packet whose MN is not its sender's: the topic's sender "
    "level is another logger's MN, or a gateway whose [[gateways]] entry does not list that MN",
    RejectReason.FOREIGN_METER: "a power reading for a meter its sender may not speak for: the "
    "topic's sender level is neither that meter nor a gateway whose [[gateways]] entry lists it",
    RejectReason.MISSING_DATA_TIME: "a data upload (CN 2011/2051/2061/2031/2021/2041) without "
    "DataTime, so its values have no time",
}
