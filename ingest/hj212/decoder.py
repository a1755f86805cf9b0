"""Decode HJ 212 packets: framing, length, CRC (Appendix A, MODBUS variant), data segment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingest.hj212.charset import DEFAULT_ENCODING, header_mn, readable_as
from ingest.hj212.crc import crc_hj212, crc_modbus
from ingest.hj212.errors import DecodeErrorCode, Hj212DecodeError
from ingest.hj212.framing import FramingError, RawFrame, split_frames
from ingest.hj212.model import CrcVariant, Hj212Frame
from ingest.hj212.segment import parse_segment

MAX_SEGMENT_BYTES = 1024  # HJ 212-2017 Table 2
_HEX = frozenset(b"0123456789ABCDEFabcdef")


@dataclass(frozen=True, slots=True)
class DecodePolicy:
    """What a receiver tolerates beyond the standard. The defaults follow the standard.

    Both tolerances are meant to be granted per data logger (see the configuration), because
    they weaken the integrity check for that logger only.
    """

    accept_modbus_crc: bool = False
    max_segment_bytes: int = MAX_SEGMENT_BYTES
    # The text encoding of a segment that is not plain ASCII (ingest.hj212.charset).
    encoding: str = DEFAULT_ENCODING


# The data logger's text encoding by the MN in the segment (None: no readable MN).
EncodingOf = Callable[[str | None], str]

STRICT = DecodePolicy()
LENIENT = DecodePolicy(accept_modbus_crc=True, max_segment_bytes=10**6)


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A packet (or stretch of bytes) the standard's rules reject."""

    code: DecodeErrorCode
    detail: str
    raw: bytes
    # Set when the CRC matched only the MODBUS variant, accepted or not.
    crc_variant: CrcVariant | None = None


def _check_crc(rf: RawFrame) -> CrcVariant:
    field = rf.crc_field
    if len(field) != 4 or not _HEX.issuperset(field):
        raise Hj212DecodeError(
            DecodeErrorCode.BAD_CRC_FIELD, f"CRC field {field!r} is not 4 hex digits"
        )
    received = int(field, 16)
    if crc_hj212(rf.segment) == received:
        return "hj212"
    if crc_modbus(rf.segment) == received:
        return "modbus"
    raise Hj212DecodeError(
        DecodeErrorCode.CRC_MISMATCH,
        f"received {field.decode()}, HJ 212 Appendix A gives {crc_hj212(rf.segment):04X}",
    )


def _segment_text(segment: bytes, policy: DecodePolicy, encoding_of: EncodingOf | None) -> str:
    """The segment as text: ASCII needs no choice (the common case, no lookup); otherwise the
    encoding of the logger whose MN the segment's header names."""
    if segment.isascii():
        return segment.decode("ascii")
    encoding = policy.encoding if encoding_of is None else encoding_of(header_mn(segment))
    try:
        return segment.decode(encoding)
    except UnicodeDecodeError as exc:
        other = readable_as(segment)
        hint = f"; it reads as {other.upper()} text" if other and other != encoding else ""
        if encoding == "utf-8":
            detail = f"byte {exc.start} of the data segment is not UTF-8{hint}"
            raise Hj212DecodeError(DecodeErrorCode.NOT_UTF8, detail) from None
        detail = f"byte {exc.start} of the data segment is not valid {encoding}{hint}"
        raise Hj212DecodeError(DecodeErrorCode.BAD_ENCODING, detail) from None


def decode_raw_frame(
    rf: RawFrame, policy: DecodePolicy = STRICT, encoding_of: EncodingOf | None = None
) -> Hj212Frame:
    """Check a framed packet and parse its data segment. Raises Hj212DecodeError.

    Text is decoded with ``encoding_of(MN)`` when given (a per-logger setting), else with
    ``policy.encoding``."""
    variant = _check_crc(rf)
    if variant == "modbus" and not policy.accept_modbus_crc:
        raise Hj212DecodeError(
            DecodeErrorCode.CRC_MODBUS,
            f"CRC {rf.crc_field.decode()} is CRC-16/MODBUS, not HJ 212 Appendix A "
            f"({crc_hj212(rf.segment):04X})",
        )
    if len(rf.segment) > policy.max_segment_bytes:
        raise Hj212DecodeError(
            DecodeErrorCode.SEGMENT_TOO_LONG,
            f"data segment has {len(rf.segment)} bytes, the limit is {policy.max_segment_bytes}",
        )
    frame = parse_segment(_segment_text(rf.segment, policy, encoding_of))
    frame.crc = rf.crc_field.decode().upper()
    frame.crc_variant = variant
    frame.length = rf.declared_length
    frame.raw = rf.raw
    if rf.warnings:
        frame.warnings[:0] = rf.warnings
    return frame


def decode_payload(
    payload: bytes, policy: DecodePolicy = STRICT, encoding_of: EncodingOf | None = None
) -> list[Hj212Frame | DecodeFailure]:
    """Decode every packet in ``payload`` (a broker message or one capture line), in order;
    ``encoding_of`` as in ``decode_raw_frame``."""
    results: list[Hj212Frame | DecodeFailure] = []
    for item in split_frames(payload):
        if isinstance(item, FramingError):
            results.append(DecodeFailure(item.code, item.detail, item.raw))
            continue
        try:
            results.append(decode_raw_frame(item, policy, encoding_of))
        except Hj212DecodeError as exc:
            modbus = exc.code == DecodeErrorCode.CRC_MODBUS
            results.append(
                DecodeFailure(exc.code, exc.detail, item.raw, "modbus" if modbus else None)
            )
    return results


def decode_frame(data: bytes, policy: DecodePolicy = STRICT) -> Hj212Frame:
    """Decode exactly one packet. Raises Hj212DecodeError for anything else."""
    items = split_frames(data)
    first = items[0]
    if isinstance(first, FramingError):
        raise Hj212DecodeError(first.code, first.detail)
    if len(items) > 1:
        raise Hj212DecodeError(
            DecodeErrorCode.NO_HEADER, f"{len(items) - 1} more item(s) after the first packet"
        )
    return decode_raw_frame(first, policy)
