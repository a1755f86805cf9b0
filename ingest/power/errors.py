"""Stable reason codes for power-meter payloads that cannot be decoded.

These strings are a public interface (dead-letter reasons, metric labels, docs): add new codes,
never rename or reuse one. docs/power-telemetry.md lists them and a test keeps that list and
this enum in step.
"""

from __future__ import annotations

from enum import StrEnum


class PowerErrorCode(StrEnum):
    NOT_UTF8 = "not_utf8"
    BAD_JSON = "bad_json"
    EMPTY = "empty"
    SCHEMA_ERROR = "schema_error"
    METER_MISMATCH = "meter_mismatch"
    TOO_MANY = "too_many"


DESCRIPTIONS: dict[PowerErrorCode, str] = {
    PowerErrorCode.NOT_UTF8: "the payload is not valid UTF-8",
    PowerErrorCode.BAD_JSON: "the payload is not one well-formed JSON value the parser can read "
    "(syntax error, trailing characters, nesting or a number beyond the parser's limits)",
    PowerErrorCode.EMPTY: "the payload holds no reading: nothing but whitespace, or an empty array",
    PowerErrorCode.SCHEMA_ERROR: "valid JSON that breaks the reading schema (wrong shape; "
    "missing, unknown or out-of-range field; no meter id from payload or topic; or an invalid "
    "meter id in the topic)",
    PowerErrorCode.METER_MISMATCH: "a reading's meter differs from the meter named by the topic",
    PowerErrorCode.TOO_MANY: "an array holds more than 1000 readings",
}


class PowerDecodeError(ValueError):
    """A payload the wire format rejects, with its stable reason code."""

    def __init__(self, code: PowerErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
