"""Power-meter telemetry: JSON over MQTT on ``power/{meter_id}`` (docs/power-telemetry.md)."""

from ingest.power.decoder import (
    DEFAULT_TOPIC_PREFIX,
    DecodedReading,
    decode_power,
    meter_from_topic,
)
from ingest.power.errors import DESCRIPTIONS, PowerDecodeError, PowerErrorCode
from ingest.power.schema import (
    MAX_READINGS,
    MeterReading,
    is_valid_meter_id,
    json_schema,
    schema_text,
)

__all__ = [
    "DEFAULT_TOPIC_PREFIX",
    "DESCRIPTIONS",
    "MAX_READINGS",
    "DecodedReading",
    "MeterReading",
    "PowerDecodeError",
    "PowerErrorCode",
    "decode_power",
    "is_valid_meter_id",
    "json_schema",
    "meter_from_topic",
    "schema_text",
]
