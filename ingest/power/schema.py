"""The power-meter reading model and the JSON Schema document published for it.

The pydantic model is what the decoder validates with; ``json_schema()`` is written by hand
from the same constants so that the document reads well for integrators, and a test checks
the committed file and the examples against both (docs/power-telemetry.md).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

SCHEMA_ID: Final = "https://nonsite.dev/schemas/power-reading.schema.json"
MAX_READINGS: Final = 1000
METER_MAX_LEN: Final = 64
P_KW_LIMIT: Final = 1_000_000.0
I_A_MAX: Final = 100_000.0

# Excluded: C0/C1 controls, every Unicode or ECMAScript whitespace, and the MQTT topic
# separator and wildcards. Spelled out (not \s) so that Rust (pydantic), Python and
# ECMAScript (JSON Schema validators) regex engines accept exactly the same ids.
METER_PATTERN: Final = (
    r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff/+#]+$"
)
# RFC 3339 date-time (T, t or space separator; Z, z or ±hh:mm offset). [0-9], not \d: Python's
# \d also matches non-ASCII digits.
TS_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# The same without the offset: recognises a naive timestamp to say what is missing.
_NAIVE_TS_PATTERN: Final = TS_PATTERN.removesuffix(r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")

_METER_RE: Final = re.compile(METER_PATTERN)
_TS_RE: Final = re.compile(TS_PATTERN)
_NAIVE_TS_RE: Final = re.compile(_NAIVE_TS_PATTERN)


def is_valid_meter_id(value: str) -> bool:
    """The meter-id rule, for ids that come from topics rather than payloads."""
    return 0 < len(value) <= METER_MAX_LEN and _METER_RE.fullmatch(value) is not None


def _check_ts_text(value: Any) -> Any:
    # The model is strict, but strict datetime parsing rejects the str this validator passes
    # on, so ``ts`` parses in lax mode, which also takes unix seconds, "+0800" and "_"
    # separators: hold the input to RFC 3339 here instead.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "timestamp must be a string")
    if _TS_RE.fullmatch(value) is None:
        if _NAIVE_TS_RE.fullmatch(value) is not None:
            raise PydanticCustomError(
                "timestamp_offset", "timestamp needs a UTC offset such as Z or +08:00"
            )
        raise PydanticCustomError(
            "timestamp_format",
            "not an RFC 3339 timestamp with offset, e.g. 2026-11-21T08:00:00+08:00",
        )
    return value


def _check_phases(value: tuple[float, ...]) -> tuple[float, ...]:
    if len(value) == 2:
        raise PydanticCustomError("phase_count", "needs 1 or 3 phase currents, not 2")
    return value


MeterId = Annotated[str, Field(min_length=1, max_length=METER_MAX_LEN, pattern=METER_PATTERN)]
Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_check_ts_text)]
PhaseCurrent = Annotated[float, Field(ge=0.0, le=I_A_MAX)]
PhaseCurrents = Annotated[
    tuple[PhaseCurrent, ...], Field(min_length=1, max_length=3), AfterValidator(_check_phases)
]


class MeterReading(BaseModel):
    """One reading object as it appears on the wire (field names are the wire keys)."""

    # strict: no bools or numeric strings as numbers (JSON ints still pass as floats);
    # allow_inf_nan=False: the parser reads NaN/Infinity literals, this rejects them.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    meter: MeterId | None = None
    ts: Timestamp
    p_kw: Annotated[float, Field(ge=-P_KW_LIMIT, le=P_KW_LIMIT)]
    i_a: PhaseCurrents | None = None
    e_kwh: Annotated[float, Field(ge=0.0)] | None = None
    switch: Literal["on", "off"] | None = None


# Documented examples: also embedded in the schema and decoded by the tests.
EXAMPLE_SINGLE: Final[dict[str, Any]] = {
    "meter": "E001-M01",
    "ts": "2026-11-21T08:00:00+08:00",
    "p_kw": 152.4,
    "i_a": [12.1, 12.3, 11.9],
    "e_kwh": 123456.7,
    "switch": "on",
}
EXAMPLE_MINIMAL: Final[dict[str, Any]] = {"ts": "2026-11-21T00:00:00Z", "p_kw": 0}
EXAMPLE_BATCH: Final[list[dict[str, Any]]] = [
    {"meter": "E001-M01", "ts": "2026-11-21T08:00:00+08:00", "p_kw": 152.4, "switch": "on"},
    {"meter": "E001-M02", "ts": "2026-11-21T08:00:00+08:00", "p_kw": 0.0, "switch": "off"},
    {"meter": "E001-M03", "ts": "2026-11-21T08:00:00+08:00", "p_kw": 37.5, "i_a": [61.2]},
]


def _reading_schema() -> dict[str, Any]:
    number = {"type": "number"}
    current = {**number, "minimum": 0, "maximum": int(I_A_MAX)}
    return {
        "type": "object",
        "description": "One meter reading. Optional fields may be omitted or null.",
        "additionalProperties": False,
        "required": ["ts", "p_kw"],
        "properties": {
            "meter": {
                "description": "Meter id (电表编号). Optional when the MQTT topic is "
                "power/{meter_id}; if both are given they must be equal. No whitespace, "
                "control characters, '/', '+' or '#'.",
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": METER_MAX_LEN,
                "pattern": METER_PATTERN,
            },
            "ts": {
                "description": "Reading time (采集时间), RFC 3339 with an explicit UTC offset.",
                "type": "string",
                "format": "date-time",
                "pattern": TS_PATTERN,
            },
            "p_kw": {
                "description": "Active power (有功功率) in kW; negative means export.",
                **number,
                "minimum": -int(P_KW_LIMIT),
                "maximum": int(P_KW_LIMIT),
            },
            "i_a": {
                "description": "Current (电流) in A: one value, or one per phase A, B, C.",
                "anyOf": [
                    {"type": "array", "items": current, "minItems": 1, "maxItems": 1},
                    {"type": "array", "items": current, "minItems": 3, "maxItems": 3},
                    {"type": "null"},
                ],
            },
            "e_kwh": {
                "description": "Cumulative active energy (有功电能累计值) in kWh.",
                "type": ["number", "null"],
                "minimum": 0,
            },
            "switch": {
                "description": "Breaker or contactor state (开关状态) reported by the meter.",
                "enum": ["on", "off", None],
            },
        },
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) document for a whole payload: one reading or a batch."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "nonsite power-meter payload",
        "description": "MQTT payload on topic power/{meter_id}: one reading object or an array "
        f"of 1..{MAX_READINGS} reading objects, UTF-8 JSON. Numbers must be finite. Two rules "
        "are beyond this schema: 'meter' is required in every reading unless the topic names "
        "the meter, and the decoder also rejects impossible dates such as 2026-02-30.",
        "oneOf": [
            {"$ref": "#/$defs/reading"},
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_READINGS,
                "items": {"$ref": "#/$defs/reading"},
            },
        ],
        "$defs": {"reading": _reading_schema()},
        # deep copies: callers may edit the returned document
        "examples": copy.deepcopy([EXAMPLE_SINGLE, EXAMPLE_BATCH, EXAMPLE_MINIMAL]),
    }


def schema_text() -> str:
    """The committed form of docs/schemas/power-reading.schema.json.

    Regenerate with ``.venv/bin/python -c "import sys; from ingest.power import schema_text;
    sys.stdout.write(schema_text())" > docs/schemas/power-reading.schema.json``.
    """
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
