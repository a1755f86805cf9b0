"""Decode power-meter MQTT payloads (JSON, docs/power-telemetry.md) into readings.

``decode_power`` raises only ``PowerDecodeError``, whatever the bytes: pydantic's Rust JSON
parser does the parsing and validation, and every failure is mapped to a stable code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, from_json

from ingest.power.errors import PowerDecodeError, PowerErrorCode
from ingest.power.schema import MAX_READINGS, MeterReading, is_valid_meter_id

DEFAULT_TOPIC_PREFIX: Final = "power/"

_BOM: Final = b"\xef\xbb\xbf"
_JSON_WS: Final = b" \t\r\n"
_MAX_LISTED: Final = 5  # errors listed in a schema_error detail
_MAX_SHOWN: Final = 40  # characters of an offending value or key quoted in a detail

_ONE: Final = TypeAdapter(MeterReading)
_MANY: Final = TypeAdapter(Annotated[list[MeterReading], Field(max_length=MAX_READINGS)])

_T = TypeVar("_T")

# pydantic messages that read poorly for a wire format, by error type.
_MESSAGES: Final = {
    "missing": "required field missing",
    "extra_forbidden": "unknown field",
    "model_type": "expected a reading object",
    "model_attributes_type": "expected a reading object",
    "dict_type": "expected a reading object",
    "string_pattern_mismatch": "must not contain whitespace, control characters, '/', '+' or '#'",
}
_NO_VALUE_SHOWN: Final = frozenset({"missing", "extra_forbidden"})


@dataclass(frozen=True, slots=True)
class DecodedReading:
    """One reading with its meter resolved (payload or topic) and nonsite's field names."""

    meter_id: str
    ts: datetime  # aware
    active_power_kw: float
    current_a: tuple[float, ...] | None  # one value, or phases A, B, C
    energy_kwh: float | None
    switch_on: bool | None


def meter_from_topic(topic: str, *, prefix: str = DEFAULT_TOPIC_PREFIX) -> str | None:
    """The meter id in ``{prefix}{meter_id}``, or None for any other topic shape.

    ``prefix`` may be given with or without its trailing '/'; an empty prefix means the
    whole topic is the meter id.
    """
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if not topic.startswith(prefix):
        return None
    meter = topic[len(prefix) :]
    return meter if is_valid_meter_id(meter) else None


def decode_power(payload: bytes, topic_meter: str | None = None) -> list[DecodedReading]:
    """Decode one MQTT payload: a reading object or an array of 1..1000 of them.

    ``topic_meter`` is the meter named by the topic (``meter_from_topic``), if any: it fills
    in readings without ``meter`` and must equal the ones that have it.
    """
    if topic_meter is not None and not is_valid_meter_id(topic_meter):
        raise PowerDecodeError(
            PowerErrorCode.SCHEMA_ERROR, f"topic: {_show(topic_meter)} is not a valid meter id"
        )
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PowerDecodeError(
            PowerErrorCode.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}"
        ) from None
    # RFC 8259 lets parsers ignore a BOM; some gateway firmware sends one.
    if payload.startswith(_BOM):
        payload = payload[len(_BOM) :]
    start = payload.lstrip(_JSON_WS)[:1]
    if not start:
        raise PowerDecodeError(PowerErrorCode.EMPTY, "the payload is empty")

    readings: list[MeterReading]
    if start == b"[":
        readings = _validate(_MANY, payload)
        if not readings:
            raise PowerDecodeError(PowerErrorCode.EMPTY, "the array holds no reading")
        batch = True
    elif start == b"{":
        readings = [_validate(_ONE, payload)]
        batch = False
    else:
        raise _not_a_reading(payload)

    decoded: list[DecodedReading] = []
    for index, reading in enumerate(readings):
        meter = reading.meter
        if meter is None:
            if topic_meter is None:
                raise PowerDecodeError(
                    PowerErrorCode.SCHEMA_ERROR,
                    f"{_where(batch, index)}meter: required when the topic names no meter",
                )
            meter = topic_meter
        elif topic_meter is not None and meter != topic_meter:
            raise PowerDecodeError(
                PowerErrorCode.METER_MISMATCH,
                f"{_where(batch, index)}meter: {_show(meter)} differs from the topic's "
                f"meter {_show(topic_meter)}",
            )
        switch = reading.switch
        decoded.append(
            DecodedReading(
                meter_id=meter,
                ts=reading.ts,
                active_power_kw=reading.p_kw,
                current_a=reading.i_a,
                energy_kwh=reading.e_kwh,
                switch_on=None if switch is None else switch == "on",
            )
        )
    return decoded


def _validate(adapter: TypeAdapter[_T], payload: bytes) -> _T:
    try:
        return adapter.validate_json(payload)
    except ValidationError as exc:
        raise _translate(exc) from None


def _not_a_reading(payload: bytes) -> PowerDecodeError:
    """A payload that starts with neither '{' nor '[': bad JSON, or JSON of the wrong kind."""
    try:
        value = from_json(payload)
    except ValueError as exc:
        return PowerDecodeError(PowerErrorCode.BAD_JSON, str(exc))
    return PowerDecodeError(
        PowerErrorCode.SCHEMA_ERROR,
        f"payload: expected a reading object or an array of them, got {_json_kind(value)}",
    )


def _translate(exc: ValidationError) -> PowerDecodeError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        ctx = first.get("ctx") or {}
        return PowerDecodeError(PowerErrorCode.BAD_JSON, str(ctx.get("error", first["msg"])))
    if first["type"] == "too_long" and first["loc"] == ():
        count = (first.get("ctx") or {}).get("actual_length", "more")
        return PowerDecodeError(
            PowerErrorCode.TOO_MANY, f"{count} readings in one payload, at most {MAX_READINGS}"
        )
    parts = [f"{_path(error['loc'])}: {_message(error)}" for error in errors[:_MAX_LISTED]]
    if len(errors) > _MAX_LISTED:
        parts.append(f"and {len(errors) - _MAX_LISTED} more")
    return PowerDecodeError(PowerErrorCode.SCHEMA_ERROR, "; ".join(parts))


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    text = _MESSAGES.get(kind, error["msg"])
    value = error["input"]
    if kind in _NO_VALUE_SHOWN or isinstance(value, dict | list | tuple):
        return text
    return f"{text} (got {_show(value)})"


def _path(loc: tuple[int | str, ...]) -> str:
    """Batch index, field and phase index as e.g. ``[2].ts``, ``i_a[1]`` or ``[0].i_a[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if part.isidentifier() and len(part) <= _MAX_SHOWN else _show(part)
            out += f".{name}" if out else name
    return out or "payload"


def _where(batch: bool, index: int) -> str:
    return f"[{index}]." if batch else ""


def _show(value: Any) -> str:
    """A short, log-safe rendering of an offending value in JSON spelling."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # repr() of a huge int raises (int max str digits), and nobody reads 4000 digits.
        return str(value) if abs(value) < 10**18 else "a very large integer"
    if isinstance(value, str):
        if len(value) > _MAX_SHOWN:
            return repr(value[:_MAX_SHOWN])[:-1] + "…'"
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    return type(value).__name__


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
