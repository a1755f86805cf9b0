"""The JSON form of a decode result: the ``nonsite decode`` contract in docs/design.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.hj212.decoder import DecodeFailure
from ingest.hj212.model import CpValue, Hj212Frame


def _json_value(value: CpValue) -> float | int | str:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def frame_to_json(frame: Hj212Frame) -> dict[str, Any]:
    cp: dict[str, Any] = {key: _json_value(v) for key, v in frame.fields.items()}
    for code, values in frame.pollutants.items():
        cp[code] = {suffix: _json_value(v) for suffix, v in values.items()}
    out: dict[str, Any] = {
        "ok": True,
        "qn": frame.qn,
        "st": frame.st,
        "cn": frame.cn,
        "pw": frame.pw,
        "mn": frame.mn,
        "flag": frame.flag,
        "version": frame.version,
        "ack": frame.ack_requested,
        "split": frame.split,
    }
    if frame.pnum is not None:
        out["pnum"] = frame.pnum
        out["pno"] = frame.pno
    data_time = frame.data_time
    if data_time is not None:
        out["data_time"] = data_time.isoformat()
    out["cp"] = cp
    if frame.codes_2005:
        out["codes_2005"] = dict(frame.codes_2005)
    out["length"] = frame.length
    out["crc"] = frame.crc
    out["crc_variant"] = frame.crc_variant
    if frame.crc_variant == "modbus":
        out["modbus"] = True
    if frame.warnings:
        out["warnings"] = list(frame.warnings)
    return out


def failure_to_json(failure: DecodeFailure) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, "error": str(failure.code), "detail": failure.detail}
    if failure.crc_variant == "modbus":
        out["crc_variant"] = "modbus"
        out["modbus"] = True
    out["raw"] = failure.raw.decode("utf-8", errors="backslashreplace")
    return out


def result_to_json(result: Hj212Frame | DecodeFailure) -> dict[str, Any]:
    if isinstance(result, DecodeFailure):
        return failure_to_json(result)
    return frame_to_json(result)
