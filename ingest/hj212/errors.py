"""Stable reason codes for HJ 212 frames that cannot be decoded.

These strings are a public interface (``nonsite decode`` output, dead-letter reasons,
metric labels): add new codes, never rename or reuse one. docs/hj212-codec.md lists them and a
test keeps that list and this enum in step.
"""

from __future__ import annotations

from enum import StrEnum


class DecodeErrorCode(StrEnum):
    EMPTY = "empty"
    NO_HEADER = "no_header"
    BAD_LENGTH_FIELD = "bad_length_field"
    TRUNCATED = "truncated"
    LENGTH_MISMATCH = "length_mismatch"
    SEGMENT_TOO_LONG = "segment_too_long"
    BAD_CRC_FIELD = "bad_crc_field"
    CRC_MISMATCH = "crc_mismatch"
    CRC_MODBUS = "crc_modbus"
    NOT_UTF8 = "not_utf8"
    BAD_ENCODING = "bad_encoding"
    BAD_FIELD = "bad_field"
    MISSING_FIELD = "missing_field"
    BAD_CN = "bad_cn"
    BAD_FLAG = "bad_flag"
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_PACKET_NUMBER = "bad_packet_number"
    BAD_CP = "bad_cp"
    BAD_VALUE = "bad_value"
    BAD_TIME = "bad_time"


DESCRIPTIONS: dict[DecodeErrorCode, str] = {
    DecodeErrorCode.EMPTY: "the input holds no bytes other than whitespace",
    DecodeErrorCode.NO_HEADER: "no '##' packet header where a packet should start",
    DecodeErrorCode.BAD_LENGTH_FIELD: "the 4 characters after '##' are not decimal digits",
    DecodeErrorCode.TRUNCATED: "the input ends before a data segment and a 4-digit CRC",
    DecodeErrorCode.LENGTH_MISMATCH: "the declared data length differs from the UTF-8 byte "
    "count of the data segment found before the CRC",
    DecodeErrorCode.SEGMENT_TOO_LONG: "the data segment is longer than the 1024 bytes the "
    "standard allows (accepted only where configured per data logger)",
    DecodeErrorCode.BAD_CRC_FIELD: "the 4 characters after the data segment are not hex digits",
    DecodeErrorCode.CRC_MISMATCH: "the CRC matches neither HJ 212 Appendix A nor CRC-16/MODBUS",
    DecodeErrorCode.CRC_MODBUS: "the CRC matches only the CRC-16/MODBUS variant, which is not "
    "accepted for this data logger",
    DecodeErrorCode.NOT_UTF8: "the data segment is not valid UTF-8, the text encoding "
    "configured for its data logger (the default)",
    DecodeErrorCode.BAD_ENCODING: "the data segment is not valid text in the data logger's "
    "configured encoding other than UTF-8 (e.g. gbk)",
    DecodeErrorCode.BAD_FIELD: "a header entry is not of the form key=value",
    DecodeErrorCode.MISSING_FIELD: "a required field (ST, CN, PW, MN, CP, or PNUM/PNO for a "
    "split packet) is missing",
    DecodeErrorCode.BAD_CN: "CN is not a 4-digit command code",
    DecodeErrorCode.BAD_FLAG: "Flag is not an integer 0-255",
    DecodeErrorCode.UNSUPPORTED_VERSION: "Flag's version bits name no known edition "
    "(000000 = 2005, 000001 = 2017, 000010 = 2025)",
    DecodeErrorCode.BAD_PACKET_NUMBER: "PNUM/PNO are not positive integers with PNO <= PNUM",
    DecodeErrorCode.BAD_CP: "the CP area is not 'CP=&&...&&', has an entry without '=', or "
    "an unterminated //text//",
    DecodeErrorCode.BAD_VALUE: "a value the standard defines as a number or code is not one",
    DecodeErrorCode.BAD_TIME: "a time field is not a valid YYYYMMDDhhmmss[zzz] time",
}


class Hj212DecodeError(ValueError):
    """A frame the standard's rules reject, with its stable reason code."""

    def __init__(self, code: DecodeErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
